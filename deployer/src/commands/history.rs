//! `deployer history`: the stage's recorded deployments, newest first.

use std::process::ExitCode;

use super::open_session;
use crate::deploy::error::DeployError;
use crate::deploy::history::HistoryReport;
use crate::deploy::rollback;
use crate::{Context, Error};

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let session = open_session(context).await?;
    let deployments = match rollback::store(&session).await? {
        Some(store) => store.list(None).await.map_err(DeployError::from)?,
        None => Vec::new(),
    };
    context.printer.result(&HistoryReport {
        stage: session.stage.name.to_string(),
        stack: session.stack.clone(),
        deployments,
    });
    Ok(ExitCode::SUCCESS)
}
