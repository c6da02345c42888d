//! `deployer down`: delete the stage; data is protected (see
//! `crate::deploy::teardown`).

use std::process::ExitCode;

use super::open_session;
use crate::cli::DownArgs;
use crate::deploy::teardown;
use crate::{Context, Error};

pub async fn run(context: &Context, args: &DownArgs) -> Result<ExitCode, Error> {
    let session = open_session(context).await?;
    let report = teardown::down(&session, args.delete_data).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}
