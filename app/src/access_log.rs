//! One structured JSON line per request, written to stdout (on Lambda it
//! reaches CloudWatch Logs; `deployer logs` parses it): method, route (the
//! matched pattern, such as `/photos/{id}`, so lines group by page), path,
//! status, latency and the request id. Never a query string, a cookie, a
//! token or any header's value: the path is the request's path alone, and JSON
//! escapes control characters in it.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;
use serde::Serialize;

/// Where the lines go: stdout in the app, a buffer in tests.
#[derive(Clone)]
pub struct Sink(Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl Sink {
    /// Lines to stdout, one `write` each so concurrent requests never mix.
    pub fn stdout() -> Self {
        Self(Arc::new(|line| {
            let mut out = std::io::stdout().lock();
            // A closed stdout loses a log line, never a request.
            drop(out.write_all(format!("{line}\n").as_bytes()));
        }))
    }

    /// Lines to `write` (tests).
    pub fn new(write: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(write))
    }
}

/// The line, as `deployer logs` reads it (`"log": "request"` marks it).
#[derive(Debug, Serialize)]
pub struct AccessLine<'a> {
    pub log: &'static str,
    pub method: &'a str,
    /// The route pattern that matched (`/photos/{id}`), or [`UNMATCHED`].
    pub route: &'a str,
    /// The request's path, without its query string.
    pub path: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    /// API Gateway's request id (the client's `x-amzn-RequestId`), else the
    /// request's `x-amzn-requestid` or `apigw-requestid` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The Lambda invocation's id (as in its `START` and `REPORT` lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_request_id: Option<String>,
}

/// The route of a request that matched none (answered by the 404 page).
pub const UNMATCHED: &str = "(none)";

/// The middleware: times the request and writes its line to `sink`.
pub async fn middleware(State(sink): State<Sink>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let extensions = request.extensions();
    let route = extensions
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let request_id = extensions
        .get::<RequestContext>()
        .and_then(|context| match context {
            RequestContext::ApiGatewayV1(context) => context.request_id.clone(),
            _ => None,
        })
        .or_else(|| {
            ["x-amzn-requestid", "apigw-requestid"]
                .iter()
                .find_map(|name| request.headers().get(*name))
                .and_then(|value| value.to_str().ok())
                .filter(|id| id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
                .map(str::to_owned)
        });
    let lambda_request_id = extensions
        .get::<lambda_http::Context>()
        .map(|context| context.request_id.clone())
        .filter(|id| !id.is_empty());
    let response = next.run(request).await;
    let line = AccessLine {
        log: "request",
        method: &method,
        route: &route,
        path: &path,
        status: response.status().as_u16(),
        latency_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        request_id,
        lambda_request_id,
    };
    if let Ok(json) = serde_json::to_string(&line) {
        (sink.0)(&json);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app(lines: &Arc<Mutex<Vec<String>>>) -> Router {
        let lines = Arc::clone(lines);
        let sink = Sink::new(move |line| {
            if let Ok(mut lines) = lines.lock() {
                lines.push(line.to_owned());
            }
        });
        Router::new()
            .route(
                "/photos/{id}",
                get(|| async { (StatusCode::IM_A_TEAPOT, "") }),
            )
            .layer(axum::middleware::from_fn_with_state(sink, middleware))
    }

    #[tokio::test]
    async fn a_request_writes_one_line_without_secrets() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let request = axum::http::Request::get("/photos/01ABC?token=QUERYSECRET")
            .header("cookie", "session=COOKIESECRET")
            .header("authorization", "Bearer TOKENSECRET")
            .header("x-amzn-requestid", "req-1234")
            .body(Body::empty())
            .unwrap();
        let response = app(&lines).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        for secret in ["QUERYSECRET", "COOKIESECRET", "TOKENSECRET", "token", "?"] {
            assert!(!line.contains(secret), "`{secret}` in {line}");
        }
        let fields: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(fields["log"], "request");
        assert_eq!(fields["method"], "GET");
        assert_eq!(fields["route"], "/photos/{id}");
        assert_eq!(fields["path"], "/photos/01ABC");
        assert_eq!(fields["status"], 418);
        assert_eq!(fields["request_id"], "req-1234");
        assert!(fields["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
        assert!(fields.get("lambda_request_id").is_none());
    }

    #[tokio::test]
    async fn control_characters_in_the_path_are_escaped() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        // A raw control byte cannot be in a URI: a newline reaches the app
        // percent-encoded and is logged as it came.
        let request = axum::http::Request::get("/photos/%0A%22x")
            .body(Body::empty())
            .unwrap();
        app(&lines).oneshot(request).await.unwrap();
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'));
        let fields: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(fields["route"], "/photos/{id}");
        assert_eq!(fields["path"], "/photos/%0A%22x");
        assert_eq!(fields["status"], 418);
    }

    #[tokio::test]
    async fn a_request_no_route_matches_is_logged_with_its_path() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let request = axum::http::Request::get("/no/such/page")
            .body(Body::empty())
            .unwrap();
        let response = app(&lines).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let lines = lines.lock().unwrap();
        let fields: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(fields["route"], UNMATCHED);
        assert_eq!(fields["path"], "/no/such/page");
        assert_eq!(fields["status"], 404);
    }

    #[test]
    fn a_control_character_is_escaped_in_json() {
        let line = AccessLine {
            log: "request",
            method: "GET",
            route: "/a",
            path: "/a\nb\u{1b}[31m",
            status: 200,
            latency_ms: 1.0,
            request_id: None,
            lambda_request_id: None,
        };
        let json = serde_json::to_string(&line).unwrap();
        assert!(!json.contains('\n') && !json.contains('\u{1b}'), "{json}");
        assert!(json.contains(r"/a\nb\u001b[31m"), "{json}");
    }
}
