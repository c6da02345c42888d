//! Deleting a stage without ever losing data by surprise.
//!
//! Before anything is deleted: retained resources (`retain_data`, read from the
//! *deployed* template) are listed as surviving; a bucket with objects outside
//! `static/` or a table with items stops the teardown unless `--delete-data`;
//! a termination-protected stack is refused. Only then is the bucket emptied
//! (CloudFormation cannot delete a non-empty bucket) and the stack deleted.
//! The survivors' ids are recorded first, so a later `up` re-adopts them
//! ([`crate::deploy::readopt`]).

use contract::prefix::STATIC as STATIC_PREFIX;

use crate::aws::AwsError;
use crate::deploy::apply::settled_stack;
use crate::deploy::error::DeployError;
use crate::deploy::readopt;
use crate::deploy::report::{DownReport, NOT_DEPLOYED, StackResource, Stopwatch};
use crate::deploy::session::Session;
use crate::deploy::stack::{self, StackStatus};
use crate::deploy::static_sync;
use crate::template::composition::ids;

/// Deletes the session's stage; `delete_data` also deletes photos and items.
pub async fn down(session: &Session, delete_data: bool) -> Result<DownReport, DeployError> {
    let watch = Stopwatch::start();
    let printer = &session.printer;
    let mut report = DownReport {
        stage: session.stage.name.to_string(),
        stack: session.stack.clone(),
        target: session.aws.target(),
        status: String::new(),
        deleted: Vec::new(),
        retained: Vec::new(),
        objects_deleted: 0,
        millis: 0,
    };
    let Some(stack) = settled_stack(session).await? else {
        NOT_DEPLOYED.clone_into(&mut report.status);
        return Ok(report);
    };
    if stack.termination_protection {
        return Err(DeployError::Refused(format!(
            "stack `{0}` has termination protection, so `down` leaves it alone; if you really mean to delete it, run `aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {0}` first",
            stack.name
        )));
    }

    let resources = stack_resources(session, &stack.id).await?;
    let retained_ids = retained_logical_ids(session, &stack.id).await?;
    let (retained, deleted): (Vec<_>, Vec<_>) = resources
        .into_iter()
        .partition(|r| retained_ids.contains(&r.logical_id));
    let bucket = deleted
        .iter()
        .find(|r| r.logical_id == ids::BUCKET.to_string())
        .map(|r| r.physical_id.clone());
    let table = deleted
        .iter()
        .find(|r| r.logical_id == ids::TABLE.to_string())
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

    let data = data_in(session, bucket.as_deref(), table.as_deref()).await?;
    if !delete_data {
        refuse_if_data(session, &data, bucket.as_deref(), table.as_deref())?;
    }
    if !session.confirm(
        &format!("delete stage `{}`?", session.stage.name),
        &format!("deleting stage `{}`", session.stage.name),
    )? {
        return Err(DeployError::Refused("nothing was deleted".to_owned()));
    }

    if !retained.is_empty() {
        // Before anything is deleted: a later `up` re-adopts them by these ids.
        readopt::record(session, &retained).await?;
    }
    if let Some(bucket) = &bucket {
        report.objects_deleted = empty_bucket(session, bucket).await?;
    }
    let after = stack::latest_event_id(&session.aws, &stack.id).await?;
    stack::delete_stack(&session.aws, &stack.id).await?;
    let mut progress = printer.progress();
    let status = stack::wait(&session.aws, &stack.id, after, &mut progress).await?;
    progress.finish();
    if status != StackStatus::DeleteComplete {
        return Err(DeployError::Failed(format!(
            "deleting stack `{}` ended {status}{}\nfix the cause and run `deployer down` again",
            stack.name,
            progress.failure_lines()
        )));
    }
    report.status = status.to_string();
    report.deleted = deleted;
    report.retained = retained;
    report.millis = watch.millis();
    Ok(report)
}

/// What data the stage holds outside what the deployer itself put there.
#[derive(Debug, Default)]
struct Data {
    /// Objects outside `static/` (photos, thumbnails), counted up to a page.
    bucket_objects: usize,
    table_has_items: bool,
}

/// Stops `down` before anything is deleted when the stage holds user data.
fn refuse_if_data(
    session: &Session,
    data: &Data,
    bucket: Option<&str>,
    table: Option<&str>,
) -> Result<(), DeployError> {
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
    Err(DeployError::Refused(format!(
        "{}; nothing was deleted. Copy the data out first if you need it, then run `deployer down --stage {} --delete-data` to delete it with the stage",
        what.join(" and "),
        session.stage.name
    )))
}

async fn stack_resources(
    session: &Session,
    stack_id: &str,
) -> Result<Vec<StackResource>, DeployError> {
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

/// The deletion policies under which a resource outlives its stack.
pub const RETAIN_POLICIES: [&str; 2] = ["Retain", "RetainExceptOnCreate"];

/// Logical ids whose `DeletionPolicy` keeps them (`Retain`,
/// `RetainExceptOnCreate`) in the deployed template.
pub async fn retained_logical_ids(
    session: &Session,
    stack_id: &str,
) -> Result<Vec<String>, DeployError> {
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
            DeployError::Failed(format!(
                "cannot read the deployed template of `{stack_id}` to see what it retains: {e}; nothing was deleted"
            ))
        })?;
    Ok(template["Resources"]
        .as_object()
        .map(|resources| {
            resources
                .iter()
                .filter(|(_, r)| {
                    r["DeletionPolicy"]
                        .as_str()
                        .is_some_and(|policy| RETAIN_POLICIES.contains(&policy))
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default())
}

async fn data_in(
    session: &Session,
    bucket: Option<&str>,
    table: Option<&str>,
) -> Result<Data, DeployError> {
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

/// Deletes every object of `bucket`, with every version and delete marker
/// (a retained stage's bucket is versioned); returns how many objects were
/// current.
async fn empty_bucket(session: &Session, bucket: &str) -> Result<usize, DeployError> {
    let mut current = 0;
    loop {
        let page = session
            .aws
            .s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                let err = AwsError::from_sdk("s3:ListBucketVersions", session.aws.target(), e);
                if err.is_code("NoSuchBucket") {
                    return Ok(current);
                }
                return Err(err.into());
            }
        };
        let mut versions: Vec<(&str, Option<&str>)> = Vec::new();
        for version in page.versions() {
            if let Some(key) = version.key.as_deref() {
                current += usize::from(version.is_latest.unwrap_or(true));
                versions.push((key, version.version_id.as_deref()));
            }
        }
        for marker in page.delete_markers() {
            if let Some(key) = marker.key.as_deref() {
                versions.push((key, marker.version_id.as_deref()));
            }
        }
        if versions.is_empty() {
            return Ok(current);
        }
        static_sync::delete_versions(&session.aws, bucket, &versions).await?;
    }
}
