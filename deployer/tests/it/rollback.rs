//! History and rollback on the emulator: three deploys of visibly different
//! code and styles, `history` lists them, `rollback` goes back one and then
//! to the first by id; each time the function's code (Lambda's `CodeSha256`)
//! and the page served are the earlier deployment's again, its static files
//! are still there (although two later deploys pruned), and `history` shows
//! the rollbacks.

use contract::assets::Manifest;
use deployer::localcloud::http_get;
use serde_json::Value;

use crate::e2e::Cloud;
use crate::hotswap::{bootstrap_variant, function, scratch_copy, sha_of};

/// Appends a comment to `static/css/site.css`: a new hash, a new file name.
fn restyle(project: &std::path::Path, mark: &str) {
    let css = project.join("static/css/site.css");
    let mut text = std::fs::read_to_string(&css).unwrap();
    text = format!("{text}\n/* {mark} */\n");
    std::fs::write(&css, text).unwrap();
}

/// The sign-in page links the stylesheet `manifest` names, and it is served.
fn serves_style_of(url: &str, static_url: &str, manifest: &str) {
    let css = Manifest::parse(manifest)
        .unwrap()
        .url_path("css/site.css")
        .unwrap();
    let page = http_get(&format!("{url}signin")).unwrap();
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(html.contains(&css), "the page does not link {css}:\n{html}");
    let file = http_get(&format!("{static_url}{css}")).unwrap();
    assert_eq!(file.status, 200, "{static_url}{css} is not served");
}

fn ids_and_kinds(history: &Value) -> Vec<(String, String)> {
    history["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn history_lists_deployments_and_rollback_redeploys_an_earlier_one() {
    let cloud = Cloud::start();
    let project = scratch_copy();
    let dir = project.path().to_str().unwrap();
    let variants: Vec<_> = ["v1", "v2", "v3"]
        .iter()
        .map(|v| bootstrap_variant(project.path(), v))
        .collect();
    let up = |i: usize| {
        restyle(project.path(), &format!("style {i}"));
        let path = variants[i].to_str().unwrap();
        cloud.json(&["up", "--project-dir", dir, "--bootstrap", path])
    };
    let first = up(0);
    let name = first["outputs"]["FunctionName"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = first["url"].as_str().unwrap().to_owned();
    let static_url = first["outputs"]["StaticUrl"].as_str().unwrap().to_owned();
    let ids: Vec<String> = std::iter::once(first)
        .chain([up(1), up(2)])
        .map(|report| report["deployment"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(function(&cloud, &name).code_sha256, sha_of(&variants[2]));

    // A no-change up records nothing.
    let same = cloud.json(&[
        "up",
        "--project-dir",
        dir,
        "--bootstrap",
        variants[2].to_str().unwrap(),
    ]);
    assert_eq!(same["up_to_date"], true, "{same}");
    assert!(same.get("deployment").is_none(), "{same}");

    let history = cloud.json(&["history", "--project-dir", dir]);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(
        ids_and_kinds(&history),
        newest_first
            .iter()
            .map(|id| (id.clone(), "up".to_owned()))
            .collect::<Vec<_>>(),
        "{history}"
    );
    let records = history["deployments"].as_array().unwrap();
    assert!(
        records[0]["caller"].as_str().unwrap().starts_with("arn:"),
        "{history}"
    );
    // The scratch project is no git checkout: no commit, and no failure.
    assert!(records[0]["commit"].is_null(), "{history}");
    let manifests: Vec<String> = records
        .iter()
        .rev()
        .map(|r| r["static"]["manifest"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(manifests[0], manifests[1]);

    // Default: back one deployment, to v2.
    let back = cloud.json(&["rollback", "--project-dir", dir]);
    assert_eq!(back["to"]["id"], ids[1].as_str(), "{back}");
    assert_eq!(back["up_to_date"], false, "{back}");
    assert_eq!(function(&cloud, &name).code_sha256, sha_of(&variants[1]));
    serves_style_of(&url, &static_url, &manifests[1]);

    // By id, to v1: its stylesheet was pruned by no later deploy because
    // the history keeps it.
    let first_again = cloud.json(&["rollback", "--project-dir", dir, "--to", &ids[0]]);
    assert_eq!(first_again["to"]["id"], ids[0].as_str(), "{first_again}");
    assert_eq!(function(&cloud, &name).code_sha256, sha_of(&variants[0]));
    serves_style_of(&url, &static_url, &manifests[0]);

    let history = cloud.json(&["history", "--project-dir", dir]);
    let listed = ids_and_kinds(&history);
    assert_eq!(listed.len(), 5, "{history}");
    assert_eq!(listed[0].1, "rollback");
    assert_eq!(listed[1].1, "rollback");
    let newest = &history["deployments"][0];
    assert_eq!(newest["rolled_back_to"], ids[0].as_str(), "{history}");
    assert_eq!(
        newest["code"]["sha256"], history["deployments"][4]["code"]["sha256"],
        "{history}"
    );
    // An unknown id: exit 2, naming how to see the ids.
    let unknown = cloud
        .deployer(&[
            "rollback",
            "--project-dir",
            dir,
            "--to",
            "19990101T000000.000Z-00000000",
        ])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&unknown.get_output().stderr).into_owned();
    assert!(
        stderr.contains("deployer history --stage local"),
        "{stderr}"
    );
}
