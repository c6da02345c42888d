//! `deployer up`: synth → artifact → change set → show → execute → wait →
//! sync `static/` → print the URL. Also the deploy step of `deployer local`.

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use super::{Session, confirm};
use crate::artifact::{self, Artifact};
use crate::assets::{self, SyncReport};
use crate::cfn::{self, Change, ChangeSet, ChangeSetRequest, StackInfo, Stopwatch, TemplateSource};
use crate::model::{StageModel, Target, ids};
use crate::progress::{StackProgress, interactive};
use crate::synth::{self, Template};
use crate::{Context, Error, localcloud};

/// What `up` did, for people and for `--output json`.
#[derive(Debug, Serialize)]
pub struct UpReport {
    pub stage: String,
    pub stack: String,
    pub target: String,
    pub status: String,
    pub up_to_date: bool,
    pub url: Option<String>,
    pub outputs: BTreeMap<String, String>,
    /// Changes the template makes directly.
    pub changes: Vec<Change>,
    /// Resources CloudFormation may update because an attribute they refer
    /// to may change (evaluated at run time).
    pub dependent_changes: Vec<Change>,
    pub artifact: ArtifactReport,
    #[serde(rename = "static")]
    pub static_files: SyncReport,
    pub timings_ms: Timings,
}

#[derive(Debug, Serialize, Default)]
pub struct ArtifactReport {
    pub key: String,
    pub bucket: String,
    pub bytes: usize,
    pub uploaded: bool,
}

#[derive(Debug, Serialize, Default)]
pub struct Timings {
    pub build: u64,
    pub upload: u64,
    pub change_set: u64,
    pub apply: u64,
    #[serde(rename = "static")]
    pub static_files: u64,
    pub total: u64,
}

impl fmt::Display for UpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.url {
            Some(url) => write!(f, "{url}"),
            None => write!(f, "stage {} is {}", self.stage, self.status),
        }
    }
}

/// The template and code of a stage, ready for a change set.
pub struct Prepared {
    pub template: Template,
    pub artifact: Artifact,
    pub build_ms: u64,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("artifact", &self.artifact.key)
            .finish_non_exhaustive()
    }
}

/// Synthesizes the template and builds the code (no AWS calls).
pub fn prepare(context: &Context, session: &Session) -> Result<Prepared, Error> {
    let model = StageModel::build(&session.stage, &session.target);
    let template = synth::synthesize(&model);
    let watch = Stopwatch::start();
    context
        .printer
        .detail("building the app's bootstrap (release)");
    let binary_path = artifact::build_bootstrap(
        &context.project_dir,
        session.stage.config.function.architecture,
        context.printer.quiet || context.printer.verbose == 0,
    )?;
    let artifact = Artifact::for_binary(&binary_path)?;
    Ok(Prepared {
        template,
        artifact,
        build_ms: watch.millis(),
    })
}

/// How the stack stands before a change set, once busy states have settled.
#[derive(Debug)]
pub enum Before {
    /// No stack (or only an unexecuted create): the change set creates it.
    Missing,
    /// A stack that can be updated.
    Ready(StackInfo),
    /// A failed first deploy: delete it before creating again.
    RollbackComplete(StackInfo),
}

/// Looks at the stack; waits out an operation already in progress; turns a
/// stuck state into an error that names the way out.
pub async fn stack_before(context: &Context, session: &Session) -> Result<Before, Error> {
    let mut waited = false;
    loop {
        let Some(stack) = cfn::describe(&session.aws, &session.stack).await? else {
            return Ok(Before::Missing);
        };
        let status = stack.status.as_str();
        if stack.in_progress() && !waited {
            context.printer.info(format_args!(
                "stack `{}` is {status}; waiting for it to finish",
                stack.name
            ));
            let mut progress = StackProgress::new(context.printer.quiet, interactive());
            cfn::wait(&session.aws, &stack.id, None, &mut progress).await?;
            progress.finish();
            waited = true;
            continue;
        }
        return match status {
            "REVIEW_IN_PROGRESS" => Ok(Before::Missing),
            "ROLLBACK_COMPLETE" => Ok(Before::RollbackComplete(stack)),
            "UPDATE_ROLLBACK_FAILED" => Err(Error::Failed(format!(
                "stack `{0}` is UPDATE_ROLLBACK_FAILED: CloudFormation could not roll back a failed update. Fix the cause ({1}), then run `aws cloudformation continue-update-rollback --stack-name {0}` (add `--resources-to-skip` for resources that cannot recover) and `deployer up` again",
                stack.name,
                stack
                    .status_reason
                    .as_deref()
                    .unwrap_or("see the stack events")
            ))),
            s if s.ends_with("_COMPLETE") && !s.starts_with("DELETE") => Ok(Before::Ready(stack)),
            other => Err(Error::Failed(format!(
                "stack `{}` is {other} ({}); it cannot be updated in this state. Inspect it with `deployer status --stage {}`, fix or delete it (`deployer down`), and try again",
                stack.name,
                stack.status_reason.as_deref().unwrap_or("no reason given"),
                session.stage.name
            ))),
        };
    }
}

/// The template as CloudFormation takes it: inline when it fits, otherwise
/// uploaded next to the code and passed by URL.
pub async fn template_source(
    session: &Session,
    template: &Template,
    bucket: Option<&str>,
) -> Result<TemplateSource, Error> {
    let body = template.body();
    if template.fits_inline() {
        return Ok(TemplateSource::Body(body));
    }
    let Some(bucket) = bucket else {
        return Err(Error::Failed(format!(
            "the template is {} bytes, over the {}-byte inline limit, and there is no artifacts bucket to upload it to",
            body.len(),
            synth::INLINE_TEMPLATE_LIMIT
        )));
    };
    let key = format!(
        "templates/{}.json",
        crate::digest::sha256_hex(body.as_bytes())
    );
    artifact::upload_if_missing(&session.aws, bucket, &key, body.as_bytes()).await?;
    let url = match &session.target {
        Target::Aws => format!(
            "https://{bucket}.s3.{}.amazonaws.com/{key}",
            session.aws.region
        ),
        Target::Endpoint(endpoint) => format!("{endpoint}/{bucket}/{key}"),
    };
    Ok(TemplateSource::Url(url))
}

/// The stack's tags: which app and stage it is.
pub fn stack_tags(session: &Session) -> Vec<(String, String)> {
    vec![
        (
            "deployer:app".to_owned(),
            session.stage.config.app.to_string(),
        ),
        ("deployer:stage".to_owned(), session.stage.name.to_string()),
    ]
}

/// Splits a change set's changes into direct ones and those that only follow
/// from other resources' attributes.
pub fn split_changes(changes: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    changes.into_iter().partition(Change::is_direct)
}

/// The stage's change set: its template, with the code's bucket and key as
/// the template parameters and the stack's tags.
pub async fn stage_change_set(
    session: &Session,
    create: bool,
    template: TemplateSource,
    code_bucket: &str,
    code_key: &str,
) -> Result<ChangeSet, Error> {
    let parameters = vec![
        (ids::CODE_BUCKET.to_string(), code_bucket.to_owned()),
        (ids::CODE_KEY.to_string(), code_key.to_owned()),
    ];
    let tags = stack_tags(session);
    Ok(cfn::create_change_set(
        &session.aws,
        &ChangeSetRequest {
            stack: &session.stack,
            create,
            template,
            parameters: &parameters,
            tags: &tags,
        },
    )
    .await?)
}

/// Prints direct changes, then the ones that may follow through references.
pub fn show_changes(context: &Context, direct: &[Change], dependent: &[Change]) {
    context
        .printer
        .info(format_args!("{} change(s):", direct.len()));
    for change in direct {
        context.printer.info(format_args!("  {change}"));
    }
    if !dependent.is_empty() {
        context.printer.info(format_args!(
            "{} resource(s) may be updated through references, decided at run time:",
            dependent.len()
        ));
        for change in dependent {
            context.printer.info(format_args!("  {change}"));
        }
    }
}

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let session = Session::open(context).await?;
    let report = deploy(context, &session).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}

/// Deploys the session's stage and returns what happened.
pub async fn deploy(context: &Context, session: &Session) -> Result<UpReport, Error> {
    let total = Stopwatch::start();
    context.printer.info(format_args!(
        "deploying stage `{}` (stack `{}`) to {}",
        session.stage.name,
        session.stack,
        session.aws.target()
    ));
    let prepared = prepare(context, session)?;
    let mut timings = Timings {
        build: prepared.build_ms,
        ..Timings::default()
    };

    let watch = Stopwatch::start();
    let artifact = upload_code(context, session, &prepared.artifact).await?;
    timings.upload = watch.millis();

    let watch = Stopwatch::start();
    let create = match stack_before(context, session).await? {
        Before::Missing => true,
        Before::Ready(_) => false,
        Before::RollbackComplete(stack) => {
            recreate_failed(context, session, &stack).await?;
            true
        }
    };
    let source = template_source(session, &prepared.template, Some(&artifact.bucket)).await?;
    let change_set =
        stage_change_set(session, create, source, &artifact.bucket, &artifact.key).await?;
    timings.change_set = watch.millis();

    let watch = Stopwatch::start();
    let (changes, dependent_changes, up_to_date) =
        apply(context, session, change_set, create).await?;
    timings.apply = watch.millis();

    let stack = session.deployed_stack().await?;
    let bucket_name = stack
        .outputs
        .get(ids::OUT_BUCKET_NAME.as_str())
        .cloned()
        .ok_or_else(|| {
            Error::Failed(format!("stack `{}` has no `BucketName` output", stack.name))
        })?;
    if !up_to_date && matches!(session.target, Target::Endpoint(_)) {
        localcloud::after_deploy(&session.aws.s3, &bucket_name).await?;
    }

    let watch = Stopwatch::start();
    let static_files = assets::sync(
        &session.aws,
        &bucket_name,
        &context.project_dir.join("static"),
    )
    .await?;
    timings.static_files = watch.millis();
    context.printer.info(&static_files);
    timings.total = total.millis();

    Ok(UpReport {
        stage: session.stage.name.to_string(),
        stack: stack.name.clone(),
        target: session.aws.target(),
        status: stack.status.clone(),
        up_to_date,
        url: stack.outputs.get(ids::OUT_API_URL.as_str()).cloned(),
        outputs: stack.outputs,
        changes,
        dependent_changes,
        artifact,
        static_files,
        timings_ms: timings,
    })
}

/// Puts the code in the artifacts bucket unless it is there already.
async fn upload_code(
    context: &Context,
    session: &Session,
    artifact: &Artifact,
) -> Result<ArtifactReport, Error> {
    let account = session.aws.account_id().await?;
    let bucket = artifact::ensure_bucket(&session.aws, &account).await?;
    let uploaded =
        artifact::upload_if_missing(&session.aws, &bucket, &artifact.key, &artifact.zip).await?;
    if uploaded {
        context.printer.info(format_args!(
            "uploaded code {} ({} bytes)",
            artifact.key,
            artifact.zip.len()
        ));
    } else {
        context
            .printer
            .detail(format_args!("code unchanged: {}", artifact.key));
    }
    Ok(ArtifactReport {
        key: artifact.key.clone(),
        bucket,
        bytes: artifact.zip.len(),
        uploaded,
    })
}

/// A failed first deploy leaves a `ROLLBACK_COMPLETE` stack that can only be
/// deleted: do so (after confirmation) so it can be created again.
async fn recreate_failed(
    context: &Context,
    session: &Session,
    stack: &StackInfo,
) -> Result<(), Error> {
    context.printer.info(format_args!(
        "stack `{}` is ROLLBACK_COMPLETE: its first deploy failed ({}); it must be deleted before it can be created again",
        stack.name,
        stack.status_reason.as_deref().unwrap_or("see the stack events")
    ));
    if !confirm(
        context,
        &format!(
            "delete the failed stack `{}` and create it again?",
            stack.name
        ),
        "deleting the failed stack",
    )? {
        return Err(Error::Refused("nothing was changed".to_owned()));
    }
    let after = cfn::latest_event_id(&session.aws, &stack.id).await?;
    cfn::delete_stack(&session.aws, &stack.id).await?;
    let mut progress = StackProgress::new(context.printer.quiet, interactive());
    cfn::wait(&session.aws, &stack.id, after, &mut progress).await?;
    progress.finish();
    Ok(())
}

/// Shows the change set and executes it (asking first at a terminal), waiting
/// with the progress display. Returns the direct and dependent changes and
/// whether there were none.
async fn apply(
    context: &Context,
    session: &Session,
    change_set: ChangeSet,
    create: bool,
) -> Result<(Vec<Change>, Vec<Change>, bool), Error> {
    let ChangeSet::Ready {
        name,
        stack_id,
        changes,
    } = change_set
    else {
        context
            .printer
            .info(format_args!("stage {} is up to date", session.stage.name));
        return Ok((Vec::new(), Vec::new(), true));
    };
    let (direct, dependent) = split_changes(changes);
    show_changes(context, &direct, &dependent);
    // At a terminal, ask; in CI the deploy command itself is the decision.
    let go = context.global.yes
        || !interactive()
        || confirm(context, "apply these changes?", "applying the changes")?;
    if !go {
        cfn::delete_change_set(&session.aws, &session.stack, &name).await?;
        return Err(Error::Refused(
            "nothing was changed; the change set was deleted".to_owned(),
        ));
    }
    let after = if create {
        None
    } else {
        cfn::latest_event_id(&session.aws, &stack_id).await?
    };
    cfn::execute_change_set(&session.aws, &session.stack, &name).await?;
    let mut progress = StackProgress::new(context.printer.quiet, interactive());
    let status = cfn::wait(&session.aws, &stack_id, after, &mut progress).await?;
    progress.finish();
    if !matches!(status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
        let remedy = if status == "ROLLBACK_COMPLETE" {
            "fix the cause above and run `deployer up` again: the failed stack is deleted and created anew"
        } else {
            "the stack was rolled back to its previous state; fix the cause above and run `deployer up` again"
        };
        return Err(Error::Failed(format!(
            "deploying stage `{}` failed: stack `{}` is {status}{}\n{remedy}",
            session.stage.name,
            session.stack,
            progress.failure_lines()
        )));
    }
    Ok((direct, dependent, false))
}
