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

fn request_line<'a>(lines: &'a [Value], route: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|line| line["fields"]["log"] == "request" && line["fields"]["route"] == route)
}

#[test]
fn logs_show_the_apps_request_line_and_filter_it() {
    let cloud = Cloud::start();
    let first = cloud.json(&["up"]);
    // The bootstrap's sizes are in the report: the zip is smaller than the binary.
    let zipped = first["artifact"]["bytes"].as_u64().unwrap();
    let unzipped = first["artifact"]["unzipped_bytes"].as_u64().unwrap();
    assert!(zipped > 100_000 && unzipped > zipped, "{first}");
    let url = first["url"].as_str().unwrap().to_owned();

    cloud
        .deployer(&["logs", "--since", "10x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("`30s`, `10m`"));

    let unique = format!("/logs-e2e-{}", std::process::id());
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
}
