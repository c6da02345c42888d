//! `deployer down`: delete the stage; data is protected (see
//! `crate::deploy::teardown`). `--expired` deletes every expired preview
//! stage instead (see `crate::deploy::previews`).

use std::process::ExitCode;

use super::{open_session, session_options};
use crate::cli::DownArgs;
use crate::deploy::error::DeployError;
use crate::deploy::{previews, teardown};
use crate::{Context, Error, exit, preview, stage};

pub async fn run(context: &Context, args: &DownArgs) -> Result<ExitCode, Error> {
    if args.expired {
        return expired(context, args).await;
    }
    let session = open_session(context).await?;
    let report = teardown::down(&session, args.delete_data).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}

/// Every expired preview of the app in `--stage`'s account and region.
async fn expired(context: &Context, args: &DownArgs) -> Result<ExitCode, Error> {
    // Refused before any AWS call: nobody can be asked, and `--yes` is missing.
    if !context.global.yes && !context.printer.can_ask() {
        return Err(DeployError::NeedsConfirmation {
            action: "deleting expired preview stages".to_owned(),
        }
        .into());
    }
    let now = preview::now()?;
    let session = open_session(context).await?;
    let files = stage::existing_stages(&context.stacks_dir);
    let options = session_options(context);
    let report = previews::down_expired(&session, now, &files, args.delete_data, &options).await?;
    context.printer.result(&report);
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::DEPLOY_FAILED)
    })
}
