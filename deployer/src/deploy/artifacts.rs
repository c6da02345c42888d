//! The function's code: build the app's `bootstrap` in release mode, check it
//! runs on Lambda's `provided.al2023`, zip it deterministically, and upload it
//! to the artifacts bucket under its SHA-256 (an unchanged build uploads nothing).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::aws::{Aws, AwsError};
use crate::digest::sha256_hex;
use crate::stage::{Architecture, BuildProfile};

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
    #[error(
        "the `bootstrap` in the target directory `{}` was built from another checkout (`{}`) while this one built: both share that directory (CARGO_TARGET_DIR or build.target-dir); run the command again, or give each checkout a target directory of its own",
        binary.display(), other.display()
    )]
    ForeignBuild { binary: PathBuf, other: PathBuf },
    #[error("cannot zip the bootstrap: {0}")]
    Zip(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// A zipped `bootstrap`, named by its content.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub zip: Vec<u8>,
    /// The size of the `bootstrap` in it.
    pub unzipped_bytes: u64,
    pub sha256: String,
    /// `bootstrap/<sha256>.zip`
    pub key: String,
}

impl Artifact {
    pub fn from_binary(binary: &[u8]) -> Result<Self, ArtifactError> {
        Ok(Self::from_zip(deterministic_zip(binary)?, binary.len()))
    }

    fn from_zip(zip: Vec<u8>, unzipped_bytes: usize) -> Self {
        let sha256 = sha256_hex(&zip);
        Self {
            unzipped_bytes: u64::try_from(unzipped_bytes).unwrap_or(u64::MAX),
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
            return Ok(Self::from_zip(zip, binary.len()));
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

/// Builds `bootstrap` with the stage's cargo profile (`release`: stripped, fat
/// LTO, see `[profile.release]`; `fast`: no LTO, incremental) and returns its
/// path. Cargo's own progress goes to stderr unless `quiet`.
///
/// Cargo's own no-op check costs ~150 ms, most of a no-change deploy; when
/// the [`BuildStamp`] of the last build with that profile still holds, cargo
/// is not asked.
pub fn build_bootstrap(
    project_dir: &Path,
    architecture: Architecture,
    profile: BuildProfile,
    quiet: bool,
) -> Result<PathBuf, ArtifactError> {
    build_bootstrap_in(project_dir, architecture, profile, quiet, None)
}

/// [`build_bootstrap`] into `target_dir` (`--target-dir`) instead of the
/// target directory cargo's configuration names.
pub fn build_bootstrap_in(
    project_dir: &Path,
    architecture: Architecture,
    profile: BuildProfile,
    quiet: bool,
    target_dir: Option<&Path>,
) -> Result<PathBuf, ArtifactError> {
    let host = host_architecture();
    if architecture.as_str() != host {
        return Err(ArtifactError::Architecture {
            wanted: architecture.as_str(),
            host,
        });
    }
    let stamp_path = project_dir.join(stamp_file(profile));
    if let Some(binary) = BuildStamp::read(&stamp_path).and_then(|s| s.fresh_binary(project_dir)) {
        return Ok(binary);
    }
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    };
    let mut started = now();
    let mut binary = cargo_build(project_dir, profile, quiet, target_dir)?;
    if let Some(other) = built_from_elsewhere(&binary, project_dir) {
        // Cargo names the workspace's own build units by paths relative to
        // the workspace, so checkouts sharing a target directory share them,
        // and it judges them fresh by the modification times of the files
        // their last build named: another checkout's. Newer times on this
        // checkout's copies of those files make cargo rebuild the units here.
        touch_sources(&binary, &other, project_dir);
        started = now();
        binary = cargo_build(project_dir, profile, quiet, target_dir)?;
        if let Some(other) = built_from_elsewhere(&binary, project_dir) {
            return Err(ArtifactError::ForeignBuild { binary, other });
        }
    }
    // A file edited while cargo ran may not be in the binary: no stamp then,
    // so the next deploy asks cargo again.
    if let Some(stamp) = BuildStamp::after_build(project_dir, &binary)
        && stamp
            .inputs
            .iter()
            .all(|(_, (modified, _))| *modified < started)
    {
        stamp.write(&stamp_path);
    }
    Ok(binary)
}

/// The binary's main source, relative to the project: a directory holding
/// it is a checkout of this project.
pub const ENTRY_SOURCE: &str = "app/entry/src/bootstrap.rs";

/// The paths a dep-info (`bootstrap.d`) names as the binary's sources.
/// `None` when there is no dep-info.
fn dep_info_sources(binary: &Path) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    let (_, sources) = text.split_once(": ")?;
    Some(sources.split_whitespace().map(PathBuf::from).collect())
}

/// Another checkout of this project whose files `binary` was last compiled
/// from, per its dep-info; `None` when every source it names is this
/// checkout's (or a crate's from the registry), or there is no dep-info.
///
/// Cargo writes the sources of a workspace crate that lie outside its
/// package (the pages' `templates/`, included from `app/pages`) as absolute
/// paths: they name the checkout that last compiled the crate.
pub fn built_from_elsewhere(binary: &Path, project_dir: &Path) -> Option<PathBuf> {
    let ours = canonical(project_dir);
    let mut checked = std::collections::HashSet::new();
    for source in dep_info_sources(binary).unwrap_or_default() {
        if source.starts_with(&ours) || source.starts_with(project_dir) {
            continue;
        }
        for dir in source.ancestors().skip(1) {
            if !checked.insert(dir.to_owned()) {
                break;
            }
            if dir.join(ENTRY_SOURCE).is_file() && canonical(dir) != ours {
                return Some(dir.to_owned());
            }
        }
    }
    None
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// Gives this checkout's copy of every workspace source the binary's
/// dep-info names (under this checkout or under `other`) the current time,
/// so cargo sees them newer than the units last built from `other`: its
/// freshness check compares times, not contents, so a file that differs
/// between the checkouts but is older here would pass as built.
fn touch_sources(binary: &Path, other: &Path, project_dir: &Path) {
    let ours = canonical(project_dir);
    let now = std::time::SystemTime::now();
    for source in dep_info_sources(binary).unwrap_or_default() {
        let relative = source
            .strip_prefix(other)
            .or_else(|_| source.strip_prefix(&ours))
            .or_else(|_| source.strip_prefix(project_dir));
        let Ok(relative) = relative else {
            continue;
        };
        // A file this checkout lacks or cannot touch is left to cargo, which
        // then sees the unit's inputs changed all the same.
        if let Ok(file) = std::fs::OpenOptions::new()
            .append(true)
            .open(project_dir.join(relative))
        {
            drop(file.set_modified(now));
        }
    }
}

/// Where the last build's stamp of a profile is kept (git-ignored).
pub fn stamp_file(profile: BuildProfile) -> String {
    format!(".deployer/bootstrap-build-{}.json", profile.as_str())
}

/// What a release build of `bootstrap` was made from: every workspace source
/// cargo's dep-info names, the manifests and lock file, and the environment
/// that changes a build — each with its modification time and size — and the
/// binary that came out. While all of it holds, the binary is current.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildStamp {
    /// The checkout it was made in (canonical): a stamp copied into another
    /// checkout, or written before this field, is stale there.
    project: PathBuf,
    binary: PathBuf,
    binary_meta: (u128, u64),
    inputs: Vec<(PathBuf, (u128, u64))>,
    env: Vec<(String, String)>,
    /// `rustc -vV` of the toolchain that built it. Its compiler binary and
    /// rustup's settings are among `inputs`, so a toolchain update or switch
    /// makes the stamp stale without running `rustc` on every deploy.
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

    /// The stamp of `binary`, just built in `project_dir`; `None` if cargo's
    /// dep-info is missing (then cargo is asked every time).
    fn after_build(project_dir: &Path, binary: &Path) -> Option<Self> {
        // A binary last compiled from another checkout's files is not stamped
        // here: its inputs lie outside this project.
        if built_from_elsewhere(binary, project_dir).is_some() {
            return None;
        }
        let mut files = dep_info_sources(binary)?;
        for manifest in [
            "Cargo.toml",
            "Cargo.lock",
            "app/Cargo.toml",
            "app/entry/Cargo.toml",
            "app/pages/Cargo.toml",
            ".cargo/config.toml",
            "rust-toolchain.toml",
            "rust-toolchain",
        ] {
            files.push(project_dir.join(manifest));
        }
        let toolchain = Toolchain::of(project_dir)?;
        files.extend(toolchain.files);
        files.sort();
        files.dedup();
        Some(Self {
            project: canonical(project_dir),
            binary: binary.to_owned(),
            binary_meta: meta(binary)?,
            inputs: files
                .into_iter()
                .map(|f| {
                    let m = meta(&f).unwrap_or((0, 0));
                    (f, m)
                })
                .collect(),
            env: build_env(),
            toolchain: toolchain.version,
        })
    }

    fn inputs_now(&self) -> Vec<(PathBuf, (u128, u64))> {
        // Missing files are (0, 0) both in the stamp and now.
        self.inputs
            .iter()
            .map(|(f, _)| (f.clone(), meta(f).unwrap_or((0, 0))))
            .collect()
    }

    /// The binary, if it was built in `project_dir` and nothing it was built
    /// from has changed since.
    fn fresh_binary(&self, project_dir: &Path) -> Option<PathBuf> {
        (self.project == canonical(project_dir)
            && meta(&self.binary)? == self.binary_meta
            && self.inputs_now() == self.inputs
            && build_env() == self.env)
            .then(|| self.binary.clone())
    }
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

fn cargo_build(
    project_dir: &Path,
    profile: BuildProfile,
    quiet: bool,
    target_dir: Option<&Path>,
) -> Result<PathBuf, ArtifactError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(project_dir)
        .args([
            "build",
            "--profile",
            profile.as_str(),
            "--locked",
            "--bin",
            "bootstrap",
            "--message-format=json-render-diagnostics",
        ])
        .args(quiet.then_some("--quiet"))
        .args(
            target_dir
                .map(|dir| ["--target-dir".as_ref(), dir.as_os_str()])
                .into_iter()
                .flatten(),
        )
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
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] == "compiler-artifact"
                && message["target"]["name"] == "bootstrap"
                && let Some(path) = message["executable"].as_str()
            {
                executable = Some(PathBuf::from(path));
            }
        }
    }
    let status = child.wait().map_err(ArtifactError::Cargo)?;
    if !status.success() {
        return Err(ArtifactError::BuildFailed {
            code: status.code(),
        });
    }
    executable.ok_or(ArtifactError::NoExecutable)
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
    for at in memchr::memmem::find_iter(binary, TAG) {
        let after = &binary[at + TAG.len()..];
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
    }
    newest
}

/// The name of the artifacts bucket of an account and region.
pub fn bucket_name(account: &str, region: &str) -> String {
    format!("deployer-artifacts-{account}-{region}")
}

/// Where a stack's code goes: `<stack>/bootstrap/<sha256>.zip`. One prefix
/// per stack, so keeping "the last N" is per stack and one stage's rollback
/// never depends on another's history.
pub fn code_key(stack: &str, artifact: &Artifact) -> String {
    format!("{stack}/{}", artifact.key)
}

/// How many of a stack's code artifacts are always kept (rollback needs them).
pub const KEEP_ARTIFACTS: usize = 10;
/// The object tag that marks an artifact for the lifecycle rule to expire.
pub const RETIRED_TAG: (&str, &str) = ("deployer-retired", "true");
/// Days a retired artifact stays before S3 expires it.
pub const RETIRED_EXPIRY_DAYS: i32 = 7;
/// Days an uploaded (large) template stays: it is read once, by CloudFormation.
pub const TEMPLATE_EXPIRY_DAYS: i32 = 30;

/// The artifacts bucket `name` of `account`: private, encrypted, TLS-only and
/// with its lifecycle rules, created on first use. Its default name is
/// predictable, so every call on it says which account must own it
/// (`ExpectedBucketOwner`): a bucket of that name that belongs to someone else
/// is refused, never written to.
pub async fn ensure_bucket(aws: &Aws, account: &str, name: &str) -> Result<String, AwsError> {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    let name = name.to_owned();
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
    aws.s3
        .put_bucket_lifecycle_configuration()
        .bucket(&name)
        .expected_bucket_owner(account)
        .lifecycle_configuration(
            lifecycle()
                .map_err(|e| AwsError::other("s3:PutLifecycleConfiguration", aws.target(), e))?,
        )
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:PutLifecycleConfiguration", aws.target(), e))?;
    Ok(name)
}

/// The artifacts bucket's lifecycle: retired code (tagged by [`retire_old`],
/// which always spares each stack's newest [`KEEP_ARTIFACTS`]) and uploaded
/// templates expire; unfinished uploads are aborted.
pub fn lifecycle()
-> Result<aws_sdk_s3::types::BucketLifecycleConfiguration, aws_sdk_s3::error::BuildError> {
    use aws_sdk_s3::types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
        LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, Tag,
    };
    let rule = |id: &str, filter: LifecycleRuleFilter, days: i32| {
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(filter)
            .expiration(LifecycleExpiration::builder().days(days).build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(1)
                    .build(),
            )
            .build()
    };
    BucketLifecycleConfiguration::builder()
        .rules(rule(
            "ExpireRetiredCode",
            LifecycleRuleFilter::builder()
                .tag(
                    Tag::builder()
                        .key(RETIRED_TAG.0)
                        .value(RETIRED_TAG.1)
                        .build()?,
                )
                .build(),
            RETIRED_EXPIRY_DAYS,
        )?)
        .rules(rule(
            "ExpireUploadedTemplates",
            LifecycleRuleFilter::builder().prefix("templates/").build(),
            TEMPLATE_EXPIRY_DAYS,
        )?)
        .build()
}

/// One of a stack's code artifacts, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Seconds since the epoch of its last write.
    pub written: i64,
}

/// Which of a stack's artifacts to retire: all but the [`KEEP_ARTIFACTS`]
/// most recently written, and never `current` (the code just deployed) nor
/// one in `keep` (the code of the stack's newest history records, which a
/// rollback may deploy again).
pub fn to_retire(mut listed: Vec<Listed>, current: &str, keep: &[String]) -> Vec<String> {
    listed.sort_by(|a, b| b.written.cmp(&a.written).then_with(|| a.key.cmp(&b.key)));
    listed
        .into_iter()
        .filter(|l| l.key != current)
        .skip(KEEP_ARTIFACTS.saturating_sub(1))
        .filter(|l| !keep.contains(&l.key))
        .map(|l| l.key)
        .collect()
}

/// After a deploy that changed the code: `current` is written anew (so a
/// rollback to an old artifact makes it the newest again, and clears a
/// retirement tag), then every artifact of the stack beyond the newest
/// [`KEEP_ARTIFACTS`] and not in `keep` (the history's rollback targets) is
/// tagged for the lifecycle rule to expire. Returns the keys retired.
pub async fn retire_old(
    aws: &Aws,
    bucket: &str,
    owner: &str,
    stack: &str,
    current: &str,
    keep: &[String],
) -> Result<Vec<String>, AwsError> {
    use aws_sdk_s3::types::{MetadataDirective, Tag, Tagging, TaggingDirective};
    aws.s3
        .copy_object()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .expected_source_bucket_owner(owner)
        .key(current)
        .copy_source(format!("{bucket}/{current}"))
        .metadata_directive(MetadataDirective::Replace)
        .tagging_directive(TaggingDirective::Replace)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:CopyObject", aws.target(), e))?;
    let prefix = format!("{stack}/bootstrap/");
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .prefix(&prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucket", aws.target(), e))?;
        for object in page.contents() {
            if let (Some(key), Some(written)) = (object.key(), object.last_modified()) {
                listed.push(Listed {
                    key: key.to_owned(),
                    written: written.secs(),
                });
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let retired = to_retire(listed, current, keep);
    let tag = Tag::builder()
        .key(RETIRED_TAG.0)
        .value(RETIRED_TAG.1)
        .build()
        .map_err(|e| AwsError::other("s3:PutObjectTagging", aws.target(), e))?;
    let tagging = Tagging::builder()
        .tag_set(tag)
        .build()
        .map_err(|e| AwsError::other("s3:PutObjectTagging", aws.target(), e))?;
    for key in &retired {
        aws.s3
            .put_object_tagging()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .key(key)
            .tagging(tagging.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObjectTagging", aws.target(), e))?;
    }
    Ok(retired)
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
        .customize()
        .config_override(Aws::upload_timeouts())
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

    fn listed(key: &str, written: i64) -> Listed {
        Listed {
            key: key.to_owned(),
            written,
        }
    }

    #[test]
    fn the_newest_ten_artifacts_of_a_stack_are_kept() {
        let all: Vec<Listed> = (0..14)
            .map(|i| listed(&format!("s/bootstrap/{i}.zip"), i))
            .collect();
        let retired = to_retire(all.clone(), "s/bootstrap/13.zip", &[]);
        assert_eq!(
            retired,
            ["3", "2", "1", "0"].map(|i| format!("s/bootstrap/{i}.zip"))
        );
        // The code just deployed is kept even when it is not the newest
        // (a rollback), and nine others with it.
        let retired = to_retire(all.clone(), "s/bootstrap/0.zip", &[]);
        assert_eq!(retired.len(), 4);
        assert!(!retired.contains(&"s/bootstrap/0.zip".to_owned()));
        assert!(retired.contains(&"s/bootstrap/4.zip".to_owned()));
        // Fewer than ten: nothing goes.
        let few: Vec<Listed> = (0..10).map(|i| listed(&format!("k{i}"), i)).collect();
        assert!(to_retire(few, "k0", &[]).is_empty());
        // What the history names stays, however old.
        let keep = ["s/bootstrap/1.zip".to_owned()];
        let retired = to_retire(all, "s/bootstrap/13.zip", &keep);
        assert_eq!(
            retired,
            ["3", "2", "0"].map(|i| format!("s/bootstrap/{i}.zip"))
        );
    }

    #[test]
    fn the_lifecycle_expires_retired_code_and_old_templates_only() {
        let config = lifecycle().unwrap();
        let rules = config.rules();
        assert_eq!(rules.len(), 2);
        let code = &rules[0];
        let tag = code.filter().and_then(|f| f.tag()).unwrap();
        assert_eq!((tag.key(), tag.value()), RETIRED_TAG);
        assert!(code.filter().and_then(|f| f.prefix()).is_none());
        assert_eq!(
            code.expiration()
                .and_then(aws_sdk_s3::types::LifecycleExpiration::days),
            Some(RETIRED_EXPIRY_DAYS)
        );
        assert_eq!(
            rules[1].filter().and_then(|f| f.prefix()),
            Some("templates/")
        );
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
        let cached = Artifact::for_binary(&binary).unwrap();
        assert_eq!(cached.key, first.key);
        // The unzipped size is the binary's, from the cache too.
        assert_eq!(first.unzipped_bytes, 11);
        assert_eq!(cached.unzipped_bytes, 11);
        assert_eq!(cached.zip.len(), first.zip.len());
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

    #[test]
    fn a_build_stamp_holds_until_a_source_manifest_or_the_binary_changes() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path();
        std::fs::create_dir_all(project.join("app/src")).unwrap();
        std::fs::write(project.join("Cargo.toml"), "[workspace]").unwrap();
        std::fs::write(project.join("Cargo.lock"), "# lock").unwrap();
        let source = project.join("app/src/lib.rs");
        std::fs::write(&source, "fn a() {}").unwrap();
        let binary = project.join("target/release/bootstrap");
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::write(&binary, "binary").unwrap();
        std::fs::write(
            binary.with_extension("d"),
            format!("{}: {}\n", binary.display(), source.display()),
        )
        .unwrap();
        let stamp = BuildStamp::after_build(project, &binary).unwrap();
        assert_eq!(stamp.fresh_binary(project), Some(binary.clone()));
        assert!(stamp.inputs.iter().any(|(p, _)| p == &source));

        // An edited source (different size) makes it stale.
        std::fs::write(&source, "fn a() { b() }").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
        let stamp = BuildStamp::after_build(project, &binary).unwrap();
        // So does a changed lock file, and a replaced binary.
        std::fs::write(project.join("Cargo.lock"), "# lock, changed").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
        let stamp = BuildStamp::after_build(project, &binary).unwrap();
        std::fs::write(&binary, "other binary").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
        // A new `.cargo/config.toml` appears: stale too.
        let stamp = BuildStamp::after_build(project, &binary).unwrap();
        std::fs::create_dir_all(project.join(".cargo")).unwrap();
        std::fs::write(project.join(".cargo/config.toml"), "[build]").unwrap();
        assert_eq!(stamp.fresh_binary(project), None);
    }

    #[test]
    fn a_binary_whose_sources_lie_in_another_checkout_is_foreign_and_never_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = (dir.path().join("b"), dir.path().join("a"));
        for root in [&ours, &theirs] {
            std::fs::create_dir_all(root.join("app/entry/src")).unwrap();
            std::fs::write(root.join(ENTRY_SOURCE), "fn main() {}").unwrap();
            std::fs::create_dir_all(root.join("templates")).unwrap();
            std::fs::write(root.join("templates/layout.hbs"), "page").unwrap();
        }
        let registry = dir
            .path()
            .join("cargo-home/registry/src/serde-1/src/lib.rs");
        std::fs::create_dir_all(registry.parent().unwrap()).unwrap();
        std::fs::write(&registry, "").unwrap();
        let binary = dir.path().join("target/release/bootstrap");
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::write(&binary, "binary").unwrap();
        let dep_info = |template_root: &Path| {
            std::fs::write(
                binary.with_extension("d"),
                format!(
                    "{}: {} {} {}\n",
                    binary.display(),
                    ours.join(ENTRY_SOURCE).display(),
                    template_root.join("templates/layout.hbs").display(),
                    registry.display()
                ),
            )
            .unwrap();
        };
        // Built from this checkout: a registry crate outside it is fine.
        dep_info(&ours);
        assert_eq!(built_from_elsewhere(&binary, &ours), None);
        let stamp = BuildStamp::after_build(&ours, &binary).unwrap();
        assert_eq!(stamp.fresh_binary(&ours), Some(binary.clone()));
        // A stamp copied to another checkout does not hold there.
        assert_eq!(stamp.fresh_binary(&theirs), None);

        // The template named is the other checkout's: foreign, no stamp.
        dep_info(&theirs);
        assert_eq!(built_from_elsewhere(&binary, &ours), Some(theirs.clone()));
        assert!(BuildStamp::after_build(&ours, &binary).is_none());
        // Touching makes this checkout's copies newer; theirs stay as they were.
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for root in [&ours, &theirs] {
            for file in [ENTRY_SOURCE, "templates/layout.hbs"] {
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(root.join(file))
                    .unwrap();
                f.set_modified(old).unwrap();
            }
        }
        touch_sources(&binary, &theirs, &ours);
        let modified = |path: PathBuf| std::fs::metadata(path).unwrap().modified().unwrap();
        assert!(modified(ours.join("templates/layout.hbs")) > old);
        assert!(modified(ours.join(ENTRY_SOURCE)) > old);
        assert_eq!(modified(theirs.join("templates/layout.hbs")), old);
        assert!(modified(registry.clone()) < std::time::SystemTime::now());
    }

    #[test]
    fn a_build_stamp_records_the_toolchain_and_goes_stale_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path();
        let binary = project.join("target/release/bootstrap");
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::write(&binary, "binary").unwrap();
        std::fs::write(
            binary.with_extension("d"),
            format!("{}: \n", binary.display()),
        )
        .unwrap();
        let mut stamp = BuildStamp::after_build(project, &binary).unwrap();
        assert!(stamp.toolchain.starts_with("rustc "), "{}", stamp.toolchain);
        assert!(stamp.toolchain.contains("host: "), "{}", stamp.toolchain);
        assert_eq!(stamp.fresh_binary(project), Some(binary.clone()));
        // An updated compiler (another modification time) makes it stale.
        let compiler = stamp
            .inputs
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
