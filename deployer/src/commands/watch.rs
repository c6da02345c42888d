//! `deployer watch`: deploy, then after every change of the sources rebuild
//! and deploy the fastest correct way (hotswap, else a change set), until
//! Ctrl-C. A failed build or deploy is reported and the watch goes on.

use std::process::ExitCode;

use super::open_session;
use crate::deploy::hotswap::{self, Outcome};
use crate::deploy::report::Stopwatch;
use crate::deploy::session::Session;
use crate::deploy::{pipeline, prepare};
use crate::source_watch::{self, Snapshot};
use crate::{Context, Error};

pub async fn run(context: &Context) -> Result<ExitCode, Error> {
    // Refused before any AWS call.
    let stage = context.load_stage(&context.global.stage)?;
    if stage.config.retain_data {
        return Err(Error::NotForStage(format!(
            "stage `{}` has `retain_data: true` (real users): `watch` would swap every saved edit into it. Deploy it with `deployer up --stage {0}`, or hotswap one change deliberately with `deployer up --stage {0} --hotswap`",
            stage.name
        )));
    }
    let session = open_session(context).await?;
    let extra = vec![
        context
            .stacks_dir
            .join(format!("{}.yaml", session.stage.name)),
    ];
    let mut snapshot = Snapshot::take(&context.project_dir, &extra);
    deploy_once(context, &session).await;
    loop {
        context.printer.info(format_args!(
            "watching app/, contract/, templates/, static/ and the stage file; Ctrl-C stops"
        ));
        let change = tokio::select! {
            change = source_watch::next_change(&context.project_dir, &extra, &snapshot) => change,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let (now, changed) = change;
        snapshot = now;
        let shown: Vec<String> = changed
            .iter()
            .take(5)
            .map(|path| path.display().to_string())
            .collect();
        let more = changed.len().saturating_sub(shown.len());
        context.printer.info(format_args!(
            "changed: {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
        // The stage file itself may have changed: read it again.
        let session = match open_session(context).await {
            Ok(session) => session,
            Err(err) => {
                context.printer.warn(&err);
                continue;
            }
        };
        deploy_once(context, &session).await;
    }
}

/// One round: build, then hotswap or change set; errors are shown, not fatal.
async fn deploy_once(context: &Context, session: &Session) {
    let watch = Stopwatch::start();
    let result = async {
        let prepared = prepare::prepare(session, &context.project_dir)?;
        match hotswap::hotswap(session, &prepared).await? {
            Outcome::Hotswapped(report) => context.printer.result(&report),
            Outcome::NeedsChangeSet { reason } => {
                context
                    .printer
                    .info(format_args!("{reason}: deploying through a change set"));
                let report = pipeline::deploy(session, &prepared).await?;
                context.printer.result(&report);
            }
        }
        Ok::<_, crate::deploy::error::DeployError>(())
    }
    .await;
    match result {
        Ok(()) => context
            .printer
            .info(format_args!("live in {} ms", watch.millis())),
        Err(err) => context
            .printer
            .warn(format_args!("{err}; fix it and save again")),
    }
}
