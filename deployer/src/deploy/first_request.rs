//! The first request after a deploy: `up` invokes the function once, through
//! Lambda's own API, with the event API Gateway would send for
//! `GET /health`, and asks for the invocation's log tail (`LogType=Tail`, the
//! last 4 KB of its output). That shows the new code answers, and the tail's
//! `REPORT` line gives the cold start's `Init Duration` at once, without
//! waiting for CloudWatch Logs. A failure here is reported, never fatal: the
//! stack is deployed either way.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::AwsError;
use crate::deploy::logs;
use crate::deploy::session::Session;

/// What the first request found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FirstRequest {
    pub path: &'static str,
    /// The HTTP status the function answered, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The invocation, as `up` waited for it (includes the cold start).
    pub latency_ms: u64,
    /// The cold start's init time, from the `REPORT` line (Lambda writes it
    /// on a cold start; the emulator never does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_duration_ms: Option<f64>,
    /// Why the function did not answer 200.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl FirstRequest {
    /// One line for people: `first request GET /health: 200 in 812 ms (init 95.1 ms)`.
    pub fn summary(&self) -> String {
        let status = self
            .status
            .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
        let init = self
            .init_duration_ms
            .map(|ms| format!(" (cold start: init {ms:.1} ms)"))
            .unwrap_or_default();
        let problem = self
            .problem
            .as_ref()
            .map(|p| format!("; {p}"))
            .unwrap_or_default();
        format!(
            "first request GET {}: {status} in {} ms{init}{problem}",
            self.path, self.latency_ms
        )
    }
}

/// API Gateway's REST proxy event for `GET <path>` on `stage`.
pub fn api_gateway_event(stage: &str, path: &str) -> Value {
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Accept": "application/json", "User-Agent": "deployer"},
        "multiValueHeaders": {"Accept": ["application/json"], "User-Agent": ["deployer"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "path": format!("/{stage}{path}"),
            "protocol": "HTTP/1.1",
            "stage": stage,
            "requestId": "deployer-first-request",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "deployer"},
        },
        "body": null,
        "isBase64Encoded": false
    })
}

/// The status in the function's answer (an API Gateway proxy response).
pub fn answered_status(payload: &[u8]) -> Option<u16> {
    let answer: Value = serde_json::from_slice(payload).ok()?;
    u16::try_from(answer.get("statusCode")?.as_u64()?).ok()
}

/// The `Init Duration` of the `REPORT` line in a log tail (base64).
pub fn init_duration(log_tail_base64: &str) -> Option<f64> {
    let tail = base64::engine::general_purpose::STANDARD
        .decode(log_tail_base64)
        .ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .filter(|line| line.starts_with("REPORT "))
        .find_map(|line| logs::parse_fields(line)?.get("init_duration_ms")?.as_f64())
}

/// Invokes `function` once with `GET /health`; a failure is in the answer.
pub async fn run(session: &Session, function: &str) -> FirstRequest {
    let path = contract::routes::HEALTH;
    let event = api_gateway_event(session.stage.name.as_str(), path);
    let watch = std::time::Instant::now();
    let answer = session
        .aws
        .lambda
        .invoke()
        .function_name(function)
        .log_type(LogType::Tail)
        .payload(Blob::new(event.to_string()))
        .send()
        .await;
    let latency_ms = u64::try_from(watch.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut found = FirstRequest {
        path,
        status: None,
        latency_ms,
        init_duration_ms: None,
        problem: None,
    };
    match answer {
        Ok(answer) => {
            found.init_duration_ms = answer.log_result.as_deref().and_then(init_duration);
            if let Some(error) = answer.function_error {
                found.problem = Some(format!(
                    "the function failed ({error}); `deployer logs --stage {}` shows why",
                    session.stage.name
                ));
            } else {
                found.status = answer
                    .payload
                    .as_ref()
                    .and_then(|p| answered_status(p.as_ref()));
                if found.status != Some(200) {
                    found.problem = Some(format!(
                        "expected 200; `deployer logs --stage {}` shows the request",
                        session.stage.name
                    ));
                }
            }
        }
        Err(e) => {
            let e = AwsError::from_sdk("lambda:Invoke", session.aws.target(), e);
            found.problem = Some(e.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_api_gateways_for_the_stage() {
        let event = api_gateway_event("dev", contract::routes::HEALTH);
        assert_eq!(event["path"], contract::routes::HEALTH);
        assert_eq!(event["httpMethod"], "GET");
        assert_eq!(event["requestContext"]["path"], "/dev/health");
        assert_eq!(event["requestContext"]["stage"], "dev");
        assert_eq!(event["pathParameters"]["proxy"], "health");
    }

    #[test]
    fn the_status_and_the_init_duration_are_read_from_the_answer() {
        assert_eq!(
            answered_status(br#"{"statusCode":200,"headers":{},"body":"{}"}"#),
            Some(200)
        );
        assert_eq!(answered_status(b"not json"), None);
        assert_eq!(answered_status(br#"{"statusCode":70000}"#), None);
        let tail = "START RequestId: a Version: $LATEST\n{\"log\":\"request\"}\nEND RequestId: a\nREPORT RequestId: a\tDuration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 512 MB\tMax Memory Used: 30 MB\tInit Duration: 95.12 ms\t\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        assert_eq!(init_duration(&encoded), Some(95.12));
        let warm = base64::engine::general_purpose::STANDARD
            .encode("REPORT RequestId: a\tDuration: 3.10 ms\t\n");
        assert_eq!(init_duration(&warm), None);
        assert_eq!(init_duration("%%% not base64"), None);
    }

    #[test]
    fn the_summary_says_what_happened() {
        let mut first = FirstRequest {
            path: contract::routes::HEALTH,
            status: Some(200),
            latency_ms: 812,
            init_duration_ms: Some(95.12),
            problem: None,
        };
        assert_eq!(
            first.summary(),
            "first request GET /health: 200 in 812 ms (cold start: init 95.1 ms)"
        );
        first.status = None;
        first.init_duration_ms = None;
        first.problem = Some("the function failed (Unhandled)".into());
        assert_eq!(
            first.summary(),
            "first request GET /health: no answer in 812 ms; the function failed (Unhandled)"
        );
    }
}
