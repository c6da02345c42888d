//! `deployer plan`: a change set, shown and deleted; nothing is executed.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use super::Session;
use super::up::{Before, prepare, split_changes, stack_before, stage_change_set, template_source};
use crate::cfn::{self, Change, ChangeSet};
use crate::{Context, Error, artifact};

#[derive(Debug, Serialize)]
struct PlanReport {
    stage: String,
    stack: String,
    target: String,
    /// `CREATE` for a new stack, `UPDATE` otherwise.
    change_set_type: &'static str,
    up_to_date: bool,
    /// Changes the template makes directly.
    changes: Vec<Change>,
    /// Resources that may be updated because an attribute they refer to may
    /// change (CloudFormation decides at run time).
    dependent_changes: Vec<Change>,
    code_key: String,
}

impl fmt::Display for PlanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.up_to_date {
            return write!(f, "stage {} is up to date", self.stage);
        }
        write!(
            f,
            "{} of stack `{}`: {} change(s)",
            self.change_set_type,
            self.stack,
            self.changes.len()
        )?;
        for change in &self.changes {
            write!(f, "\n  {change}")?;
        }
        if !self.dependent_changes.is_empty() {
            write!(
                f,
                "\n{} resource(s) may be updated through references, decided at run time:",
                self.dependent_changes.len()
            )?;
            for change in &self.dependent_changes {
                write!(f, "\n  {change}")?;
            }
        }
        Ok(())
    }
}

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let session = Session::open(context).await?;
    let prepared = prepare(context, &session)?;
    let create = match stack_before(context, &session).await? {
        Before::Missing => true,
        Before::Ready(_) => false,
        Before::RollbackComplete(stack) => {
            return Err(Error::Failed(format!(
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
    let bucket = artifact::bucket_name(&account, &session.aws.region);
    let source = template_source(&session, &prepared.template, None).await?;
    let change_set =
        stage_change_set(&session, create, source, &bucket, &prepared.artifact.key).await?;
    let (changes, up_to_date) = match change_set {
        ChangeSet::Empty => (Vec::new(), true),
        ChangeSet::Ready { name, changes, .. } => {
            cfn::delete_change_set(&session.aws, &session.stack, &name).await?;
            if create {
                // A CREATE change set leaves an empty REVIEW_IN_PROGRESS stack
                // behind; remove it so a plan changes nothing.
                cfn::delete_stack(&session.aws, &session.stack).await?;
            }
            (changes, false)
        }
    };
    let (changes, dependent_changes) = split_changes(changes);
    context.printer.result(&PlanReport {
        stage: session.stage.name.to_string(),
        stack: session.stack.clone(),
        target: session.aws.target(),
        change_set_type: if create { "CREATE" } else { "UPDATE" },
        up_to_date,
        changes,
        dependent_changes,
        code_key: prepared.artifact.key,
    });
    Ok(ExitCode::SUCCESS)
}
