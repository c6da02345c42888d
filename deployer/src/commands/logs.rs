//! `deployer logs`: the stage function's CloudWatch Logs, once or followed.

use std::process::ExitCode;
use std::time::Duration;

use super::open_session;
use crate::cli::LogsArgs;
use crate::deploy::logs::{self, Read, Shown, Unseen};
use crate::{Context, Error};

/// Time between two reads with `--follow`.
const POLL: Duration = Duration::from_secs(1);

pub async fn run(context: &Context, args: &LogsArgs) -> Result<ExitCode, Error> {
    let since = logs::parse_since(&args.since)?;
    let pattern = args.filter.as_deref().map(logs::filter_pattern);
    let session = open_session(context).await?;
    let group = logs::stage_log_group(&session).await?;
    let printer = context.printer;
    let colour = printer.colour_results();
    let first_start = logs::start_ms(since);
    let mut unseen = Unseen::default();
    let mut told_empty = false;
    loop {
        let start = unseen.next_start(first_start);
        match logs::read(&session, &group, start, pattern.as_deref()).await? {
            Read::NoLogGroup if !told_empty => {
                told_empty = true;
                printer.info(format!(
                    "no logs yet: log group `{group}` does not exist, so the function of stage `{}` has not run since it was deployed; open its URL (`deployer url --stage {0}`) and try again",
                    session.stage.name
                ));
            }
            Read::NoLogGroup => {}
            Read::Events(events) => {
                for event in unseen.keep_new(events) {
                    printer.result(&Shown::new(&event, colour));
                }
            }
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}
