//! The `deployer` binary: help, synth, bad input, exit codes, JSON output.

use predicates::prelude::*;
use serde_json::Value;

use crate::support::{deployer, dev_yaml_with, scratch_project};

#[test]
fn help_lists_every_subcommand() {
    let out = deployer().arg("--help").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for sub in [
        "synth", "plan", "up", "url", "status", "logs", "down", "stages", "local", "history",
        "rollback", "watch", "doctor", "ci",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "`{sub}` missing from:\n{text}"
        );
    }
    for flag in [
        "--stage",
        "--region",
        "--profile",
        "--endpoint-url",
        "--output",
        "--yes",
        "--quiet",
        "--verbose",
    ] {
        assert!(text.contains(flag), "`{flag}` missing from:\n{text}");
    }
}

#[test]
fn synth_prints_the_dev_template() {
    let out = deployer()
        .args(["synth", "--stage", "dev"])
        .assert()
        .success();
    let yaml: Value = serde_norway::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        yaml["Resources"]["PhotoTable"]["Properties"]["ProvisionedThroughput"]["ReadCapacityUnits"],
        10
    );
}

#[test]
fn synth_is_byte_identical_across_runs() {
    for format in ["yaml", "json"] {
        let run = || {
            deployer()
                .args(["synth", "--stage", "prod", "--format", format])
                .assert()
                .success()
                .get_output()
                .stdout
                .clone()
        };
        let first = run();
        assert!(!first.is_empty());
        assert_eq!(first, run(), "{format}");
    }
}

#[test]
fn synth_json_is_json() {
    let out = deployer()
        .args(["synth", "--format", "json"])
        .assert()
        .success();
    let json: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["AWSTemplateFormatVersion"], "2010-09-09");
}

#[test]
fn read_capacity_from_a_copy_of_dev_reaches_the_template() {
    let project = scratch_project(
        "dev",
        &dev_yaml_with("read_capacity: 10", "read_capacity: 7"),
    );
    let out = deployer()
        .args(["synth", "--stage", "dev", "--project-dir"])
        .arg(project.path())
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("ReadCapacityUnits: 7"), "{text}");
    assert!(text.contains("WriteCapacityUnits: 10"), "{text}");
}

#[test]
fn read_capacity_zero_exits_2_naming_line_and_field() {
    let project = scratch_project(
        "dev",
        &dev_yaml_with("read_capacity: 10", "read_capacity: 0"),
    );
    deployer()
        .args(["synth", "--stage", "dev"])
        .current_dir(project.path())
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "error: stage file `stacks/dev.yaml` line 6 column 18: `table.read_capacity`: capacity units must be 1..=40000, got 0",
        ));
}

#[test]
fn unknown_key_exits_2() {
    let project = scratch_project(
        "dev",
        &dev_yaml_with("retain_data: false", "retain_dta: false"),
    );
    deployer()
        .args(["synth", "--project-dir"])
        .arg(project.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown field `retain_dta`"))
        .stderr(predicate::str::contains("`retain_data`"));
}

#[test]
fn an_artifacts_bucket_that_breaks_s3_naming_rules_exits_2_before_aws() {
    deployer()
        .args(["plan", "--artifacts-bucket", "My.Artifacts"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--artifacts-bucket"))
        .stderr(predicate::str::contains("no dots"));
}

#[test]
fn missing_stage_lists_the_stages_that_exist() {
    deployer()
        .args(["synth", "--stage", "qa"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "stages that exist: `dev`, `local`, `prod`",
        ));
}

#[test]
fn no_project_folder_is_a_usage_error() {
    let empty = tempfile::tempdir().unwrap();
    deployer()
        .arg("synth")
        .current_dir(empty.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no `stacks/` folder"));
}

#[test]
fn synth_out_writes_the_file_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev.yaml");
    let out = deployer()
        .args(["synth", "--output", "json", "--out"])
        .arg(&file)
        .assert()
        .success();
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let written = std::fs::read(&file).unwrap();
    assert_eq!(report["stage"], "dev");
    assert_eq!(report["stack"], "cloudalbum-dev");
    assert_eq!(report["bytes"], written.len());
    assert_eq!(report["fits_inline"], true);
    let stdout = deployer().arg("synth").assert().success();
    assert_eq!(stdout.get_output().stdout, written);
}

#[test]
fn errors_in_json_mode_are_one_json_object() {
    let out = deployer()
        .args(["synth", "--stage", "qa", "--output", "json"])
        .assert()
        .code(2);
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["error"]["exit_code"], 2);
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stage `qa`")
    );
}

#[test]
fn bad_usage_exits_2() {
    deployer().arg("deploy-everything").assert().code(2);
    deployer()
        .args(["synth", "--format", "xml"])
        .assert()
        .code(2);
}

#[test]
fn rollback_takes_an_id_and_allow_replace() {
    let out = deployer().args(["rollback", "--help"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("--to <ID>"), "{text}");
    assert!(text.contains("--allow-replace <LOGICAL_ID>"), "{text}");
    deployer()
        .args(["rollback", "--to"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--to"));
}

#[test]
fn a_preview_with_a_bad_name_or_ttl_exits_2_before_aws() {
    deployer()
        .args(["up", "--stage", "PR_42", "--from", "dev"])
        .env("CI", "true")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stage name `PR_42` is not valid"));
    deployer()
        .args([
            "up",
            "--stage",
            "pr-42-with-a-name-too-long",
            "--from",
            "dev",
        ])
        .env("CI", "true")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1 to 20 lowercase letters"));
    for (ttl, why) in [
        ("0m", "shorter than a minute"),
        ("91d", "longer than 90 days"),
        ("7w", "does not end in a unit"),
    ] {
        deployer()
            .args(["up", "--stage", "pr-42", "--from", "dev", "--ttl", ttl])
            .env("CI", "true")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(why))
            .stderr(predicate::str::contains("from 1m to 90d"));
    }
    deployer()
        .args(["up", "--stage", "pr-42", "--from", "qa"])
        .env("CI", "true")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stage `qa` has no stage file"));
}

#[test]
fn from_on_a_stage_with_its_own_file_exits_2() {
    let out = deployer()
        .args(["up", "--stage", "prod", "--from", "dev", "--output", "json"])
        .env("CI", "true")
        .assert()
        .code(2);
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("stage `prod` has its own stage file `stacks/prod.yaml`"),
        "{message}"
    );
    deployer()
        .args(["up", "--stage", "dev", "--ttl", "1d"])
        .env("CI", "true")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`--ttl` is for preview stages"));
}

#[test]
fn down_expired_without_yes_in_ci_exits_2_and_a_bad_clock_too() {
    deployer()
        .args(["down", "--expired"])
        .env("CI", "true")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "deleting expired preview stages needs confirmation",
        ))
        .stderr(predicate::str::contains("--yes"));
    deployer()
        .arg("stages")
        .env("CI", "true")
        .env("DEPLOYER_NOW", "yesterday")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`DEPLOYER_NOW=yesterday` is not an RFC 3339 time",
        ));
}
