//! `deployer url`: the stage's URL from the stack outputs.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use super::Session;
use crate::model::ids;
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
    let session = Session::open(context).await?;
    let stack = session.deployed_stack().await?;
    let url = stack
        .outputs
        .get(ids::OUT_API_URL.as_str())
        .cloned()
        .ok_or_else(|| {
            Error::Failed(format!(
                "stack `{}` is {} and has no `ApiUrl` output yet; run `deployer up --stage {}`",
                stack.name, stack.status, session.stage.name
            ))
        })?;
    context.printer.result(&UrlReport {
        stage: session.stage.name.to_string(),
        stack: stack.name,
        url,
    });
    Ok(ExitCode::SUCCESS)
}
