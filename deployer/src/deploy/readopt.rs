//! Bringing a retained stage back with its users and photos.
//!
//! `down` of a stage with `retain_data: true` leaves its table, bucket and user
//! pool behind ([`RETAINED`]) and records their physical ids in the artifacts
//! bucket, under `retained/<stack>.json` ([`record`]). A later `up` that finds
//! no stack looks each of them up through its own service (`DescribeTable`,
//! `HeadBucket` with the expected owner, `DescribeUserPool`; a pool nothing
//! recorded is found by its name, which must be unique), and then:
//!
//! - all survive: lists them, asks (or takes `--yes`), and adopts them into a
//!   new stack with an `IMPORT` change set whose template holds only them
//!   ([`import_template`]); each is then checked again through its own
//!   service, and the normal update adds everything else;
//! - none survive: the stage is created anew, as always;
//! - some survive: refused, naming what was found, what is missing and what
//!   to do; never a new, empty stage next to orphaned data.

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::aws::AwsError;
use crate::deploy::artifacts::{self, BucketAnswer};
use crate::deploy::change_set::{self, ChangeSet, ChangeSetRequest, Import, TemplateSource};
use crate::deploy::error::DeployError;
use crate::deploy::guard;
use crate::deploy::report::StackResource;
use crate::deploy::session::Session;
use crate::deploy::stack::{self, StackStatus};
use crate::template::composition::{RETAINED, Retained, import_template};

/// Where `down` records a retained stage's survivors in the artifacts bucket.
pub fn record_key(stack: &str) -> String {
    format!("retained/{stack}.json")
}

/// What `down` recorded about the resources that outlived the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub stage: String,
    pub stack: String,
    pub survivors: Vec<StackResource>,
}

impl Record {
    fn physical_id(&self, retained: &Retained) -> Option<&str> {
        let id = retained.id.to_string();
        self.survivors
            .iter()
            .find(|s| s.logical_id == id && s.resource_type == retained.resource_type)
            .map(|s| s.physical_id.as_str())
    }
}

/// Records the resources that will outlive the stack, before `down` deletes
/// it: the ids a later `up` re-adopts them by (a user pool's name is not
/// unique, and the table's and bucket's names are CloudFormation's).
pub async fn record(session: &Session, survivors: &[StackResource]) -> Result<(), DeployError> {
    let account = session.aws.account_id().await?;
    let bucket =
        artifacts::ensure_bucket(&session.aws, &account, &session.artifacts_bucket(&account))
            .await?;
    let key = record_key(&session.stack);
    let record = Record {
        stage: session.stage.name.to_string(),
        stack: session.stack.clone(),
        survivors: survivors.to_vec(),
    };
    let body = serde_json::to_vec_pretty(&record)
        .map_err(|e| DeployError::Failed(format!("cannot write the survivors' record: {e}")))?;
    session
        .aws
        .s3
        .put_object()
        .bucket(&bucket)
        .expected_bucket_owner(&account)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:PutObject", session.aws.target(), e))?;
    session.printer.detail(format_args!(
        "recorded the survivors in s3://{bucket}/{key}; `deployer up` re-adopts them"
    ));
    Ok(())
}

/// The record `down` left, if any.
async fn read_record(
    session: &Session,
    bucket: &str,
    owner: &str,
) -> Result<Option<Record>, DeployError> {
    let key = record_key(&session.stack);
    let got = session
        .aws
        .s3
        .get_object()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .key(&key)
        .send()
        .await;
    let object = match got {
        Ok(object) => object,
        Err(e) => {
            let err = AwsError::from_sdk("s3:GetObject", session.aws.target(), e);
            if err.is_code("NoSuchKey") || err.is_code("NoSuchBucket") {
                return Ok(None);
            }
            return Err(err.into());
        }
    };
    let bytes = object.body.collect().await.map_err(|e| {
        DeployError::Failed(format!("cannot read s3://{bucket}/{key}: {e}; try again"))
    })?;
    serde_json::from_slice(&bytes.into_bytes())
        .map(Some)
        .map_err(|e| {
            DeployError::Failed(format!(
                "s3://{bucket}/{key}, the record of stage `{}`'s retained resources, is not readable ({e}); nothing was changed. Fix it (it names each survivor's logical_id, resource_type and physical_id) or delete it to create the stage anew",
                session.stage.name
            ))
        })
}

/// What became of one retained resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It exists, under this physical id; `how` it was found.
    Found { physical_id: String, how: String },
    /// It does not exist, or nothing says where it is.
    Missing { why: String },
}

/// One retained resource and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    pub retained: Retained,
    pub lookup: Lookup,
}

impl Survivor {
    fn describe(&self) -> String {
        let name = self.retained.id;
        let kind = self.retained.resource_type;
        match &self.lookup {
            Lookup::Found { physical_id, how } => {
                format!("{name} ({kind}) `{physical_id}`: {how}")
            }
            Lookup::Missing { why } => format!("{name} ({kind}): {why}"),
        }
    }
}

/// What `up` does about the survivors of an earlier `down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing survived: create the stage anew.
    Nothing,
    /// Everything survived: import it.
    All(Vec<Import>),
    /// Some survived, some did not: the error that says what to do.
    Partial(String),
}

/// Decides on the survivors of every [`RETAINED`] resource.
pub fn verdict(stage: &str, record_at: &str, survivors: &[Survivor]) -> Verdict {
    let found: Vec<&Survivor> = survivors
        .iter()
        .filter(|s| matches!(s.lookup, Lookup::Found { .. }))
        .collect();
    if found.is_empty() {
        return Verdict::Nothing;
    }
    if found.len() == survivors.len() {
        return Verdict::All(
            survivors
                .iter()
                .filter_map(|s| match &s.lookup {
                    Lookup::Found { physical_id, .. } => Some(Import {
                        logical_id: s.retained.id.to_string(),
                        resource_type: s.retained.resource_type.to_owned(),
                        identifier_key: s.retained.identifier_key.to_owned(),
                        physical_id: physical_id.clone(),
                    }),
                    Lookup::Missing { .. } => None,
                })
                .collect(),
        );
    }
    let (found, missing): (Vec<&Survivor>, Vec<&Survivor>) = survivors
        .iter()
        .partition(|s| matches!(s.lookup, Lookup::Found { .. }));
    let lines = |list: &[&Survivor]| {
        list.iter().fold(String::new(), |mut out, s| {
            out.push_str("\n  ");
            out.push_str(&s.describe());
            out
        })
    };
    Verdict::Partial(format!(
        "stage `{stage}` has no stack, but part of its retained data survives; nothing was changed, because a new stage would start empty next to it.\nfound:{}\nmissing:{}\nwhat you can do:\n  - if the missing ones exist under other names, write their physical ids into {record_at} (JSON: {{\"stage\", \"stack\", \"survivors\": [{{\"logical_id\", \"resource_type\", \"physical_id\"}}]}}) and run `deployer up --stage {stage}` again: all of them are re-adopted;\n  - if they are lost, restore them (DynamoDB: restore the table from a backup or point in time; S3: a bucket of the recorded name) and record them so;\n  - to start the stage empty instead, save what the found ones hold, delete them (deletion protection first), delete {record_at}, and run `deployer up --stage {stage}`",
        lines(&found),
        lines(&missing),
    ))
}

/// Before a stack is created: looks for what an earlier `down` of this stage
/// left behind and re-adopts it (see the module docs). Returns the re-adopted
/// resources: empty when there were none and the stack is still to be created.
pub async fn readopt(
    session: &Session,
    artifacts_bucket: &str,
    owner: &str,
) -> Result<Vec<StackResource>, DeployError> {
    let Some(survey) = survey(session, artifacts_bucket, owner).await? else {
        return Ok(Vec::new());
    };
    let Survey {
        recorded,
        survivors,
        record_at,
    } = survey;
    let imports = match verdict(session.stage.name.as_str(), &record_at, &survivors) {
        Verdict::Nothing => {
            if recorded {
                session.printer.info(format_args!(
                    "none of the resources recorded in {record_at} exists any more; creating stage `{}` anew",
                    session.stage.name
                ));
            }
            return Ok(Vec::new());
        }
        Verdict::Partial(message) => return Err(DeployError::PartialSurvivors(message)),
        Verdict::All(imports) => imports,
    };
    session.printer.info(format_args!(
        "stage `{}` has no stack, but its retained data survived an earlier `down`:",
        session.stage.name
    ));
    for survivor in &survivors {
        session
            .printer
            .info(format_args!("  {}", survivor.describe()));
    }
    if !session.confirm(
        "re-adopt them into the new stack, so its users and photos come back?",
        &format!(
            "re-adopting the retained data of stage `{}`",
            session.stage.name
        ),
    )? {
        return Err(DeployError::Refused(format!(
            "nothing was changed: `up` would otherwise create a new, empty stage next to the survivors. Run `deployer up --stage {}` again and answer yes (or pass `--yes`) to re-adopt them",
            session.stage.name
        )));
    }
    let adopted = import(session, &imports).await?;
    verify(session, owner, &imports).await?;
    if session.stage.config.retain_data {
        guard::protect_from_termination(session).await?;
    }
    forget_record(session, artifacts_bucket, owner).await?;
    Ok(adopted)
}

/// What an earlier `down` of the stage left, looked up resource by resource.
struct Survey {
    /// `down` left a record of the survivors.
    recorded: bool,
    survivors: Vec<Survivor>,
    /// Where the record is (or would be).
    record_at: String,
}

/// The survivors of an earlier `down`; `None` for a stage that keeps no
/// data and has no record (nothing to look for).
async fn survey(
    session: &Session,
    artifacts_bucket: &str,
    owner: &str,
) -> Result<Option<Survey>, DeployError> {
    let record = read_record(session, artifacts_bucket, owner).await?;
    // A stage without retained data leaves nothing behind, unless a record
    // says otherwise (`retain_data` turned off since the `down`).
    if record.is_none() && !session.stage.config.retain_data {
        return Ok(None);
    }
    let mut survivors = Vec::new();
    for retained in RETAINED {
        let recorded = record.as_ref().and_then(|r| r.physical_id(&retained));
        let lookup = look_up(session, owner, &retained, recorded).await?;
        survivors.push(Survivor { retained, lookup });
    }
    Ok(Some(Survey {
        recorded: record.is_some(),
        survivors,
        record_at: format!("s3://{artifacts_bucket}/{}", record_key(&session.stack)),
    }))
}

/// What `up` would do about the survivors of an earlier `down`, changing
/// nothing (`plan`): the imports it would make, none, or its refusal.
pub async fn would_readopt(
    session: &Session,
    artifacts_bucket: &str,
    owner: &str,
) -> Result<Vec<Import>, DeployError> {
    let Some(survey) = survey(session, artifacts_bucket, owner).await? else {
        return Ok(Vec::new());
    };
    match verdict(
        session.stage.name.as_str(),
        &survey.record_at,
        &survey.survivors,
    ) {
        Verdict::Nothing => Ok(Vec::new()),
        Verdict::All(imports) => Ok(imports),
        Verdict::Partial(message) => Err(DeployError::PartialSurvivors(message)),
    }
}

/// Where one retained resource is, asked of its own service.
async fn look_up(
    session: &Session,
    owner: &str,
    retained: &Retained,
    recorded: Option<&str>,
) -> Result<Lookup, DeployError> {
    if let Some(id) = recorded {
        return Ok(if exists(session, owner, retained, id).await? {
            Lookup::Found {
                physical_id: id.to_owned(),
                how: "recorded by `down`, and it exists".to_owned(),
            }
        } else {
            Lookup::Missing {
                why: format!("`down` recorded `{id}`, but it does not exist"),
            }
        });
    }
    // Without a record: only what has a name of its own can be found.
    if retained.resource_type == "AWS::Cognito::UserPool" {
        return pool_by_name(session).await;
    }
    if retained.resource_type == "AWS::S3::Bucket"
        && let Some(name) = &session.stage.config.bucket.name
    {
        let name = name.as_str();
        return Ok(if exists(session, owner, retained, name).await? {
            Lookup::Found {
                physical_id: name.to_owned(),
                how: "named in the stage file, and it exists".to_owned(),
            }
        } else {
            Lookup::Missing {
                why: format!("no bucket `{name}` (the stage file's name)"),
            }
        });
    }
    Ok(Lookup::Missing {
        why: "no record of its name (CloudFormation named it)".to_owned(),
    })
}

/// The stage's user pool by its name (the stack's), which Cognito does not
/// keep unique: several are refused.
async fn pool_by_name(session: &Session) -> Result<Lookup, DeployError> {
    let mut matches = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = session
            .aws
            .cognito
            .list_user_pools()
            .max_results(60)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("cognito-idp:ListUserPools", session.aws.target(), e)
            })?;
        matches.extend(
            page.user_pools()
                .iter()
                .filter(|p| p.name.as_deref() == Some(session.stack.as_str()))
                .filter_map(|p| p.id.clone()),
        );
        token = page.next_token.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    match matches.as_slice() {
        [] => Ok(Lookup::Missing {
            why: format!("no record, and no user pool named `{}`", session.stack),
        }),
        [id] => Ok(Lookup::Found {
            physical_id: id.clone(),
            how: format!("the only user pool named `{}`", session.stack),
        }),
        several => Err(DeployError::PartialSurvivors(format!(
            "stage `{}` has no stack and no record of its retained user pool, and {} user pools are named `{}` ({}); nothing was changed. Keep the one that holds the stage's users, delete or rename the others, and run `deployer up --stage {}` again",
            session.stage.name,
            several.len(),
            session.stack,
            several.join(", "),
            session.stage.name
        ))),
    }
}

/// Whether the resource exists, asked of its own service.
async fn exists(
    session: &Session,
    owner: &str,
    retained: &Retained,
    physical_id: &str,
) -> Result<bool, DeployError> {
    let aws = &session.aws;
    match retained.resource_type {
        "AWS::DynamoDB::Table" => {
            match aws
                .ddb
                .describe_table()
                .table_name(physical_id)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) => {
                    let err = AwsError::from_sdk("dynamodb:DescribeTable", aws.target(), e);
                    if err.is_code("ResourceNotFoundException") {
                        Ok(false)
                    } else {
                        Err(err.into())
                    }
                }
            }
        }
        "AWS::S3::Bucket" => match artifacts::fetch_bucket_answer(aws, physical_id, owner).await? {
            BucketAnswer::Owned => Ok(true),
            BucketAnswer::Missing => Ok(false),
            BucketAnswer::Forbidden => Err(DeployError::PartialSurvivors(format!(
                "bucket `{physical_id}` of stage `{}` exists but does not belong to account {owner} (or is denied to it); nothing was changed. Check the credentials (`--profile`) and the bucket's owner",
                session.stage.name
            ))),
        },
        "AWS::Cognito::UserPool" => {
            match aws
                .cognito
                .describe_user_pool()
                .user_pool_id(physical_id)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) => {
                    let err = AwsError::from_sdk("cognito-idp:DescribeUserPool", aws.target(), e);
                    if err.is_code("ResourceNotFoundException") {
                        Ok(false)
                    } else {
                        Err(err.into())
                    }
                }
            }
        }
        other => Err(DeployError::Failed(format!(
            "the deployer cannot look up a retained {other}; this is a bug"
        ))),
    }
}

/// Creates the stack by importing `imports`, and waits for it.
async fn import(session: &Session, imports: &[Import]) -> Result<Vec<StackResource>, DeployError> {
    let template = import_template(&session.stage, &session.target);
    let change_set = change_set::create_change_set(
        &session.aws,
        &ChangeSetRequest {
            stack: &session.stack,
            create: true,
            template: TemplateSource::Body(template.body()),
            parameters: &[],
            // An import may not add stack tags; the update that follows does.
            tags: &[],
            imports,
        },
    )
    .await?;
    let ChangeSet::Ready { name, stack_id, .. } = change_set else {
        return Err(DeployError::Failed(format!(
            "CloudFormation found nothing to import into stack `{}`; nothing was changed",
            session.stack
        )));
    };
    for i in imports {
        session.printer.info(format_args!(
            "{:<7} {:<24} {:<32} {}",
            "Import", i.logical_id, i.resource_type, i.physical_id
        ));
    }
    change_set::execute_change_set(&session.aws, &session.stack, &name).await?;
    let mut progress = session.printer.progress();
    let status = stack::wait(&session.aws, &stack_id, None, &mut progress).await?;
    progress.finish();
    if status != StackStatus::ImportComplete {
        return Err(DeployError::Failed(format!(
            "re-adopting the retained data of stage `{}` failed: stack `{}` is {status}{}\nthe survivors themselves were not changed; fix the cause above and run `deployer up --stage {}` again",
            session.stage.name,
            session.stack,
            progress.failure_lines(),
            session.stage.name
        )));
    }
    Ok(imports
        .iter()
        .map(|i| StackResource {
            logical_id: i.logical_id.clone(),
            resource_type: i.resource_type.clone(),
            physical_id: i.physical_id.clone(),
        })
        .collect())
}

/// After the import: the stack holds each resource under the id it was
/// imported by, and each still exists, asked of its own service.
async fn verify(session: &Session, owner: &str, imports: &[Import]) -> Result<(), DeployError> {
    for i in imports {
        let held = session
            .aws
            .cfn
            .describe_stack_resource()
            .stack_name(&session.stack)
            .logical_resource_id(&i.logical_id)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "cloudformation:DescribeStackResource",
                    session.aws.target(),
                    e,
                )
            })?
            .stack_resource_detail
            .and_then(|d| d.physical_resource_id);
        let retained = RETAINED
            .iter()
            .find(|r| r.id.to_string() == i.logical_id)
            .ok_or_else(|| DeployError::Failed(format!("`{}` is not retained", i.logical_id)))?;
        if held.as_deref() != Some(i.physical_id.as_str())
            || !exists(session, owner, retained, &i.physical_id).await?
        {
            return Err(DeployError::Failed(format!(
                "after the import, stack `{}` holds {} as `{}`, not the survivor `{}`, or that no longer exists; inspect it with `deployer status --stage {}` before going on",
                session.stack,
                i.logical_id,
                held.as_deref().unwrap_or("nothing"),
                i.physical_id,
                session.stage.name
            )));
        }
    }
    Ok(())
}

/// The stack holds the survivors again: the record has served.
async fn forget_record(session: &Session, bucket: &str, owner: &str) -> Result<(), DeployError> {
    session
        .aws
        .s3
        .delete_object()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .key(record_key(&session.stack))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:DeleteObject", session.aws.target(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(retained: Retained, id: &str) -> Survivor {
        Survivor {
            retained,
            lookup: Lookup::Found {
                physical_id: id.to_owned(),
                how: "recorded by `down`, and it exists".to_owned(),
            },
        }
    }

    fn missing(retained: Retained) -> Survivor {
        Survivor {
            retained,
            lookup: Lookup::Missing {
                why: "`down` recorded `t-1`, but it does not exist".to_owned(),
            },
        }
    }

    const AT: &str = "s3://deployer-artifacts-1-r/retained/cloudalbum-prod.json";

    #[test]
    fn all_survivors_are_imported_by_their_identifiers() {
        let [table, bucket, pool] = RETAINED;
        let all = [
            found(table, "t-1"),
            found(bucket, "b-1"),
            found(pool, "p-1"),
        ];
        let Verdict::All(imports) = verdict("prod", AT, &all) else {
            panic!("not imported");
        };
        let keys: Vec<(&str, &str)> = imports
            .iter()
            .map(|i| (i.identifier_key.as_str(), i.physical_id.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("TableName", "t-1"),
                ("BucketName", "b-1"),
                ("UserPoolId", "p-1")
            ]
        );
        assert_eq!(imports[2].logical_id, "UserPool");
        assert_eq!(imports[2].resource_type, "AWS::Cognito::UserPool");
    }

    #[test]
    fn nothing_surviving_creates_the_stage_anew() {
        let none: Vec<Survivor> = RETAINED.into_iter().map(missing).collect();
        assert_eq!(verdict("prod", AT, &none), Verdict::Nothing);
    }

    #[test]
    fn a_partial_survival_names_what_is_found_what_is_missing_and_what_to_do() {
        let [table, bucket, pool] = RETAINED;
        let partial = [found(table, "t-1"), found(bucket, "b-1"), missing(pool)];
        let Verdict::Partial(message) = verdict("prod", AT, &partial) else {
            panic!("a partial survival was not refused");
        };
        let (found_part, rest) = message.split_once("missing:").unwrap();
        assert!(
            found_part.contains("PhotoTable (AWS::DynamoDB::Table) `t-1`"),
            "{message}"
        );
        assert!(
            found_part.contains("PhotoBucket (AWS::S3::Bucket) `b-1`"),
            "{message}"
        );
        assert!(
            rest.contains("UserPool (AWS::Cognito::UserPool)"),
            "{message}"
        );
        assert!(message.contains("nothing was changed"), "{message}");
        assert!(message.contains(AT), "{message}");
        assert!(message.contains("deployer up --stage prod"), "{message}");
    }

    #[test]
    fn the_record_is_found_by_logical_id_and_type() {
        let record = Record {
            stage: "prod".to_owned(),
            stack: "cloudalbum-prod".to_owned(),
            survivors: vec![StackResource {
                logical_id: "PhotoTable".to_owned(),
                resource_type: "AWS::DynamoDB::Table".to_owned(),
                physical_id: "cloudalbum-prod-PhotoTable-X".to_owned(),
            }],
        };
        let text = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
        let [table, bucket, _] = RETAINED;
        assert_eq!(
            back.physical_id(&table),
            Some("cloudalbum-prod-PhotoTable-X")
        );
        assert_eq!(back.physical_id(&bucket), None);
        assert_eq!(
            record_key("cloudalbum-prod"),
            "retained/cloudalbum-prod.json"
        );
    }
}
