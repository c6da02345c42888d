//! `static/` is deployed complete: every asset a page template links to
//! (`{{asset "<path>"}}`) must exist before the sync, which deletes
//! remote files that are missing locally. Front-end libraries are copied in by
//! the front-end step (`scripts/vendor.sh`, from npm), which a fresh checkout
//! (a CI runner) has not run: `up` runs it itself, and stops with exit 2
//! naming what is still missing rather than deleting Leaflet from the bucket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::deploy::error::DeployError;

/// The front-end step, relative to the project root.
pub const FRONT_END_STEP: &str = "scripts/vendor.sh";
/// The folder published to the bucket's `static/`, relative to the project root.
pub const STATIC_DIR: &str = "static";

/// What the page templates link to under `static/`, sorted, without duplicates.
pub fn referenced_assets(templates_dir: &Path) -> Vec<String> {
    const MARKER: &str = "{{asset \"";
    let mut assets = Vec::new();
    let Ok(entries) = std::fs::read_dir(templates_dir) else {
        return assets;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "hbs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (i, _) in text.match_indices(MARKER) {
            let rest = &text[i + MARKER.len()..];
            let asset: String = rest
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | ' ' | '>' | '{' | '}' | '?' | '#'))
                .collect();
            if !asset.is_empty() {
                assets.push(asset);
            }
        }
    }
    assets.sort();
    assets.dedup();
    assets
}

/// The referenced assets missing from `static_dir`.
pub fn missing_assets(templates_dir: &Path, static_dir: &Path) -> Vec<String> {
    referenced_assets(templates_dir)
        .into_iter()
        .filter(|asset| !static_dir.join(asset).is_file())
        .collect()
}

/// Makes sure `static/` holds every asset the pages link to, running the
/// front-end step once if something is missing.
pub fn ensure_complete(project_dir: &Path, quiet: bool) -> Result<(), DeployError> {
    let templates = project_dir.join("templates");
    let statics = project_dir.join(STATIC_DIR);
    if missing_assets(&templates, &statics).is_empty() {
        return Ok(());
    }
    let step = project_dir.join(FRONT_END_STEP);
    let ran = step.is_file() && run_front_end_step(project_dir, &step, quiet);
    let missing = missing_assets(&templates, &statics);
    if missing.is_empty() {
        return Ok(());
    }
    Err(DeployError::IncompleteStatic {
        missing,
        step: if ran {
            format!("`{FRONT_END_STEP}` ran but did not provide them")
        } else {
            format!("run the front-end step `{FRONT_END_STEP}` (it copies them from npm)")
        },
    })
}

fn run_front_end_step(project_dir: &Path, step: &PathBuf, quiet: bool) -> bool {
    Command::new("bash")
        .arg(step)
        .current_dir(project_dir)
        .stdin(Stdio::null())
        .stdout(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .stderr(Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(step: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::create_dir_all(root.join("static/css")).unwrap();
        std::fs::write(
            root.join("templates/map.hbs"),
            "<link href=\"{{asset \"css/site.css\"}}\">\n<script src=\"{{asset \"vendor/lib/lib.js\"}}\" defer></script>\n<img src='{{asset \"css/site.css\"}}'>",
        )
        .unwrap();
        std::fs::write(root.join("static/css/site.css"), "body{}").unwrap();
        if let Some(script) = step {
            std::fs::create_dir_all(root.join("scripts")).unwrap();
            std::fs::write(root.join(FRONT_END_STEP), script).unwrap();
        }
        dir
    }

    #[test]
    fn templates_name_their_assets() {
        let dir = project(None);
        assert_eq!(
            referenced_assets(&dir.path().join("templates")),
            ["css/site.css", "vendor/lib/lib.js"]
        );
        assert_eq!(
            missing_assets(&dir.path().join("templates"), &dir.path().join("static")),
            ["vendor/lib/lib.js"]
        );
    }

    #[test]
    fn a_missing_vendored_file_runs_the_front_end_step() {
        let dir = project(Some(
            "mkdir -p static/vendor/lib && echo 'lib' > static/vendor/lib/lib.js\n",
        ));
        ensure_complete(dir.path(), true).unwrap();
        assert!(dir.path().join("static/vendor/lib/lib.js").is_file());
    }

    #[test]
    fn still_missing_is_exit_2_naming_the_files_and_the_step() {
        for step in [None, Some("exit 0\n")] {
            let dir = project(step);
            let err = ensure_complete(dir.path(), true).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            assert!(text.contains("vendor/lib/lib.js"), "{text}");
            assert!(text.contains(FRONT_END_STEP), "{text}");
        }
    }
}
