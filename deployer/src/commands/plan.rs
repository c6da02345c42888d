//! `deployer plan`: prepare → a change set, shown and deleted; nothing is
//! executed and nothing is uploaded.

use std::process::ExitCode;

use super::open_session;
use crate::deploy::{pipeline, prepare};
use crate::{Context, Error};

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let session = open_session(context).await?;
    let prepared = prepare::prepare(&session, &context.project_dir)?;
    let report = pipeline::plan(&session, &prepared).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}
