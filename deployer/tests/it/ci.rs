//! `deployer ci init github`: the workflow it writes (a snapshot, checked by
//! actionlint with shellcheck), where it writes it, and that it never
//! overwrites a file unasked.
//!
//! actionlint and shellcheck are pinned in `scripts/tools.sh` and installed
//! into `.tools/actionlint` (by `scripts/setup.sh`); `ACTIONLINT` and
//! `SHELLCHECK` may name other binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{deployer, project_dir};

const JOBS: [&str; 7] = [
    "test",
    "preview",
    "preview-down",
    "expire-previews",
    "dev",
    "prod-plan",
    "prod",
];

fn tool(variable: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(
        || project_dir().join(format!(".tools/actionlint/bin/{name}")),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{name} is not installed at `{}`; run `scripts/tools.sh actionlint` (or `scripts/setup.sh`, which does)",
        path.display()
    );
    path
}

/// actionlint's findings on `file` (one a line), with shellcheck on every `run:` script.
fn actionlint(file: &Path) -> (bool, String) {
    let output = Command::new(tool("ACTIONLINT", "actionlint"))
        .arg("-shellcheck")
        .arg(tool("SHELLCHECK", "shellcheck"))
        .args(["-oneline", "-no-color"])
        .arg(file)
        .output()
        .unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), findings)
}

/// Writes the workflow of the project's own stage files into `out`.
fn init_into(out: &Path) -> String {
    deployer()
        .args(["ci", "init", "github", "--out"])
        .arg(out)
        .assert()
        .success();
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn the_github_workflow_matches_its_snapshot_and_is_byte_identical_run_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let first = init_into(&dir.path().join("a.yml"));
    let second = init_into(&dir.path().join("b.yml"));
    assert_eq!(first, second);
    insta::assert_snapshot!("workflow_github", first);
}

#[test]
fn the_github_workflow_passes_actionlint_and_shellcheck_without_findings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cloudalbum.yml");
    init_into(&file);
    let (ok, findings) = actionlint(&file);
    assert!(
        ok && findings.trim().is_empty(),
        "actionlint found problems:\n{findings}"
    );
}

#[test]
fn actionlint_catches_a_broken_workflow() {
    // Proves the lint test can fail: an unquoted variable in a `run:` script
    // (shellcheck) and a job that needs one that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yml");
    let text = init_into(&file)
        .replace(
            "run_deployer up --stage dev --yes",
            "run_deployer up --stage $STAGE --yes",
        )
        .replace("needs: prod-plan", "needs: prod-plna");
    std::fs::write(&file, text).unwrap();
    let (ok, findings) = actionlint(&file);
    assert!(!ok);
    assert!(findings.contains("SC2086"), "{findings}");
    assert!(findings.contains("prod-plna"), "{findings}");
}

#[test]
fn the_workflow_does_what_the_pipeline_needs() {
    let dir = tempfile::tempdir().unwrap();
    let text = init_into(&dir.path().join("flow.yml"));
    let workflow: Value = serde_norway::from_str(&text).unwrap();
    let jobs = workflow["jobs"].as_object().unwrap();
    assert_eq!(jobs.keys().collect::<Vec<_>>(), JOBS);
    // Nothing by default; only the deploying jobs may ask for an OIDC token.
    assert_eq!(workflow["permissions"], serde_json::json!({}));
    for (name, job) in jobs {
        let deploys = name != "test";
        assert_eq!(
            job["permissions"]["id-token"] == "write",
            deploys,
            "{name}: {}",
            job["permissions"]
        );
        if deploys {
            let group = job["concurrency"]["group"].as_str().unwrap();
            assert!(group.starts_with("deploy-cloudalbum-"), "{name}: {group}");
            assert_eq!(job["concurrency"]["cancel-in-progress"], false, "{name}");
            let steps = job["steps"].as_array().unwrap();
            let credentials = steps
                .iter()
                .find(|s| {
                    s["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))
                })
                .unwrap_or_else(|| panic!("{name} has no credentials step"));
            assert_eq!(
                credentials["with"]["role-to-assume"],
                "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
            );
            let scripts: String = steps.iter().filter_map(|s| s["run"].as_str()).collect();
            assert!(
                scripts.contains("run_deployer ") && scripts.contains("--yes --output json"),
                "{name}: {scripts}"
            );
        }
    }
    // Two deploys of one stage never overlap: the preview and its teardown,
    // the plan of prod and prod share a group.
    assert_eq!(
        jobs["preview"]["concurrency"]["group"],
        jobs["preview-down"]["concurrency"]["group"]
    );
    assert_eq!(
        jobs["prod-plan"]["concurrency"]["group"],
        jobs["prod"]["concurrency"]["group"]
    );
    assert_eq!(jobs["prod"]["environment"], "production");
    assert_eq!(jobs["prod"]["needs"], "prod-plan");
    assert!(text.contains("--stage \"$STAGE\" --from dev --ttl 7d --yes --output json"));
    assert!(text.contains("run_deployer down --expired --yes --output json"));
    assert!(text.contains("run_deployer plan --stage prod --yes --output json"));
    assert!(text.contains("--allow-replace <LogicalId>"));
    assert!(workflow["on"]["schedule"][0]["cron"].is_string());
    assert_eq!(
        jobs["expire-previews"]["if"],
        "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
    );
}

#[test]
fn init_writes_the_default_path_reports_json_and_refuses_to_overwrite() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("stacks")).unwrap();
    for stage in ["dev", "prod"] {
        std::fs::copy(
            project_dir().join(format!("stacks/{stage}.yaml")),
            project.path().join(format!("stacks/{stage}.yaml")),
        )
        .unwrap();
    }
    let init = || {
        let mut cmd = deployer();
        cmd.current_dir(project.path())
            .args(["ci", "init", "github", "--output", "json"]);
        cmd
    };
    let out = init().assert().success();
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let file = project.path().join(".github/workflows/cloudalbum.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(report["provider"], "github");
    assert_eq!(Path::new(report["path"].as_str().unwrap()), file);
    assert_eq!(report["bytes"], text.len());
    assert_eq!(report["replaced"], false);
    assert_eq!(report["jobs"], serde_json::json!(JOBS));

    std::fs::write(&file, "# my own workflow\n").unwrap();
    let refused = init().assert().code(2);
    let error: Value = serde_json::from_slice(&refused.get_output().stdout).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("already exists") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# my own workflow\n"
    );

    let forced = init().arg("--force").assert().success();
    let report: Value = serde_json::from_slice(&forced.get_output().stdout).unwrap();
    assert_eq!(report["replaced"], true);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn init_in_text_mode_says_what_it_wrote_and_what_to_set_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ci.yml");
    let out = deployer()
        .args(["ci", "init", "github", "--out"])
        .arg(&file)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains(&file.display().to_string()), "{stdout}");
    assert!(stdout.contains("AWS_DEPLOY_ROLE_ARN"), "{stdout}");
    assert!(stdout.contains("production"), "{stdout}");
    deployer().args(["ci", "init", "gitlab"]).assert().code(2);
}
