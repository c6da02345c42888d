//! The function's code: build the app's `bootstrap` in release mode, check it
//! runs on Lambda's `provided.al2023`, zip it deterministically, and upload it
//! to the artifacts bucket under its SHA-256 (an unchanged build uploads nothing).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::aws::{Aws, AwsError};
use crate::digest::sha256_hex;
use crate::stage::Architecture;

/// `provided.al2023` ships glibc 2.34: the binary must not need a newer one.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot run `cargo` to build the app: {0}; install Rust with rustup")]
    Cargo(std::io::Error),
    #[error(
        "building the app's `bootstrap` failed (exit {code:?}); the compiler's messages are above"
    )]
    BuildFailed { code: Option<i32> },
    #[error(
        "cargo built no `bootstrap` executable; check `app/Cargo.toml` declares the `bootstrap` bin"
    )]
    NoExecutable,
    #[error(
        "removing this workspace's release build units from the target directory (`cargo clean --release --workspace`) failed (exit {code:?}); cargo's messages are above; run it yourself, then deploy again"
    )]
    CleanFailed { code: Option<i32> },
    #[error(
        "another checkout of the project rebuilt this workspace's crates in `{}` while this one was building them; deploy again, or give this checkout a target directory of its own (CARGO_TARGET_DIR)",
        output_dir.display()
    )]
    SharedTargetBusy { output_dir: PathBuf },
    #[error(
        "cannot copy the built bootstrap `{}` to `{}`: {source}; check that the project folder is writable",
        from.display(), to.display()
    )]
    CopyOut {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the stage wants `{wanted}` but this machine builds `{host}`; set `function.architecture: {host}` in the stage file, or build on an `{wanted}` machine"
    )]
    Architecture {
        wanted: &'static str,
        host: &'static str,
    },
    #[error(
        "`{}` needs glibc {found}, newer than the {}.{} of Lambda's provided.al2023; build on an older system or for a musl target",
        path.display(), MAX_GLIBC.0, MAX_GLIBC.1
    )]
    Glibc { path: PathBuf, found: String },
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot zip the bootstrap: {0}")]
    Zip(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// A zipped `bootstrap`, named by its content.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub zip: Vec<u8>,
    pub sha256: String,
    /// `bootstrap/<sha256>.zip`
    pub key: String,
}

impl Artifact {
    pub fn from_binary(binary: &[u8]) -> Result<Self, ArtifactError> {
        Ok(Self::from_zip(deterministic_zip(binary)?))
    }

    fn from_zip(zip: Vec<u8>) -> Self {
        let sha256 = sha256_hex(&zip);
        Self {
            key: format!("bootstrap/{sha256}.zip"),
            zip,
            sha256,
        }
    }

    /// The artifact of a built binary: checked (glibc) and zipped once per
    /// distinct binary. The zip is kept beside the binary
    /// (`bootstrap.deployer.zip`, stamped with the binary's SHA-256) so an
    /// unchanged build costs one hash, not a recompression.
    pub fn for_binary(binary_path: &Path) -> Result<Self, ArtifactError> {
        let binary = std::fs::read(binary_path).map_err(|source| ArtifactError::Read {
            path: binary_path.to_owned(),
            source,
        })?;
        let binary_sha = sha256_hex(&binary);
        let cache = binary_path.with_extension("deployer.zip");
        let stamp = binary_path.with_extension("deployer.zip.source");
        if std::fs::read_to_string(&stamp).is_ok_and(|s| s == binary_sha)
            && let Ok(zip) = std::fs::read(&cache)
        {
            return Ok(Self::from_zip(zip));
        }
        check_glibc(binary_path, &binary)?;
        let artifact = Self::from_binary(&binary)?;
        // A cache that cannot be written only costs time next run.
        if std::fs::write(&cache, &artifact.zip).is_ok() {
            drop(std::fs::write(&stamp, &binary_sha));
        }
        Ok(artifact)
    }
}

/// A zip with one entry, `bootstrap`, mode 0755, dated 1980-01-01: the same
/// binary always gives the same bytes.
pub fn deterministic_zip(binary: &[u8]) -> Result<Vec<u8>, ArtifactError> {
    use zip::write::SimpleFileOptions;
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
        .unix_permissions(0o755)
        .last_modified_time(zip::DateTime::default());
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("bootstrap", options)
        .map_err(|e| ArtifactError::Zip(e.to_string()))?;
    writer
        .write_all(binary)
        .map_err(|e| ArtifactError::Zip(e.to_string()))?;
    let cursor = writer
        .finish()
        .map_err(|e| ArtifactError::Zip(e.to_string()))?;
    Ok(cursor.into_inner())
}

fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "x86_64",
        other => other,
    }
}

/// Builds `bootstrap` in release mode (stripped, see `[profile.release]`) and
/// returns the path of this checkout's own copy of it ([`BINARY_COPY`]).
/// Cargo's own progress goes to stderr unless `quiet`.
///
/// Cargo's own no-op check costs ~150 ms, most of a no-change deploy; when
/// the [`BuildStamp`] of the last build still holds, cargo is not asked.
///
/// The target directory may be shared with other checkouts of the project (a
/// global `CARGO_TARGET_DIR` or `build.target-dir`, worktrees). Cargo names
/// the workspace's own build units by paths relative to the workspace, so
/// every checkout builds into the same units, and it judges them fresh by
/// modification times: a unit that another checkout compiled last can look
/// fresh here and hold that checkout's code. So unless this checkout compiled
/// them last ([`Build::is_this_checkouts`]), the workspace's own units are
/// removed (`cargo clean --release --workspace`; the dependencies stay) and
/// built again, and the binary is copied out of the shared folder at once.
pub fn build_bootstrap(
    project_dir: &Path,
    architecture: Architecture,
    quiet: bool,
) -> Result<PathBuf, ArtifactError> {
    let host = host_architecture();
    if architecture.as_str() != host {
        return Err(ArtifactError::Architecture {
            wanted: architecture.as_str(),
            host,
        });
    }
    // Cargo reports canonical paths: compare like with like.
    let project_dir =
        &std::fs::canonicalize(project_dir).unwrap_or_else(|_| project_dir.to_owned());
    let stamp_path = project_dir.join(STAMP_FILE);
    let previous = BuildStamp::read(&stamp_path);
    if let Some(binary) = previous.as_ref().and_then(|s| s.fresh_binary(project_dir)) {
        return Ok(binary);
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Units rewritten since this checkout's last build were compiled by
    // someone else: rebuild them before cargo judges them by their times.
    let mut cleaned = previous.as_ref().is_some_and(|s| !s.units_unchanged());
    if cleaned {
        cargo_clean_workspace(project_dir, quiet)?;
    }
    let build = loop {
        let build = cargo_build(project_dir, quiet)?;
        if build.is_this_checkouts(project_dir, previous.as_ref()) {
            break build;
        }
        if cleaned {
            return Err(ArtifactError::SharedTargetBusy {
                output_dir: build.output_dir().to_owned(),
            });
        }
        cargo_clean_workspace(project_dir, quiet)?;
        cleaned = true;
    };
    let binary = copy_out(project_dir, &build.executable)?;
    // A file edited while cargo ran may not be in the binary: no stamp then,
    // so the next deploy asks cargo again.
    match BuildStamp::after_build(project_dir, &binary, &build) {
        Some(stamp) if stamp.sources_older_than(started) => {
            stamp.write(&stamp_path);
        }
        _ => drop(std::fs::remove_file(&stamp_path)),
    }
    Ok(binary)
}

/// Where the last build's stamp is kept (git-ignored).
pub const STAMP_FILE: &str = ".deployer/bootstrap-build.json";

/// This checkout's own copy of the last `bootstrap` it built (git-ignored):
/// what `up` deploys. The one in the target directory may be rewritten by
/// another checkout that shares it.
pub const BINARY_COPY: &str = ".deployer/bootstrap";

/// Copies the binary cargo just built to [`BINARY_COPY`] (via a temporary
/// file, so a copy cut short is never taken for a build).
fn copy_out(project_dir: &Path, executable: &Path) -> Result<PathBuf, ArtifactError> {
    let to = project_dir.join(BINARY_COPY);
    let partial = to.with_extension("partial");
    let copy = || -> std::io::Result<()> {
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(executable, &partial)?;
        std::fs::rename(&partial, &to)
    };
    copy().map_err(|source| ArtifactError::CopyOut {
        from: executable.to_owned(),
        to: to.clone(),
        source,
    })?;
    Ok(to)
}

/// What a cargo build of `bootstrap` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// `<target>/release/bootstrap`, with cargo's dep-info (`bootstrap.d`) beside it.
    pub executable: PathBuf,
    /// The build units of the workspace's own crates.
    pub units: Vec<Unit>,
}

/// One build unit of a workspace crate, as cargo reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Cargo found it up to date and did not compile it.
    pub fresh: bool,
    /// The files it produced (rlib, rmeta, executable).
    pub files: Vec<PathBuf>,
}

impl Build {
    /// The folder cargo built into (`<target>/release`).
    pub fn output_dir(&self) -> &Path {
        self.executable.parent().unwrap_or(Path::new("."))
    }

    /// Whether this checkout compiled every workspace unit the binary was
    /// made from: compiled in this very build, or left as this checkout's
    /// last build (its stamp) left them. With no stamp, cargo's dep-info
    /// must name no file of another checkout.
    pub fn is_this_checkouts(&self, project_dir: &Path, previous: Option<&BuildStamp>) -> bool {
        let mut reused = self.units.iter().filter(|u| u.fresh).peekable();
        if reused.peek().is_none() {
            return true;
        }
        match previous {
            Some(stamp) => reused.all(|u| u.files.iter().all(|f| stamp.built_unit(f))),
            None => dep_info_sources(&self.executable).is_some_and(|sources| {
                sources
                    .iter()
                    .all(|s| is_own_source(s, project_dir, self.output_dir()))
            }),
        }
    }
}

/// The source files cargo's dep-info beside `executable` names.
fn dep_info_sources(executable: &Path) -> Option<Vec<PathBuf>> {
    let dep_info = std::fs::read_to_string(executable.with_extension("d")).ok()?;
    let (_, sources) = dep_info.split_once(": ")?;
    Some(sources.split_whitespace().map(PathBuf::from).collect())
}

/// Whether a build input belongs to this checkout: it lies in the project,
/// in the build's output folder (generated code) or in cargo's home
/// (registry sources, the same for every checkout). A file of any other
/// folder — another checkout of the project — is not this checkout's.
fn is_own_source(path: &Path, project_dir: &Path, output_dir: &Path) -> bool {
    let path = normalize(path);
    path.starts_with(project_dir)
        || path.starts_with(output_dir)
        || cargo_home().is_some_and(|home| path.starts_with(home))
}

/// `a/b/../c` → `a/c`, without asking the file system (dep-info names
/// templates as `app/src/../../templates/…`).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

/// What a release build of `bootstrap` was made from: every workspace source
/// cargo's dep-info names, the manifests and lock file, and the environment
/// that changes a build — each with its modification time and size — and the
/// binary that came out. While all of it holds, the binary is current.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildStamp {
    /// This checkout's copy of the binary ([`BINARY_COPY`]).
    binary: PathBuf,
    binary_meta: (u128, u64),
    /// The folder cargo built into (`<target>/release`).
    output_dir: PathBuf,
    inputs: Vec<(PathBuf, (u128, u64))>,
    /// The compiler binary and rustup's settings: they change when the
    /// toolchain is updated or switched.
    toolchain_files: Vec<(PathBuf, (u128, u64))>,
    /// The files of the workspace's build units as this build left them in
    /// the target directory: another checkout sharing it rewrites them.
    units: Vec<(PathBuf, (u128, u64))>,
    env: Vec<(String, String)>,
    /// `rustc -vV` of the toolchain that built it. Its compiler binary and
    /// rustup's settings are `toolchain_files`, so a toolchain update or
    /// switch makes the stamp stale without running `rustc` on every deploy.
    toolchain: String,
}

impl BuildStamp {
    fn read(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    fn write(&self, path: &Path) {
        // A stamp that cannot be written only costs a cargo call next time.
        if let (Some(dir), Ok(json)) = (path.parent(), serde_json::to_vec(self)) {
            drop(std::fs::create_dir_all(dir));
            drop(std::fs::write(path, json));
        }
    }

    /// The stamp of `binary`, this checkout's copy of what `build` just
    /// built in `project_dir`; `None` if cargo's dep-info is missing (then
    /// cargo is asked every time).
    fn after_build(project_dir: &Path, binary: &Path, build: &Build) -> Option<Self> {
        let mut files = dep_info_sources(&build.executable)?;
        for manifest in [
            "Cargo.toml",
            "Cargo.lock",
            "app/Cargo.toml",
            ".cargo/config.toml",
            "rust-toolchain.toml",
            "rust-toolchain",
        ] {
            files.push(project_dir.join(manifest));
        }
        files.sort();
        files.dedup();
        let toolchain = Toolchain::of(project_dir)?;
        Some(Self {
            binary: binary.to_owned(),
            binary_meta: meta(binary)?,
            output_dir: build.output_dir().to_owned(),
            inputs: with_meta(files),
            toolchain_files: with_meta(toolchain.files),
            units: with_meta(
                build
                    .units
                    .iter()
                    .flat_map(|u| u.files.iter().cloned())
                    .collect(),
            ),
            env: build_env(),
            toolchain: toolchain.version,
        })
    }

    /// Whether every input but the build's own generated files (a build
    /// script's output, rewritten by this very build) was last modified
    /// before `started` (ns since the epoch).
    fn sources_older_than(&self, started: u128) -> bool {
        self.inputs
            .iter()
            .filter(|(f, _)| !normalize(f).starts_with(&self.output_dir))
            .all(|(_, (modified, _))| *modified < started)
    }

    /// Whether this build left `file` (a unit's output) as it is now.
    fn built_unit(&self, file: &Path) -> bool {
        self.units
            .iter()
            .any(|(f, m)| f == file && meta(f).as_ref() == Some(m))
    }

    /// Whether the workspace's units in the target directory are still the
    /// ones this build left.
    fn units_unchanged(&self) -> bool {
        self.units.iter().all(|(f, m)| meta(f).as_ref() == Some(m))
    }

    /// The binary, if nothing it was built from has changed since and it
    /// and its sources lie in `project_dir` (a stamp naming another
    /// checkout's files — copied along, or from a shared target directory —
    /// says nothing about this one's).
    fn fresh_binary(&self, project_dir: &Path) -> Option<PathBuf> {
        (self.binary.starts_with(project_dir)
            && meta(&self.binary)? == self.binary_meta
            && self
                .inputs
                .iter()
                .all(|(f, _)| is_own_source(f, project_dir, &self.output_dir))
            && unchanged(&self.inputs)
            && unchanged(&self.toolchain_files)
            && build_env() == self.env)
            .then(|| self.binary.clone())
    }
}

/// Files with their modification times and sizes; a missing file is (0, 0).
fn with_meta(files: Vec<PathBuf>) -> Vec<(PathBuf, (u128, u64))> {
    files
        .into_iter()
        .map(|f| {
            let m = meta(&f).unwrap_or((0, 0));
            (f, m)
        })
        .collect()
}

/// Whether every file still has the time and size recorded (missing files
/// are (0, 0) both then and now).
fn unchanged(files: &[(PathBuf, (u128, u64))]) -> bool {
    files.iter().all(|(f, m)| meta(f).unwrap_or((0, 0)) == *m)
}

/// The toolchain cargo builds with in a project.
struct Toolchain {
    /// `rustc -vV`.
    version: String,
    /// The compiler binary and rustup's settings: they change when the
    /// toolchain is updated or switched.
    files: Vec<PathBuf>,
}

impl Toolchain {
    fn of(project_dir: &Path) -> Option<Self> {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let run = |args: &[&str]| {
            let out = Command::new(&rustc)
                .current_dir(project_dir)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let version = run(&["-vV"])?;
        let sysroot = PathBuf::from(run(&["--print", "sysroot"])?);
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".rustup")));
        let mut files = vec![sysroot.join("bin/rustc")];
        files.extend(rustup_home.map(|home| home.join("settings.toml")));
        Some(Self { version, files })
    }
}

/// Modification time (ns) and size; `None` for a missing file.
fn meta(path: &Path) -> Option<(u128, u64)> {
    let m = std::fs::metadata(path).ok()?;
    let modified = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((modified, m.len()))
}

/// The environment variables that change what cargo builds.
fn build_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "RUSTFLAGS"
                    | "CARGO_ENCODED_RUSTFLAGS"
                    | "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "CARGO_TARGET_DIR"
                    | "RUSTUP_TOOLCHAIN"
                    | "CARGO_HOME"
            ) || k.starts_with("CARGO_PROFILE_")
                || k.starts_with("CARGO_BUILD_")
        })
        .collect();
    env.sort();
    env
}

fn cargo_build(project_dir: &Path, quiet: bool) -> Result<Build, ArtifactError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(project_dir)
        .args([
            "build",
            "--release",
            "--locked",
            "--bin",
            "bootstrap",
            "--message-format=json-render-diagnostics",
        ])
        .args(quiet.then_some("--quiet"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .map_err(ArtifactError::Cargo)?;
    let mut executable = None;
    let mut units = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            if message["target"]["name"] == "bootstrap"
                && let Some(path) = message["executable"].as_str()
            {
                executable = Some(PathBuf::from(path));
            }
            if message["manifest_path"]
                .as_str()
                .is_some_and(|m| Path::new(m).starts_with(project_dir))
            {
                units.push(Unit {
                    // Not said: taken as reused, which asks for proof.
                    fresh: message["fresh"].as_bool().unwrap_or(true),
                    files: message["filenames"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(PathBuf::from))
                        .collect(),
                });
            }
        }
    }
    let status = child.wait().map_err(ArtifactError::Cargo)?;
    if !status.success() {
        return Err(ArtifactError::BuildFailed {
            code: status.code(),
        });
    }
    Ok(Build {
        executable: executable.ok_or(ArtifactError::NoExecutable)?,
        units,
    })
}

/// Removes the release build units of the workspace's own crates from the
/// target directory (the dependencies' stay), so the next build compiles
/// them from this checkout.
fn cargo_clean_workspace(project_dir: &Path, quiet: bool) -> Result<(), ArtifactError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(project_dir)
        .args(["clean", "--release", "--workspace"])
        .args(quiet.then_some("--quiet"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .status()
        .map_err(ArtifactError::Cargo)?;
    if status.success() {
        Ok(())
    } else {
        Err(ArtifactError::CleanFailed {
            code: status.code(),
        })
    }
}

/// Refuses a binary that needs a newer glibc than Lambda's.
fn check_glibc(path: &Path, binary: &[u8]) -> Result<(), ArtifactError> {
    if let Some((major, minor)) = newest_glibc(binary)
        && (major, minor) > MAX_GLIBC
    {
        return Err(ArtifactError::Glibc {
            path: path.to_owned(),
            found: format!("{major}.{minor}"),
        });
    }
    Ok(())
}

/// The newest `GLIBC_x.y` symbol version a binary names (its version needs
/// live as strings in `.dynstr`), or `None` for a static binary.
pub fn newest_glibc(binary: &[u8]) -> Option<(u32, u32)> {
    const TAG: &[u8] = b"GLIBC_";
    let mut newest = None;
    let mut rest = binary;
    while let Some(at) = rest.windows(TAG.len()).position(|w| w == TAG) {
        let after = &rest[at + TAG.len()..];
        let len = after
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        if let Ok(text) = std::str::from_utf8(&after[..len]) {
            let mut parts = text.split('.').map(str::parse::<u32>);
            if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
                newest = newest.max(Some((major, minor)));
            }
        }
        rest = &after[len..];
    }
    newest
}

/// The name of the artifacts bucket of an account and region.
pub fn bucket_name(account: &str, region: &str) -> String {
    format!("deployer-artifacts-{account}-{region}")
}

/// The artifacts bucket of this account and region: private, encrypted and
/// TLS-only, created on first use. Its name is predictable, so every call on
/// it says which account must own it (`ExpectedBucketOwner`): a bucket of that
/// name that belongs to someone else is refused, never written to.
pub async fn ensure_bucket(aws: &Aws, account: &str) -> Result<String, AwsError> {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    let name = bucket_name(account, &aws.region);
    match fetch_bucket_answer(aws, &name, account).await? {
        BucketAnswer::Owned => return Ok(name),
        BucketAnswer::Forbidden => {
            return Err(AwsError::foreign_bucket(
                "s3:ListBucket",
                aws.target(),
                &name,
                account,
            ));
        }
        BucketAnswer::Missing => {}
    }
    let mut create = aws.s3.create_bucket().bucket(&name);
    if aws.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(aws.region.as_str()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e) => {
            let err = AwsError::from_sdk("s3:CreateBucket", aws.target(), e);
            // Another run created it a moment ago: fine.
            if !err.is_code("BucketAlreadyOwnedByYou") {
                return Err(err);
            }
        }
    }
    aws.s3
        .put_public_access_block()
        .bucket(&name)
        .expected_bucket_owner(account)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:PutPublicAccessBlock", aws.target(), e))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .map_err(|e| AwsError::other("s3:PutBucketEncryption", aws.target(), e))?,
        )
        .build();
    aws.s3
        .put_bucket_encryption()
        .bucket(&name)
        .expected_bucket_owner(account)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .map_err(|e| AwsError::other("s3:PutBucketEncryption", aws.target(), e))?,
        )
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:PutBucketEncryption", aws.target(), e))?;
    aws.s3
        .put_bucket_policy()
        .bucket(&name)
        .expected_bucket_owner(account)
        .policy(tls_only_policy(&name))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:PutBucketPolicy", aws.target(), e))?;
    Ok(name)
}

/// The artifacts bucket's policy: no request without TLS.
pub fn tls_only_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } }
        }]
    })
    .to_string()
}

/// What `HeadBucket` with `ExpectedBucketOwner` said about the artifacts bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketAnswer {
    /// 200: it exists and belongs to the expected account.
    Owned,
    /// 404: nobody has it yet.
    Missing,
    /// 403: it exists and belongs to another account (or is denied to us).
    Forbidden,
}

/// Asks S3 whether `bucket` exists and belongs to `account`.
pub async fn fetch_bucket_answer(
    aws: &Aws,
    bucket: &str,
    account: &str,
) -> Result<BucketAnswer, AwsError> {
    match aws
        .s3
        .head_bucket()
        .bucket(bucket)
        .expected_bucket_owner(account)
        .send()
        .await
    {
        Ok(_) => Ok(BucketAnswer::Owned),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            match status {
                Some(404) => Ok(BucketAnswer::Missing),
                Some(403) => Ok(BucketAnswer::Forbidden),
                _ => Err(AwsError::from_sdk("s3:ListBucket", aws.target(), e)),
            }
        }
    }
}

/// Uploads `bytes` under `key` unless an object is already there (keys are
/// content hashes, so an existing key holds the same bytes). Returns whether
/// it uploaded.
pub async fn upload_if_missing(
    aws: &Aws,
    bucket: &str,
    owner: &str,
    key: &str,
    bytes: &[u8],
) -> Result<bool, AwsError> {
    if aws
        .s3
        .head_object()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .key(key)
        .send()
        .await
        .is_ok()
    {
        return Ok(false);
    }
    aws.s3
        .put_object()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .key(key)
        .body(bytes.to_vec().into())
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:PutObject", aws.target(), e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_are_byte_identical_and_executable() {
        let a = deterministic_zip(b"#!/bin/sh\necho hi\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = deterministic_zip(b"#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(a, b);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let date = entry.last_modified().unwrap();
        assert_eq!((date.year(), date.month(), date.day()), (1980, 1, 1));
    }

    #[test]
    fn artifact_key_is_the_zip_hash() {
        let artifact = Artifact::from_binary(b"binary").unwrap();
        assert_eq!(artifact.key, format!("bootstrap/{}.zip", artifact.sha256));
        assert_eq!(artifact.sha256.len(), 64);
        assert_ne!(
            Artifact::from_binary(b"other").unwrap().sha256,
            artifact.sha256
        );
    }

    #[test]
    fn the_zip_is_cached_beside_the_binary_and_redone_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bootstrap");
        std::fs::write(&binary, b"version one").unwrap();
        let first = Artifact::for_binary(&binary).unwrap();
        assert!(dir.path().join("bootstrap.deployer.zip").exists());
        assert_eq!(Artifact::for_binary(&binary).unwrap().key, first.key);
        std::fs::write(&binary, b"version two").unwrap();
        let second = Artifact::for_binary(&binary).unwrap();
        assert_ne!(second.key, first.key);
        assert_eq!(
            second.key,
            Artifact::from_binary(b"version two").unwrap().key
        );
    }

    #[test]
    fn a_binary_needing_a_newer_glibc_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bootstrap");
        std::fs::write(&binary, b"\0GLIBC_2.2.5\0GLIBC_2.39\0").unwrap();
        let err = Artifact::for_binary(&binary).unwrap_err().to_string();
        assert!(err.contains("needs glibc 2.39"), "{err}");
    }

    /// A project with one source, and a "build" of it: the executable in
    /// `target/release` with cargo's dep-info naming `sources`, and this
    /// checkout's copy of it.
    fn built_project(project: &Path, sources: &[&Path]) -> (Build, PathBuf) {
        std::fs::create_dir_all(project.join("app/src")).unwrap();
        std::fs::write(project.join("Cargo.toml"), "[workspace]").unwrap();
        std::fs::write(project.join("Cargo.lock"), "# lock").unwrap();
        std::fs::write(project.join("app/src/lib.rs"), "fn a() {}").unwrap();
        let executable = project.join("target/release/bootstrap");
        std::fs::create_dir_all(executable.parent().unwrap()).unwrap();
        std::fs::write(&executable, "binary").unwrap();
        let names: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
        std::fs::write(
            executable.with_extension("d"),
            format!("{}: {}\n", executable.display(), names.join(" ")),
        )
        .unwrap();
        let rlib = project.join("target/release/deps/libcloudalbum-0123.rlib");
        std::fs::create_dir_all(rlib.parent().unwrap()).unwrap();
        std::fs::write(&rlib, "rlib").unwrap();
        let build = Build {
            executable: executable.clone(),
            units: vec![
                Unit {
                    fresh: false,
                    files: vec![rlib],
                },
                Unit {
                    fresh: false,
                    files: vec![executable.clone()],
                },
            ],
        };
        let copy = copy_out(project, &executable).unwrap();
        (build, copy)
    }

    #[test]
    fn a_build_stamp_holds_until_a_source_manifest_or_the_binary_changes() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path();
        let source = project.join("app/src/lib.rs");
        let (build, binary) = built_project(project, &[&source]);
        assert_eq!(binary, project.join(BINARY_COPY));
        assert_eq!(std::fs::read(&binary).unwrap(), b"binary");
        let stamp = BuildStamp::after_build(project, &binary, &build).unwrap();
        assert_eq!(stamp.fresh_binary(project), Some(binary.clone()));
        assert!(stamp.inputs.iter().any(|(p, _)| p == &source));

        // An edited source (different size) makes it stale.
        std::fs::write(&source, "fn a() { b() }").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
        let stamp = BuildStamp::after_build(project, &binary, &build).unwrap();
        // So does a changed lock file, and a replaced binary.
        std::fs::write(project.join("Cargo.lock"), "# lock, changed").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
        let stamp = BuildStamp::after_build(project, &binary, &build).unwrap();
        std::fs::write(&binary, "other binary").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
        // A new `.cargo/config.toml` appears: stale too.
        let stamp = BuildStamp::after_build(project, &binary, &build).unwrap();
        std::fs::create_dir_all(project.join(".cargo")).unwrap();
        std::fs::write(project.join(".cargo/config.toml"), "[build]").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
    }

    #[test]
    fn a_build_stamp_naming_another_checkouts_files_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (this, other) = (dir.path().join("b"), dir.path().join("a"));
        std::fs::create_dir_all(other.join("templates")).unwrap();
        let foreign = other.join("templates/layout.hbs");
        std::fs::write(&foreign, "<html>").unwrap();
        // As cargo's dep-info names a template, through `..`, both ways.
        let own = this.join("app/src/../../templates/layout.hbs");
        let escaping = this.join("app/src/../../../a/templates/layout.hbs");
        for (source, holds) in [(&own, true), (&foreign, false), (&escaping, false)] {
            let (build, binary) = built_project(&this, &[&this.join("app/src/lib.rs"), source]);
            let stamp = BuildStamp::after_build(&this, &binary, &build).unwrap();
            assert_eq!(
                stamp.fresh_binary(&this).is_some(),
                holds,
                "{}",
                source.display()
            );
        }
        // Generated code in the build's output folder is the build's own.
        let generated = this.join("target/release/build/cloudalbum-1/out/gazetteer.bin");
        let (build, binary) = built_project(&this, &[&generated]);
        let stamp = BuildStamp::after_build(&this, &binary, &build).unwrap();
        assert_eq!(stamp.fresh_binary(&this), Some(binary.clone()));
        // Rewritten by the build itself, it does not stop the stamp being
        // written; a source edited during the build does. (File times come
        // from a coarse clock: the pauses keep them apart.)
        let pause = || std::thread::sleep(std::time::Duration::from_millis(50));
        let (build, binary) = built_project(&this, &[&generated]);
        pause();
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        pause();
        std::fs::create_dir_all(generated.parent().unwrap()).unwrap();
        std::fs::write(&generated, "table").unwrap();
        let stamp = BuildStamp::after_build(&this, &binary, &build).unwrap();
        assert!(stamp.sources_older_than(started));
        pause();
        std::fs::write(this.join("Cargo.lock"), "# lock, edited").unwrap();
        let stamp = BuildStamp::after_build(&this, &binary, &build).unwrap();
        assert!(!stamp.sources_older_than(started));
        // A stamp copied along with the project, naming the other copy's
        // binary, says nothing about this one.
        let copied = dir.path().join("c");
        std::fs::create_dir_all(&copied).unwrap();
        assert_eq!(stamp.fresh_binary(&copied), None);
    }

    #[test]
    fn reused_units_are_this_checkouts_only_if_its_last_build_left_them() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("b");
        let source = project.join("app/src/lib.rs");
        let (mut build, binary) = built_project(&project, &[&source]);
        // Everything compiled by this build: this checkout's.
        assert!(build.is_this_checkouts(&project, None));
        let stamp = BuildStamp::after_build(&project, &binary, &build).unwrap();
        assert!(stamp.units_unchanged());
        // Reused as the last build of this checkout left them.
        for unit in &mut build.units {
            unit.fresh = true;
        }
        assert!(build.is_this_checkouts(&project, Some(&stamp)));
        // With no stamp, the dep-info decides: this checkout's files only.
        assert!(build.is_this_checkouts(&project, None));
        let foreign = dir.path().join("a/templates/layout.hbs");
        std::fs::write(
            build.executable.with_extension("d"),
            format!(
                "{}: {} {}\n",
                build.executable.display(),
                source.display(),
                foreign.display()
            ),
        )
        .unwrap();
        assert!(!build.is_this_checkouts(&project, None));
        // Another checkout rebuilt the library into the shared folder.
        std::fs::write(&build.units[0].files[0], "another checkout's rlib").unwrap();
        assert!(!stamp.units_unchanged());
        assert!(!build.is_this_checkouts(&project, Some(&stamp)));
        // A unit the stamp never saw is not taken on trust either.
        build.units[0].files = vec![project.join("target/release/deps/libnew-1.rlib")];
        assert!(!build.is_this_checkouts(&project, Some(&stamp)));
    }

    #[test]
    fn the_binary_in_the_target_directory_may_change_but_not_this_checkouts_copy() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path();
        let source = project.join("app/src/lib.rs");
        let (build, binary) = built_project(project, &[&source]);
        let stamp = BuildStamp::after_build(project, &binary, &build).unwrap();
        std::fs::write(&build.executable, "another checkout's binary").unwrap();
        assert_eq!(stamp.fresh_binary(project), Some(binary.clone()));
        assert_eq!(std::fs::read(&binary).unwrap(), b"binary");
        assert!(!stamp.units_unchanged());
    }

    #[test]
    fn paths_are_normalized_without_the_file_system() {
        assert_eq!(
            normalize(Path::new("/w/b/app/src/../../templates/x.hbs")),
            PathBuf::from("/w/b/templates/x.hbs")
        );
        assert_eq!(
            normalize(Path::new("/w/b/app/./src/../../../a/t")),
            PathBuf::from("/w/a/t")
        );
    }

    #[test]
    fn a_build_stamp_records_the_toolchain_and_goes_stale_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path();
        let (build, binary) = built_project(project, &[]);
        let mut stamp = BuildStamp::after_build(project, &binary, &build).unwrap();
        assert!(stamp.toolchain.starts_with("rustc "), "{}", stamp.toolchain);
        assert!(stamp.toolchain.contains("host: "), "{}", stamp.toolchain);
        assert_eq!(stamp.fresh_binary(project), Some(binary.clone()));
        // An updated compiler (another modification time) makes it stale.
        let compiler = stamp
            .toolchain_files
            .iter_mut()
            .find(|(path, _)| path.ends_with("bin/rustc"))
            .unwrap();
        compiler.1.0 += 1;
        assert_eq!(stamp.fresh_binary(project), None);
    }

    #[test]
    fn newest_glibc_version_is_found() {
        let bytes = b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0";
        assert_eq!(newest_glibc(bytes), Some((2, 34)));
        assert_eq!(newest_glibc(b"static binary"), None);
        assert!(newest_glibc(b"\0GLIBC_2.38\0").unwrap() > MAX_GLIBC);
    }
}
