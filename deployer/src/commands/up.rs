//! `deployer up`: prepare (template and code) → deploy (artifacts, change set,
//! apply, static sync) → print the report. With `--hotswap`, code and static
//! changes go straight to the function when the template is unchanged.
//! With `--from`, `--stage` is a preview stage made from another stage's file.

use std::process::ExitCode;

use super::{open_stage, session_options};
use crate::cli::UpArgs;
use crate::deploy::hotswap::{self, Outcome};
use crate::deploy::{pipeline, prepare};
use crate::{Context, Error};

pub async fn run(context: &Context, args: &UpArgs) -> Result<ExitCode, Error> {
    let mut options = session_options(context);
    options.allow_replace.clone_from(&args.allow_replace);
    let session = open_stage(context, &options, args.from.as_deref(), args.ttl).await?;
    let prepared =
        prepare::prepare_code(&session, &context.project_dir, args.bootstrap.as_deref())?;
    if args.hotswap {
        match hotswap::hotswap(&session, &prepared).await? {
            Outcome::Hotswapped(report) => {
                context.printer.result(&report);
                return Ok(ExitCode::SUCCESS);
            }
            Outcome::NeedsChangeSet { reason } => context
                .printer
                .info(format_args!("{reason}: deploying through a change set")),
        }
    }
    let report = pipeline::deploy(&session, &prepared).await?;
    context.printer.result(&report);
    Ok(ExitCode::SUCCESS)
}
