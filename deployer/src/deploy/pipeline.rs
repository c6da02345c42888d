//! The pipeline, step after step: prepared template, code and static files →
//! artifacts → (new static files) → change set → apply → (emulator fix-ups) →
//! static sync → report. `up`,
//! `local` and the app's tests deploy through [`deploy`]; `plan` stops after
//! the change set ([`plan`]).

use contract::assets::Manifest;
use contract::{env, outputs};

use crate::deploy::apply::{self, Before};
use crate::deploy::artifacts;
use crate::deploy::change_set::{self, ChangeSet, split_changes};
use crate::deploy::error::DeployError;
use crate::deploy::function;
use crate::deploy::history::{self, Deployed, Kept, Kind, Store};
use crate::deploy::prepare::Prepared;
use crate::deploy::report::{
    ArtifactReport, PlanReport, StackResource, Stopwatch, Timings, UpReport,
};
use crate::deploy::session::Session;
use crate::deploy::stack;
use crate::deploy::static_sync::{self, SyncReport};
use crate::deploy::{code, first_request, guard, hotswap, preflight, readopt, stack_outputs};
use crate::emulator;
use crate::template::composition::Target;

/// Deploys a prepared stage: uploads the code, creates and applies its change
/// set, syncs the static files to the bucket, and reports what happened.
///
/// Static files are versioned (`contract::assets`): on a stage that exists,
/// the new ones are uploaded before the function links to them, and after the
/// apply only what neither the new manifest nor the replaced one names is
/// removed, so pages served before the deploy keep working.
pub async fn deploy(session: &Session, prepared: &Prepared) -> Result<UpReport, DeployError> {
    let total = Stopwatch::start();
    session.printer.info(format_args!(
        "deploying stage `{}` (stack `{}`) to {}",
        session.stage.name,
        session.stack,
        session.aws.target()
    ));
    let mut timings = Timings {
        build: prepared.build_ms,
        ..Timings::default()
    };

    preflight::check_before_deploy(session).await?;
    let watch = Stopwatch::start();
    let mut artifact = code::upload(session, &prepared.artifact).await?;
    timings.upload = watch.millis();

    let watch = Stopwatch::start();
    let (create, readopted) = stack_to_deploy(session, &artifact).await?;
    timings.change_set = watch.millis();

    // Before the function links to new file names, the files are there; and
    // what the pages served until now link to is noted, to be kept. A stack
    // that only holds re-adopted resources has no function or outputs yet.
    let watch = Stopwatch::start();
    let (early, replaced) =
        publish_early(session, prepared, create || !readopted.is_empty()).await?;
    timings.static_files = watch.millis();

    let watch = Stopwatch::start();
    let source = change_set::template_source(
        session,
        &prepared.template,
        Some((&artifact.bucket, &artifact.owner)),
    )
    .await?;
    let change_set = change_set::stage_change_set(
        session,
        create,
        source,
        &artifact.bucket,
        &artifact.key,
        &prepared.site.manifest,
    )
    .await?;
    timings.change_set += watch.millis();

    let watch = Stopwatch::start();
    let applied = apply::apply(session, change_set, create).await?;
    timings.apply = watch.millis();

    let (stack, reconciled) = settle_after_apply(session, prepared, &artifact, create).await?;
    let store = Store::new(
        &session.aws,
        &artifact.bucket,
        &artifact.owner,
        &session.stack,
    );
    // What the newest deployments run stays, for a rollback.
    let kept = history::kept_or_empty(&store, &session.printer).await;
    let changed = !applied.up_to_date || reconciled;
    let deployment = if changed {
        artifact.retired = retire(session, &artifact, &kept).await?;
        record(session, prepared, &store, &artifact.key).await
    } else {
        None
    };
    let bucket_name = stack_outputs::bucket(&stack)?;
    if !applied.up_to_date && matches!(session.target, Target::Endpoint(_)) {
        emulator::after_deploy(&session.aws.s3, &bucket_name).await?;
    }

    let watch = Stopwatch::start();
    let static_files =
        publish_late(session, prepared, &bucket_name, early, replaced, &kept).await?;
    timings.static_files += watch.millis();
    session.printer.info(&static_files);

    let first_request = if changed && prepared.answers_requests {
        Some(first_request(session, &stack).await?)
    } else {
        None
    };
    timings.total = total.millis();

    Ok(UpReport {
        stage: session.stage.name.to_string(),
        stack: stack.name.clone(),
        target: session.aws.target(),
        status: stack.status.clone(),
        up_to_date: applied.up_to_date,
        deployment,
        url: stack.outputs.get(outputs::API_URL).cloned(),
        outputs: stack.outputs,
        changes: applied.changes,
        dependent_changes: applied.dependent_changes,
        readopted,
        reconciled,
        preview: session.preview.clone(),
        artifact,
        static_files,
        first_request,
        timings_ms: timings,
    })
}

/// The stack once its change set is applied; a function that `up --hotswap`
/// left drifted runs what the stack names again (the change set may have had
/// nothing to change). `true` if it had to be reconciled.
async fn settle_after_apply(
    session: &Session,
    prepared: &Prepared,
    artifact: &ArtifactReport,
    create: bool,
) -> Result<(stack::StackInfo, bool), DeployError> {
    let stack = session.deployed_stack().await?;
    let reconciled = !create
        && hotswap::reconcile(
            session,
            &stack,
            &hotswap::code_sha256(&prepared.artifact.zip),
            artifact,
            &prepared.site.manifest,
        )
        .await?;
    Ok((stack, reconciled))
}

/// A deploy that changed the stage starts new execution environments: one
/// request shows the code answers, and its cold start.
async fn first_request(
    session: &Session,
    stack: &stack::StackInfo,
) -> Result<first_request::FirstRequest, DeployError> {
    let first = first_request::run(session, &stack_outputs::function_name(stack)?).await;
    if first.problem.is_some() {
        session.printer.warn(first.summary());
    } else {
        session.printer.info(first.summary());
    }
    Ok(first)
}

/// Records a deploy that changed the stage in the history; `None` when the
/// record could not be written (a warning; the deploy stands).
async fn record(
    session: &Session,
    prepared: &Prepared,
    store: &Store<'_>,
    code_key: &str,
) -> Option<String> {
    let deployed = Deployed {
        kind: Kind::Up,
        stage: session.stage.name.as_str(),
        code_key,
        code_sha256: &prepared.artifact.sha256,
        template_body: &prepared.template.body(),
        manifest: &prepared.site.manifest,
        commit: prepared.commit.clone(),
        rolled_back_to: None,
    };
    history::record(store, &session.printer, &deployed).await
}

/// After a deploy that changed the stage: `code` is written anew and the
/// stack's older code retired, sparing what the history's newest records
/// (`kept`) run.
pub async fn retire(
    session: &Session,
    code: &ArtifactReport,
    kept: &Kept,
) -> Result<Vec<String>, DeployError> {
    Ok(artifacts::retire_old(
        &session.aws,
        &code.bucket,
        &code.owner,
        &session.stack,
        &code.key,
        &kept.code_keys,
    )
    .await?)
}

/// Whether the deploy creates the stack (a failed first create is deleted
/// first), and which retained resources came back into a new stack (then the
/// deploy updates that stack instead of creating one).
async fn stack_to_deploy(
    session: &Session,
    artifact: &ArtifactReport,
) -> Result<(bool, Vec<StackResource>), DeployError> {
    let create = match apply::stack_before(session).await? {
        Before::Missing => true,
        Before::Ready(_) => false,
        Before::RollbackComplete(stack) => {
            apply::recreate_failed(session, &stack).await?;
            true
        }
    };
    // A retained stage's survivors come back into the new stack first; the
    // update below then adds everything else.
    let readopted = if create {
        readopt::readopt(session, &artifact.bucket, &artifact.owner).await?
    } else {
        Vec::new()
    };
    Ok((create && readopted.is_empty(), readopted))
}

/// On a stage whose stack already runs the app, the new static files go up
/// before the function links to them, and the manifest the pages served until
/// now is noted (its files are kept). A new (or only re-adopted) stack has
/// nothing to keep.
async fn publish_early(
    session: &Session,
    prepared: &Prepared,
    new_stack: bool,
) -> Result<(SyncReport, Option<Manifest>), DeployError> {
    if new_stack {
        return Ok((SyncReport::default(), None));
    }
    let stack = session.deployed_stack().await?;
    let early = static_sync::publish(
        &session.aws,
        &stack_outputs::bucket(&stack)?,
        &prepared.site,
    )
    .await?;
    Ok((early, live_manifest(session).await?))
}

/// After the apply: what is still missing goes up, and only what neither the
/// new manifest nor the replaced one nor a recent deployment's names is removed.
async fn publish_late(
    session: &Session,
    prepared: &Prepared,
    bucket: &str,
    early: SyncReport,
    replaced: Option<Manifest>,
    kept: &Kept,
) -> Result<SyncReport, DeployError> {
    let late = static_sync::publish(&session.aws, bucket, &prepared.site).await?;
    let deleted = static_sync::prune(
        &session.aws,
        bucket,
        &prepared.site,
        replaced.as_ref(),
        &kept.manifests,
    )
    .await?;
    let uploaded = early.uploaded + late.uploaded;
    Ok(SyncReport {
        files: late.files,
        uploaded,
        skipped: late.files.saturating_sub(uploaded),
        deleted,
        bytes_uploaded: early.bytes_uploaded + late.bytes_uploaded,
    })
}

/// The asset manifest the deployed function serves pages with; `None` if it
/// has none (an app from before versioned assets) or one that does not parse.
async fn live_manifest(session: &Session) -> Result<Option<Manifest>, DeployError> {
    let environment = function::environment(session).await?;
    Ok(environment
        .get(env::STATIC_ASSETS)
        .and_then(|text| Manifest::parse(text).ok()))
}

/// What `up` would change: a change set, described and deleted; nothing is
/// executed and no code is uploaded.
pub async fn plan(session: &Session, prepared: &Prepared) -> Result<PlanReport, DeployError> {
    let create = match apply::stack_before(session).await? {
        Before::Missing => true,
        Before::Ready(_) => false,
        Before::RollbackComplete(stack) => {
            return Err(DeployError::Failed(format!(
                "stack `{}` is ROLLBACK_COMPLETE (its first deploy failed: {}); there is nothing to compare with. `deployer up` deletes it and creates it again",
                stack.name,
                stack
                    .status_reason
                    .as_deref()
                    .unwrap_or("see the stack events")
            )));
        }
    };
    // The code bucket is only named, not written: a plan uploads nothing.
    let account = session.aws.account_id().await?;
    let bucket = session.artifacts_bucket(&account);
    // A stage without a stack whose retained data survived a `down`: `up`
    // would import it first (or refuse, when only part of it survived).
    let would_import = if create {
        readopt::would_readopt(session, &bucket, &account).await?
    } else {
        Vec::new()
    };
    let code_key = artifacts::code_key(&session.stack, &prepared.artifact);
    let source = change_set::template_source(session, &prepared.template, None).await?;
    let change_set = change_set::stage_change_set(
        session,
        create,
        source,
        &bucket,
        &code_key,
        &prepared.site.manifest,
    )
    .await?;
    let (changes, up_to_date) = match change_set {
        ChangeSet::Empty => (Vec::new(), true),
        ChangeSet::Ready { name, changes, .. } => {
            change_set::delete_change_set(&session.aws, &session.stack, &name).await?;
            if create {
                // A CREATE change set leaves an empty REVIEW_IN_PROGRESS stack
                // behind; remove it so a plan changes nothing.
                stack::delete_stack(&session.aws, &session.stack).await?;
            }
            (changes, false)
        }
    };
    let (changes, dependent_changes) = split_changes(changes);
    let all: Vec<_> = changes.iter().chain(&dependent_changes).cloned().collect();
    let data_at_risk = guard::at_risk(&all);
    Ok(PlanReport {
        stage: session.stage.name.to_string(),
        stack: session.stack.clone(),
        target: session.aws.target(),
        change_set_type: if create { "CREATE" } else { "UPDATE" },
        up_to_date,
        changes,
        dependent_changes,
        data_at_risk,
        would_import,
        code_key,
    })
}
