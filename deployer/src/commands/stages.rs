//! `deployer stages`: every deployed stage of the app in the account and
//! region of `--stage` (default `dev`), with a preview's base and expiry.

use std::process::ExitCode;

use super::open_session;
use crate::deploy::previews;
use crate::{Context, Error, preview, stage};

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let now = preview::now()?;
    let session = open_session(context).await?;
    let files = stage::existing_stages(&context.stacks_dir);
    let report = previews::list(&session, now, &files).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}
