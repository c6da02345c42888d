//! Preview stages on the emulator: `up --stage pr-7 --from dev` makes a stage
//! from dev's file, tagged with its base and expiry; commands find it through
//! those tags; `stages` lists it; `down --expired` removes it once its expiry
//! has passed (`DEPLOYER_NOW`), and leaves dev alone.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::e2e::Cloud;
use crate::support::{deployer, project_dir};

const CREATED: &str = "2026-12-01T00:00:00Z";
const EXPIRES: &str = "2026-12-08T00:00:00Z";

/// `deployer <args> --stage <stage>` against the cloud, as CI runs it, at `now`.
fn run(cloud: &Cloud, stage: &str, now: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = deployer();
    cmd.args(args)
        .args([
            "--stage",
            stage,
            "--endpoint-url",
            &cloud.emulator.endpoint(),
        ])
        .args(["--output", "json"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CI", "true")
        .env("DEPLOYER_NOW", now)
        .timeout(Duration::from_mins(15));
    cmd
}

fn json(mut cmd: assert_cmd::Command) -> Value {
    let out = cmd.assert().success();
    let output = out.get_output();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The stack's tags through CloudFormation's API; `None` once it is gone.
fn stack_tags(cloud: &Cloud, stack: &str) -> Option<BTreeMap<String, String>> {
    cloud.rt.block_on(async {
        let out = cloud
            .aws
            .cfn
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .ok()?;
        let stack = out.stacks().first()?;
        if stack.stack_status.as_ref()?.as_str() == "DELETE_COMPLETE" {
            return None;
        }
        Some(
            stack
                .tags()
                .iter()
                .map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap()))
                .collect(),
        )
    })
}

#[test]
fn a_preview_from_dev_is_listed_found_by_its_tags_and_removed_once_expired() {
    let cloud = Cloud::start();
    let bootstrap = deployer::deploy::artifacts::build_bootstrap(
        &project_dir(),
        deployer::stage::Architecture::X86_64,
        deployer::stage::BuildProfile::Release,
        true,
    )
    .unwrap();
    let bootstrap = bootstrap.to_str().unwrap();

    json(run(
        &cloud,
        "dev",
        CREATED,
        &["up", "--yes", "--bootstrap", bootstrap],
    ));
    let up = json(run(
        &cloud,
        "pr-7",
        CREATED,
        &["up", "--yes", "--from", "dev", "--bootstrap", bootstrap],
    ));
    assert_eq!(up["stack"], "cloudalbum-pr-7");
    assert_eq!(up["preview"]["base"], "dev");
    assert_eq!(up["preview"]["expires"], EXPIRES);
    let url = up["url"].as_str().unwrap().to_owned();

    let tags = stack_tags(&cloud, "cloudalbum-pr-7").unwrap();
    assert_eq!(tags["deployer:base"], "dev");
    assert_eq!(tags["deployer:expires"], EXPIRES);
    assert_eq!(tags["deployer:stage"], "pr-7");
    assert!(
        !stack_tags(&cloud, "cloudalbum-dev")
            .unwrap()
            .contains_key("deployer:base")
    );

    // Without a stage file, the base comes from the stack's tag; a later
    // `up` keeps the expiry.
    let later = "2026-12-03T00:00:00Z";
    let status = json(run(&cloud, "pr-7", later, &["status"]));
    assert_eq!(status["name"], "cloudalbum-pr-7");
    assert_eq!(status["preview"]["base"], "dev");
    assert_eq!(
        json(run(&cloud, "pr-7", later, &["url"]))["url"],
        url.as_str()
    );
    let again = json(run(
        &cloud,
        "pr-7",
        later,
        &["up", "--yes", "--bootstrap", bootstrap],
    ));
    assert_eq!(again["preview"]["expires"], EXPIRES);
    assert_eq!(
        stack_tags(&cloud, "cloudalbum-pr-7").unwrap()["deployer:expires"],
        EXPIRES
    );

    // `--ttl` on an otherwise unchanged preview gives it a new expiry: the
    // stack's tags are part of the change set (CloudFormation tags every
    // resource with them, so each is modified).
    let extended = json(run(
        &cloud,
        "pr-7",
        later,
        &["up", "--yes", "--ttl", "14d", "--bootstrap", bootstrap],
    ));
    assert_eq!(extended["up_to_date"], false, "{extended}");
    assert_eq!(extended["preview"]["expires"], "2026-12-17T00:00:00Z");
    assert_eq!(
        stack_tags(&cloud, "cloudalbum-pr-7").unwrap()["deployer:expires"],
        "2026-12-17T00:00:00Z"
    );
    // And back to the first expiry, so the rest of the test reads as before.
    run(
        &cloud,
        "pr-7",
        CREATED,
        &["up", "--yes", "--ttl", "7d", "--bootstrap", bootstrap],
    )
    .assert()
    .success();
    assert_eq!(
        stack_tags(&cloud, "cloudalbum-pr-7").unwrap()["deployer:expires"],
        EXPIRES
    );

    let stages = json(run(&cloud, "dev", later, &["stages"]));
    let listed: BTreeMap<String, Value> = stages["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap().to_owned(), s.clone()))
        .collect();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        ["dev", "pr-7"],
        "{stages}"
    );
    let pr7 = &listed["pr-7"];
    assert_eq!(pr7["base"], "dev");
    assert_eq!(pr7["expires"], EXPIRES);
    assert_eq!(pr7["expired"], false);
    assert_eq!(pr7["has_file"], false);
    assert_eq!(pr7["url"], url.as_str());
    assert_eq!(listed["dev"]["has_file"], true);
    assert_eq!(listed["dev"]["base"], Value::Null);

    // Before the expiry nothing goes; after it, the preview does, dev stays.
    let early = json(run(&cloud, "dev", later, &["down", "--expired", "--yes"]));
    assert_eq!(early["removed"], serde_json::json!([]), "{early}");
    assert!(stack_tags(&cloud, "cloudalbum-pr-7").is_some());
    let expired = json(run(
        &cloud,
        "dev",
        "2026-12-08T00:00:01Z",
        &["down", "--expired", "--yes"],
    ));
    assert_eq!(expired["removed"][0]["stage"], "pr-7", "{expired}");
    assert_eq!(expired["removed"][0]["status"], "DELETE_COMPLETE");
    assert_eq!(expired["removed"].as_array().unwrap().len(), 1);
    assert!(stack_tags(&cloud, "cloudalbum-pr-7").is_none());
    assert!(stack_tags(&cloud, "cloudalbum-dev").is_some());

    run(&cloud, "dev", later, &["down", "--yes"])
        .assert()
        .success();
}
