//! `deployer logs` on the emulator: the app's request line reaches CloudWatch
//! Logs and comes back parsed, through `--filter` too, with nothing secret.

use deployer::localcloud::http_get;
use serde_json::Value;

use crate::e2e::Cloud;

/// The JSON lines `deployer logs <extra>` prints (one object each).
fn log_lines(cloud: &Cloud, extra: &[&str]) -> (Vec<Value>, String) {
    let mut args = vec!["logs", "--since", "1h"];
    args.extend_from_slice(extra);
    let out = cloud.deployer(&args).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let lines = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"))
        })
        .collect();
    (lines, stderr)
}

fn request_line<'a>(lines: &'a [Value], path: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|line| line["fields"]["log"] == "request" && line["fields"]["path"] == path)
}

#[test]
fn logs_show_the_apps_request_line_and_filter_it() {
    let cloud = Cloud::start();
    let first = cloud.json(&["up"]);
    // The bootstrap's sizes are in the report: the zip is smaller than the binary.
    let zipped = first["artifact"]["bytes"].as_u64().unwrap();
    let unzipped = first["artifact"]["unzipped_bytes"].as_u64().unwrap();
    assert!(zipped > 100_000 && unzipped > zipped, "{first}");
    // The deploy made one request through Lambda's API: the code answers.
    // (Lambda's tail names the cold start's Init Duration; the emulator's has none.)
    let first_request = &first["first_request"];
    assert_eq!(first_request["path"], contract::routes::HEALTH, "{first}");
    assert_eq!(first_request["status"], 200, "{first}");
    assert!(first_request["latency_ms"].as_u64().is_some(), "{first}");
    assert!(first_request.get("problem").is_none(), "{first}");
    // A deploy that changes nothing makes no request.
    let again = cloud.json(&["up"]);
    assert_eq!(again["up_to_date"], true, "{again}");
    assert!(again.get("first_request").is_none(), "{again}");
    let url = first["url"].as_str().unwrap().to_owned();

    cloud
        .deployer(&["logs", "--since", "10x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("`30s`, `10m`"));

    // A photo's page: the line names the route's pattern and the path.
    let unique = format!("/photos/logs-e2e-{}", std::process::id());
    let response = http_get(&format!("{url}{}?token=SECRETQUERY", &unique[1..])).unwrap();
    assert!(response.status >= 300, "{}", response.status);

    // Lambda's output reaches the logs a little later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    let (lines, line) = loop {
        let (lines, _) = log_lines(&cloud, &[]);
        if let Some(line) = request_line(&lines, &unique).cloned() {
            break (lines, line);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request line for {unique} in:\n{lines:#?}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    let fields = &line["fields"];
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["route"], "/photos/{id}");
    assert_eq!(fields["status"].as_u64(), Some(u64::from(response.status)));
    assert!(fields["latency_ms"].as_f64().is_some(), "{line}");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
    assert!(!line["log_stream"].as_str().unwrap().is_empty(), "{line}");
    for line in &lines {
        assert!(!line.to_string().contains("SECRETQUERY"), "{line}");
    }

    // `--filter` keeps only the events that contain the text.
    let (filtered, _) = log_lines(&cloud, &["--filter", &unique]);
    assert!(request_line(&filtered, &unique).is_some(), "{filtered:#?}");
    assert!(
        filtered
            .iter()
            .all(|l| l["message"].as_str().unwrap().contains(&unique)),
        "{filtered:#?}"
    );
    let (none, _) = log_lines(&cloud, &["--filter", "no-such-text-in-any-log"]);
    assert!(none.is_empty(), "{none:#?}");

    follow_shows_a_new_request(&cloud, &url);
    a_live_tail_streams_new_events(&cloud, first["outputs"]["FunctionName"].as_str().unwrap());
}

/// `logs --follow` shows a request made after it started, once. On the local
/// cloud it reads every second (its live tail does not carry the function's
/// output, see `emulator::live_tail_shows_function_output`) and says so.
fn follow_shows_a_new_request(cloud: &Cloud, url: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;

    let mut child = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(crate::support::project_dir())
        .args(["logs", "--follow", "--since", "1m", "--filter", "logs-live"])
        .args([
            "--stage",
            "local",
            "--endpoint-url",
            &cloud.emulator.endpoint(),
        ])
        .args(["--output", "json"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel::<(bool, String)>();
    for (is_stdout, reader) in [
        (
            true,
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        ),
        (false, Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if tx.send((is_stdout, line)).is_err() {
                    return;
                }
            }
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    let mut stderr = String::new();
    let mut shown: Vec<Value> = Vec::new();
    let mut wait_for = |what: &dyn Fn(bool, &str) -> bool| loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok((is_stdout, line)) = lines.recv_timeout(left) else {
            panic!("timed out; stderr:\n{stderr}\nstdout lines:\n{shown:#?}");
        };
        let done = what(is_stdout, &line);
        if is_stdout {
            shown.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        } else {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        if done {
            return;
        }
    };
    wait_for(&|is_stdout, line| !is_stdout && line.contains("every second"));

    let unique = format!("/photos/logs-live-{}", std::process::id());
    let response = http_get(&format!("{url}{}", &unique[1..])).unwrap();
    wait_for(&|is_stdout, line| is_stdout && line.contains(&unique));
    // Nothing arrives twice: give it two more reads.
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(child.kill());
    drop(child.wait());
    while let Ok((true, line)) = lines.try_recv() {
        shown.push(serde_json::from_str(&line).unwrap());
    }
    let request = request_line(&shown, &unique).expect("the request line");
    assert_eq!(
        request["fields"]["status"].as_u64(),
        Some(u64::from(response.status))
    );
    assert_eq!(request["fields"]["route"], "/photos/{id}");
    let matching = shown
        .iter()
        .filter(|line| line["fields"]["path"] == unique.as_str())
        .count();
    assert_eq!(matching, 1, "{shown:#?}");
}

/// The live tail `logs --follow` uses on AWS: a session on the function's log
/// group through the emulator's `StartLiveTail` (an event stream, reached
/// through `emulator::NoHostPrefix`), fed by `PutLogEvents`, which is how
/// Lambda writes a function's output on AWS.
fn a_live_tail_streams_new_events(cloud: &Cloud, function: &str) {
    use deployer::deploy::logs::{self, LogEvent};

    let group = logs::log_group(function);
    let message = format!(
        "{{\"log\":\"request\",\"path\":\"/live-{}\"}}",
        std::process::id()
    );
    let events: Vec<LogEvent> = cloud.rt.block_on(async {
        let mut tail = logs::start_live_tail(&cloud.aws, &group, None)
            .await
            .unwrap();
        let stream = "2026/12/02/[$LATEST]live-tail-test";
        cloud
            .aws
            .logs
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name(stream)
            .send()
            .await
            .unwrap();
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        cloud
            .aws
            .logs
            .put_log_events()
            .log_group_name(&group)
            .log_stream_name(stream)
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now)
                    .message(&message)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let mut found = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while !found.iter().any(|e: &LogEvent| e.message == message) {
            let update = tokio::time::timeout_at(deadline, tail.next())
                .await
                .expect("the event within 20 s")
                .unwrap()
                .expect("the session stays open");
            found.extend(update);
        }
        found
    });
    let event = events.iter().find(|e| e.message == message).unwrap();
    assert_eq!(event.log_stream, "2026/12/02/[$LATEST]live-tail-test");
    assert!(event.event_id.is_empty());
    assert_eq!(
        serde_json::to_value(event).unwrap()["fields"]["log"],
        "request"
    );
}
