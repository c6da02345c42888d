//! Edit → live: a one-line change to a page template (`templates/signin.hbs`)
//! until the `local` stage serves the new page through the emulated API
//! Gateway, three ways, on one fresh local cloud, in one run:
//! - `deployer watch` (the stage's `fast` build profile, then a hotswap);
//! - `deployer up`: the same build, then the change-set path;
//! - the same build, then `cargo lambda deploy --binary-path` (`cargo-lambda`
//!   from `PyPI`, installed by `scripts/bench.sh`) of the same binary.
//!
//! Each edit writes a new marker, so every run rebuilds. The clock starts
//! when the file is saved and stops when a GET of the page returns the marker
//! (polled every 50 ms). Medians of `INNER_LOOP_RUNS` runs (default 5). The
//! template is restored afterwards, also on failure. Only 127.0.0.1 is
//! contacted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deployer::localcloud::{LocalCloud, http_get};

const REGION: &str = "ap-southeast-1";
const PAGE: &str = "templates/signin.hbs";
/// The most one edit may take before the run is called failed.
const LIMIT: Duration = Duration::from_mins(10);

fn main() {
    let project = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let cargo_lambda = project.join(".tools/bench/bin/cargo-lambda");
    assert!(
        cargo_lambda.exists(),
        "cargo-lambda is not installed; run `scripts/bench.sh`, which installs it"
    );
    let runs: usize = std::env::var("INNER_LOOP_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let work = tempfile::tempdir().unwrap();
    let cloud = LocalCloud::start_fresh(&project, &work.path().join("cloud")).unwrap();
    let endpoint = cloud.endpoint();
    let page = Page::new(&project);

    eprintln!("first deploy of the local stage (fast profile; may build it cold) ...");
    let first = checked(deployer(&project, &endpoint).arg("up"));
    let report: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let url = format!("{}signin", report["url"].as_str().unwrap());
    let function = report["outputs"]["FunctionName"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut marker = 0;
    let mut next = || {
        marker += 1;
        format!("inner-loop-{}-{marker}", std::process::id())
    };

    let ours = time_watch(
        &project,
        &endpoint,
        &page,
        &url,
        &work.path().join("watch.log"),
        runs,
        &mut next,
    );
    // deployer up: the change-set path, started as soon as the file is saved.
    let change_set = median(
        (0..runs)
            .map(|_| {
                let mark = next();
                let started = page.edit(&mark);
                checked(deployer(&project, &endpoint).arg("up"));
                wait_for(&url, &mark, started)
            })
            .collect(),
    );
    let lambda = time_cargo_lambda(&project, &endpoint, &page, &url, &function, runs, &mut next);
    drop(page);

    println!(
        "| edit → live (one-line change to a page template) | median of {runs} | vs deployer watch | goal |"
    );
    println!("|---|---|---|---|");
    println!(
        "| `deployer watch` (fast profile, hotswap) | {:.1} s | 1.0x | <= 10 s: {} |",
        ours.as_secs_f64(),
        if ours <= Duration::from_secs(10) {
            "met"
        } else {
            "NOT met"
        }
    );
    for (name, took) in [
        ("`deployer up` (same build, change set)", change_set),
        ("`cargo lambda deploy` 1.9.2 (same build)", lambda),
    ] {
        println!(
            "| {name} | {:.1} s | {:.1}x slower | |",
            took.as_secs_f64(),
            took.as_secs_f64() / ours.as_secs_f64()
        );
    }
    drop(cloud);
}

/// `deployer watch`: save, and wait for the page.
fn time_watch(
    project: &Path,
    endpoint: &str,
    page: &Page,
    url: &str,
    log: &Path,
    runs: usize,
    next: &mut impl FnMut() -> String,
) -> Duration {
    let watch = Watch::start(project, endpoint, log);
    let took = median(
        (0..runs)
            .map(|_| {
                let rounds = watch.rounds();
                let mark = next();
                let started = page.edit(&mark);
                let took = wait_for(url, &mark, started);
                watch.wait_rounds(rounds + 1);
                took
            })
            .collect(),
    );
    watch.stop();
    took
}

/// `cargo build` + `cargo lambda deploy` of the same binary.
fn time_cargo_lambda(
    project: &Path,
    endpoint: &str,
    page: &Page,
    url: &str,
    function: &str,
    runs: usize,
    next: &mut impl FnMut() -> String,
) -> Duration {
    let cargo_lambda = project.join(".tools/bench/bin/cargo-lambda");
    let binary = fast_binary(project);
    median(
        (0..runs)
            .map(|_| {
                let mark = next();
                let started = page.edit(&mark);
                checked(
                    Command::new("cargo")
                        .current_dir(project)
                        .args([
                            "build",
                            "--profile",
                            "fast",
                            "--locked",
                            "--bin",
                            "bootstrap",
                        ])
                        .arg("--quiet"),
                );
                checked(
                    Command::new(&cargo_lambda)
                        .current_dir(project)
                        .args(["lambda", "deploy", "--endpoint-url", endpoint])
                        .args(["--region", REGION, "--binary-path"])
                        .arg(&binary)
                        .arg(function)
                        .env("AWS_ACCESS_KEY_ID", "local")
                        .env("AWS_SECRET_ACCESS_KEY", "local")
                        .env("AWS_EC2_METADATA_DISABLED", "true")
                        .env("CARGO_LAMBDA_COLOR", "never")
                        .env_remove("AWS_PROFILE"),
                );
                wait_for(url, &mark, started)
            })
            .collect(),
    )
}

/// `deployer` against the local cloud, as a CI step, with the `fast` profile.
fn deployer(project: &Path, endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deployer"));
    cmd.current_dir(project)
        .args(["--stage", "local", "--endpoint-url", endpoint])
        .args(["--build-profile", "fast", "--yes", "--output", "json", "-q"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("CI", "true");
    cmd
}

/// Where cargo puts the `fast` profile's `bootstrap`.
fn fast_binary(project: &Path) -> PathBuf {
    let out = checked(Command::new("cargo").current_dir(project).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]));
    let metadata: serde_json::Value = serde_json::from_slice(&out).unwrap();
    PathBuf::from(metadata["target_directory"].as_str().unwrap()).join("fast/bootstrap")
}

/// The page template, restored when dropped (also when a run panics).
struct Page {
    path: PathBuf,
    original: String,
}

impl Page {
    fn new(project: &Path) -> Self {
        let path = project.join(PAGE);
        let original = std::fs::read_to_string(&path).unwrap();
        Self { path, original }
    }

    /// Saves the template with one more line, `<!-- mark -->`; returns when.
    fn edit(&self, mark: &str) -> Instant {
        std::fs::write(&self.path, format!("{}<!-- {mark} -->\n", self.original)).unwrap();
        Instant::now()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        drop(std::fs::write(&self.path, &self.original));
    }
}

/// Polls `url` until its body holds `mark`; the time since `started`.
fn wait_for(url: &str, mark: &str, started: Instant) -> Duration {
    loop {
        if let Ok(response) = http_get(url)
            && String::from_utf8_lossy(&response.body).contains(mark)
        {
            return started.elapsed();
        }
        assert!(started.elapsed() < LIMIT, "{url} never showed {mark}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `deployer watch` in the background, its output in a log file.
struct Watch {
    child: Child,
    log: PathBuf,
}

impl Watch {
    fn start(project: &Path, endpoint: &str, log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        // Not quiet: each return to watching is a line of the log.
        let cmd = deployer(project, endpoint);
        let args: Vec<_> = cmd
            .get_args()
            .filter(|a| *a != "-q")
            .map(std::ffi::OsStr::to_owned)
            .collect();
        let child = Command::new(cmd.get_program())
            .current_dir(project)
            .args(args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("CI", "true")
            .arg("watch")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let watch = Self {
            child,
            log: log.to_owned(),
        };
        watch.wait_rounds(1);
        watch
    }

    /// How many times watch has gone back to watching.
    fn rounds(&self) -> usize {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            drop(file.read_to_string(&mut text));
        }
        text.matches("watching app/").count()
    }

    fn wait_rounds(&self, rounds: usize) {
        let started = Instant::now();
        while self.rounds() < rounds {
            assert!(
                started.elapsed() < LIMIT,
                "deployer watch did not come back:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

fn checked(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}
