//! `deployer ci init <provider>`: writes a ready CI workflow made from the
//! stage files (`crate::ci`). No AWS calls.

use std::process::ExitCode;

use crate::ci::{self, Values};
use crate::cli::{CiArgs, CiCommand};
use crate::{Context, Error};

/// Preview stages are made from this stage's file, and the `dev` job deploys it.
const DEV: &str = "dev";
/// The stage a `v*` tag deploys.
const PROD: &str = "prod";

pub fn run(context: &Context, args: &CiArgs) -> Result<ExitCode, Error> {
    let CiCommand::Init(init) = &args.command;
    let values = values(context)?;
    let workflow = ci::render(init.provider, &values)?;
    let path = init.out.clone().unwrap_or_else(|| {
        context
            .project_dir
            .join(init.provider.default_path(&values.app))
    });
    let written = ci::write(&workflow, &path, init.force)?;
    context.printer.result(&written);
    Ok(ExitCode::SUCCESS)
}

/// The app and the regions, from `stacks/dev.yaml` (required: previews are
/// made from it) and `stacks/prod.yaml` (its region, when there is one).
fn values(context: &Context) -> Result<Values, Error> {
    let dev = context.load_stage(DEV)?;
    let prod_region = if crate::stage::existing_stages(&context.stacks_dir)
        .iter()
        .any(|name| name == PROD)
    {
        context.load_stage(PROD)?.config.region.to_string()
    } else {
        dev.config.region.to_string()
    };
    Ok(Values {
        app: dev.config.app.to_string(),
        dev_region: dev.config.region.to_string(),
        prod_region,
    })
}
