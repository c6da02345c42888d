//! The stage function's CloudWatch Logs (`deployer logs`): the log group
//! `/aws/lambda/<function>`, read with `FilterLogEvents` from a start time,
//! optionally through a filter pattern. `--follow` streams new events
//! through a live tail session (`StartLiveTail`, an event stream with about
//! one update a second), and falls back to reading every second when a live
//! tail cannot start (no permission for it, a partition or endpoint without
//! it); either way [`Unseen`] shows each event once.
//!
//! Each event is shown with its fields when the line is the app's structured
//! request line (JSON) or a Lambda `REPORT` line (durations, and the cold
//! start's `Init Duration`).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use aws_sdk_cloudwatchlogs::config::StalledStreamProtectionConfig;
use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::primitives::event_stream::EventReceiver;
use aws_sdk_cloudwatchlogs::types::error::StartLiveTailResponseStreamError;
use aws_sdk_cloudwatchlogs::types::{LiveTailSessionLogEvent, StartLiveTailResponseStream};

use crate::aws::{Aws, AwsError};
use crate::deploy::session::Session;
use crate::deploy::stack_outputs;
use crate::emulator;
use crate::exit;

/// The log group Lambda writes a function's output to.
pub fn log_group(function_name: &str) -> String {
    format!("/aws/lambda/{function_name}")
}

/// Pages of one `FilterLogEvents` read, at most (10,000 events each).
const MAX_PAGES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("`--since {0}` is not a duration; use a number and a unit: `30s`, `10m`, `2h` or `1d`")]
    InvalidSince(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Stack(#[from] crate::deploy::error::DeployError),
}

impl LogsError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InvalidSince(_) => exit::INVALID_INPUT,
            Self::Aws(e) => e.exit_code(),
            Self::Stack(e) => e.exit_code(),
        }
    }
}

/// `30s`, `10m`, `2h`, `1d` as a duration.
pub fn parse_since(text: &str) -> Result<Duration, LogsError> {
    let invalid = || LogsError::InvalidSince(text.to_owned());
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s <= 366 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(invalid)
}

/// `--filter TEXT` as a CloudWatch filter pattern: one quoted literal term,
/// so that `-`, `?` or spaces in it mean themselves.
pub fn filter_pattern(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One log event, with the fields parsed from its message.
#[derive(Debug, Clone, Serialize)]
pub struct LogEvent {
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    #[serde(skip)]
    pub timestamp_ms: i64,
    pub log_stream: String,
    pub message: String,
    /// The app's request line, or the durations of a `REPORT` line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Map<String, Value>>,
    #[serde(skip)]
    pub event_id: String,
}

impl LogEvent {
    pub fn new(timestamp_ms: i64, log_stream: String, message: &str, event_id: String) -> Self {
        let message = message.trim_end().to_owned();
        Self {
            timestamp: rfc3339(timestamp_ms),
            timestamp_ms,
            log_stream,
            fields: parse_fields(&message),
            message,
            event_id,
        }
    }

    /// The HTTP status of an app request line.
    pub fn status(&self) -> Option<u64> {
        self.fields.as_ref()?.get("status")?.as_u64()
    }

    /// The cold start's init time of a `REPORT` line.
    pub fn init_duration_ms(&self) -> Option<f64> {
        self.fields.as_ref()?.get("init_duration_ms")?.as_f64()
    }
}

/// Fields of the app's JSON line, or of a Lambda `REPORT` line.
pub fn parse_fields(message: &str) -> Option<Map<String, Value>> {
    let trimmed = message.trim();
    if trimmed.starts_with('{') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(fields)) => Some(fields),
            _ => None,
        };
    }
    let report = trimmed.strip_prefix("REPORT ")?;
    let mut fields = Map::new();
    fields.insert("log".into(), Value::from("report"));
    for part in report.split('\t') {
        let Some((key, value)) = part.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let name = match key.trim() {
            "RequestId" => {
                fields.insert("lambda_request_id".into(), Value::from(value));
                continue;
            }
            "Duration" => "duration_ms",
            "Billed Duration" => "billed_duration_ms",
            "Init Duration" => "init_duration_ms",
            "Memory Size" => "memory_size_mb",
            "Max Memory Used" => "max_memory_used_mb",
            _ => continue,
        };
        let number = value.split_whitespace().next().and_then(|n| n.parse().ok());
        if let Some(number) = number.and_then(serde_json::Number::from_f64) {
            fields.insert(name.into(), Value::Number(number));
        }
    }
    Some(fields)
}

/// An event as printed: coloured at a terminal, plain otherwise; its JSON is
/// the event's.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Shown<'a> {
    event: &'a LogEvent,
    #[serde(skip)]
    colour: bool,
}

impl<'a> Shown<'a> {
    pub fn new(event: &'a LogEvent, colour: bool) -> Self {
        Self { event, colour }
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = self.event;
        let (dim, reset) = if self.colour {
            ("\x1b[2m", "\x1b[0m")
        } else {
            ("", "")
        };
        write!(f, "{dim}{}{reset} ", event.timestamp)?;
        let colour = match event.status() {
            Some(500..=599) if self.colour => "\x1b[31m",
            Some(400..=499) if self.colour => "\x1b[33m",
            _ => "",
        };
        let end = if colour.is_empty() { "" } else { reset };
        // Control characters from the log (an escape sequence in a message)
        // are shown, never obeyed.
        let message: String = event
            .message
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect();
        write!(f, "{colour}{message}{end}")
    }
}

/// What one read found.
#[derive(Debug)]
pub enum Read {
    /// The log group does not exist: the function has not run yet.
    NoLogGroup,
    Events(Vec<LogEvent>),
}

/// The stage function's log group, through the stack's outputs.
pub async fn stage_log_group(session: &Session) -> Result<String, LogsError> {
    let stack = session.deployed_stack().await?;
    Ok(log_group(&stack_outputs::function_name(&stack)?))
}

/// Every event of `group` from `start_ms` on (through `pattern`), oldest first.
pub async fn read(
    session: &Session,
    group: &str,
    start_ms: i64,
    pattern: Option<&str>,
) -> Result<Read, LogsError> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let answer = session
            .aws
            .logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(start_ms)
            .set_filter_pattern(pattern.map(str::to_owned))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("logs:FilterLogEvents", session.aws.target(), e));
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) if e.is_code("ResourceNotFoundException") => return Ok(Read::NoLogGroup),
            Err(e) => return Err(e.into()),
        };
        for event in answer.events.unwrap_or_default() {
            events.push(LogEvent::new(
                event.timestamp.unwrap_or_default(),
                event.log_stream_name.unwrap_or_default(),
                event.message.as_deref().unwrap_or_default(),
                event.event_id.unwrap_or_default(),
            ));
        }
        match answer.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    events.sort_by_key(|e| e.timestamp_ms);
    Ok(Read::Events(events))
}

/// The ARN a live tail names a log group by (`StartLiveTail` takes ARNs
/// only, without the trailing `:*` that `DescribeLogGroups` shows); the
/// partition is the caller's (`arn:aws-cn:…` in China).
pub fn log_group_arn(caller_arn: &str, region: &str, account: &str, group: &str) -> String {
    let partition = caller_arn
        .split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws");
    format!("arn:{partition}:logs:{region}:{account}:log-group:{group}")
}

/// Attempts to start a live tail (AWS's default is 10 for every call).
const LIVE_TAIL_ATTEMPTS: u32 = 3;

/// What the SDK puts in front of the Logs host for `StartLiveTail`.
const LIVE_TAIL_HOST_PREFIX: &str = "stream-";

/// A live tail session of one log group: new events as they are ingested.
#[derive(Debug)]
pub struct LiveTail {
    stream: EventReceiver<StartLiveTailResponseStream, StartLiveTailResponseStreamError>,
    target: String,
}

/// Starts a live tail of `group` (through `pattern`). An error means there is
/// no live tail here (the caller polls instead); it says why.
pub async fn start_live_tail(
    aws: &Aws,
    group: &str,
    pattern: Option<&str>,
) -> Result<LiveTail, AwsError> {
    let caller = aws.caller().await?;
    let arn = log_group_arn(&caller.arn, &aws.region, &caller.account, group);
    let target = aws.target();
    let mut call = aws
        .logs
        .start_live_tail()
        .log_group_identifiers(arn)
        .set_log_event_filter_pattern(pattern.map(str::to_owned))
        .customize()
        // A session stays open for hours and may be quiet between updates:
        // the stalled-download guard is for bodies that should keep flowing.
        // Few attempts: where there is no live tail, reads take over.
        .config_override(
            aws_sdk_cloudwatchlogs::config::Builder::default()
                .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
                .retry_config(RetryConfig::standard().with_max_attempts(LIVE_TAIL_ATTEMPTS)),
        );
    if aws.endpoint.is_some() {
        call = call.interceptor(emulator::NoHostPrefix(LIVE_TAIL_HOST_PREFIX));
    }
    let answer = call
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("logs:StartLiveTail", target.clone(), e))?;
    Ok(LiveTail {
        stream: answer.response_stream,
        target,
    })
}

impl LiveTail {
    /// The events of the next update (often none); `None` when the session
    /// ended (CloudWatch ends one after three hours: start another).
    pub async fn next(&mut self) -> Result<Option<Vec<LogEvent>>, AwsError> {
        loop {
            let item = self.stream.recv().await.map_err(|e| {
                let why = match (e.code(), e.message()) {
                    (Some("SessionTimeoutException"), _) => return None,
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_owned(),
                    _ => "the stream of events broke off".to_owned(),
                };
                Some(AwsError::other(
                    "logs:StartLiveTail",
                    self.target.clone(),
                    why,
                ))
            });
            return match item {
                Ok(Some(StartLiveTailResponseStream::SessionUpdate(update))) => Ok(Some(
                    update
                        .session_results
                        .unwrap_or_default()
                        .iter()
                        .map(live_event)
                        .collect(),
                )),
                Ok(Some(_)) => continue,
                Ok(None) | Err(None) => Ok(None),
                Err(Some(e)) => Err(e),
            };
        }
    }
}

/// A live tail's event as a log event (live events have no event id).
pub fn live_event(event: &LiveTailSessionLogEvent) -> LogEvent {
    LogEvent::new(
        event.timestamp.unwrap_or_default(),
        event.log_stream_name.clone().unwrap_or_default(),
        event.message.as_deref().unwrap_or_default(),
        String::new(),
    )
}

/// The events not shown yet, across reads and live tail updates. A read
/// re-reads the last seconds (events arrive late) and a live tail overlaps
/// the read that precedes it, so each event is recognised by its id and by
/// its content (time, stream and message: live events have no id), back to
/// the window's start. Two identical lines in one millisecond of one stream
/// are both shown when they come in one batch.
#[derive(Debug, Default)]
pub struct Unseen {
    seen: HashMap<String, i64>,
    seen_content: HashMap<u64, i64>,
    newest_ms: Option<i64>,
}

/// The content key of an event: its time, stream and message.
fn content_key(event: &LogEvent) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (event.timestamp_ms, &event.log_stream, &event.message).hash(&mut hasher);
    hasher.finish()
}

/// How far back each poll re-reads: events can arrive late.
const OVERLAP_MS: i64 = 10_000;

impl Unseen {
    /// The start time of the next poll.
    pub fn next_start(&self, first_start_ms: i64) -> i64 {
        self.newest_ms.map_or(first_start_ms, |newest| {
            (newest - OVERLAP_MS).max(first_start_ms)
        })
    }

    /// `events` without those shown before.
    pub fn keep_new(&mut self, events: Vec<LogEvent>) -> Vec<LogEvent> {
        let before: std::collections::HashSet<u64> = events
            .iter()
            .map(content_key)
            .filter(|key| self.seen_content.contains_key(key))
            .collect();
        let fresh: Vec<LogEvent> = events
            .into_iter()
            .filter(|e| {
                let key = content_key(e);
                self.seen_content.insert(key, e.timestamp_ms);
                let new_id = e.event_id.is_empty()
                    || self
                        .seen
                        .insert(e.event_id.clone(), e.timestamp_ms)
                        .is_none();
                new_id && !before.contains(&key)
            })
            .collect();
        if let Some(newest) = self.seen_content.values().max().copied() {
            self.newest_ms = Some(self.newest_ms.map_or(newest, |n| n.max(newest)));
            let cutoff = newest - 2 * OVERLAP_MS;
            self.seen.retain(|_, ms| *ms >= cutoff);
            self.seen_content.retain(|_, ms| *ms >= cutoff);
        }
        fresh
    }
}

/// Milliseconds since the epoch, `since` ago.
pub fn start_ms(since: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(since);
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// `2026-12-02T00:23:37.123Z` for milliseconds since the epoch (UTC).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_seconds_minutes_hours_and_days() {
        assert_eq!(parse_since("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_since("10m").unwrap(), Duration::from_mins(10));
        assert_eq!(parse_since("2h").unwrap(), Duration::from_hours(2));
        assert_eq!(parse_since("1d").unwrap(), Duration::from_hours(24));
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "-5m",
            "1.5h",
            "99999999999999999999s",
            "400d",
        ] {
            let err = parse_since(bad).unwrap_err();
            assert_eq!(err.exit_code(), exit::INVALID_INPUT, "{bad}");
            assert!(err.to_string().contains("10m"), "{err}");
        }
    }

    #[test]
    fn the_filter_is_one_quoted_literal_term() {
        assert_eq!(filter_pattern("GET /photos"), "\"GET /photos\"");
        assert_eq!(filter_pattern("a\"b\\c"), r#""a\"b\\c""#);
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_796_171_017_456), "2026-12-02T00:23:37.456Z");
    }

    #[test]
    fn the_apps_request_line_and_report_lines_are_parsed() {
        let app = LogEvent::new(
            0,
            "s".into(),
            r#"{"log":"request","method":"GET","route":"/x","status":503,"latency_ms":1.5}"#,
            "1".into(),
        );
        assert_eq!(app.status(), Some(503));
        let report = LogEvent::new(
            0,
            "s".into(),
            "REPORT RequestId: abc-1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\tMax Memory Used: 40 MB\tInit Duration: 87.65 ms\t\n",
            "2".into(),
        );
        assert_eq!(report.init_duration_ms(), Some(87.65));
        let fields = report.fields.as_ref().unwrap();
        assert_eq!(fields["lambda_request_id"], "abc-1");
        assert_eq!(fields["duration_ms"].as_f64(), Some(12.34));
        assert_eq!(fields["memory_size_mb"].as_f64(), Some(512.0));
        let plain = LogEvent::new(0, "s".into(), "START RequestId: abc", "3".into());
        assert!(plain.fields.is_none() && plain.init_duration_ms().is_none());
    }

    #[test]
    fn colour_marks_errors_and_never_passes_escapes_through() {
        let event = LogEvent::new(
            0,
            "s".into(),
            "{\"status\":404,\"route\":\"/a\\u001b[2J\"}",
            "1".into(),
        );
        let coloured = Shown::new(&event, true).to_string();
        assert!(coloured.starts_with("\x1b[2m1970-01-01T00:00:00.000Z\x1b[0m \x1b[33m"));
        let hostile = LogEvent::new(0, "s".into(), "a\x1b[2Jb", "2".into());
        let plain = Shown::new(&hostile, false).to_string();
        assert!(
            !plain.contains('\x1b') && plain.ends_with("a\u{fffd}[2Jb"),
            "{plain}"
        );
        let json = serde_json::to_value(Shown::new(&event, true)).unwrap();
        assert_eq!(json["log_stream"], "s");
        assert_eq!(json["fields"]["status"], 404);
        assert!(json.get("colour").is_none() && json.get("event_id").is_none());
    }

    #[test]
    fn polls_show_each_event_once() {
        let event = |id: &str, ms| LogEvent::new(ms, "s".into(), id, id.into());
        let mut unseen = Unseen::default();
        assert_eq!(unseen.next_start(5), 5);
        assert_eq!(
            unseen
                .keep_new(vec![event("a", 100_000), event("b", 101_000)])
                .len(),
            2
        );
        assert_eq!(unseen.next_start(5), 91_000);
        let again = unseen.keep_new(vec![event("b", 101_000), event("c", 102_000)]);
        assert_eq!(
            again.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
    }

    #[test]
    fn a_live_tail_shows_nothing_the_read_before_it_showed() {
        let read = |id: &str, msg: &str, ms| LogEvent::new(ms, "s".into(), msg, id.into());
        let mut unseen = Unseen::default();
        assert_eq!(
            unseen
                .keep_new(vec![read("1", "a", 100_000), read("2", "b", 101_000)])
                .len(),
            2
        );
        let live = |msg: &str, ms| {
            live_event(
                &LiveTailSessionLogEvent::builder()
                    .timestamp(ms)
                    .log_stream_name("s")
                    .message(msg)
                    .build(),
            )
        };
        // The update overlaps the read ("b"), and holds one line twice.
        let update = unseen.keep_new(vec![
            live("b", 101_000),
            live("c", 102_000),
            live("c", 102_000),
        ]);
        assert_eq!(
            update
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>(),
            ["c", "c"]
        );
        assert!(update.iter().all(|e| e.event_id.is_empty()));
        // A later read finds "c" by content, though it now has an id.
        let later = unseen.keep_new(vec![read("3", "c", 102_000), read("4", "d", 103_000)]);
        assert_eq!(
            later.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["d"]
        );
        assert_eq!(unseen.next_start(0), 93_000);
    }

    #[test]
    fn live_tail_names_the_group_by_arn_in_the_callers_partition() {
        assert_eq!(
            log_group_arn(
                "arn:aws:iam::123456789012:user/ci",
                "eu-west-1",
                "123456789012",
                "/aws/lambda/f"
            ),
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f"
        );
        assert_eq!(
            log_group_arn("arn:aws-cn:sts::1:assumed-role/r/s", "cn-north-1", "1", "g"),
            "arn:aws-cn:logs:cn-north-1:1:log-group:g"
        );
        assert_eq!(
            log_group_arn("", "r", "1", "g"),
            "arn:aws:logs:r:1:log-group:g"
        );
    }
}
