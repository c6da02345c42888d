//! The replacement guard: a change set that would replace or delete a
//! resource holding users' data (the table, the bucket, the user pool) is
//! refused before anything runs — in CI too — unless `--allow-replace` names
//! each such resource. CloudFormation's `Conditional` counts: it means the
//! resource *may* be replaced (the emulator reports a bucket rename so).
//!
//! Retained stages add a stack policy that denies `Update:Replace` and
//! `Update:Delete` on those resources, so even a change made outside the
//! deployer cannot replace them; an allowed replacement lifts it for one update.

use std::fmt;

use serde::Serialize;

use crate::aws::AwsError;
use crate::deploy::change_set::{Change, ChangeAction, Replacement};
use crate::deploy::error::DeployError;
use crate::deploy::session::Session;
use crate::template::composition::ids;

/// Resource types whose replacement or deletion loses users' data.
pub const STATEFUL_TYPES: [&str; 3] = [
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::Cognito::UserPool",
];

/// A change that would replace or delete a stateful resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtRisk {
    pub logical_id: String,
    pub resource_type: String,
    /// What CloudFormation would do and why.
    pub why: String,
}

impl fmt::Display for AtRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.logical_id, self.resource_type, self.why
        )
    }
}

/// The changes that would replace or delete a stateful resource.
pub fn at_risk(changes: &[Change]) -> Vec<AtRisk> {
    changes
        .iter()
        .filter(|c| STATEFUL_TYPES.contains(&c.resource_type.as_str()))
        .filter_map(|c| {
            let why = match (&c.action, &c.replacement) {
                (ChangeAction::Remove, _) => "would be deleted".to_owned(),
                (ChangeAction::Modify, Some(Replacement::True)) => {
                    format!("would be replaced{}", because(c))
                }
                (ChangeAction::Modify, Some(Replacement::Conditional)) => {
                    format!("may be replaced{}", because(c))
                }
                _ => return None,
            };
            Some(AtRisk {
                logical_id: c.logical_id.clone(),
                resource_type: c.resource_type.clone(),
                why,
            })
        })
        .collect()
}

fn because(change: &Change) -> String {
    if change.recreated_by.is_empty() {
        String::new()
    } else {
        format!(" because of a change to {}", change.recreated_by.join(", "))
    }
}

/// Refuses `changes` if they replace or delete a stateful resource that
/// `allowed` does not name.
pub fn check(stage: &str, changes: &[Change], allowed: &[String]) -> Result<(), DeployError> {
    let refused: Vec<AtRisk> = at_risk(changes)
        .into_iter()
        .filter(|risk| !allowed.contains(&risk.logical_id))
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(DeployError::WouldLoseData {
            stage: stage.to_owned(),
            lines: refused.iter().map(ToString::to_string).collect(),
            ids: refused.into_iter().map(|r| r.logical_id).collect(),
        })
    }
}

/// The stack policy of a retained stage: every update is allowed except
/// replacing or deleting a stateful resource; `allowed` lifts it for those.
pub fn stack_policy(allowed: &[String]) -> String {
    let protected: Vec<String> = [ids::TABLE, ids::BUCKET, ids::USER_POOL]
        .iter()
        .map(ToString::to_string)
        .filter(|id| !allowed.contains(id))
        .map(|id| format!("LogicalResourceId/{id}"))
        .collect();
    let mut statements = vec![serde_json::json!({
        "Effect": "Allow",
        "Action": "Update:*",
        "Principal": "*",
        "Resource": "*",
    })];
    if !protected.is_empty() {
        statements.push(serde_json::json!({
            "Effect": "Deny",
            "Action": ["Update:Replace", "Update:Delete"],
            "Principal": "*",
            "Resource": protected,
        }));
    }
    serde_json::json!({ "Statement": statements }).to_string()
}

/// Sets the retained stage's stack policy (lifted for `allowed`).
pub async fn set_stack_policy(session: &Session, allowed: &[String]) -> Result<(), DeployError> {
    session
        .aws
        .cfn
        .set_stack_policy()
        .stack_name(&session.stack)
        .stack_policy_body(stack_policy(allowed))
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("cloudformation:SetStackPolicy", session.aws.target(), e)
        })?;
    Ok(())
}

/// Turns on termination protection: `down` and `delete-stack` refuse the stack.
pub async fn protect_from_termination(session: &Session) -> Result<(), DeployError> {
    session
        .aws
        .cfn
        .update_termination_protection()
        .stack_name(&session.stack)
        .enable_termination_protection(true)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk(
                "cloudformation:UpdateTerminationProtection",
                session.aws.target(),
                e,
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: ChangeAction, kind: &str, replacement: Option<Replacement>) -> Change {
        Change {
            action,
            logical_id: "PhotoBucket".to_owned(),
            resource_type: kind.to_owned(),
            replacement,
            caused_by: Vec::new(),
            recreated_by: vec!["BucketName (always)".to_owned()],
        }
    }

    #[test]
    fn replacing_or_deleting_a_stateful_resource_is_at_risk() {
        let bucket = "AWS::S3::Bucket";
        for (c, why) in [
            (
                change(ChangeAction::Modify, bucket, Some(Replacement::True)),
                "would be replaced because of a change to BucketName (always)",
            ),
            (
                change(ChangeAction::Modify, bucket, Some(Replacement::Conditional)),
                "may be replaced because of a change to BucketName (always)",
            ),
            (
                change(ChangeAction::Remove, bucket, None),
                "would be deleted",
            ),
        ] {
            let risks = at_risk(std::slice::from_ref(&c));
            assert_eq!(risks.len(), 1, "{c:?}");
            assert_eq!(risks[0].why, why);
        }
    }

    #[test]
    fn updates_in_place_and_stateless_resources_are_not_at_risk() {
        assert!(
            at_risk(&[change(
                ChangeAction::Modify,
                "AWS::S3::Bucket",
                Some(Replacement::False)
            )])
            .is_empty()
        );
        assert!(
            at_risk(&[change(
                ChangeAction::Modify,
                "AWS::Lambda::Function",
                Some(Replacement::True)
            )])
            .is_empty()
        );
        assert!(at_risk(&[change(ChangeAction::Add, "AWS::S3::Bucket", None)]).is_empty());
    }

    #[test]
    fn the_guard_refuses_unless_each_resource_is_allowed() {
        let changes = [change(
            ChangeAction::Modify,
            "AWS::S3::Bucket",
            Some(Replacement::Conditional),
        )];
        let err = check("dev", &changes, &[]).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let text = err.to_string();
        assert!(
            text.contains("PhotoBucket (AWS::S3::Bucket): may be replaced"),
            "{text}"
        );
        assert!(text.contains("--allow-replace PhotoBucket"), "{text}");
        assert!(check("dev", &changes, &["PhotoTable".to_owned()]).is_err());
        assert!(check("dev", &changes, &["PhotoBucket".to_owned()]).is_ok());
    }

    #[test]
    fn the_stack_policy_denies_replacing_and_deleting_data_unless_allowed() {
        let policy: serde_json::Value = serde_json::from_str(&stack_policy(&[])).unwrap();
        let deny = &policy["Statement"][1];
        assert_eq!(deny["Effect"], "Deny");
        assert_eq!(
            deny["Action"],
            serde_json::json!(["Update:Replace", "Update:Delete"])
        );
        assert_eq!(
            deny["Resource"],
            serde_json::json!([
                "LogicalResourceId/PhotoTable",
                "LogicalResourceId/PhotoBucket",
                "LogicalResourceId/UserPool"
            ])
        );
        let lifted: serde_json::Value =
            serde_json::from_str(&stack_policy(&["PhotoBucket".to_owned()])).unwrap();
        assert_eq!(
            lifted["Statement"][1]["Resource"],
            serde_json::json!(["LogicalResourceId/PhotoTable", "LogicalResourceId/UserPool"])
        );
        let all = [ids::TABLE, ids::BUCKET, ids::USER_POOL].map(|id| id.to_string());
        let open: serde_json::Value = serde_json::from_str(&stack_policy(&all)).unwrap();
        assert_eq!(open["Statement"].as_array().unwrap().len(), 1);
    }
}
