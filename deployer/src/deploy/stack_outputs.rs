//! The stack outputs the pipeline steps read (the stage's bucket, its
//! function), or an error that names the fix when one is missing.

use contract::outputs;

use crate::deploy::error::DeployError;
use crate::deploy::stack::StackInfo;

/// The stage's bucket.
pub fn bucket(stack: &StackInfo) -> Result<String, DeployError> {
    required(stack, outputs::BUCKET_NAME)
}

/// The stage's function.
pub fn function_name(stack: &StackInfo) -> Result<String, DeployError> {
    required(stack, outputs::FUNCTION_NAME)
}

fn required(stack: &StackInfo, name: &str) -> Result<String, DeployError> {
    stack.outputs.get(name).cloned().ok_or_else(|| {
        DeployError::Failed(format!(
            "stack `{}` has no `{name}` output; `deployer down` and `deployer up` create it again",
            stack.name
        ))
    })
}
