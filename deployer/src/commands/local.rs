//! `deployer local`: the whole app on this machine, no AWS account.
//!
//! Starts (installing on first use) the local cloud on the port of
//! `stacks/local.yaml`'s `endpoint_url`, deploys the `local` stage into it
//! through exactly the `up` code path — so the real `bootstrap` runs as the
//! Lambda function behind the emulated API Gateway — prints the URL, and
//! stays up until Ctrl-C, which stops the emulator (saving its state in
//! `.local-cloud/`, so photos survive a restart; `--fresh` starts over).

use std::process::ExitCode;

use contract::defaults::LOCAL_STAGE;

use super::session_options;
use crate::cli::LocalArgs;
use crate::deploy::session::Session;
use crate::deploy::{pipeline, prepare};
use crate::localcloud::{self, LocalCloud, StartOptions};
use crate::{Context, Error};

/// The emulator's port when the stage file names none.
const DEFAULT_PORT: u16 = 4566;

pub async fn run(context: &Context, args: &LocalArgs) -> Result<ExitCode, Error> {
    let printer = context.printer;
    let stage = context.load_stage(LOCAL_STAGE)?;
    let port = args.port.unwrap_or_else(|| {
        stage
            .config
            .endpoint_url
            .as_ref()
            .and_then(|url| url.as_str().trim_end_matches('/').rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(DEFAULT_PORT)
    });
    let data_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| context.project_dir.join(localcloud::STATE_DIR));
    let shown_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| localcloud::STATE_DIR.into());
    if args.fresh {
        if localcloud::is_healthy(port) {
            return Err(Error::Refused(format!(
                "a local cloud is already running on port {port}; stop it (Ctrl-C in its terminal) before `deployer local --fresh`"
            )));
        }
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir).map_err(|source| Error::Write {
                path: data_dir.clone(),
                source,
            })?;
        }
    }
    let exe = LocalCloud::install(&context.project_dir, &printer)?;
    let mut cloud = LocalCloud::start(
        &exe,
        &StartOptions {
            port,
            data_dir,
            persist: true,
        },
    )?;
    printer.info(format_args!(
        "local cloud {} at {} (state in `{}`)",
        if cloud.owned() {
            "started"
        } else {
            "already running"
        },
        cloud.endpoint(),
        shown_dir.display()
    ));

    let mut options = session_options(context);
    options.endpoint_url = Some(cloud.endpoint());
    options.assume_yes = true;
    let deployed = async {
        let session = Session::open(stage, &options, printer).await?;
        let prepared = prepare::prepare(&session, &context.project_dir)?;
        Ok::<_, Error>(pipeline::deploy(&session, &prepared).await?)
    }
    .await;
    let report = match deployed {
        Ok(report) => report,
        Err(err) => {
            cloud.stop();
            return Err(err);
        }
    };
    printer.result(&report);
    if !cloud.owned() {
        printer.info("the local cloud was already running and stays up; `deployer local` is done");
        return Ok(ExitCode::SUCCESS);
    }
    printer.info(format_args!(
        "CloudAlbum runs at {}; press Ctrl-C to stop the local cloud",
        report.url.as_deref().unwrap_or("(no URL)")
    ));
    wait_for_stop().await;
    printer.info("stopping the local cloud (saving its state)...");
    cloud.stop();
    printer.info("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C (SIGINT) or SIGTERM.
async fn wait_for_stop() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
