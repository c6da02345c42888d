//! `deployer doctor`: what to fix before deploying or testing.

use std::process::ExitCode;

use crate::doctor::{self, AwsTarget};
use crate::{Context, Error, exit};

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    let global = &context.global;
    let stage = context
        .load_stage(&global.stage)
        .map(|stage| {
            let target = AwsTarget::of(
                &stage,
                global.region.as_deref(),
                global.profile.as_deref(),
                global.endpoint_url.as_deref(),
                global
                    .artifacts_bucket
                    .as_ref()
                    .map(crate::stage::BucketName::as_str),
            );
            (stage.name.to_string(), target)
        })
        .map_err(|e| e.to_string());
    let report = Box::pin(doctor::diagnose(&context.project_dir, stage)).await;
    context.printer.result(&report);
    Ok(if report.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::DEPLOY_FAILED)
    })
}
