//! `deployer` against its peers, on one fresh local cloud, in one run.
//!
//! Run with `scripts/bench.sh` (installs the pinned peers into `.tools/bench`).
//! Measures, each `BENCH_RUNS` times (default 7), reporting medians:
//! - a no-change deploy: `deployer up` vs `aws cloudformation deploy` and
//!   `sam deploy` of the same template and code;
//! - static sync of 300 generated files, first and unchanged: the deployer's
//!   sync vs `aws s3 sync --acl public-read`.
//!
//! Everything talks to 127.0.0.1 only (SAM's version check and telemetry are off).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use deployer::aws::{Aws, Settings};
use deployer::localcloud::LocalCloud;

const REGION: &str = "ap-southeast-1";
const STACK: &str = "cloudalbum-local";

fn main() {
    let project = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let tools = project.join(".tools/bench/bin");
    assert!(
        tools.join("aws").exists() && tools.join("sam").exists(),
        "the peers are not installed; run `scripts/bench.sh`, which installs them"
    );
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let work = tempfile::tempdir().unwrap();
    let cloud = LocalCloud::start_fresh(&project, &work.path().join("cloud")).unwrap();
    let endpoint = cloud.endpoint();
    let peers = Peers::new(&tools, &endpoint, work.path());
    eprintln!("local cloud at {endpoint}; {runs} runs each");

    let (deploy_rows, aws_exit, ours) = no_change_deploys(&project, &peers, work.path(), runs);
    let sync_rows = static_syncs(&peers, work.path(), runs);
    println!("| measure | deployer | peer | peer time | ratio (peer/deployer) | goal | met |");
    println!("|---|---|---|---|---|---|---|");
    for row in deploy_rows.iter().chain(&sync_rows) {
        println!("{row}");
    }
    println!();
    println!(
        "deployer up, no change: median {:.3} s (goal <= 2 s, exit 0); aws cloudformation deploy exit code on no change: {}",
        ours.as_secs_f64(),
        aws_exit.map_or_else(|| "?".to_owned(), |c| c.to_string())
    );
    drop(cloud);
}

/// `deployer up` vs `aws cloudformation deploy` vs `sam deploy`, nothing changed.
fn no_change_deploys(
    project: &Path,
    peers: &Peers,
    work: &Path,
    runs: usize,
) -> ([Row; 2], Option<i32>, Duration) {
    let deployer = env!("CARGO_BIN_EXE_deployer");
    let endpoint = peers.endpoint.as_str();
    let up = || {
        let mut cmd = Command::new(deployer);
        cmd.current_dir(project)
            .args(["up", "--stage", "local", "--endpoint-url", endpoint])
            .args(["--yes", "--output", "json", "-q"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("CI", "true");
        cmd
    };
    let first = checked(&mut up(), &[0]);
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let overrides = [
        format!(
            "CodeBucket={}",
            report["artifact"]["bucket"].as_str().unwrap()
        ),
        format!("CodeKey={}", report["artifact"]["key"].as_str().unwrap()),
    ];
    let template = work.join("template.json");
    checked(
        Command::new(deployer)
            .current_dir(project)
            .args(["synth", "--stage", "local", "--endpoint-url", endpoint])
            .args(["--format", "json", "--output", "json", "--out"])
            .arg(&template),
        &[0],
    );

    let ours = time(runs, || {
        let out = checked(&mut up(), &[0]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["up_to_date"], true, "{report}");
    });

    // The same stack tags as the deployer's, or the peers would change them.
    let tags = ["deployer:app=cloudalbum", "deployer:stage=local"];
    let aws_deploy = || {
        let mut cmd = peers.aws();
        cmd.args(["cloudformation", "deploy", "--stack-name", STACK])
            .arg("--template-file")
            .arg(&template)
            .arg("--parameter-overrides")
            .args(&overrides)
            .args(["--capabilities", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
            .arg("--tags")
            .args(tags);
        cmd
    };
    let sam_deploy = || {
        let mut cmd = peers.sam();
        cmd.args(["deploy", "--stack-name", STACK, "--region", REGION])
            .arg("--template-file")
            .arg(&template)
            .arg("--parameter-overrides")
            .args(&overrides)
            .args(["--capabilities", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
            .args(["--no-confirm-changeset", "--no-fail-on-empty-changeset"])
            .arg("--tags")
            .args(tags);
        cmd
    };
    // One untimed deploy each first: a peer may store the template its own way
    // (SAM rewrites it), so its first run after ours is not a no-change run.
    // awscli exits 255 on "No changes to deploy".
    warm_up(&mut aws_deploy(), &[0, 255]);
    let mut aws_exit = None;
    let aws = time_after(runs, next_second, || {
        let out = checked(&mut aws_deploy(), &[0, 255]);
        assert_no_changes(&out);
        aws_exit = out.status.code();
    });
    warm_up(&mut sam_deploy(), &[0]);
    let sam = time_after(runs, next_second, || {
        assert_no_changes(&checked(&mut sam_deploy(), &[0]));
    });
    (
        [
            Row::new(
                "no-change deploy",
                "aws cloudformation deploy",
                ours,
                aws,
                2.0,
            ),
            Row::new("no-change deploy", "sam deploy", ours, sam, 10.0),
        ],
        aws_exit,
        ours,
    )
}

fn assert_no_changes(out: &Output) {
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("No changes to deploy"), "{text}");
}

/// 300 generated files to a bucket's `static/`: the deployer's sync vs
/// `aws s3 sync --acl public-read`, first and unchanged.
fn static_syncs(peers: &Peers, work: &Path, runs: usize) -> [Row; 2] {
    let endpoint = peers.endpoint.as_str();
    let files = work.join("static300");
    generate_files(&files, 300);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for bucket in ["bench-deployer", "bench-awscli"] {
        rt.block_on(async {
            let aws = connect(endpoint).await;
            aws.s3
                .create_bucket()
                .bucket(bucket)
                .create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(REGION.into())
                        .build(),
                )
                .send()
                .await
                .unwrap();
            deployer::emulator::after_deploy(&aws.s3, bucket)
                .await
                .unwrap();
        });
    }
    // Timed from a cold start, as a process would be: connect, list, upload.
    let deployer_sync = |expect_uploaded: usize| {
        let start = Instant::now();
        let report = rt.block_on(async {
            let aws = connect(endpoint).await;
            let site = deployer::deploy::static_sync::Site::read(&files).unwrap();
            deployer::deploy::static_sync::publish(&aws, "bench-deployer", &site)
                .await
                .unwrap()
        });
        assert_eq!(report.uploaded, expect_uploaded, "{report:?}");
        start.elapsed()
    };
    let aws_sync = || {
        let start = Instant::now();
        checked(
            peers.aws().args(["s3", "sync"]).arg(&files).args([
                "s3://bench-awscli/static/",
                "--acl",
                "public-read",
            ]),
            &[0],
        );
        start.elapsed()
    };
    // "First" happens once by nature; "unchanged" is repeated.
    let deployer_first = deployer_sync(300);
    let aws_first = aws_sync();
    let deployer_unchanged = time(runs, || {
        deployer_sync(0);
    });
    let aws_unchanged = time(runs, || {
        aws_sync();
    });
    let peer = "aws s3 sync --acl public-read";
    [
        Row::new(
            "static sync, 300 files, first",
            peer,
            deployer_first,
            aws_first,
            3.0,
        ),
        Row::new(
            "static sync, 300 files, unchanged",
            peer,
            deployer_unchanged,
            aws_unchanged,
            10.0,
        ),
    ]
}

struct Row {
    measure: &'static str,
    peer: &'static str,
    ours: Duration,
    theirs: Duration,
    /// The ratio (peer / deployer) the issue asks for.
    goal: f64,
}

impl Row {
    fn new(
        measure: &'static str,
        peer: &'static str,
        ours: Duration,
        theirs: Duration,
        goal: f64,
    ) -> Self {
        Self {
            measure,
            peer,
            ours,
            theirs,
            goal,
        }
    }
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ratio = self.theirs.as_secs_f64() / self.ours.as_secs_f64();
        let met = if ratio >= self.goal { "yes" } else { "no" };
        write!(
            f,
            "| {} | {:.3} s | {} | {:.3} s | {ratio:.1}x | >= {}x | {met} |",
            self.measure,
            self.ours.as_secs_f64(),
            self.peer,
            self.theirs.as_secs_f64(),
            self.goal
        )
    }
}

/// The peers' command lines, pointed at the local cloud only.
struct Peers {
    tools: PathBuf,
    endpoint: String,
    sam_home: PathBuf,
}

impl Peers {
    fn new(tools: &Path, endpoint: &str, work: &Path) -> Self {
        // SAM checks PyPI for a newer version weekly and sends telemetry: a
        // fresh config dir that says it just checked, and telemetry off.
        let sam_home = work.join("sam-home");
        std::fs::create_dir_all(&sam_home).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        std::fs::write(
            sam_home.join("metadata.json"),
            format!("{{\"lastVersionCheck\": {now}, \"telemetryEnabled\": false}}"),
        )
        .unwrap();
        Self {
            tools: tools.to_owned(),
            endpoint: endpoint.to_owned(),
            sam_home,
        }
    }

    fn base(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.tools.join(program));
        cmd.env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SAM_CLI_TELEMETRY", "0")
            .env("__SAM_CLI_APP_DIR", &self.sam_home)
            .env_remove("AWS_PROFILE");
        cmd
    }

    fn aws(&self) -> Command {
        let mut cmd = self.base("aws");
        cmd.args(["--endpoint-url", &self.endpoint, "--region", REGION]);
        cmd
    }

    fn sam(&self) -> Command {
        self.base("sam")
    }
}

async fn connect(endpoint: &str) -> Aws {
    Aws::connect(&Settings {
        region: REGION.to_owned(),
        profile: None,
        endpoint: Some(endpoint.to_owned()),
    })
    .await
    .unwrap()
}

fn warm_up(cmd: &mut Command, codes: &[i32]) {
    next_second();
    checked(cmd, codes);
}

/// Runs `cmd`, insisting on one of `codes`.
fn checked(cmd: &mut Command, codes: &[i32]) -> Output {
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        codes.contains(&code),
        "{cmd:?} exited {code}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The median of `runs` timings of `f`.
fn time(runs: usize, f: impl FnMut()) -> Duration {
    time_after(runs, || {}, f)
}

/// The median of `runs` timings of `f`, each after an untimed `before`.
fn time_after(runs: usize, mut before: impl FnMut(), mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            before();
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// awscli and SAM name change sets by the second, and a failed (empty) one
/// stays behind: two runs in one second would collide.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// `count` files of assorted kinds and sizes (0.5–16 KB) in a few folders.
fn generate_files(dir: &Path, count: usize) {
    let kinds = ["css", "js", "svg", "png", "json"];
    for i in 0..count {
        let sub = dir.join(format!("set{}", i % 6));
        std::fs::create_dir_all(&sub).unwrap();
        let size = 512 + (i * 7919) % (16 * 1024);
        let body: Vec<u8> = (0..size)
            .map(|j| u8::try_from((i * 31 + j * 17) % 251).unwrap_or(0))
            .collect();
        std::fs::write(
            sub.join(format!("file{i:03}.{}", kinds[i % kinds.len()])),
            body,
        )
        .unwrap();
    }
}
