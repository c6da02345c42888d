//! `deployer down`: delete a stage without ever losing data by surprise.
//!
//! Before anything is deleted: retained resources (`retain_data`, read from the
//! *deployed* template) are listed as surviving; a bucket with objects outside
//! `static/` or a table with items stops the command unless `--delete-data`;
//! a termination-protected stack is refused. Only then is the bucket emptied
//! (CloudFormation cannot delete a non-empty bucket) and the stack deleted.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use super::{Session, confirm};
use crate::aws::AwsError;
use crate::cfn::{self, Stopwatch};
use crate::cli::DownArgs;
use crate::model::{STATIC_PREFIX, ids};
use crate::progress::{StackProgress, interactive};
use crate::{Context, Error, assets};

/// One resource of the stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: String,
}

#[derive(Debug, Serialize, Default)]
struct DownReport {
    stage: String,
    stack: String,
    target: String,
    status: String,
    deleted: Vec<StackResource>,
    retained: Vec<StackResource>,
    objects_deleted: usize,
    millis: u64,
}

impl fmt::Display for DownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status == "NOT_DEPLOYED" {
            return write!(f, "stage {} is not deployed; nothing to delete", self.stage);
        }
        write!(
            f,
            "stage {} deleted ({} resources, {} objects)",
            self.stage,
            self.deleted.len(),
            self.objects_deleted
        )?;
        for kept in &self.retained {
            write!(
                f,
                "\nkept (retain_data): {} `{}`",
                kept.resource_type, kept.physical_id
            )?;
        }
        Ok(())
    }
}

/// What data the stage holds outside what the deployer itself put there.
#[derive(Debug, Default)]
struct Data {
    /// Objects outside `static/` (photos, thumbnails), counted up to a page.
    bucket_objects: usize,
    table_has_items: bool,
}

pub async fn run(context: &Context, args: &DownArgs) -> Result<ExitCode, Error> {
    let watch = Stopwatch::start();
    let session = Session::open(context).await?;
    let printer = &context.printer;
    let mut report = DownReport {
        stage: session.stage.name.to_string(),
        stack: session.stack.clone(),
        target: session.aws.target(),
        ..DownReport::default()
    };
    let Some(mut stack) = cfn::describe(&session.aws, &session.stack).await? else {
        "NOT_DEPLOYED".clone_into(&mut report.status);
        printer.result(&report);
        return Ok(ExitCode::SUCCESS);
    };
    if stack.in_progress() {
        printer.info(format_args!(
            "stack `{}` is {}; waiting for it to finish",
            stack.name, stack.status
        ));
        let mut progress = StackProgress::new(printer.quiet, interactive());
        cfn::wait(&session.aws, &stack.id, None, &mut progress).await?;
        progress.finish();
        stack = session.deployed_stack().await?;
    }
    if stack.termination_protection {
        return Err(Error::Refused(format!(
            "stack `{0}` has termination protection, so `down` leaves it alone; if you really mean to delete it, run `aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {0}` first",
            stack.name
        )));
    }

    let resources = stack_resources(&session, &stack.id).await?;
    let retained_ids = retained_logical_ids(&session, &stack.id).await?;
    let (retained, deleted): (Vec<_>, Vec<_>) = resources
        .into_iter()
        .partition(|r| retained_ids.contains(&r.logical_id));
    let bucket = deleted
        .iter()
        .find(|r| r.logical_id == ids::BUCKET.as_str())
        .map(|r| r.physical_id.clone());
    let table = deleted
        .iter()
        .find(|r| r.logical_id == ids::TABLE.as_str())
        .map(|r| r.physical_id.clone());

    printer.info(format_args!(
        "deleting stage `{}` (stack `{}` on {}) removes:",
        session.stage.name,
        stack.name,
        session.aws.target()
    ));
    for r in &deleted {
        printer.info(format_args!(
            "  {:<24} {:<32} {}",
            r.logical_id, r.resource_type, r.physical_id
        ));
    }
    for r in &retained {
        printer.info(format_args!(
            "  kept: {} `{}` survives (retain_data: true)",
            r.resource_type, r.physical_id
        ));
    }

    let data = data_in(&session, bucket.as_deref(), table.as_deref()).await?;
    if !args.delete_data {
        refuse_if_data(&session, &data, bucket.as_deref(), table.as_deref())?;
    }
    if !confirm(
        context,
        &format!("delete stage `{}`?", session.stage.name),
        &format!("deleting stage `{}`", session.stage.name),
    )? {
        return Err(Error::Refused("nothing was deleted".to_owned()));
    }

    if let Some(bucket) = &bucket {
        report.objects_deleted = empty_bucket(&session, bucket).await?;
    }
    let after = cfn::latest_event_id(&session.aws, &stack.id).await?;
    cfn::delete_stack(&session.aws, &stack.id).await?;
    let mut progress = StackProgress::new(printer.quiet, interactive());
    let status = cfn::wait(&session.aws, &stack.id, after, &mut progress).await?;
    progress.finish();
    if status != "DELETE_COMPLETE" {
        return Err(Error::Failed(format!(
            "deleting stack `{}` ended {status}{}\nfix the cause and run `deployer down` again",
            stack.name,
            progress.failure_lines()
        )));
    }
    report.status = status;
    report.deleted = deleted;
    report.retained = retained;
    report.millis = watch.millis();
    printer.result(&report);
    Ok(ExitCode::SUCCESS)
}

/// Stops `down` before anything is deleted when the stage holds user data.
fn refuse_if_data(
    session: &Session,
    data: &Data,
    bucket: Option<&str>,
    table: Option<&str>,
) -> Result<(), Error> {
    let mut what = Vec::new();
    if let (Some(bucket), true) = (bucket, data.bucket_objects > 0) {
        what.push(format!(
            "bucket `{bucket}` holds {} photo object(s)",
            data.bucket_objects
        ));
    }
    if let (Some(table), true) = (table, data.table_has_items) {
        what.push(format!("table `{table}` holds items"));
    }
    if what.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{}; nothing was deleted. Copy the data out first if you need it, then run `deployer down --stage {} --delete-data` to delete it with the stage",
        what.join(" and "),
        session.stage.name
    )))
}

async fn stack_resources(session: &Session, stack_id: &str) -> Result<Vec<StackResource>, Error> {
    let out = session
        .aws
        .cfn
        .describe_stack_resources()
        .stack_name(stack_id)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk(
                "cloudformation:DescribeStackResources",
                session.aws.target(),
                e,
            )
        })?;
    Ok(out
        .stack_resources()
        .iter()
        .map(|r| StackResource {
            logical_id: r.logical_resource_id.clone().unwrap_or_default(),
            resource_type: r.resource_type.clone().unwrap_or_default(),
            physical_id: r.physical_resource_id.clone().unwrap_or_default(),
        })
        .collect())
}

/// Logical ids whose `DeletionPolicy` is `Retain` in the deployed template.
async fn retained_logical_ids(session: &Session, stack_id: &str) -> Result<Vec<String>, Error> {
    let out = session
        .aws
        .cfn
        .get_template()
        .stack_name(stack_id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudformation:GetTemplate", session.aws.target(), e))?;
    let body = out.template_body.unwrap_or_default();
    let template: serde_json::Value = serde_json::from_str(&body)
        .or_else(|_| serde_norway::from_str(&body))
        .map_err(|e: serde_norway::Error| {
            Error::Failed(format!(
                "cannot read the deployed template of `{stack_id}` to see what it retains: {e}; nothing was deleted"
            ))
        })?;
    Ok(template["Resources"]
        .as_object()
        .map(|resources| {
            resources
                .iter()
                .filter(|(_, r)| r["DeletionPolicy"] == "Retain")
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default())
}

async fn data_in(
    session: &Session,
    bucket: Option<&str>,
    table: Option<&str>,
) -> Result<Data, Error> {
    let mut data = Data::default();
    if let Some(bucket) = bucket {
        let page = session.aws.s3.list_objects_v2().bucket(bucket).send().await;
        match page {
            Ok(page) => {
                data.bucket_objects = page
                    .contents()
                    .iter()
                    .filter(|o| {
                        o.key
                            .as_deref()
                            .is_some_and(|k| !k.starts_with(STATIC_PREFIX))
                    })
                    .count();
            }
            Err(e) => {
                let err = AwsError::from_sdk("s3:ListBucket", session.aws.target(), e);
                if !err.is_code("NoSuchBucket") {
                    return Err(err.into());
                }
            }
        }
    }
    if let Some(table) = table {
        let scan = session
            .aws
            .ddb
            .scan()
            .table_name(table)
            .limit(1)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await;
        match scan {
            Ok(out) => data.table_has_items = out.count > 0,
            Err(e) => {
                let err = AwsError::from_sdk("dynamodb:Scan", session.aws.target(), e);
                if !err.is_code("ResourceNotFoundException") {
                    return Err(err.into());
                }
            }
        }
    }
    Ok(data)
}

/// Deletes every object of `bucket`; returns how many.
async fn empty_bucket(session: &Session, bucket: &str) -> Result<usize, Error> {
    let mut deleted = 0;
    loop {
        let page = session.aws.s3.list_objects_v2().bucket(bucket).send().await;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                let err = AwsError::from_sdk("s3:ListBucket", session.aws.target(), e);
                if err.is_code("NoSuchBucket") {
                    return Ok(deleted);
                }
                return Err(err.into());
            }
        };
        let keys: Vec<&str> = page
            .contents()
            .iter()
            .filter_map(|o| o.key.as_deref())
            .collect();
        if keys.is_empty() {
            return Ok(deleted);
        }
        assets::delete_keys(&session.aws, bucket, keys.iter().copied()).await?;
        deleted += keys.len();
    }
}
