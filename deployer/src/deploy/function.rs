//! The stage's Lambda function, read and (for a hotswap) changed through its
//! own API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::aws::AwsError;
use crate::deploy::error::DeployError;
use crate::deploy::session::Session;
use crate::deploy::stack::StackInfo;
use crate::deploy::stack_outputs;
use aws_sdk_lambda::types::{Environment, LastUpdateStatus, State};

/// The tag a hotswap puts on the function: its code or settings differ from
/// what the stack says until the next plain `up` (value: what was swapped in).
pub const HOTSWAP_TAG: &str = "deployer:hotswapped";

/// How long a code or settings update may take to become active.
const UPDATE_TIMEOUT: Duration = Duration::from_mins(5);

/// The deployed function as Lambda holds it.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub arn: String,
    /// Base64 of the SHA-256 of the code's zip.
    pub code_sha256: String,
    /// Every reference of the template resolved by CloudFormation.
    pub environment: BTreeMap<String, String>,
    /// The [`HOTSWAP_TAG`]'s value: set while the function has drifted from
    /// its stack.
    pub hotswapped: Option<String>,
}

/// The deployed function's environment, as Lambda holds it: every reference of
/// the template resolved by CloudFormation.
pub async fn environment(session: &Session) -> Result<BTreeMap<String, String>, DeployError> {
    let stack = session.deployed_stack().await?;
    let name = stack_outputs::function_name(&stack)?;
    let configuration = session
        .aws
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("lambda:GetFunctionConfiguration", session.aws.target(), e)
        })?;
    Ok(configuration
        .environment
        .and_then(|env| env.variables)
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// The stack's function: code hash, environment and hotswap tag.
pub async fn deployed(session: &Session, stack: &StackInfo) -> Result<Function, DeployError> {
    let name = stack_outputs::function_name(stack)?;
    let output = session
        .aws
        .lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("lambda:GetFunction", session.aws.target(), e))?;
    let configuration = output.configuration;
    Ok(Function {
        arn: configuration
            .as_ref()
            .and_then(|c| c.function_arn.clone())
            .unwrap_or_default(),
        code_sha256: configuration
            .as_ref()
            .and_then(|c| c.code_sha256.clone())
            .unwrap_or_default(),
        environment: configuration
            .and_then(|c| c.environment)
            .and_then(|env| env.variables)
            .unwrap_or_default()
            .into_iter()
            .collect(),
        hotswapped: output.tags.and_then(|mut tags| tags.remove(HOTSWAP_TAG)),
        name,
    })
}

/// Points the function at code in the artifacts bucket and waits until it
/// runs that code.
pub async fn update_code(
    session: &Session,
    function: &Function,
    bucket: &str,
    key: &str,
) -> Result<(), DeployError> {
    session
        .aws
        .lambda
        .update_function_code()
        .function_name(&function.name)
        .s3_bucket(bucket)
        .s3_key(key)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("lambda:UpdateFunctionCode", session.aws.target(), e))?;
    wait_until_updated(session, &function.name).await
}

/// Replaces the function's environment and waits until it is in force.
pub async fn update_environment(
    session: &Session,
    function: &Function,
    environment: &BTreeMap<String, String>,
) -> Result<(), DeployError> {
    session
        .aws
        .lambda
        .update_function_configuration()
        .function_name(&function.name)
        .environment(
            Environment::builder()
                .set_variables(Some(environment.clone().into_iter().collect()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk(
                "lambda:UpdateFunctionConfiguration",
                session.aws.target(),
                e,
            )
        })?;
    wait_until_updated(session, &function.name).await
}

/// Marks the function as drifted from its stack (`value`: what was swapped in).
pub async fn mark_hotswapped(
    session: &Session,
    function: &Function,
    value: &str,
) -> Result<(), DeployError> {
    session
        .aws
        .lambda
        .tag_resource()
        .resource(&function.arn)
        .tags(HOTSWAP_TAG, value)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("lambda:TagResource", session.aws.target(), e))?;
    Ok(())
}

/// Removes the drift mark once the stack and the function agree again.
pub async fn clear_hotswapped(session: &Session, function: &Function) -> Result<(), DeployError> {
    session
        .aws
        .lambda
        .untag_resource()
        .resource(&function.arn)
        .tag_keys(HOTSWAP_TAG)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("lambda:UntagResource", session.aws.target(), e))?;
    Ok(())
}

/// Polls until the last update succeeded and the function is active (Lambda
/// keeps serving the old code until then).
async fn wait_until_updated(session: &Session, name: &str) -> Result<(), DeployError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let configuration = session
            .aws
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("lambda:GetFunctionConfiguration", session.aws.target(), e)
            })?;
        let update = configuration.last_update_status;
        let state = configuration.state;
        if update == Some(LastUpdateStatus::Failed) || state == Some(State::Failed) {
            return Err(DeployError::Failed(format!(
                "Lambda could not update function `{name}`: {}; fix the cause and run the command again, or `deployer up` to redeploy through CloudFormation",
                configuration
                    .last_update_status_reason
                    .or(configuration.state_reason)
                    .unwrap_or_else(|| "no reason given".to_owned())
            )));
        }
        let updated = matches!(update, None | Some(LastUpdateStatus::Successful));
        let active = matches!(state, None | Some(State::Active));
        if updated && active {
            return Ok(());
        }
        if started.elapsed() > UPDATE_TIMEOUT {
            return Err(DeployError::Failed(format!(
                "function `{name}` was still updating after {} s; check it with `aws lambda get-function-configuration --function-name {name}` and run the command again",
                UPDATE_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
