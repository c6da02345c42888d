//! The stage's Lambda function, read through its own API.

use std::collections::BTreeMap;

use contract::outputs;

use crate::aws::AwsError;
use crate::deploy::error::DeployError;
use crate::deploy::session::Session;

/// The deployed function's environment, as Lambda holds it: every reference of
/// the template resolved by CloudFormation.
pub async fn environment(session: &Session) -> Result<BTreeMap<String, String>, DeployError> {
    let stack = session.deployed_stack().await?;
    let name = stack.outputs.get(outputs::FUNCTION_NAME).ok_or_else(|| {
        DeployError::Failed(format!(
            "stack `{}` has no `{}` output; run `deployer up --stage {}`",
            stack.name,
            outputs::FUNCTION_NAME,
            session.stage.name
        ))
    })?;
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
