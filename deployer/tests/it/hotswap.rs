//! The inner loop on the emulator: `up --hotswap` swaps code and static files
//! into the function without a change set and marks the stage drifted; the
//! next plain `up` reconciles through a change set whose only change is the
//! function's code.

use std::path::{Path, PathBuf};

use deployer::deploy::artifacts::Artifact;
use deployer::deploy::function::HOTSWAP_TAG;
use deployer::deploy::hotswap::code_sha256;
use deployer::localcloud::http_get;
use serde_json::Value;

use crate::e2e::Cloud;
use crate::support::project_dir;

/// A project of its own (stage files, templates, static files) with a
/// prebuilt `bootstrap`: nothing is built, and its files can be edited.
pub(crate) fn scratch_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for dir in ["stacks", "templates", "static"] {
        copy_dir(&project_dir().join(dir), &copy.path().join(dir));
    }
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The release `bootstrap` with `extra` bytes appended: it runs the same, but
/// its zip (and so Lambda's `CodeSha256`) differs.
pub(crate) fn bootstrap_variant(dir: &Path, extra: &str) -> PathBuf {
    let built = deployer::deploy::artifacts::build_bootstrap(
        &project_dir(),
        deployer::stage::Architecture::X86_64,
        deployer::stage::BuildProfile::Release,
        true,
    )
    .unwrap();
    let mut bytes = std::fs::read(built).unwrap();
    bytes.extend_from_slice(extra.as_bytes());
    let path = dir.join(format!("bootstrap-{extra}"));
    std::fs::write(&path, bytes).unwrap();
    path
}

pub(crate) struct Function {
    pub(crate) code_sha256: String,
    static_assets: String,
    hotswapped: Option<String>,
}

pub(crate) fn function(cloud: &Cloud, name: &str) -> Function {
    cloud.rt.block_on(async {
        let out = cloud
            .aws
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .unwrap();
        let configuration = out.configuration.unwrap();
        Function {
            code_sha256: configuration.code_sha256.unwrap(),
            static_assets: configuration.environment.unwrap().variables.unwrap()
                [contract::env::STATIC_ASSETS]
                .clone(),
            hotswapped: out.tags.unwrap_or_default().remove(HOTSWAP_TAG),
        }
    })
}

/// The stack's last update time and number of events.
fn stack_history(cloud: &Cloud) -> (Option<String>, usize) {
    cloud.rt.block_on(async {
        let stack = cloud
            .aws
            .cfn
            .describe_stacks()
            .stack_name("cloudalbum-local")
            .send()
            .await
            .unwrap()
            .stacks()[0]
            .clone();
        let mut events = 0;
        let mut pages = cloud
            .aws
            .cfn
            .describe_stack_events()
            .stack_name("cloudalbum-local")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            events += page.unwrap().stack_events().len();
        }
        (stack.last_updated_time.map(|t| t.to_string()), events)
    })
}

pub(crate) fn sha_of(binary: &Path) -> String {
    code_sha256(
        &Artifact::from_binary(&std::fs::read(binary).unwrap())
            .unwrap()
            .zip,
    )
}

#[test]
fn a_hotswap_skips_the_change_set_and_the_next_up_reconciles() {
    let cloud = Cloud::start();
    let project = scratch_copy();
    let dir = project.path().to_str().unwrap();
    let v1 = bootstrap_variant(project.path(), "v1");
    let v2 = bootstrap_variant(project.path(), "v2");

    let first = cloud.json(&[
        "up",
        "--project-dir",
        dir,
        "--bootstrap",
        v1.to_str().unwrap(),
    ]);
    let name = first["outputs"]["FunctionName"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = first["url"].as_str().unwrap().to_owned();
    assert_eq!(function(&cloud, &name).code_sha256, sha_of(&v1));
    let before = stack_history(&cloud);

    // New code: straight to the function, no change set, marked drifted.
    let hot = cloud.json(&[
        "up",
        "--hotswap",
        "--project-dir",
        dir,
        "--bootstrap",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(hot["mode"], "hotswap", "{hot}");
    assert_eq!(hot["up_to_date"], false, "{hot}");
    let key = std::path::Path::new(hot["code"]["key"].as_str().unwrap());
    assert_eq!(key.extension(), Some("zip".as_ref()), "{hot}");
    assert_eq!(hot["static_assets_linked"], false, "{hot}");
    let swapped = function(&cloud, &name);
    assert_eq!(swapped.code_sha256, sha_of(&v2));
    assert!(swapped.hotswapped.is_some());
    assert_eq!(
        stack_history(&cloud),
        before,
        "the stack must not have changed"
    );
    assert_eq!(http_get(&format!("{url}health")).unwrap().status, 200);
    println!("hotswap of the code: {}", hot["timings_ms"]);

    let status = cloud.json(&["status", "--project-dir", dir]);
    assert!(
        status["hotswapped"].as_str().unwrap().starts_with("code "),
        "{status}"
    );

    // The same code again: nothing to do.
    let again = cloud.json(&[
        "up",
        "--hotswap",
        "--project-dir",
        dir,
        "--bootstrap",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(again["up_to_date"], true, "{again}");

    // A static file changes: published, and the function links to it.
    let css = project.path().join("static/css/site.css");
    let mut text = std::fs::read_to_string(&css).unwrap();
    text.push_str("\n/* hotswapped */\n");
    std::fs::write(&css, text).unwrap();
    let linked = cloud.json(&[
        "up",
        "--hotswap",
        "--project-dir",
        dir,
        "--bootstrap",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(linked["static_assets_linked"], true, "{linked}");
    assert!(linked["code"].is_null(), "{linked}");
    let assets = contract::assets::Manifest::parse(&function(&cloud, &name).static_assets).unwrap();
    let published = assets.url_path("css/site.css").unwrap();
    assert!(published.contains("site."), "{published}");
    let page = http_get(&format!("{url}signin")).unwrap();
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(
        html.contains(&published),
        "the page does not link {published}:\n{html}"
    );
    assert_eq!(
        stack_history(&cloud),
        before,
        "the stack must not have changed"
    );

    // A plain up reconciles: one change set, changing only the function.
    let plain = cloud.json(&[
        "up",
        "--project-dir",
        dir,
        "--bootstrap",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(plain["reconciled"], true, "{plain}");
    let changes: Vec<&str> = plain["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["logical_id"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["AppFunction"], "{plain}");
    let reconciled = function(&cloud, &name);
    assert_eq!(reconciled.code_sha256, sha_of(&v2));
    assert!(reconciled.hotswapped.is_none());
    assert_ne!(stack_history(&cloud), before);

    // Hotswapping back to v1 and then a plain up of v2, whose change set is
    // empty (the stack already names v2): the function still gets v2 back.
    cloud.json(&[
        "up",
        "--hotswap",
        "--project-dir",
        dir,
        "--bootstrap",
        v1.to_str().unwrap(),
    ]);
    assert_eq!(function(&cloud, &name).code_sha256, sha_of(&v1));
    let back = cloud.json(&[
        "up",
        "--project-dir",
        dir,
        "--bootstrap",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(back["up_to_date"], true, "{back}");
    assert_eq!(back["reconciled"], true, "{back}");
    let restored = function(&cloud, &name);
    assert_eq!(restored.code_sha256, sha_of(&v2));
    assert!(restored.hotswapped.is_none());
}

#[test]
fn a_template_change_is_never_hotswapped() {
    let cloud = Cloud::start();
    let project = scratch_copy();
    let dir = project.path().to_str().unwrap();
    let v1 = bootstrap_variant(project.path(), "v1");
    cloud.json(&[
        "up",
        "--project-dir",
        dir,
        "--bootstrap",
        v1.to_str().unwrap(),
    ]);
    let stage_file = project.path().join("stacks/local.yaml");
    let text = std::fs::read_to_string(&stage_file).unwrap();
    std::fs::write(
        &stage_file,
        text.replace("read_capacity: 5", "read_capacity: 6"),
    )
    .unwrap();
    let out = cloud
        .deployer(&[
            "up",
            "--hotswap",
            "--project-dir",
            dir,
            "--bootstrap",
            v1.to_str().unwrap(),
        ])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("the template changed: deploying through a change set"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(report.get("mode").is_none(), "{report}");
    assert_eq!(report["changes"][0]["logical_id"], "PhotoTable", "{report}");
}
