//! `deployer logs`: the stage function's CloudWatch Logs, once or followed
//! (a live tail, or a read every second where there is none).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::open_session;
use crate::cli::LogsArgs;
use crate::deploy::logs::{self, LiveTail, Read, Shown, Unseen};
use crate::deploy::session::Session;
use crate::emulator;
use crate::output::Printer;
use crate::{Context, Error};

/// Time between two reads when following without a live tail.
const POLL: Duration = Duration::from_secs(1);

/// A live tail that ends sooner than this is not started again: reads take over.
const SHORTEST_SESSION: Duration = Duration::from_mins(1);

/// How `--follow` gets new events.
enum Follow {
    /// Not tried yet: the log group must exist first.
    Untried,
    /// A live tail session, and when it started.
    Live(Box<LiveTail>, Instant),
    /// No live tail here (it failed once): read every [`POLL`].
    Poll,
}

pub async fn run(context: &Context, args: &LogsArgs) -> Result<ExitCode, Error> {
    let since = logs::parse_since(&args.since)?;
    let pattern = args.filter.as_deref().map(logs::filter_pattern);
    let session = open_session(context).await?;
    let group = logs::stage_log_group(&session).await?;
    let printer = context.printer;
    let mut shown = Shower {
        printer,
        colour: printer.colour_results(),
        first_start: logs::start_ms(since),
        unseen: Unseen::default(),
        told_empty: false,
    };
    let mut group_exists = shown.read(&session, &group, pattern.as_deref()).await?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut follow = if emulator::live_tail_shows_function_output(session.aws.endpoint.as_deref()) {
        Follow::Untried
    } else {
        printer.info(
            "the local cloud's live tail does not carry the function's output; reading new events every second instead (Ctrl-C ends)",
        );
        Follow::Poll
    };
    loop {
        if group_exists && matches!(follow, Follow::Untried) {
            follow = match logs::start_live_tail(&session.aws, &group, pattern.as_deref()).await {
                Ok(tail) => {
                    printer.info("following with a live tail (Ctrl-C ends)");
                    // What arrived between the first read and the session's start.
                    shown.read(&session, &group, pattern.as_deref()).await?;
                    Follow::Live(Box::new(tail), Instant::now())
                }
                Err(e) => {
                    printer.info(format!(
                        "no live tail ({e}); reading new events every second instead (Ctrl-C ends)"
                    ));
                    Follow::Poll
                }
            };
        }
        if let Follow::Live(tail, started) = &mut follow {
            let started = *started;
            let update = tokio::select! {
                update = tail.next() => update,
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            };
            match update {
                Ok(Some(events)) => shown.show(events),
                // A session ends after three hours: start the next one.
                Ok(None) if started.elapsed() >= SHORTEST_SESSION => follow = Follow::Untried,
                Ok(None) => {
                    printer.info(
                        "the live tail ended at once; reading new events every second instead",
                    );
                    follow = Follow::Poll;
                }
                Err(e) => {
                    printer.info(format!(
                        "the live tail stopped ({e}); reading new events every second instead"
                    ));
                    follow = Follow::Poll;
                }
            }
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        group_exists = shown.read(&session, &group, pattern.as_deref()).await?;
    }
}

/// Prints events once each.
struct Shower {
    printer: Printer,
    colour: bool,
    first_start: i64,
    unseen: Unseen,
    told_empty: bool,
}

impl Shower {
    /// Reads and shows what is new; false while the log group does not exist.
    async fn read(
        &mut self,
        session: &Session,
        group: &str,
        pattern: Option<&str>,
    ) -> Result<bool, Error> {
        let start = self.unseen.next_start(self.first_start);
        match logs::read(session, group, start, pattern).await? {
            Read::NoLogGroup => {
                if !self.told_empty {
                    self.told_empty = true;
                    self.printer.info(format!(
                        "no logs yet: log group `{group}` does not exist, so the function of stage `{}` has not run since it was deployed; open its URL (`deployer url --stage {0}`) and try again",
                        session.stage.name
                    ));
                }
                Ok(false)
            }
            Read::Events(events) => {
                self.show(events);
                Ok(true)
            }
        }
    }

    fn show(&mut self, events: Vec<logs::LogEvent>) {
        for event in self.unseen.keep_new(events) {
            self.printer.result(&Shown::new(&event, self.colour));
        }
    }
}
