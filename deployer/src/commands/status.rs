//! `deployer status`: stack status, outputs and last update.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use super::open_session;
use crate::deploy::function;
use crate::deploy::stack::StackInfo;
use crate::preview::Preview;
use crate::{Context, Error};

#[derive(Debug, Serialize)]
struct StatusReport {
    stage: String,
    target: String,
    /// Set while `up --hotswap` has left the function drifted from the stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    hotswapped: Option<String>,
    /// A preview stage's base and expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<Preview>,
    #[serde(flatten)]
    stack: StackInfo,
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stack;
        writeln!(f, "stage        {}", self.stage)?;
        writeln!(f, "stack        {} on {}", s.name, self.target)?;
        write!(f, "status       {}", s.status)?;
        if let Some(reason) = &s.status_reason {
            write!(f, " ({reason})")?;
        }
        writeln!(f)?;
        if let Some(updated) = &s.last_updated {
            writeln!(f, "last update  {updated}")?;
        }
        if let Some(swapped) = &self.hotswapped {
            writeln!(
                f,
                "drifted      hotswapped {swapped}: the function runs other code or files than the stack names; `deployer up --stage {}` reconciles",
                self.stage
            )?;
        }
        if let Some(preview) = &self.preview {
            let expires = preview.expires.map_or_else(
                || "never (no readable expiry tag)".to_owned(),
                |e| e.to_string(),
            );
            writeln!(f, "preview of   {}, expires {expires}", preview.base)?;
        }
        if s.termination_protection {
            writeln!(f, "termination protection on")?;
        }
        write!(f, "outputs")?;
        for (key, value) in &s.outputs {
            write!(f, "\n  {key:<18} {value}")?;
        }
        Ok(())
    }
}

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let session = open_session(context).await?;
    let stack = session.deployed_stack().await?;
    // A stack without a function (half created) has nothing to drift.
    let hotswapped = function::deployed(&session, &stack)
        .await
        .ok()
        .and_then(|function| function.hotswapped);
    context.printer.result(&StatusReport {
        stage: session.stage.name.to_string(),
        target: session.aws.target(),
        hotswapped,
        preview: session.preview.clone(),
        stack,
    });
    Ok(ExitCode::SUCCESS)
}
