//! CloudFormation: stack state, change sets, waiting, and stack events.
//! This module never builds templates; it takes the body `synth` made.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, Parameter, StackStatus, Tag,
};
use serde::Serialize;

use crate::aws::{Aws, AwsError};

/// What we know of a stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackInfo {
    pub id: String,
    pub name: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub last_updated: Option<String>,
    pub termination_protection: bool,
}

impl StackInfo {
    pub fn in_progress(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && self.status != "REVIEW_IN_PROGRESS"
    }
}

/// One resource change of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `Add`, `Modify`, `Remove`, …
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `True`, `False` or `Conditional` for modifications.
    pub replacement: Option<String>,
    /// For a change CloudFormation only evaluates at run time (its details
    /// are all `Evaluation: Dynamic`): the attributes that may cause it,
    /// e.g. `PhotoTable.Arn`. Empty for a direct change of the template.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<String>,
}

impl Change {
    /// Whether the template itself changes this resource (an `Add`, a
    /// `Remove`, or a modification with a statically evaluated detail), as
    /// opposed to a change that may follow from another resource's attributes.
    pub fn is_direct(&self) -> bool {
        self.caused_by.is_empty()
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<7} {:<24} {:<32}",
            self.action, self.logical_id, self.resource_type
        )?;
        if let Some(replacement) = &self.replacement {
            write!(f, " replacement: {replacement}")?;
        }
        if !self.caused_by.is_empty() {
            write!(f, " (only if {} changes)", self.caused_by.join(" or "))?;
        }
        Ok(())
    }
}

/// A created change set: what it would do.
#[derive(Debug, Clone)]
pub enum ChangeSet {
    /// Ready to execute.
    Ready {
        name: String,
        stack_id: String,
        changes: Vec<Change>,
    },
    /// Nothing would change (the change set was already deleted).
    Empty,
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
    let status = stack
        .stack_status
        .as_ref()
        .map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned());
    if status == StackStatus::DeleteComplete.as_str() {
        return Ok(None);
    }
    Ok(Some(StackInfo {
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
    }))
}

/// What a change set is made from.
#[derive(Debug, Clone)]
pub struct ChangeSetRequest<'a> {
    pub stack: &'a str,
    pub create: bool,
    /// Inline body, or a URL where the template was uploaded.
    pub template: TemplateSource,
    pub parameters: &'a [(String, String)],
    pub tags: &'a [(String, String)],
}

#[derive(Debug, Clone)]
pub enum TemplateSource {
    Body(String),
    Url(String),
}

/// Creates a change set and waits until CloudFormation has computed it.
/// An empty change set is deleted and reported as [`ChangeSet::Empty`].
pub async fn create_change_set(
    aws: &Aws,
    request: &ChangeSetRequest<'_>,
) -> Result<ChangeSet, CfnError> {
    let name = format!(
        "deployer-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let mut call = aws
        .cfn
        .create_change_set()
        .stack_name(request.stack)
        .change_set_name(&name)
        .change_set_type(if request.create {
            ChangeSetType::Create
        } else {
            ChangeSetType::Update
        })
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .description("created by deployer");
    call = match &request.template {
        TemplateSource::Body(body) => call.template_body(body),
        TemplateSource::Url(url) => call.template_url(url),
    };
    for (key, value) in request.parameters {
        call = call.parameters(
            Parameter::builder()
                .parameter_key(key)
                .parameter_value(value)
                .build(),
        );
    }
    for (key, value) in request.tags {
        call = call.tags(Tag::builder().key(key).value(value).build());
    }
    let created = call
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudformation:CreateChangeSet", aws.target(), e))?;
    let stack_id = created.stack_id.unwrap_or_else(|| request.stack.to_owned());

    let mut delay = Poll::new(aws);
    loop {
        let described = aws
            .cfn
            .describe_change_set()
            .stack_name(request.stack)
            .change_set_name(&name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("cloudformation:DescribeChangeSet", aws.target(), e))?;
        match described.status {
            Some(ChangeSetStatus::CreateComplete) => {
                let changes = described
                    .changes()
                    .iter()
                    .filter_map(|c| c.resource_change.as_ref())
                    .map(|rc| Change {
                        action: rc
                            .action
                            .as_ref()
                            .map_or_else(String::new, |a| a.as_str().to_owned()),
                        logical_id: rc.logical_resource_id.clone().unwrap_or_default(),
                        resource_type: rc.resource_type.clone().unwrap_or_default(),
                        replacement: rc.replacement.as_ref().map(|r| r.as_str().to_owned()),
                        caused_by: dynamic_causes(rc.details()),
                    })
                    .collect();
                return Ok(ChangeSet::Ready {
                    name,
                    stack_id,
                    changes,
                });
            }
            Some(ChangeSetStatus::Failed) => {
                let reason = described.status_reason.unwrap_or_default();
                delete_change_set(aws, request.stack, &name).await?;
                if is_no_change(&reason) {
                    return Ok(ChangeSet::Empty);
                }
                return Err(CfnError::ChangeSetFailed {
                    stack: request.stack.to_owned(),
                    reason,
                });
            }
            _ => delay.sleep().await,
        }
    }
}

/// The causing entities of a change whose every detail is evaluated
/// dynamically; empty when any detail is static (a direct change) or when
/// there are no details (adds and removes).
fn dynamic_causes(details: &[aws_sdk_cloudformation::types::ResourceChangeDetail]) -> Vec<String> {
    use aws_sdk_cloudformation::types::EvaluationType;
    if details.is_empty()
        || details
            .iter()
            .any(|d| d.evaluation.as_ref() != Some(&EvaluationType::Dynamic))
    {
        return Vec::new();
    }
    let mut causes: Vec<String> = details
        .iter()
        .map(|d| {
            d.causing_entity
                .clone()
                .unwrap_or_else(|| "a value known at run time".to_owned())
        })
        .collect();
    causes.sort();
    causes.dedup();
    causes
}

/// CloudFormation's words for "nothing to change".
fn is_no_change(reason: &str) -> bool {
    reason.contains("didn't contain changes")
        || reason.contains("No updates are to be performed")
        || reason.contains("no changes")
}

pub async fn delete_change_set(aws: &Aws, stack: &str, name: &str) -> Result<(), AwsError> {
    aws.cfn
        .delete_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudformation:DeleteChangeSet", aws.target(), e))?;
    Ok(())
}

pub async fn execute_change_set(aws: &Aws, stack: &str, name: &str) -> Result<(), AwsError> {
    aws.cfn
        .execute_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudformation:ExecuteChangeSet", aws.target(), e))?;
    Ok(())
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
) -> Result<String, AwsError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut stop_at = after_event;
    let mut delay = Poll::new(aws);
    loop {
        let events = new_events(aws, stack_id, stop_at.as_deref(), &seen).await?;
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
            .map_err(|e| AwsError::from_sdk("cloudformation:DescribeStacks", aws.target(), e))?;
        let status = stacks
            .stacks()
            .first()
            .and_then(|s| s.stack_status.as_ref())
            .map_or_else(|| "DELETE_COMPLETE".to_owned(), |s| s.as_str().to_owned());
        if !status.ends_with("_IN_PROGRESS") {
            // Events that landed between the last poll and the final status.
            let late = new_events(aws, stack_id, stop_at.as_deref(), &seen).await?;
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

/// Poll interval: quick against a local endpoint, gentle on AWS.
struct Poll {
    current: Duration,
    max: Duration,
}

impl Poll {
    fn new(aws: &Aws) -> Self {
        if aws.endpoint.is_some() {
            Self {
                current: Duration::from_millis(25),
                max: Duration::from_millis(250),
            }
        } else {
            Self {
                current: Duration::from_millis(500),
                max: Duration::from_secs(3),
            }
        }
    }

    async fn sleep(&mut self) {
        tokio::time::sleep(self.current).await;
        self.current = (self.current * 2).min(self.max);
    }
}

/// Measures a step.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(Instant::now())
    }
    pub fn millis(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CfnError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("CloudFormation could not compute the changes for `{stack}`: {reason}")]
    ChangeSetFailed { stack: String, reason: String },
}

impl CfnError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Aws(e) => e.exit_code(),
            Self::ChangeSetFailed { .. } => crate::error::exit::DEPLOY_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_change_reasons_are_recognised() {
        assert!(is_no_change(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(is_no_change("No updates are to be performed."));
        assert!(!is_no_change("Template format error: unresolved reference"));
    }

    #[test]
    fn changes_print_action_id_type_and_replacement() {
        let change = Change {
            action: "Modify".to_owned(),
            logical_id: "PhotoTable".to_owned(),
            resource_type: "AWS::DynamoDB::Table".to_owned(),
            replacement: Some("False".to_owned()),
            caused_by: Vec::new(),
        };
        let text = change.to_string();
        assert!(text.starts_with("Modify  PhotoTable"));
        assert!(text.ends_with("replacement: False"));
        assert!(change.is_direct());
    }

    #[test]
    fn dynamic_only_details_make_an_indirect_change() {
        use aws_sdk_cloudformation::types::{ChangeSource, EvaluationType, ResourceChangeDetail};
        let dynamic = ResourceChangeDetail::builder()
            .evaluation(EvaluationType::Dynamic)
            .change_source(ChangeSource::ResourceAttribute)
            .causing_entity("PhotoTable.Arn")
            .build();
        let static_detail = ResourceChangeDetail::builder()
            .evaluation(EvaluationType::Static)
            .change_source(ChangeSource::DirectModification)
            .build();
        assert_eq!(
            dynamic_causes(std::slice::from_ref(&dynamic)),
            ["PhotoTable.Arn"]
        );
        assert!(dynamic_causes(&[dynamic, static_detail]).is_empty());
        assert!(dynamic_causes(&[]).is_empty());
    }
}
