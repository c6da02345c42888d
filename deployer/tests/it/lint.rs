//! `cfn-lint` on every stage's template: no error, no warning, no informational finding.
//!
//! cfn-lint is pinned in `scripts/tools.sh` and installed into `.tools/cfn-lint`
//! (by `.ci/run` and `scripts/test.sh`); `CFN_LINT` may name another binary.

use std::path::PathBuf;
use std::process::Command;

use deployer::template::synth::Format;

use crate::support::{project_dir, stages, template};

fn cfn_lint() -> PathBuf {
    let path = std::env::var_os("CFN_LINT").map_or_else(
        || project_dir().join(".tools/cfn-lint/bin/cfn-lint"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "cfn-lint is not installed at `{}`; run `scripts/tools.sh cfn-lint` (or `scripts/test.sh`, which does)",
        path.display()
    );
    path
}

#[test]
fn every_stage_template_passes_cfn_lint_without_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for stage in stages() {
        for (suffix, endpoint) in [("aws", None), ("endpoint", Some("http://127.0.0.1:4566"))] {
            for (ext, format) in [("yaml", Format::Yaml), ("json", Format::Json)] {
                let text = template(&stage, endpoint).render(format).unwrap();
                let file = dir.path().join(format!("{stage}-{suffix}.{ext}"));
                std::fs::write(&file, text).unwrap();
                files.push(file);
            }
        }
    }
    let output = Command::new(cfn_lint())
        .args(["--format", "parseable", "--"])
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty(),
        "cfn-lint found problems (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
}

#[test]
fn cfn_lint_catches_a_broken_template() {
    // Proves the lint test can fail: a function with a runtime that doesn't exist.
    let dir = tempfile::tempdir().unwrap();
    let text = template("dev", None)
        .render(Format::Yaml)
        .unwrap()
        .replace("provided.al2023", "provided.al1999");
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, text).unwrap();
    let output = Command::new(cfn_lint()).arg(&file).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("provided.al1999"));
}
