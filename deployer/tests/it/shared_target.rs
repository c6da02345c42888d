//! The code deployed is the code in this checkout, also when two checkouts
//! share one target directory (`CARGO_TARGET_DIR`, `build.target-dir`, as
//! `.ci/run` does). Cargo names a workspace's own build units by paths
//! relative to the workspace, so both checkouts build the same units, and
//! judges them fresh by the modification times of the files their last
//! build named, which are the other checkout's.
//!
//! Two copies of a small workspace laid out like this one (a `bootstrap`
//! in `app/entry` printing a page template that `app/pages` compiles in from
//! `templates/`) build through the deployer's own build step into one target
//! directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use deployer::deploy::artifacts::{
    ENTRY_SOURCE, build_bootstrap_in, built_from_elsewhere, stamp_file,
};
use deployer::stage::{Architecture, BuildProfile};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A checkout of the small workspace whose page says `page`.
fn checkout(root: &Path, page: &str) {
    write(
        &root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"app/entry\", \"app/pages\"]\nresolver = \"2\"\n",
    );
    write(
        &root.join("app/pages/Cargo.toml"),
        "[package]\nname = \"pages\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        &root.join("app/pages/src/lib.rs"),
        "pub const LAYOUT: &str = include_str!(\"../../../templates/layout.hbs\");\n",
    );
    write(
        &root.join("app/entry/Cargo.toml"),
        "[package]\nname = \"entry\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[bin]]\nname = \"bootstrap\"\npath = \"src/bootstrap.rs\"\n\n[dependencies]\npages = { path = \"../pages\" }\n",
    );
    write(
        &root.join(ENTRY_SOURCE),
        "fn main() {\n    print!(\"{}\", pages::LAYOUT);\n}\n",
    );
    write(&root.join("templates/layout.hbs"), page);
    let locked = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["generate-lockfile", "--offline"])
        .status()
        .unwrap();
    assert!(locked.success());
}

fn host() -> Architecture {
    if std::env::consts::ARCH == "aarch64" {
        Architecture::Arm64
    } else {
        Architecture::X86_64
    }
}

/// Builds `root` into `target` as `deployer up` would; what the binary prints.
fn build_and_run(root: &Path, target: &Path) -> (PathBuf, String) {
    let binary =
        build_bootstrap_in(root, host(), BuildProfile::Release, true, Some(target)).unwrap();
    let out = Command::new(&binary).output().unwrap();
    assert!(out.status.success());
    (binary, String::from_utf8(out.stdout).unwrap())
}

#[test]
fn two_checkouts_sharing_a_target_directory_each_deploy_their_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, target) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("shared-target"),
    );
    checkout(&a, "page of checkout a");
    checkout(&b, "page of checkout a");

    let (binary, page) = build_and_run(&a, &target);
    assert_eq!(page, "page of checkout a");
    assert!(a.join(stamp_file(BuildProfile::Release)).exists());

    // B edits its template after A built: cargo alone would find the units
    // fresh (A's template is older than them) and hand B A's binary.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&b.join("templates/layout.hbs"), "page of checkout b");
    let (binary_b, page) = build_and_run(&b, &target);
    assert_eq!(binary_b, binary, "one target directory");
    assert_eq!(page, "page of checkout b");
    assert_eq!(built_from_elsewhere(&binary, &b), None);
    assert_eq!(built_from_elsewhere(&binary, &a), Some(b.clone()));
    // B's stamp is written (the next no-change deploy of B asks no cargo).
    assert!(b.join(stamp_file(BuildProfile::Release)).exists());

    // A's stamp no longer holds (B rebuilt the binary), and A's unchanged
    // files give A's page again, not B's.
    let (_, page) = build_and_run(&a, &target);
    assert_eq!(page, "page of checkout a");
    let (_, page) = build_and_run(&b, &target);
    assert_eq!(page, "page of checkout b");
}
