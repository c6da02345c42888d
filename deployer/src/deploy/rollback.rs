//! `rollback`: an earlier deployment of the stage, from its history record,
//! deployed again exactly (its template, code and static manifest) through a
//! change set and the replacement guard, like any `up`; then recorded as a
//! deployment of its own, of kind `rollback`.

use std::fmt;

use contract::assets::Manifest;
use contract::outputs;
use serde::Serialize;

use crate::aws::AwsError;
use crate::deploy::apply::{self, Before};
use crate::deploy::artifacts::{self, BucketAnswer};
use crate::deploy::change_set::{self, Change};
use crate::deploy::error::DeployError;
use crate::deploy::history::{self, Deployed, HistoryError, Kind, Record, Store};
use crate::deploy::hotswap;
use crate::deploy::pipeline;
use crate::deploy::report::ArtifactReport;
use crate::deploy::session::Session;
use crate::deploy::stack::StackInfo;
use crate::deploy::{stack_outputs, static_sync};
use crate::emulator;
use crate::template::composition::Target;

/// What a rollback did.
#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub stage: String,
    pub stack: String,
    pub target: String,
    /// The record rolled back to.
    pub to: Record,
    /// The stage already ran it: nothing changed, nothing was recorded.
    pub up_to_date: bool,
    /// The new history record (kind `rollback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    pub url: Option<String>,
    pub changes: Vec<Change>,
    pub dependent_changes: Vec<Change>,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self
            .to
            .code
            .sha256
            .get(..12)
            .unwrap_or(&self.to.code.sha256);
        if self.up_to_date {
            write!(
                f,
                "stage {} already runs deployment {} (code {code})",
                self.stage, self.to.id
            )?;
        } else {
            write!(
                f,
                "rolled stage {} back to deployment {} of {} (code {code})",
                self.stage, self.to.id, self.to.time
            )?;
        }
        if let Some(url) = &self.url {
            write!(f, "\n{url}")?;
        }
        Ok(())
    }
}

/// Deploys the record `to` (by default the newest one that deployed
/// something else than the current one) again.
pub async fn rollback(session: &Session, to: Option<&str>) -> Result<RollbackReport, DeployError> {
    let stack = match apply::stack_before(session).await? {
        Before::Ready(stack) => stack,
        Before::Missing | Before::RollbackComplete(_) => {
            return Err(DeployError::NotDeployed {
                stage: session.stage.name.to_string(),
                stack: session.stack.clone(),
                target: session.aws.target(),
            });
        }
    };
    let Some(store) = store(session).await? else {
        return Err(HistoryError::NothingEarlier {
            stage: session.stage.name.to_string(),
            count: 0,
        }
        .into());
    };
    let records = store.list(None).await?;
    let target = history::target(&records, to, session.stage.name.as_str())?.clone();
    let (body, manifest) = check_deployable(session, &store, &stack, &target).await?;
    session.printer.info(format_args!(
        "rolling stage `{}` back to deployment {} ({}, {})",
        session.stage.name,
        target.id,
        target.time,
        target.kind.as_str()
    ));

    let account = session.aws.account_id().await?;
    let code = ArtifactReport {
        key: target.code.key.clone(),
        bucket: store.bucket.clone(),
        owner: account,
        ..ArtifactReport::default()
    };
    let source =
        change_set::body_source(session, body.clone(), Some((&code.bucket, &code.owner))).await?;
    let change_set =
        change_set::stage_change_set(session, false, source, &code.bucket, &code.key, &manifest)
            .await?;
    let applied = apply::apply(session, change_set, false).await?;

    let stack = session.deployed_stack().await?;
    let lambda_sha = target.lambda_code_sha256().unwrap_or_default();
    let reconciled = hotswap::reconcile(session, &stack, &lambda_sha, &code, &manifest).await?;
    let deployment = if !applied.up_to_date || reconciled {
        let kept = history::kept_or_empty(&store, &session.printer).await;
        pipeline::retire(session, &code, &kept).await?;
        if !applied.up_to_date && matches!(session.target, Target::Endpoint(_)) {
            emulator::after_deploy(&session.aws.s3, &stack_outputs::bucket(&stack)?).await?;
        }
        let deployed = Deployed {
            kind: Kind::Rollback,
            stage: session.stage.name.as_str(),
            code_key: &target.code.key,
            code_sha256: &target.code.sha256,
            template_body: &body,
            manifest: &manifest,
            commit: target.commit.clone(),
            rolled_back_to: Some(target.id.clone()),
        };
        history::record(&store, &session.printer, &deployed).await
    } else {
        None
    };
    Ok(RollbackReport {
        stage: session.stage.name.to_string(),
        stack: stack.name.clone(),
        target: session.aws.target(),
        up_to_date: applied.up_to_date && !reconciled,
        deployment,
        url: stack.outputs.get(outputs::API_URL).cloned(),
        changes: applied.changes,
        dependent_changes: applied.dependent_changes,
        to: target,
    })
}

/// The stage's history in its artifacts bucket; `None` when that bucket does
/// not exist yet (nothing was ever deployed with it). A bucket of another
/// account is refused.
pub async fn store(session: &Session) -> Result<Option<Store<'_>>, DeployError> {
    let account = session.aws.account_id().await?;
    let bucket = session.artifacts_bucket(&account);
    match artifacts::fetch_bucket_answer(&session.aws, &bucket, &account).await? {
        BucketAnswer::Owned => Ok(Some(Store::new(
            &session.aws,
            &bucket,
            &account,
            &session.stack,
        ))),
        BucketAnswer::Missing => Ok(None),
        BucketAnswer::Forbidden => {
            Err(
                AwsError::foreign_bucket("s3:ListBucket", session.aws.target(), &bucket, &account)
                    .into(),
            )
        }
    }
}

/// Before anything changes: the record's template (checked against its
/// hash), its code and every static file its manifest links to must still be
/// there. Returns the template body and the manifest.
async fn check_deployable(
    session: &Session,
    store: &Store<'_>,
    stack: &StackInfo,
    target: &Record,
) -> Result<(String, Manifest), DeployError> {
    let mut missing = Vec::new();
    let body = match store.template(target).await {
        Ok(body) => Some(body),
        Err(HistoryError::Aws(e)) if e.is_code("NoSuchKey") || e.is_code("NotFound") => {
            missing.push(format!("its template `{}` is gone", target.template.key));
            None
        }
        Err(e) => return Err(e.into()),
    };
    if !store.exists(&target.code.key).await {
        missing.push(format!(
            "its code `{}` is gone from bucket `{}`",
            target.code.key, store.bucket
        ));
    }
    let manifest =
        Manifest::parse(&target.static_files.manifest).map_err(|e| HistoryError::Unreadable {
            bucket: store.bucket.clone(),
            key: target.id.clone(),
            message: e.to_string(),
        })?;
    let site_bucket = stack_outputs::bucket(stack)?;
    let files = static_sync::missing_units(&session.aws, &site_bucket, &manifest).await?;
    if !files.is_empty() {
        missing.push(format!(
            "static files it links to are gone from bucket `{site_bucket}`: {}",
            files.join(", ")
        ));
    }
    match body {
        Some(body) if missing.is_empty() => Ok((body, manifest)),
        _ => Err(HistoryError::Missing {
            id: target.id.clone(),
            missing,
        }
        .into()),
    }
}
