//! `deployer url`: the stage's URL from the stack outputs.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use contract::outputs;

use super::open_session;
use crate::deploy::error::DeployError;
use crate::{Context, Error};

#[derive(Debug, Serialize)]
struct UrlReport {
    stage: String,
    stack: String,
    url: String,
}

impl fmt::Display for UrlReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let session = open_session(context).await?;
    let stack = session.deployed_stack().await?;
    let url = stack
        .outputs
        .get(outputs::API_URL)
        .cloned()
        .ok_or_else(|| {
            DeployError::Failed(format!(
                "stack `{}` is {} and has no `{}` output yet; run `deployer up --stage {}`",
                stack.name,
                stack.status,
                outputs::API_URL,
                session.stage.name
            ))
        })?;
    context.printer.result(&UrlReport {
        stage: session.stage.name.to_string(),
        stack: stack.name,
        url,
    });
    Ok(ExitCode::SUCCESS)
}
