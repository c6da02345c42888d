//! What a failed SDK call was, in one line, and whether it was transient.
//!
//! A leaf module (it names no other module of the crate) so that [`crate::aws`]
//! and [`crate::emulator`] can both describe a failure without importing each
//! other. The SDK's own `Display`/`Debug` of an error can be a nested dump on
//! one very long line (`ServiceError(ServiceError { source: Unhandled(…) })`);
//! nothing here ever prints one: a failure is its service error code and
//! message, or its HTTP status when the body cannot be read, or the cause of a
//! lost connection, each cut to one short line.
//!
//! "Transient" follows the SDK's own retry classifiers (HTTP 500, 502, 503,
//! 504; throttling and timeout error codes; timeouts, I/O errors and unreadable
//! answers), so a failure called transient here is one the SDK has already
//! retried [`MAX_ATTEMPTS`] times (see `aws::retry_config`).

use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Attempts per call, the first included: more than the SDK's default of 3,
/// since a deploy waits minutes and a few failed polls must not end it.
pub const MAX_ATTEMPTS: u32 = 10;
/// The first retry waits up to this long (randomised), doubling after each.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// No wait between two attempts is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The longest cause quoted from an error's text.
const MAX_CAUSE: usize = 160;

/// HTTP statuses the SDK retries.
const TRANSIENT_STATUSES: [u16; 4] = [500, 502, 503, 504];

/// Error codes the SDK retries (throttling and timeouts), as the AWS runtime
/// lists them.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The service's error code, e.g. `ValidationError`.
    pub code: Option<String>,
    /// The service's message, when it gave one.
    pub message: Option<String>,
    /// The HTTP status of the answer, when there was one.
    pub status: Option<u16>,
    /// Retried by the SDK: a re-run may well succeed.
    pub transient: bool,
    /// The request never reached a service: nothing listens at the endpoint
    /// (connection refused), or no connection could be made at all (a name
    /// that does not resolve, a TLS failure).
    pub unreachable: bool,
    /// One line: what went wrong, without the service's code.
    pub summary: String,
}

impl Failure {
    /// Describes an SDK error, one line, no `Debug` output.
    pub fn of<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned);
        let message = err.message().map(one_line).filter(|m| !m.is_empty());
        let (transient, unreachable, summary) = match err {
            SdkError::ServiceError(_) => {
                let transient = status.is_some_and(|s| TRANSIENT_STATUSES.contains(&s))
                    || code
                        .as_deref()
                        .is_some_and(|c| TRANSIENT_CODES.contains(&c));
                let summary = match (&message, status) {
                    (Some(message), _) => message.clone(),
                    (None, Some(status)) if code.is_some() => format!("HTTP {status}"),
                    (None, Some(status)) => {
                        format!("HTTP {status} with no readable error in the answer")
                    }
                    (None, None) => "no readable error in the answer".to_owned(),
                };
                (transient, false, summary)
            }
            SdkError::ResponseError(_) => {
                let summary = match status {
                    Some(status) => format!("HTTP {status}, but the answer could not be read"),
                    None => "the answer could not be read".to_owned(),
                };
                (true, false, summary)
            }
            SdkError::TimeoutError(_) => (true, false, "no answer in time".to_owned()),
            SdkError::DispatchFailure(dispatch) => {
                let connector = dispatch.as_connector_error();
                let io = connector.and_then(|c| find_io_error(c));
                let transient = connector.is_some_and(|c| c.is_timeout() || c.is_io());
                let unreachable = !transient
                    || io.is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
                let summary = match (connector, io) {
                    (Some(c), _) if c.is_timeout() => "no answer in time".to_owned(),
                    (_, Some(io)) => io_summary(io),
                    (Some(c), None) => innermost(c),
                    (None, None) => "the request could not be sent".to_owned(),
                };
                (transient, unreachable, summary)
            }
            // Also the variants a newer SDK may add.
            _ => (false, false, innermost(err)),
        };
        Self {
            code,
            message,
            status,
            transient,
            unreachable,
            summary,
        }
    }

    /// `HTTP 503` or `connection reset`, with the code and message if any:
    /// the part of a message after "failed: ".
    pub fn describe(&self) -> String {
        match &self.code {
            Some(code) => format!("{code}: {}", self.summary),
            None => self.summary.clone(),
        }
    }
}

/// The first I/O error in the chain of causes.
fn find_io_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a std::io::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

fn io_summary(io: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ConnectionRefused => "connection refused".to_owned(),
        K::ConnectionReset => "connection reset".to_owned(),
        K::ConnectionAborted => "connection aborted".to_owned(),
        K::BrokenPipe => "connection closed while sending".to_owned(),
        K::UnexpectedEof => "connection closed before the answer".to_owned(),
        K::TimedOut => "no answer in time".to_owned(),
        _ => clip(&one_line(&io.to_string())),
    }
}

/// The text of the innermost cause: the most specific, and never a dump of
/// the wrappers around it.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut current: &(dyn StdError + 'static) = err;
    while let Some(source) = current.source() {
        current = source;
    }
    clip(&one_line(&current.to_string()))
}

/// Whitespace (newlines included) collapsed to single spaces.
/// An error and its causes, each as it displays itself, on one line and
/// clipped: never the `Debug` form that `DisplayErrorContext` appends (a
/// dump of nested structs, response headers and bodies).
pub fn causes(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = one_line(&e.to_string());
        // SDK errors often repeat their source's text in their own.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    clip(&parts.join(": "))
}

pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_CAUSE {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_CAUSE).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
    use aws_sdk_s3::primitives::SdkBody;

    type Err = SdkError<DescribeStacksError, HttpResponse>;

    fn service_error(status: u16, err: DescribeStacksError) -> Err {
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(""));
        SdkError::service_error(err, response)
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn causes_are_displayed_in_one_line_without_a_debug_dump() {
        let error = Layer(
            "an error occurred while loading credentials",
            Some(Box::new(Layer(
                "failed to load IMDS session token",
                Some(Box::new(Layer("request forbidden:\n  denied", None))),
            ))),
        );
        assert_eq!(
            causes(&error),
            "an error occurred while loading credentials: failed to load IMDS session token: request forbidden: denied"
        );
        let with_debug = aws_sdk_s3::error::DisplayErrorContext(&error).to_string();
        assert!(with_debug.contains("Layer("), "{with_debug}");
        assert!(!causes(&error).contains('('));
    }

    #[test]
    fn an_unparseable_503_is_its_status_and_transient() {
        let unhandled = DescribeStacksError::generic(
            aws_sdk_cloudformation::error::ErrorMetadata::builder().build(),
        );
        let failure = Failure::of(&service_error(503, unhandled));
        assert!(failure.transient);
        assert_eq!(failure.status, Some(503));
        assert_eq!(
            failure.describe(),
            "HTTP 503 with no readable error in the answer"
        );
    }

    #[test]
    fn a_coded_error_is_its_code_and_message() {
        let throttled = DescribeStacksError::generic(
            aws_sdk_cloudformation::error::ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded\n  (again)")
                .build(),
        );
        let failure = Failure::of(&service_error(400, throttled));
        assert!(failure.transient, "throttling is retried");
        assert_eq!(failure.describe(), "Throttling: Rate exceeded (again)");

        let invalid = DescribeStacksError::generic(
            aws_sdk_cloudformation::error::ErrorMetadata::builder()
                .code("ValidationError")
                .message("Stack with id x does not exist")
                .build(),
        );
        let failure = Failure::of(&service_error(400, invalid));
        assert!(!failure.transient);
        assert_eq!(failure.code.as_deref(), Some("ValidationError"));
    }

    #[test]
    fn a_reset_connection_is_transient_and_a_refused_one_is_named() {
        use aws_sdk_s3::error::ConnectorError;
        let reset: Err = SdkError::dispatch_failure(ConnectorError::io(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        )));
        let failure = Failure::of(&reset);
        assert!(failure.transient);
        assert!(!failure.unreachable);
        assert_eq!(failure.describe(), "connection reset");

        let refused: Err = SdkError::dispatch_failure(ConnectorError::io(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        let failure = Failure::of(&refused);
        assert!(failure.unreachable);
        assert_eq!(failure.describe(), "connection refused");
    }

    #[test]
    fn causes_are_one_short_line() {
        let long = format!("first line\nsecond {}", "x".repeat(500));
        let text = clip(&one_line(&long));
        assert!(!text.contains('\n'));
        assert!(text.chars().count() <= MAX_CAUSE + 1);
        assert!(text.starts_with("first line second x"));
    }
}
