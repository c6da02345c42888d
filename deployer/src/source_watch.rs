//! What `deployer watch` watches: the project's sources (`app/`, `contract/`,
//! `templates/`, `static/`, the manifests and the stage's file), polled by
//! modification time and size. Polling a few hundred files costs well under
//! a millisecond and needs no platform watcher; a burst of saves (an editor
//! writing several files) is awaited until it settles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The folders and files of a project that change what a stage runs.
const WATCHED: &[&str] = &[
    "app",
    "contract",
    "templates",
    "static",
    "Cargo.toml",
    "Cargo.lock",
];

/// Names never descended into: build output, installed packages, tool state.
fn ignored(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "target" | "node_modules")
}

/// Every watched file with its modification time and size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot(BTreeMap<PathBuf, (SystemTime, u64)>);

impl Snapshot {
    /// The watched files of `project_dir`, plus `extra` (the stage's file).
    pub fn take(project_dir: &Path, extra: &[PathBuf]) -> Self {
        let mut files = BTreeMap::new();
        for entry in WATCHED {
            collect(&project_dir.join(entry), &mut files);
        }
        for path in extra {
            collect(path, &mut files);
        }
        Self(files)
    }

    /// The files that differ between `self` and `newer` (added, removed or
    /// changed), relative to `project_dir` where they are inside it.
    pub fn changes(&self, newer: &Self, project_dir: &Path) -> Vec<PathBuf> {
        let mut changed: Vec<PathBuf> = newer
            .0
            .iter()
            .filter(|(path, meta)| self.0.get(*path) != Some(meta))
            .map(|(path, _)| path.clone())
            .chain(
                self.0
                    .keys()
                    .filter(|path| !newer.0.contains_key(*path))
                    .cloned(),
            )
            .map(|path| {
                path.strip_prefix(project_dir)
                    .map(Path::to_owned)
                    .unwrap_or(path)
            })
            .collect();
        changed.sort();
        changed.dedup();
        changed
    }
}

fn collect(path: &Path, files: &mut BTreeMap<PathBuf, (SystemTime, u64)>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_file() {
        files.insert(
            path.to_owned(),
            (
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            ),
        );
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !ignored(&name.to_string_lossy()) {
            collect(&entry.path(), files);
        }
    }
}

/// How often the sources are polled.
pub const POLL: Duration = Duration::from_millis(200);

/// Waits until the sources differ from `since` and then stay the same for one
/// more poll; returns the settled snapshot and what changed.
pub async fn next_change(
    project_dir: &Path,
    extra: &[PathBuf],
    since: &Snapshot,
) -> (Snapshot, Vec<PathBuf>) {
    loop {
        tokio::time::sleep(POLL).await;
        let mut now = Snapshot::take(project_dir, extra);
        if &now == since {
            continue;
        }
        // Let a burst of writes settle.
        loop {
            tokio::time::sleep(POLL).await;
            let later = Snapshot::take(project_dir, extra);
            if later == now {
                break;
            }
            now = later;
        }
        let changed = since.changes(&now, project_dir);
        return (now, changed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_additions_and_removals_are_seen_and_build_output_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::create_dir_all(root.join("static/node_modules")).unwrap();
        std::fs::create_dir_all(root.join("app/target")).unwrap();
        std::fs::write(root.join("templates/album.hbs"), "<h1>Album</h1>").unwrap();
        std::fs::write(root.join("static/old.css"), "a{}").unwrap();
        let before = Snapshot::take(root, &[]);

        std::fs::write(root.join("templates/album.hbs"), "<h1>Albums</h1>").unwrap();
        std::fs::write(root.join("static/new.css"), "b{}").unwrap();
        std::fs::remove_file(root.join("static/old.css")).unwrap();
        std::fs::write(root.join("static/node_modules/x.js"), "1").unwrap();
        std::fs::write(root.join("app/target/bootstrap"), "1").unwrap();
        std::fs::write(root.join("README.md"), "not watched").unwrap();
        let after = Snapshot::take(root, &[]);

        assert_eq!(
            before.changes(&after, root),
            [
                PathBuf::from("static/new.css"),
                PathBuf::from("static/old.css"),
                PathBuf::from("templates/album.hbs"),
            ]
        );
        assert!(after.changes(&after, root).is_empty());
    }
}
