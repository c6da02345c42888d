//! The shape of the code, checked: no module of `deployer/src` imports one
//! that imports it back, and no name of the `contract` crate is spelled out in
//! both the app and the deployer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::project_dir;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The module path of a source file: `deploy/stack.rs` → `deploy::stack`,
/// `deploy/mod.rs` → `deploy`, `lib.rs` → the crate root (empty).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod" && p != "lib" && p != "main")
        .collect();
    parts.join("::")
}

/// The `crate::…` paths a file names, inside `use` items and in code, up to
/// the first part that is not a module (`crate::deploy::stack::wait` gives
/// `deploy::stack::wait`; the caller cuts it to a known module). Test modules
/// (`#[cfg(test)]` to the end of the file) and comments are left out.
fn crate_paths(text: &str) -> Vec<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        // Comments (doc links included) name modules without importing them.
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut paths = Vec::new();
    // `use crate::a::{b, c::d};` groups name several modules.
    for item in code.split("use crate::").skip(1) {
        let item = item.split(';').next().unwrap_or_default();
        let flat: String = item.chars().filter(|c| !c.is_whitespace()).collect();
        paths.extend(expand_use(&flat));
    }
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with("use ") {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        paths.push(path.trim_end_matches(':').to_owned());
    }
    paths
}

/// `a::{b,c::d}` → `a::b`, `a::c::d`.
fn expand_use(item: &str) -> Vec<String> {
    let Some(open) = item.find('{') else {
        return vec![item.to_owned()];
    };
    let prefix = &item[..open];
    let inner = &item[open + 1..item.rfind('}').unwrap_or(item.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand_use(&format!("{prefix}{p}")))
        .map(|p| p.trim_end_matches("::self").to_owned())
        .collect()
}

/// The longest known module that `path` starts with.
fn target_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = project_dir().join("deployer/src");
    // `main.rs` is the binary, a crate of its own.
    let files: Vec<PathBuf> = rust_files(&src)
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let targets: BTreeSet<String> = crate_paths(&text)
            .iter()
            .filter_map(|p| target_module(p, &modules))
            .filter(|to| to != &from)
            .collect();
        graph.insert(from, targets);
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = import_graph();
    assert!(graph.contains_key("deploy::pipeline"), "{graph:?}");
    assert!(
        graph["deploy::pipeline"].contains("deploy::apply"),
        "the parser must see imports: {:?}",
        graph["deploy::pipeline"]
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_through(&graph, module))
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(
        cycle_through(&graph, "a").unwrap(),
        ["a", "b", "c", "a"].map(str::to_owned)
    );
    assert_eq!(
        expand_use("deploy::{apply::{self,Before},stack}"),
        ["deploy::apply", "deploy::apply::Before", "deploy::stack"].map(str::to_owned)
    );
}

#[test]
fn commands_only_orchestrate() {
    let commands = project_dir().join("deployer/src/commands");
    for file in rust_files(&commands) {
        let text = std::fs::read_to_string(&file).unwrap();
        for client in ["aws_sdk_", ".cfn.", ".s3.", ".ddb.", ".lambda.", ".sts."] {
            assert!(
                !text.contains(client),
                "`{}` makes SDK calls of its own (`{client}`): move them into a library step",
                file.display()
            );
        }
    }
    let up = std::fs::read_to_string(commands.join("up.rs")).unwrap();
    assert!(
        up.lines().count() <= 100,
        "commands/up.rs does a step's job"
    );
}

/// The values of the `contract` crate's string constants.
fn contract_names() -> Vec<String> {
    let text = std::fs::read_to_string(project_dir().join("contract/src/lib.rs")).unwrap();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter_map(|rest| rest.split_once(": &str = \""))
        .filter_map(|(_, value)| value.split_once("\";"))
        .map(|(value, _)| value.to_owned())
        .collect()
}

/// Where `"name"` is written in the `.rs` files under `dir`.
fn written_in(dir: &Path, name: &str) -> Vec<PathBuf> {
    let quoted = format!("\"{name}\"");
    rust_files(dir)
        .into_iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains(&quoted))
        .collect()
}

#[test]
fn no_contract_name_is_written_in_both_crates() {
    let names = contract_names();
    assert!(names.iter().any(|n| n == "TABLE_NAME"), "{names:?}");
    assert!(names.iter().any(|n| n == "user_id"), "{names:?}");
    let root = project_dir();
    let twice: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let app = written_in(&root.join("app"), name);
            let deployer = written_in(&root.join("deployer"), name);
            (!app.is_empty() && !deployer.is_empty())
                .then(|| format!("\"{name}\": {app:?} and {deployer:?}"))
        })
        .collect();
    assert!(
        twice.is_empty(),
        "use the `contract` constant instead:\n{}",
        twice.join("\n")
    );
}
