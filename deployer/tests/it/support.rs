//! Shared helpers: the project's paths, a scratch copy of the project, the binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The repository root (holds `stacks/`). Read at run time (cargo sets it
/// for tests): a test binary built by another clone sharing the target
/// folder keeps its own compile-time path.
pub fn project_dir() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every stage that has a file in `stacks/`.
pub fn stages() -> Vec<String> {
    let stages = deployer::stage::existing_stages(&project_dir().join("stacks"));
    assert!(!stages.is_empty(), "no stage files found");
    stages
}

/// The `deployer` binary, run from the project root with a clean environment.
pub fn deployer() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deployer"));
    cmd.current_dir(project_dir())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("DEPLOYER_STAGE")
        .env_remove("DEPLOYER_PROJECT_DIR")
        // The tests build one `bootstrap`: the release build a stage with
        // real users ships (the `local` and `dev` stage files name `fast`).
        .env("DEPLOYER_BUILD_PROFILE", "release");
    cmd
}

/// A scratch project whose `stacks/<stage>.yaml` holds `text`.
pub fn scratch_project(stage: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    std::fs::write(dir.path().join(format!("stacks/{stage}.yaml")), text).unwrap();
    dir
}

/// The committed dev stage file with one line replaced.
pub fn dev_yaml_with(from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(project_dir().join("stacks/dev.yaml")).unwrap();
    assert!(text.contains(from), "stacks/dev.yaml has no `{from}`");
    text.replace(from, to)
}

/// Synthesizes `stage` through the library, as `deployer synth` does.
pub fn template(stage: &str, endpoint: Option<&str>) -> deployer::template::synth::Template {
    let stage = deployer::stage::Stage::load(&project_dir(), stage).unwrap();
    let target = deployer::template::composition::Target::of(&stage, endpoint);
    deployer::template::composition::stage_template(&stage, &target)
}
