//! `deployer rollback`: an earlier recorded deployment, deployed again
//! through a change set and the replacement guard.

use std::process::ExitCode;

use super::session_options;
use crate::cli::RollbackArgs;
use crate::deploy::rollback;
use crate::deploy::session::Session;
use crate::{Context, Error};

pub async fn run(context: &Context, args: &RollbackArgs) -> Result<ExitCode, Error> {
    let stage = context.load_stage(&context.global.stage)?;
    let mut options = session_options(context);
    options.allow_replace.clone_from(&args.allow_replace);
    let session = Session::open(stage, &options, context.printer).await?;
    let report = rollback::rollback(&session, args.to.as_deref()).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}
