//! Change sets: create one (waiting until CloudFormation has computed it),
//! read its changes into typed [`Change`]s, execute or delete it; and the
//! stage's change set, with the code's bucket and key as parameters.

use std::fmt;

use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, Parameter, ResourceToImport, Tag,
};
use contract::assets::Manifest;
use serde::Serialize;

use crate::aws::{Aws, AwsError};
use crate::deploy::error::DeployError;
use crate::deploy::session::Session;
use crate::deploy::stack::Poll;
use crate::template::composition::{Target, ids};
use crate::template::synth::{INLINE_TEMPLATE_LIMIT, Template};

/// What a change does to a resource, as CloudFormation names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAction {
    Add,
    Modify,
    Remove,
    Import,
    Dynamic,
    /// An action this version does not know, as CloudFormation wrote it.
    Other(String),
}

impl ChangeAction {
    pub fn parse(name: &str) -> Self {
        match name {
            "Add" => Self::Add,
            "Modify" => Self::Modify,
            "Remove" => Self::Remove,
            "Import" => Self::Import,
            "Dynamic" => Self::Dynamic,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Add => "Add",
            Self::Modify => "Modify",
            Self::Remove => "Remove",
            Self::Import => "Import",
            Self::Dynamic => "Dynamic",
            Self::Other(name) => name,
        }
    }
}

/// Whether a modification replaces the resource: `Conditional` means it may,
/// depending on values known only at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    True,
    False,
    Conditional,
    Other(String),
}

impl Replacement {
    pub fn parse(name: &str) -> Self {
        match name {
            "True" => Self::True,
            "False" => Self::False,
            "Conditional" => Self::Conditional,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Conditional => "Conditional",
            Self::Other(name) => name,
        }
    }
}

macro_rules! display_and_serialize_as_str {
    ($($kind:ty),*) => {
        $(impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $kind {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        })*
    };
}

display_and_serialize_as_str!(ChangeAction, Replacement);

/// One resource change of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: ChangeAction,
    pub logical_id: String,
    pub resource_type: String,
    /// For modifications: whether CloudFormation replaces the resource.
    pub replacement: Option<Replacement>,
    /// For a change CloudFormation only evaluates at run time (its details
    /// are all `Evaluation: Dynamic`): the attributes that may cause it,
    /// e.g. `PhotoTable.Arn`. Empty for a direct change of the template.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<String>,
    /// Why CloudFormation replaces the resource: the properties whose change
    /// requires a new one (`BucketName (always)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recreated_by: Vec<String>,
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
            self.action.as_str(),
            self.logical_id,
            self.resource_type
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

/// What a change set is made from.
#[derive(Debug, Clone)]
pub struct ChangeSetRequest<'a> {
    pub stack: &'a str,
    pub create: bool,
    /// Inline body, or a URL where the template was uploaded.
    pub template: TemplateSource,
    pub parameters: &'a [(String, String)],
    pub tags: &'a [(String, String)],
    /// Existing resources to adopt: non-empty makes an `IMPORT` change set
    /// (into a new stack when `create`), whose template holds only them.
    pub imports: &'a [Import],
}

/// One existing resource an `IMPORT` change set adopts: its logical id and
/// type in the template, and the identifier CloudFormation finds it by
/// (`TableName`, `BucketName`, `UserPoolId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    pub logical_id: String,
    pub resource_type: String,
    pub identifier_key: String,
    pub physical_id: String,
}

#[derive(Debug, Clone)]
pub enum TemplateSource {
    Body(String),
    Url(String),
}

/// What the stage's change sets acknowledge: IAM resources, never named ones
/// (the role's name is left to CloudFormation), so a template that names an
/// IAM resource is refused instead of silently accepted.
pub fn capabilities() -> Vec<Capability> {
    vec![Capability::CapabilityIam]
}

/// One resource change, as CloudFormation described it.
fn change_of(rc: &aws_sdk_cloudformation::types::ResourceChange) -> Change {
    Change {
        action: ChangeAction::parse(rc.action.as_ref().map_or("", |a| a.as_str())),
        logical_id: rc.logical_resource_id.clone().unwrap_or_default(),
        resource_type: rc.resource_type.clone().unwrap_or_default(),
        replacement: rc
            .replacement
            .as_ref()
            .map(|r| Replacement::parse(r.as_str())),
        caused_by: dynamic_causes(rc.details()),
        recreated_by: recreating_properties(rc.details()),
    }
}

/// Creates a change set and waits until CloudFormation has computed it.
/// An empty change set is deleted and reported as [`ChangeSet::Empty`].
pub async fn create_change_set(
    aws: &Aws,
    request: &ChangeSetRequest<'_>,
) -> Result<ChangeSet, DeployError> {
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
        .change_set_type(if !request.imports.is_empty() {
            ChangeSetType::Import
        } else if request.create {
            ChangeSetType::Create
        } else {
            ChangeSetType::Update
        })
        .set_capabilities(Some(capabilities()))
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
    for import in request.imports {
        call = call.resources_to_import(
            ResourceToImport::builder()
                .resource_type(&import.resource_type)
                .logical_resource_id(&import.logical_id)
                .resource_identifier(&import.identifier_key, &import.physical_id)
                .build(),
        );
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
            .map_err(|e| AwsError::from_sdk("cloudformation:DescribeChangeSet", aws.target(), e));
        let Some(described) = delay.answer(described)? else {
            delay.sleep().await;
            continue;
        };
        match described.status {
            Some(ChangeSetStatus::CreateComplete) => {
                let changes = described
                    .changes()
                    .iter()
                    .filter_map(|c| c.resource_change.as_ref())
                    .map(change_of)
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
                return Err(DeployError::ChangeSetFailed {
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

/// The properties of a change that make CloudFormation create a new resource.
fn recreating_properties(
    details: &[aws_sdk_cloudformation::types::ResourceChangeDetail],
) -> Vec<String> {
    use aws_sdk_cloudformation::types::RequiresRecreation;
    let mut properties: Vec<String> = details
        .iter()
        .filter_map(|d| d.target.as_ref())
        .filter_map(|target| {
            let when = match target.requires_recreation.as_ref()? {
                RequiresRecreation::Always => "always",
                RequiresRecreation::Conditionally => "conditionally",
                _ => return None,
            };
            let name = target
                .name
                .as_deref()
                .or_else(|| {
                    target
                        .attribute
                        .as_ref()
                        .map(aws_sdk_cloudformation::types::ResourceAttribute::as_str)
                })
                .unwrap_or("a property");
            Some(format!("{name} ({when})"))
        })
        .collect();
    properties.sort();
    properties.dedup();
    properties
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

/// The template as CloudFormation takes it: inline when it fits, otherwise
/// uploaded next to the code (the artifacts bucket and the account that must
/// own it) and passed by URL.
pub async fn template_source(
    session: &Session,
    template: &Template,
    bucket: Option<(&str, &str)>,
) -> Result<TemplateSource, DeployError> {
    body_source(session, template.body(), bucket).await
}

/// As [`template_source`], for a template body as sent before (a rollback
/// redeploys the exact body a history record stored).
pub async fn body_source(
    session: &Session,
    body: String,
    bucket: Option<(&str, &str)>,
) -> Result<TemplateSource, DeployError> {
    if body.len() <= INLINE_TEMPLATE_LIMIT {
        return Ok(TemplateSource::Body(body));
    }
    let Some((bucket, owner)) = bucket else {
        return Err(DeployError::Failed(format!(
            "the template is {} bytes, over the {INLINE_TEMPLATE_LIMIT}-byte inline limit, and there is no artifacts bucket to upload it to",
            body.len(),
        )));
    };
    let key = format!(
        "templates/{}.json",
        crate::digest::sha256_hex(body.as_bytes())
    );
    crate::deploy::artifacts::upload_if_missing(&session.aws, bucket, owner, &key, body.as_bytes())
        .await?;
    let url = match &session.target {
        Target::Aws => format!(
            "https://{bucket}.s3.{}.amazonaws.com/{key}",
            session.aws.region
        ),
        Target::Endpoint(endpoint) => format!("{endpoint}/{bucket}/{key}"),
    };
    Ok(TemplateSource::Url(url))
}

/// The stack's tags: which app and stage it is, and for a preview its base
/// and expiry (given on every change set, so an update never drops them).
pub fn stack_tags(session: &Session) -> Vec<(String, String)> {
    let mut tags = vec![
        (
            "deployer:app".to_owned(),
            session.stage.config.app.to_string(),
        ),
        ("deployer:stage".to_owned(), session.stage.name.to_string()),
    ];
    if let Some(preview) = &session.preview {
        tags.extend(preview.tags());
    }
    tags
}

/// Splits a change set's changes into direct ones and those that only follow
/// from other resources' attributes.
pub fn split_changes(changes: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    changes.into_iter().partition(Change::is_direct)
}

/// The stage's change set: its template, with the code's bucket and key and
/// the static files' manifest as the template parameters, and the stack's tags.
pub async fn stage_change_set(
    session: &Session,
    create: bool,
    template: TemplateSource,
    code_bucket: &str,
    code_key: &str,
    static_assets: &Manifest,
) -> Result<ChangeSet, DeployError> {
    let parameters = vec![
        (ids::CODE_BUCKET.to_string(), code_bucket.to_owned()),
        (ids::CODE_KEY.to_string(), code_key.to_owned()),
        (ids::STATIC_ASSETS.to_string(), static_assets.to_string()),
    ];
    let tags = stack_tags(session);
    create_change_set(
        &session.aws,
        &ChangeSetRequest {
            stack: &session.stack,
            create,
            template,
            parameters: &parameters,
            tags: &tags,
            imports: &[],
        },
    )
    .await
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
            action: ChangeAction::Modify,
            logical_id: "PhotoTable".to_owned(),
            resource_type: "AWS::DynamoDB::Table".to_owned(),
            replacement: Some(Replacement::False),
            caused_by: Vec::new(),
            recreated_by: Vec::new(),
        };
        let text = change.to_string();
        assert!(text.starts_with("Modify  PhotoTable"));
        assert!(text.ends_with("replacement: False"));
        assert!(change.is_direct());
    }

    #[test]
    fn change_sets_acknowledge_iam_but_not_named_iam() {
        assert_eq!(capabilities(), [Capability::CapabilityIam]);
    }

    #[test]
    fn actions_and_replacements_parse_once_and_print_as_named() {
        for name in ["Add", "Modify", "Remove", "Import", "Dynamic", "Later"] {
            assert_eq!(ChangeAction::parse(name).as_str(), name);
        }
        assert_eq!(Replacement::parse("Conditional"), Replacement::Conditional);
        assert_eq!(
            serde_json::to_value(Replacement::True).unwrap(),
            serde_json::json!("True")
        );
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
