//! `deployer doctor`: everything a deploy or the tests need, checked at once
//! in under two seconds, one line each with the command that fixes a problem.
//!
//! Tools (Rust, Python ≥ 3.10 for the local cloud, Node.js and Chromium for the
//! browser tests, the local cloud's install) are asked for their versions;
//! AWS (credentials, account, region, the account's S3 public-access block,
//! the artifacts bucket and its owner) is asked through its APIs, with a time
//! limit, since an unreachable endpoint must not stall the report.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::aws::{Aws, Settings};
use crate::deploy::artifacts;
use crate::deploy::preflight::{self, Verdict};
use crate::deploy::report::Stopwatch;
use crate::localcloud;
use crate::stage::Stage;
use crate::template::composition::Target;

/// How long one tool or the AWS checks may take.
const TIME_LIMIT: Duration = Duration::from_millis(1500);

/// The oldest Python the local cloud (ministack) runs on.
pub const MIN_PYTHON: (u32, u32) = (3, 10);
/// The oldest Node.js the browser tests run on.
pub const MIN_NODE: u32 = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Worth knowing, nothing to fix now.
    Note,
    Problem,
    /// Could not be checked here (e.g. S3 Control on the emulator).
    Skipped,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// The command that fixes a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Problem,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn skipped(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Skipped,
            detail: detail.into(),
            fix: None,
        }
    }

    fn from_verdict(name: &'static str, verdict: Verdict) -> Self {
        let (status, detail) = match verdict {
            Verdict::Ok(text) => (Status::Ok, text),
            Verdict::Note(text) => (Status::Note, text),
            Verdict::Problem(text) => (Status::Problem, text),
        };
        Self {
            name,
            status,
            detail,
            fix: None,
        }
    }
}

/// Every check, in a fixed order.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub stage: String,
    pub checks: Vec<Check>,
    pub problems: usize,
    pub millis: u64,
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            let mark = match check.status {
                Status::Ok => "ok     ",
                Status::Note => "note   ",
                Status::Problem => "PROBLEM",
                Status::Skipped => "skipped",
            };
            writeln!(f, "{mark} {:<22} {}", check.name, check.detail)?;
            if let Some(fix) = &check.fix {
                writeln!(f, "        {:<22} fix: {fix}", "")?;
            }
        }
        match self.problems {
            0 => write!(f, "no problems found ({} ms)", self.millis),
            n => write!(f, "{n} problem(s) found ({} ms)", self.millis),
        }
    }
}

/// Where AWS is for the checks: the stage's region (or `--region`) and endpoint.
#[derive(Debug, Clone)]
pub struct AwsTarget {
    pub settings: Settings,
    pub target: Target,
    /// `--artifacts-bucket` or the stage file's `artifacts_bucket`.
    pub artifacts_bucket: Option<String>,
}

impl AwsTarget {
    pub fn of(
        stage: &Stage,
        region: Option<&str>,
        profile: Option<&str>,
        endpoint: Option<&str>,
        artifacts_bucket: Option<&str>,
    ) -> Self {
        let target = Target::of(stage, endpoint);
        Self {
            artifacts_bucket: artifacts_bucket
                .map(str::to_owned)
                .or_else(|| stage.config.artifacts_bucket.clone().map(String::from)),
            settings: Settings {
                region: region.map_or_else(|| stage.config.region.to_string(), str::to_owned),
                profile: profile.map(str::to_owned),
                endpoint: match &target {
                    Target::Aws => None,
                    Target::Endpoint(url) => Some(url.clone()),
                },
            },
            target,
        }
    }
}

/// Runs every check; `aws` is `None` when the stage file could not be read
/// (that is then reported as a problem of its own).
pub async fn diagnose(
    project_dir: &Path,
    stage: Result<(String, AwsTarget), String>,
) -> DoctorReport {
    let watch = Stopwatch::start();
    let (stage_name, aws_target) = match stage {
        Ok((name, target)) => (name, Ok(target)),
        Err(problem) => (String::new(), Err(problem)),
    };
    let (rust, python, node, chromium, aws) = tokio::join!(
        rust_check(),
        python_check(),
        node_check(),
        chromium_check(),
        aws_checks(aws_target),
    );
    let mut checks = vec![rust, python, node, chromium, local_cloud_check(project_dir)];
    checks.extend(aws);
    let problems = checks
        .iter()
        .filter(|c| c.status == Status::Problem)
        .count();
    DoctorReport {
        stage: stage_name,
        checks,
        problems,
        millis: watch.millis(),
    }
}

/// The first line a command prints for `--version`, within the time limit.
async fn version_of(program: &str, arg: &str) -> Option<String> {
    let run = tokio::process::Command::new(program)
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(TIME_LIMIT, run).await.ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

async fn rust_check() -> Check {
    let (cargo, rustc) = tokio::join!(
        version_of("cargo", "--version"),
        version_of("rustc", "--version")
    );
    match (cargo, rustc) {
        (Some(cargo), Some(rustc)) => Check::ok("rust toolchain", format!("{rustc}; {cargo}")),
        _ => Check::problem(
            "rust toolchain",
            "`cargo` or `rustc` is not on the PATH",
            "install Rust with rustup (`curl --proto '=https' -sSf https://sh.rustup.rs | sh`), then open a new shell",
        ),
    }
}

/// `(major, minor)` of `Python 3.11.7`.
pub fn python_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.strip_prefix("Python ")?.trim().split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

async fn python_check() -> Check {
    const NAME: &str = "python (local cloud)";
    let fix =
        "install Python 3.10 or newer with venv (Debian: `apt-get install python3 python3-venv`)";
    match version_of("python3", "--version").await {
        None => Check::problem(NAME, "`python3` is not on the PATH", fix),
        Some(text) => match python_version(&text) {
            Some(version) if version >= MIN_PYTHON => Check::ok(NAME, text),
            _ => Check::problem(
                NAME,
                format!(
                    "{text}: the local cloud needs Python {}.{} or newer",
                    MIN_PYTHON.0, MIN_PYTHON.1
                ),
                fix,
            ),
        },
    }
}

/// The major version of `v20.20.2`.
pub fn node_major(text: &str) -> Option<u32> {
    text.trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

async fn node_check() -> Check {
    const NAME: &str = "node.js (tests)";
    let fix = "install Node.js 18 or newer with npm (Debian: `apt-get install nodejs npm`)";
    match version_of("node", "--version").await {
        None => Check::problem(NAME, "`node` is not on the PATH", fix),
        Some(text) => match node_major(&text) {
            Some(major) if major >= MIN_NODE => Check::ok(NAME, format!("Node.js {text}")),
            _ => Check::problem(
                NAME,
                format!("Node.js {text}: the browser tests need {MIN_NODE} or newer"),
                fix,
            ),
        },
    }
}

/// Where the browser tests look for Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

async fn chromium_check() -> Check {
    const NAME: &str = "chromium (tests)";
    if !Path::new(CHROMIUM).exists() {
        return Check::problem(
            NAME,
            format!("no `{CHROMIUM}`: the browser tests drive it headless"),
            "`apt-get update && apt-get install -y chromium` (as root), or run `scripts/test.sh`, which installs it",
        );
    }
    match version_of(CHROMIUM, "--version").await {
        Some(version) => Check::ok(NAME, version),
        None => Check::ok(NAME, format!("`{CHROMIUM}` is installed")),
    }
}

fn local_cloud_check(project_dir: &Path) -> Check {
    const NAME: &str = "local cloud";
    if localcloud::is_installed(project_dir) {
        Check::ok(
            NAME,
            format!(
                "ministack {} installed in `{}`",
                localcloud::MINISTACK_VERSION,
                localcloud::INSTALL_DIR
            ),
        )
    } else {
        Check {
            name: NAME,
            status: Status::Note,
            detail: format!(
                "ministack {} is not installed yet; `deployer local` installs it on first use (about a minute)",
                localcloud::MINISTACK_VERSION
            ),
            fix: Some("scripts/local.sh".to_owned()),
        }
    }
}

const CREDENTIALS: &str = "aws credentials";
const PUBLIC_ACCESS: &str = "s3 public access";
const ARTIFACTS: &str = "artifacts bucket";

/// Credentials, account, region; the account's public-access block; the
/// artifacts bucket. Later checks are skipped when earlier ones fail.
async fn aws_checks(target: Result<AwsTarget, String>) -> Vec<Check> {
    let target = match target {
        Ok(target) => target,
        Err(problem) => {
            return vec![Check::problem(
                "stage file",
                problem,
                "fix the stage file as the message says (`deployer synth` checks it without AWS)",
            )];
        }
    };
    match tokio::time::timeout(TIME_LIMIT, aws_checks_within(&target)).await {
        Ok(checks) => checks,
        Err(_) => vec![Check::problem(
            CREDENTIALS,
            format!(
                "no answer from {} within {} ms",
                describe(&target),
                TIME_LIMIT.as_millis()
            ),
            "check the network, `--region` and `--endpoint-url`; for the local stage start the local cloud with `deployer local`",
        )],
    }
}

fn describe(target: &AwsTarget) -> String {
    match &target.target {
        Target::Aws => format!("AWS ({})", target.settings.region),
        Target::Endpoint(url) => format!("endpoint {url}"),
    }
}

async fn aws_checks_within(target: &AwsTarget) -> Vec<Check> {
    let aws = match Aws::connect(&target.settings).await {
        Ok(aws) => aws,
        Err(err) => {
            return vec![Check::problem(
                CREDENTIALS,
                err.to_string(),
                "`aws configure` (or `aws sso login --profile NAME` and `--profile NAME`), or set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`",
            )];
        }
    };
    let identity = match aws.caller().await {
        Ok(identity) => identity,
        Err(err) => {
            return vec![Check::problem(
                CREDENTIALS,
                err.to_string(),
                "refresh or replace the credentials (`aws sso login`, or new access keys)",
            )];
        }
    };
    let mut checks = vec![Check::ok(
        CREDENTIALS,
        format!(
            "{} in account {}, region {}",
            identity.arn, identity.account, aws.region
        ),
    )];
    let account = identity.account;
    checks.push(match &target.target {
        Target::Endpoint(url) if !crate::emulator::has_s3_control(Some(url)) => Check::skipped(
            PUBLIC_ACCESS,
            format!("the local cloud at {url} has no S3 Control; checked on AWS only"),
        ),
        _ => {
            match preflight::fetch_account_public_access(&aws.s3control, &account, &aws.target())
                .await
            {
                Ok(block) => {
                    let mut check = Check::from_verdict(
                        PUBLIC_ACCESS,
                        preflight::account_public_access(&account, block),
                    );
                    if check.status == Status::Problem {
                        check.fix = Some(format!("aws s3control put-public-access-block --account-id {account} --public-access-block-configuration BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=true,RestrictPublicBuckets=true"));
                    }
                    check
                }
                Err(err) => Check::problem(
                    PUBLIC_ACCESS,
                    err.to_string(),
                    "allow `s3:GetAccountPublicAccessBlock` for these credentials",
                ),
            }
        }
    });
    let bucket = target
        .artifacts_bucket
        .clone()
        .unwrap_or_else(|| artifacts::bucket_name(&account, &aws.region));
    checks.push(
        match preflight::fetch_bucket_answer(&aws, &bucket, &account).await {
            Ok(answer) => {
                let mut check = Check::from_verdict(
                    ARTIFACTS,
                    preflight::artifacts_bucket(&bucket, &account, answer),
                );
                if check.status == Status::Problem {
                    check.fix = Some(
                        "name another bucket (`artifacts_bucket:` in the stage file or `--artifacts-bucket`), deploy from the account that owns it, or delete that bucket there"
                            .to_owned(),
                    );
                }
                check
            }
            Err(err) => Check::problem(
                ARTIFACTS,
                err.to_string(),
                "allow `s3:ListBucket` on the artifacts bucket for these credentials",
            ),
        },
    );
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(python_version("Python 3.11.7"), Some((3, 11)));
        assert_eq!(python_version("Python 3.9.2"), Some((3, 9)));
        assert!(python_version("Python 3.9.2").unwrap() < MIN_PYTHON);
        assert_eq!(python_version("nonsense"), None);
        assert_eq!(node_major("v20.20.2\n"), Some(20));
        assert_eq!(node_major("20"), None);
    }

    #[test]
    fn the_report_counts_problems_and_shows_each_fix() {
        let report = DoctorReport {
            stage: "dev".to_owned(),
            checks: vec![
                Check::ok("rust toolchain", "rustc 1.95.0"),
                Check::problem("chromium (tests)", "missing", "apt-get install chromium"),
            ],
            problems: 1,
            millis: 12,
        };
        let text = report.to_string();
        assert!(text.contains("PROBLEM chromium (tests)"), "{text}");
        assert!(text.contains("fix: apt-get install chromium"), "{text}");
        assert!(text.ends_with("1 problem(s) found (12 ms)"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][1]["status"], "problem");
        assert_eq!(json["checks"][0].get("fix"), None);
    }
}
