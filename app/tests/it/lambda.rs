//! The built `bootstrap` against a Lambda Runtime API served here, fed
//! recorded API Gateway REST proxy events (`events/*.json`): status, headers
//! and body as API Gateway would return them. The function's settings point at
//! this binary's local cloud, so its start-up (reading the client secret from
//! Cognito) is real.
//!
//! It also prints the cold start: from starting the process to the runtime
//! receiving its first response. `CLOUDALBUM_BOOTSTRAP=<path>` runs another
//! build the same way, e.g. the release one:
//! `CLOUDALBUM_BOOTSTRAP=$CARGO_TARGET_DIR/release/bootstrap cargo test --workspace --locked -- bootstrap_answers --nocapture`.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;

use crate::support::{REGION, world};

#[derive(Default)]
struct Runtime {
    events: Mutex<VecDeque<(String, Value)>>,
    answers: Mutex<Vec<(String, Value)>>,
    first_answer: Mutex<Option<Instant>>,
    errors: Mutex<Vec<String>>,
    notify: tokio::sync::Notify,
}

async fn next(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    loop {
        let queued = rt.events.lock().unwrap().pop_front();
        if let Some((id, event)) = queued {
            let mut headers = HeaderMap::new();
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&id).unwrap(),
            );
            headers.insert(
                "lambda-runtime-deadline-ms",
                HeaderValue::from_static("9999999999999"),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static(
                    "arn:aws:lambda:ap-southeast-1:123456789012:function:cloudalbum-local",
                ),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-0-0"),
            );
            return (headers, event.to_string());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn respond(
    State(rt): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    rt.first_answer
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    rt.answers
        .lock()
        .unwrap()
        .push((id, serde_json::from_str(&body).unwrap()));
    rt.notify.notify_waiters();
    StatusCode::ACCEPTED
}

async fn error(State(rt): State<Arc<Runtime>>, body: String) -> StatusCode {
    rt.errors.lock().unwrap().push(body);
    rt.notify.notify_waiters();
    StatusCode::ACCEPTED
}

fn event(name: &str) -> Value {
    let path = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .join("tests/it/events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_answers_recorded_api_gateway_events() {
    let w = world();
    let runtime = Arc::new(Runtime::default());
    let api = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(runtime.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await });

    // The release build, as it is deployed (CI builds it once, before the
    // tests); `CLOUDALBUM_BOOTSTRAP` names another.
    let binary = std::env::var_os("CLOUDALBUM_BOOTSTRAP").map_or_else(
        || {
            deployer::deploy::artifacts::build_bootstrap(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .unwrap(),
                deployer::stage::Architecture::X86_64,
                deployer::stage::BuildProfile::Release,
                true,
            )
            .unwrap()
        },
        std::path::PathBuf::from,
    );
    let cases = [
        "get-health.json",
        "get-root.json",
        "get-unknown.json",
        "post-signout-no-csrf.json",
    ];
    for (i, name) in cases.iter().enumerate() {
        runtime
            .events
            .lock()
            .unwrap()
            .push_back((format!("req-{i}"), event(name)));
    }
    let started = Instant::now();
    let mut function = tokio::process::Command::new(&binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "cloudalbum-local")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/cloudalbum-local")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        // The function's environment as the stage's template set it on Lambda.
        .envs(&w.function_env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    while runtime.answers.lock().unwrap().len() < cases.len() {
        assert!(
            runtime.errors.lock().unwrap().is_empty(),
            "{:?}",
            runtime.errors.lock().unwrap()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the function did not answer every event"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), runtime.notify.notified()).await;
    }
    function.kill().await.unwrap();
    let first = runtime.first_answer.lock().unwrap().unwrap();
    eprintln!(
        "cold start of {}: {:.1} ms to the first response",
        std::path::Path::new(&binary).display(),
        (first - started).as_secs_f64() * 1000.0
    );
    let answers: Vec<(String, Value)> = runtime.answers.lock().unwrap().clone();
    let answer = |id: &str| {
        answers
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let header = |v: &Value, name: &str| -> Option<String> {
        v["headers"]
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
            .or_else(|| {
                v["multiValueHeaders"]
                    .as_object()
                    .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .and_then(|(_, v)| v[0].as_str().map(str::to_owned))
            })
    };

    let health = answer("req-0");
    assert_eq!(health["statusCode"], 200, "{health}");
    assert_eq!(
        header(&health, "content-type").as_deref(),
        Some("application/json")
    );
    let body: Value = serde_json::from_str(health["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "status": "ok", "stage": contract::defaults::LOCAL_STAGE })
    );

    // Links keep the API Gateway stage: /local/…
    let root = answer("req-1");
    assert_eq!(root["statusCode"], 303, "{root}");
    assert_eq!(
        header(&root, "location").as_deref(),
        Some("/local/signin?next=/")
    );
    // Behind https on AWS every cookie is Secure.
    let cookie = header(&root, "set-cookie").unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    let unknown = answer("req-2");
    assert_eq!(unknown["statusCode"], 404, "{unknown}");
    assert!(
        header(&unknown, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = unknown["body"].as_str().unwrap();
    assert!(
        html.contains("href=\"/local/\""),
        "error pages link under the stage"
    );
    assert!(
        header(&unknown, "content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let signout = answer("req-3");
    assert_eq!(signout["statusCode"], 403, "{signout}");
}
