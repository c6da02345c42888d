//! `deployer up`: prepare (template and code) → deploy (artifacts, change set,
//! apply, static sync) → print the report.

use std::process::ExitCode;

use super::open_session;
use crate::deploy::{pipeline, prepare};
use crate::{Context, Error};

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let session = open_session(context).await?;
    let prepared = prepare::prepare(&session, &context.project_dir)?;
    let report = pipeline::deploy(&session, &prepared, &context.static_dir()).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}
