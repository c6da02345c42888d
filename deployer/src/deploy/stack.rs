//! CloudFormation stacks: their state (statuses parsed once into
//! [`StackStatus`]), waiting on an operation while its events drive a display,
//! and deleting. Change sets are in [`super::change_set`]; this module never
//! builds templates.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::aws::{Aws, AwsError, ErrorKind};
use crate::preview::Timestamp;

/// A stack status as CloudFormation names it, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackStatus {
    CreateInProgress,
    CreateFailed,
    CreateComplete,
    RollbackInProgress,
    RollbackFailed,
    RollbackComplete,
    DeleteInProgress,
    DeleteFailed,
    DeleteComplete,
    UpdateInProgress,
    UpdateCompleteCleanupInProgress,
    UpdateComplete,
    UpdateFailed,
    UpdateRollbackInProgress,
    UpdateRollbackFailed,
    UpdateRollbackCompleteCleanupInProgress,
    UpdateRollbackComplete,
    ReviewInProgress,
    ImportInProgress,
    ImportComplete,
    ImportRollbackInProgress,
    ImportRollbackFailed,
    ImportRollbackComplete,
    /// A status this version does not know; kept as CloudFormation wrote it.
    Other(String),
}

/// Every known status and its name, in one table for both directions.
const STATUS_NAMES: [(StackStatus, &str); 23] = [
    (StackStatus::CreateInProgress, "CREATE_IN_PROGRESS"),
    (StackStatus::CreateFailed, "CREATE_FAILED"),
    (StackStatus::CreateComplete, "CREATE_COMPLETE"),
    (StackStatus::RollbackInProgress, "ROLLBACK_IN_PROGRESS"),
    (StackStatus::RollbackFailed, "ROLLBACK_FAILED"),
    (StackStatus::RollbackComplete, "ROLLBACK_COMPLETE"),
    (StackStatus::DeleteInProgress, "DELETE_IN_PROGRESS"),
    (StackStatus::DeleteFailed, "DELETE_FAILED"),
    (StackStatus::DeleteComplete, "DELETE_COMPLETE"),
    (StackStatus::UpdateInProgress, "UPDATE_IN_PROGRESS"),
    (
        StackStatus::UpdateCompleteCleanupInProgress,
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    ),
    (StackStatus::UpdateComplete, "UPDATE_COMPLETE"),
    (StackStatus::UpdateFailed, "UPDATE_FAILED"),
    (
        StackStatus::UpdateRollbackInProgress,
        "UPDATE_ROLLBACK_IN_PROGRESS",
    ),
    (StackStatus::UpdateRollbackFailed, "UPDATE_ROLLBACK_FAILED"),
    (
        StackStatus::UpdateRollbackCompleteCleanupInProgress,
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    ),
    (
        StackStatus::UpdateRollbackComplete,
        "UPDATE_ROLLBACK_COMPLETE",
    ),
    (StackStatus::ReviewInProgress, "REVIEW_IN_PROGRESS"),
    (StackStatus::ImportInProgress, "IMPORT_IN_PROGRESS"),
    (StackStatus::ImportComplete, "IMPORT_COMPLETE"),
    (
        StackStatus::ImportRollbackInProgress,
        "IMPORT_ROLLBACK_IN_PROGRESS",
    ),
    (StackStatus::ImportRollbackFailed, "IMPORT_ROLLBACK_FAILED"),
    (
        StackStatus::ImportRollbackComplete,
        "IMPORT_ROLLBACK_COMPLETE",
    ),
];

impl StackStatus {
    pub fn parse(name: &str) -> Self {
        STATUS_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map_or_else(|| Self::Other(name.to_owned()), |(s, _)| s.clone())
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => STATUS_NAMES
                .iter()
                .find(|(s, _)| s == known)
                .map_or("UNKNOWN", |(_, n)| n),
        }
    }

    /// An operation is running: wait for it. `REVIEW_IN_PROGRESS` (a stack
    /// that only holds an unexecuted change set) is not one.
    pub fn in_progress(&self) -> bool {
        self != &Self::ReviewInProgress && self.as_str().ends_with("_IN_PROGRESS")
    }

    /// The last operation succeeded and the stack can be updated.
    pub fn is_stable(&self) -> bool {
        matches!(
            self,
            Self::CreateComplete
                | Self::UpdateComplete
                | Self::UpdateRollbackComplete
                | Self::ImportComplete
                | Self::ImportRollbackComplete
        )
    }

    /// What a successful create or update ends in.
    pub fn is_deployed(&self) -> bool {
        matches!(self, Self::CreateComplete | Self::UpdateComplete)
    }
}

impl fmt::Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StackStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What we know of a stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackInfo {
    pub id: String,
    pub name: String,
    pub status: StackStatus,
    pub status_reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub last_updated: Option<String>,
    pub termination_protection: bool,
    /// The stack's tags (`deployer:app`, `deployer:stage`, a preview's).
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
    /// When the stack was created, to the second.
    #[serde(skip)]
    pub created: Option<Timestamp>,
}

impl StackInfo {
    pub fn in_progress(&self) -> bool {
        self.status.in_progress()
    }
}

/// A stack event, as shown by the progress display.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

impl Event {
    pub fn failed(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

/// Receives stack events while a command waits.
pub trait EventSink {
    fn event(&mut self, event: &Event);
}

/// The stack `name`, or `None` if it does not exist.
pub async fn describe(aws: &Aws, name: &str) -> Result<Option<StackInfo>, AwsError> {
    let result = aws.cfn.describe_stacks().stack_name(name).send().await;
    let output = match result {
        Ok(output) => output,
        Err(e) => {
            let err = AwsError::from_sdk("cloudformation:DescribeStacks", aws.target(), e);
            if err.is_code("ValidationError") && err.message.contains("does not exist") {
                return Ok(None);
            }
            return Err(err);
        }
    };
    let Some(stack) = output.stacks.unwrap_or_default().into_iter().next() else {
        return Ok(None);
    };
    let info = info_of(&stack, name);
    if info.status == StackStatus::DeleteComplete {
        return Ok(None);
    }
    Ok(Some(info))
}

/// What CloudFormation said of one stack; `name` when it did not say its name.
pub fn info_of(stack: &aws_sdk_cloudformation::types::Stack, name: &str) -> StackInfo {
    let status = stack
        .stack_status
        .as_ref()
        .map_or(StackStatus::Other("UNKNOWN".to_owned()), |s| {
            StackStatus::parse(s.as_str())
        });
    StackInfo {
        id: stack.stack_id.clone().unwrap_or_default(),
        name: stack.stack_name.clone().unwrap_or_else(|| name.to_owned()),
        status,
        status_reason: stack.stack_status_reason.clone(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key.clone()?, o.output_value.clone()?)))
            .collect(),
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key.clone()?, p.parameter_value.clone()?)))
            .collect(),
        last_updated: stack
            .last_updated_time
            .or(stack.creation_time)
            .map(|t| t.to_string()),
        termination_protection: stack.enable_termination_protection.unwrap_or(false),
        tags: stack
            .tags()
            .iter()
            .filter_map(|t| Some((t.key.clone()?, t.value.clone()?)))
            .collect(),
        created: stack.creation_time.map(Timestamp::from),
    }
}

pub async fn delete_stack(aws: &Aws, stack: &str) -> Result<(), AwsError> {
    aws.cfn
        .delete_stack()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudformation:DeleteStack", aws.target(), e))?;
    Ok(())
}

/// The id of the newest event of `stack`, so waiting shows only newer ones.
pub async fn latest_event_id(aws: &Aws, stack: &str) -> Result<Option<String>, AwsError> {
    let page = aws
        .cfn
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await;
    match page {
        Ok(page) => Ok(page.stack_events().first().and_then(|e| e.event_id.clone())),
        Err(e) => {
            let err = AwsError::from_sdk("cloudformation:DescribeStackEvents", aws.target(), e);
            if err.message.contains("does not exist") {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// Waits until the stack (by id, which still answers after deletion) leaves
/// every `*_IN_PROGRESS` state, feeding new events to `sink`. Returns the final status.
pub async fn wait(
    aws: &Aws,
    stack_id: &str,
    after_event: Option<String>,
    sink: &mut dyn EventSink,
) -> Result<StackStatus, AwsError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut stop_at = after_event;
    let mut delay = Poll::new(aws);
    loop {
        let Some(events) =
            delay.answer(new_events(aws, stack_id, stop_at.as_deref(), &seen).await)?
        else {
            delay.sleep().await;
            continue;
        };
        for event in events.iter().rev() {
            seen.insert(event.id.clone());
            sink.event(event);
        }
        if let Some(newest) = events.first() {
            stop_at = Some(newest.id.clone());
        }
        let stacks = aws
            .cfn
            .describe_stacks()
            .stack_name(stack_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("cloudformation:DescribeStacks", aws.target(), e));
        let Some(stacks) = delay.answer(stacks)? else {
            delay.sleep().await;
            continue;
        };
        let status = stacks
            .stacks()
            .first()
            .and_then(|s| s.stack_status.as_ref())
            .map_or(StackStatus::DeleteComplete, |s| {
                StackStatus::parse(s.as_str())
            });
        if !status.as_str().ends_with("_IN_PROGRESS") {
            // Events that landed between the last poll and the final status.
            // Only shown: a transient failure here loses no outcome.
            let late = delay
                .answer(new_events(aws, stack_id, stop_at.as_deref(), &seen).await)?
                .unwrap_or_default();
            for event in late.iter().rev() {
                sink.event(event);
            }
            return Ok(status);
        }
        delay.sleep().await;
    }
}

/// Events newer than `stop_at`, newest first.
async fn new_events(
    aws: &Aws,
    stack_id: &str,
    stop_at: Option<&str>,
    seen: &HashSet<String>,
) -> Result<Vec<Event>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    'pages: loop {
        let page = aws
            .cfn
            .describe_stack_events()
            .stack_name(stack_id)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("cloudformation:DescribeStackEvents", aws.target(), e)
            })?;
        for e in page.stack_events() {
            let id = e.event_id.clone().unwrap_or_default();
            if Some(id.as_str()) == stop_at {
                break 'pages;
            }
            if seen.contains(&id) {
                continue;
            }
            out.push(Event {
                id,
                logical_id: e.logical_resource_id.clone().unwrap_or_default(),
                resource_type: e.resource_type.clone().unwrap_or_default(),
                status: e
                    .resource_status
                    .as_ref()
                    .map_or_else(String::new, |s| s.as_str().to_owned()),
                reason: e.resource_status_reason.clone().filter(|r| !r.is_empty()),
            });
        }
        token = page.next_token;
        // Without a marker (a first deploy) one page is the whole story so far.
        if token.is_none() || stop_at.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Polls in a row that may fail transiently (each after every retry of its
/// call, see [`crate::aws::MAX_ATTEMPTS`]) before waiting gives up: a failed
/// poll is asked again, and only an outage of about a minute ends the wait.
pub(crate) const FAILED_POLLS_TOLERATED: u32 = 3;

/// Poll interval: quick against a local endpoint, gentle on AWS; and how many
/// polls in a row have failed transiently.
pub(crate) struct Poll {
    current: Duration,
    max: Duration,
    failed_in_a_row: u32,
}

impl Poll {
    pub(crate) fn new(aws: &Aws) -> Self {
        if aws.endpoint.is_some() {
            Self {
                current: Duration::from_millis(25),
                max: Duration::from_millis(250),
                failed_in_a_row: 0,
            }
        } else {
            Self {
                current: Duration::from_millis(500),
                max: Duration::from_secs(3),
                failed_in_a_row: 0,
            }
        }
    }

    /// The outcome of one poll: its answer, or `None` when it failed
    /// transiently and may be asked again (after [`Poll::sleep`]); an error
    /// once [`FAILED_POLLS_TOLERATED`] polls in a row have failed, or at once
    /// for any other failure.
    pub(crate) fn answer<T>(&mut self, result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
        match result {
            Ok(answer) => {
                self.failed_in_a_row = 0;
                Ok(Some(answer))
            }
            Err(err)
                if err.kind == ErrorKind::Transient
                    && self.failed_in_a_row < FAILED_POLLS_TOLERATED =>
            {
                self.failed_in_a_row += 1;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    pub(crate) async fn sleep(&mut self) {
        tokio::time::sleep(self.current).await;
        self.current = (self.current * 2).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_print_as_cloudformation_names_them() {
        for (status, name) in &STATUS_NAMES {
            assert_eq!(&StackStatus::parse(name), status);
            assert_eq!(status.as_str(), *name);
        }
        let odd = StackStatus::parse("SOMETHING_NEW");
        assert_eq!(odd, StackStatus::Other("SOMETHING_NEW".to_owned()));
        assert_eq!(odd.to_string(), "SOMETHING_NEW");
    }

    #[test]
    fn a_few_transiently_failed_polls_in_a_row_are_asked_again() {
        let mut poll = Poll {
            current: Duration::ZERO,
            max: Duration::ZERO,
            failed_in_a_row: 0,
        };
        let transient = || {
            let mut err = AwsError::other(
                "cloudformation:DescribeStacks",
                "AWS".to_owned(),
                "HTTP 503",
            );
            err.kind = ErrorKind::Transient;
            Err::<(), _>(err)
        };
        for _ in 0..FAILED_POLLS_TOLERATED {
            assert!(matches!(poll.answer(transient()), Ok(None)));
        }
        // An answer starts the count again.
        assert_eq!(poll.answer(Ok(7)).unwrap(), Some(7));
        for _ in 0..FAILED_POLLS_TOLERATED {
            assert!(matches!(poll.answer(transient()), Ok(None)));
        }
        let gave_up = poll.answer(transient()).unwrap_err();
        assert_eq!(gave_up.kind, ErrorKind::Transient);
        // Anything else ends the wait at once.
        let mut poll = Poll {
            current: Duration::ZERO,
            max: Duration::ZERO,
            failed_in_a_row: 0,
        };
        let denied = AwsError::other("cloudformation:DescribeStacks", "AWS".to_owned(), "no");
        assert!(poll.answer::<()>(Err(denied)).is_err());
    }

    #[test]
    fn review_in_progress_is_not_an_operation_to_wait_for() {
        assert!(StackStatus::UpdateInProgress.in_progress());
        assert!(StackStatus::UpdateRollbackCompleteCleanupInProgress.in_progress());
        assert!(!StackStatus::ReviewInProgress.in_progress());
        assert!(!StackStatus::RollbackComplete.in_progress());
        assert!(StackStatus::UpdateRollbackComplete.is_stable());
        assert!(!StackStatus::RollbackComplete.is_stable());
        assert!(StackStatus::CreateComplete.is_deployed());
        assert!(!StackStatus::UpdateRollbackComplete.is_deployed());
    }
}
