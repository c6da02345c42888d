//! Applying a change set: how the stack stands before (an operation in
//! progress is waited out, stuck states name their way out), executing the
//! change set with the progress display, and explaining a failure.

use crate::deploy::change_set::{self, Change, ChangeSet, split_changes};
use crate::deploy::error::DeployError;
use crate::deploy::guard;
use crate::deploy::report::show_changes;
use crate::deploy::session::Session;
use crate::deploy::stack::{self, StackInfo, StackStatus};

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

/// The stack, after waiting out an operation already in progress (once); `None`
/// if there is no stack.
pub async fn settled_stack(session: &Session) -> Result<Option<StackInfo>, DeployError> {
    let Some(stack) = stack::describe(&session.aws, &session.stack).await? else {
        return Ok(None);
    };
    if !stack.in_progress() {
        return Ok(Some(stack));
    }
    session.printer.info(format_args!(
        "stack `{}` is {}; waiting for it to finish",
        stack.name, stack.status
    ));
    let mut progress = session.printer.progress();
    stack::wait(&session.aws, &stack.id, None, &mut progress).await?;
    progress.finish();
    Ok(stack::describe(&session.aws, &session.stack).await?)
}

/// Looks at the stack; waits out an operation already in progress; turns a
/// stuck state into an error that names the way out.
pub async fn stack_before(session: &Session) -> Result<Before, DeployError> {
    let Some(stack) = settled_stack(session).await? else {
        return Ok(Before::Missing);
    };
    match &stack.status {
        StackStatus::ReviewInProgress => Ok(Before::Missing),
        StackStatus::RollbackComplete => Ok(Before::RollbackComplete(stack)),
        StackStatus::UpdateRollbackFailed => Err(DeployError::Failed(format!(
            "stack `{0}` is UPDATE_ROLLBACK_FAILED: CloudFormation could not roll back a failed update. Fix the cause ({1}), then run `aws cloudformation continue-update-rollback --stack-name {0}` (add `--resources-to-skip` for resources that cannot recover) and `deployer up` again",
            stack.name,
            stack
                .status_reason
                .as_deref()
                .unwrap_or("see the stack events")
        ))),
        status if status.is_stable() => Ok(Before::Ready(stack)),
        other => Err(DeployError::Failed(format!(
            "stack `{}` is {other} ({}); it cannot be updated in this state. Inspect it with `deployer status --stage {}`, fix or delete it (`deployer down`), and try again",
            stack.name,
            stack.status_reason.as_deref().unwrap_or("no reason given"),
            session.stage.name
        ))),
    }
}

/// A failed first deploy leaves a `ROLLBACK_COMPLETE` stack that can only be
/// deleted: do so (after confirmation) so it can be created again.
pub async fn recreate_failed(session: &Session, stack: &StackInfo) -> Result<(), DeployError> {
    session.printer.info(format_args!(
        "stack `{}` is ROLLBACK_COMPLETE: its first deploy failed ({}); it must be deleted before it can be created again",
        stack.name,
        stack.status_reason.as_deref().unwrap_or("see the stack events")
    ));
    if !session.confirm(
        &format!(
            "delete the failed stack `{}` and create it again?",
            stack.name
        ),
        "deleting the failed stack",
    )? {
        return Err(DeployError::Refused("nothing was changed".to_owned()));
    }
    let after = stack::latest_event_id(&session.aws, &stack.id).await?;
    stack::delete_stack(&session.aws, &stack.id).await?;
    let mut progress = session.printer.progress();
    stack::wait(&session.aws, &stack.id, after, &mut progress).await?;
    progress.finish();
    Ok(())
}

/// What applying a change set did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Changes the template made directly.
    pub changes: Vec<Change>,
    /// Resources that may have been updated through references.
    pub dependent_changes: Vec<Change>,
    /// The change set was empty: nothing to do.
    pub up_to_date: bool,
}

/// Shows the change set and executes it (asking first at a terminal), waiting
/// with the progress display.
pub async fn apply(
    session: &Session,
    change_set: ChangeSet,
    create: bool,
) -> Result<Applied, DeployError> {
    let ChangeSet::Ready {
        name,
        stack_id,
        changes,
    } = change_set
    else {
        session
            .printer
            .info(format_args!("stage {} is up to date", session.stage.name));
        return Ok(Applied {
            up_to_date: true,
            ..Applied::default()
        });
    };
    let (direct, dependent) = split_changes(changes);
    show_changes(&session.printer, &direct, &dependent);
    // Before anything runs, in CI too: no data is replaced or deleted unasked.
    let all: Vec<Change> = direct.iter().chain(&dependent).cloned().collect();
    if let Err(refused) = guard::check(session.stage.name.as_str(), &all, &session.allow_replace) {
        change_set::delete_change_set(&session.aws, &session.stack, &name).await?;
        return Err(refused);
    }
    let retained = session.stage.config.retain_data;
    let lifted = guard::at_risk(&all)
        .iter()
        .any(|risk| session.allow_replace.contains(&risk.logical_id));
    // At a terminal, ask; in CI the deploy command itself is the decision.
    let go = session.assume_yes
        || !session.printer.can_ask()
        || session.confirm("apply these changes?", "applying the changes")?;
    if !go {
        change_set::delete_change_set(&session.aws, &session.stack, &name).await?;
        return Err(DeployError::Refused(
            "nothing was changed; the change set was deleted".to_owned(),
        ));
    }
    let after = if create {
        None
    } else {
        stack::latest_event_id(&session.aws, &stack_id).await?
    };
    if retained && lifted && !create {
        // The stack policy would stop the replacement the user allowed.
        guard::set_stack_policy(session, &session.allow_replace).await?;
    }
    change_set::execute_change_set(&session.aws, &session.stack, &name).await?;
    let mut progress = session.printer.progress();
    let status = stack::wait(&session.aws, &stack_id, after, &mut progress).await?;
    progress.finish();
    if retained && stack::describe(&session.aws, &stack_id).await?.is_some() {
        guard::set_stack_policy(session, &[]).await?;
        if create && status.is_deployed() {
            // After the first create, a retained stage cannot be deleted by
            // accident (a console click, a stray `delete-stack`).
            guard::protect_from_termination(session).await?;
        }
    }
    if !status.is_deployed() {
        let remedy = if status == StackStatus::RollbackComplete {
            "fix the cause above and run `deployer up` again: the failed stack is deleted and created anew"
        } else {
            "the stack was rolled back to its previous state; fix the cause above and run `deployer up` again"
        };
        return Err(DeployError::Failed(format!(
            "deploying stage `{}` failed: stack `{}` is {status}{}\n{remedy}",
            session.stage.name,
            session.stack,
            progress.failure_lines()
        )));
    }
    Ok(Applied {
        changes: direct,
        dependent_changes: dependent,
        up_to_date: false,
    })
}
