//! Stage files: `stacks/<stage>.yaml` — schema, defaults and validation.
//!
//! Everything that differs between stages lives in one YAML file per stage.
//! Parsing is strict: unknown keys, wrong types and out-of-range values are
//! rejected here, before any AWS call, with the file, line, column, field and
//! the allowed values. Every default is in [`defaults`], and the README's stage
//! file reference is written from it.
//!
//! Range checks live in the value types themselves (`Capacity`, `MemoryMb`, …):
//! the YAML deserializer calls their `TryFrom` while it still knows where the
//! value sits, so the error carries the exact line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Defaults of every optional stage-file setting, in one place.
pub mod defaults {
    pub const READ_CAPACITY: u32 = 5;
    pub const WRITE_CAPACITY: u32 = 5;
    pub const CORS_ALLOWED_ORIGINS: &[&str] = &["*"];
    pub const CORS_ALLOWED_METHODS: &[&str] = &["GET", "HEAD", "PUT"];
    pub const CORS_ALLOWED_HEADERS: &[&str] = &["*"];
    pub const CORS_MAX_AGE_S: u32 = 3000;
    pub const MEMORY_MB: u32 = contract::defaults::MEMORY_MB;
    pub const TIMEOUT_S: u32 = 29;
    pub const THUMBNAIL_WIDTH: u32 = contract::defaults::THUMBNAIL_WIDTH;
    pub const THUMBNAIL_HEIGHT: u32 = contract::defaults::THUMBNAIL_HEIGHT;
    pub const MAX_UPLOAD_MB: u32 = contract::defaults::MAX_UPLOAD_MB;
    pub const LOG_RETENTION_DAYS: u32 = 14;
    pub const RETAIN_DATA: bool = false;
    /// Requests per second an API stage serves before answering 429.
    pub const API_RATE_LIMIT: u32 = 100;
    /// Requests an API stage accepts at once above the rate.
    pub const API_BURST_LIMIT: u32 = 200;
}

/// Where stage files live, relative to the project root.
pub const STACKS_DIR: &str = "stacks";

/// What went wrong reading a stage file.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(
        "stage `{stage}` has no stage file `{}`; stages that exist: {}; add `{}` or pick one of those with `--stage`",
        path.display(),
        list_or_none(existing),
        path.display()
    )]
    NotFound {
        stage: String,
        path: PathBuf,
        existing: Vec<String>,
    },
    #[error("cannot read stage file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stage file `{}` line {line} column {column}: {}{message}", path.display(), field_prefix(field.as_deref()))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// Dotted path of the offending setting, e.g. `table.read_capacity`.
        field: Option<String>,
        message: String,
    },
    #[error("stage file `{}`: {message}", path.display())]
    InvalidDocument { path: PathBuf, message: String },
    #[error(
        "stage name `{0}` is not valid: use 1 to 20 lowercase letters, digits and hyphens, starting with a letter (the stage file is `stacks/<stage>.yaml`)"
    )]
    BadStageName(String),
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none (the `stacks/` folder has no `*.yaml` file)".to_owned()
    } else {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn field_prefix(field: Option<&str>) -> String {
    field.map(|f| format!("`{f}`: ")).unwrap_or_default()
}

/// A stage's name: `dev`, `prod`, `local`, … (the stage file's base name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StageName(String);

impl StageName {
    pub fn parse(name: &str) -> Result<Self, StageError> {
        let valid = (1..=MAX_STAGE_NAME).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.ends_with('-');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(StageError::BadStageName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stage: its name, where it was read from, and its validated settings.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: StageName,
    pub path: PathBuf,
    pub config: StageConfig,
}

impl Stage {
    /// Reads `stacks/<name>.yaml` under `project_dir`.
    pub fn load(project_dir: &Path, name: &str) -> Result<Self, StageError> {
        Self::load_in(&project_dir.join(STACKS_DIR), Path::new(STACKS_DIR), name)
    }

    /// Reads `<name>.yaml` from `stacks`; messages call the folder `shown_as`.
    pub fn load_in(stacks: &Path, shown_as: &Path, name: &str) -> Result<Self, StageError> {
        let name = StageName::parse(name)?;
        let path = stacks.join(format!("{name}.yaml"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(StageError::NotFound {
                    stage: name.0,
                    path: shown_as.join(path.file_name().unwrap_or_default()),
                    existing: existing_stages(stacks),
                });
            }
            Err(source) => return Err(StageError::Read { path, source }),
        };
        let display_path = shown_as.join(format!("{name}.yaml"));
        let config = StageConfig::parse(&text, &display_path)?;
        Ok(Self {
            name,
            path: display_path,
            config,
        })
    }

    /// The CloudFormation stack of this stage: `<app>-<stage>`.
    pub fn stack_name(&self) -> String {
        format!("{}-{}", self.config.app, self.name)
    }
}

/// The stages that have a file in `stacks/`, sorted.
pub fn existing_stages(stacks_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(stacks_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            (path.extension()? == "yaml")
                .then(|| path.file_stem()?.to_str().map(str::to_owned))
                .flatten()
        })
        .collect();
    names.sort();
    names
}

/// The settings of one stage, as validated from its YAML file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Application name; the stack is `<app>-<stage>`.
    pub app: AppName,
    /// AWS region of the stage.
    pub region: Region,
    /// The AWS account the stage lives in: every command that touches AWS
    /// refuses credentials of another account.
    #[serde(default)]
    pub account_id: Option<AccountId>,
    /// An AWS-compatible endpoint (e.g. the local emulator) instead of AWS.
    #[serde(default)]
    pub endpoint_url: Option<EndpointUrl>,
    /// The bucket that holds the function's code and large templates; by
    /// default `deployer-artifacts-<account>-<region>`, created on first use.
    /// Name another one when that name is taken by someone else's account.
    #[serde(default)]
    pub artifacts_bucket: Option<BucketName>,
    #[serde(default)]
    pub table: TableConfig,
    #[serde(default)]
    pub bucket: BucketConfig,
    #[serde(default)]
    pub function: FunctionConfig,
    #[serde(default)]
    pub thumbnail: ThumbnailConfig,
    #[serde(default)]
    pub photos: PhotosConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub log_retention_days: LogRetentionDays,
    /// Keep the table and bucket when the stage is torn down (prod).
    #[serde(default = "retain_data_default")]
    pub retain_data: bool,
    #[serde(default)]
    pub tags: BTreeMap<TagKey, TagValue>,
}

fn retain_data_default() -> bool {
    defaults::RETAIN_DATA
}

impl StageConfig {
    /// Parses and validates a stage file's text; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, StageError> {
        if text.trim().is_empty() {
            return Err(StageError::InvalidDocument {
                path: path.to_owned(),
                message: "the file is empty; it needs at least `app` and `region`".to_owned(),
            });
        }
        let deserializer = serde_norway::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let field = err.path().to_string();
            let inner = err.into_inner();
            yaml_error(path, &field, &inner)
        })?;
        config.check_build_profile(path)?;
        Ok(config)
    }

    /// Builds the function with `profile` instead of the file's
    /// `function.build_profile` (`--build-profile`), under the same rule.
    pub fn with_build_profile(
        mut self,
        profile: BuildProfile,
        path: &Path,
    ) -> Result<Self, StageError> {
        self.function.build_profile = profile;
        self.check_build_profile(path)?;
        Ok(self)
    }

    /// A stage with real users (`retain_data`) ships the release build.
    fn check_build_profile(&self, path: &Path) -> Result<(), StageError> {
        if self.retain_data && self.function.build_profile != BuildProfile::Release {
            return Err(StageError::InvalidDocument {
                path: path.to_owned(),
                message: format!(
                    "`function.build_profile: {}` is for inner-loop stages, but this stage has `retain_data: true` (real users), which ships the release build; remove `build_profile`",
                    self.function.build_profile.as_str()
                ),
            });
        }
        Ok(())
    }
}

/// Turns a YAML error into a [`StageError`] with file, line, column and field.
fn yaml_error(path: &Path, field: &str, err: &serde_norway::Error) -> StageError {
    let text = err.to_string();
    let Some(location) = err.location() else {
        return StageError::InvalidDocument {
            path: path.to_owned(),
            message: text,
        };
    };
    // serde_norway renders "<path>: <message> at line L column C"; keep the message.
    let suffix = format!(" at line {} column {}", location.line(), location.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    let message = message
        .strip_prefix(&format!("{field}: "))
        .unwrap_or(message)
        .to_owned();
    let field = (!field.is_empty() && field != ".").then(|| field.replace(".?", ""));
    StageError::Invalid {
        path: path.to_owned(),
        line: location.line(),
        column: location.column(),
        field,
        message,
    }
}

// ---------------------------------------------------------------------------
// Sections

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    #[serde(default = "Capacity::default_read")]
    pub read_capacity: Capacity,
    #[serde(default = "Capacity::default_write")]
    pub write_capacity: Capacity,
    /// Point-in-time recovery; defaults to on where `retain_data` is set.
    #[serde(default)]
    pub point_in_time_recovery: Option<bool>,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            read_capacity: Capacity::default_read(),
            write_capacity: Capacity::default_write(),
            point_in_time_recovery: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// A fixed bucket name; by default CloudFormation generates a unique one.
    #[serde(default)]
    pub name: Option<BucketName>,
    #[serde(default = "cors_origins_default")]
    pub cors_allowed_origins: Vec<CorsOrigin>,
    #[serde(default = "cors_methods_default")]
    pub cors_allowed_methods: Vec<CorsMethod>,
    #[serde(default = "cors_headers_default")]
    pub cors_allowed_headers: Vec<CorsHeader>,
    #[serde(default = "cors_max_age_default")]
    pub cors_max_age: CorsMaxAge,
}

fn cors_origins_default() -> Vec<CorsOrigin> {
    defaults::CORS_ALLOWED_ORIGINS
        .iter()
        .map(|o| CorsOrigin((*o).to_owned()))
        .collect()
}
fn cors_methods_default() -> Vec<CorsMethod> {
    defaults::CORS_ALLOWED_METHODS
        .iter()
        .filter_map(|m| CorsMethod::try_from((*m).to_owned()).ok())
        .collect()
}
fn cors_headers_default() -> Vec<CorsHeader> {
    defaults::CORS_ALLOWED_HEADERS
        .iter()
        .map(|h| CorsHeader((*h).to_owned()))
        .collect()
}
fn cors_max_age_default() -> CorsMaxAge {
    CorsMaxAge(defaults::CORS_MAX_AGE_S)
}

impl Default for BucketConfig {
    fn default() -> Self {
        Self {
            name: None,
            cors_allowed_origins: cors_origins_default(),
            cors_allowed_methods: cors_methods_default(),
            cors_allowed_headers: cors_headers_default(),
            cors_max_age: cors_max_age_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    #[serde(default)]
    pub memory_mb: MemoryMb,
    #[serde(default)]
    pub timeout_s: TimeoutS,
    #[serde(default)]
    pub architecture: Architecture,
    /// The cargo profile `bootstrap` is built with: `release` (the default;
    /// fat LTO, built for size) or `fast` (optimised, no LTO, incremental: the
    /// inner loop of `watch` and `up --hotswap`). Not on a retained stage.
    #[serde(default)]
    pub build_profile: BuildProfile,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            memory_mb: MemoryMb::default(),
            timeout_s: TimeoutS::default(),
            architecture: Architecture::X86_64,
            build_profile: BuildProfile::Release,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailConfig {
    #[serde(default = "ThumbnailSide::default_width")]
    pub width: ThumbnailSide,
    #[serde(default = "ThumbnailSide::default_height")]
    pub height: ThumbnailSide,
}

impl Default for ThumbnailConfig {
    fn default() -> Self {
        Self {
            width: ThumbnailSide::default_width(),
            height: ThumbnailSide::default_height(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PhotosConfig {
    /// Largest photo a user may upload.
    #[serde(default)]
    pub max_upload_mb: MaxUploadMb,
}

/// The API Gateway stage: throttling and access logs, both on by default
/// where `retain_data` is set (a stage with real users).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Throttle every method of the stage at `rate_limit`/`burst_limit`.
    #[serde(default)]
    pub throttling: Option<bool>,
    #[serde(default)]
    pub rate_limit: RateLimit,
    #[serde(default)]
    pub burst_limit: BurstLimit,
    /// One JSON line per request in the stage's access log group.
    #[serde(default)]
    pub access_logs: Option<bool>,
}

impl StageConfig {
    /// Whether the API stage is throttled.
    pub fn api_throttling(&self) -> bool {
        self.api.throttling.unwrap_or(self.retain_data)
    }

    /// Whether the API stage writes access logs.
    pub fn api_access_logs(&self) -> bool {
        self.api.access_logs.unwrap_or(self.retain_data)
    }
}

/// Lambda instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

/// The cargo profile of the function's build (`[profile.*]` in the workspace
/// manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BuildProfile {
    #[default]
    Release,
    Fast,
}

impl BuildProfile {
    /// The profile's name for `cargo build --profile`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Fast => "fast",
        }
    }
}

impl Architecture {
    /// The value CloudFormation's `Architectures` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

// ---------------------------------------------------------------------------
// Checked values. Each rejects what AWS would reject, with the allowed values.
//
// They deserialize through visitors (not `#[serde(try_from)]`) so that a
// rejection is raised while the YAML parser stands on the value itself: the
// error then carries the value's line and column and the field's full path.

/// Deserializes an integer and checks it with `check`.
fn checked_int<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    check: fn(i64) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor<T> {
        expecting: &'static str,
        check: fn(i64) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
            (self.check)(v).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
            let v = i64::try_from(v).unwrap_or(i64::MAX);
            (self.check)(v).map_err(E::custom)
        }
    }
    deserializer.deserialize_i64(Visitor { expecting, check })
}

/// Deserializes a string and checks it with `check`.
fn checked_str<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor<T> {
        expecting: &'static str,
        check: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.check)(v).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Visitor { expecting, check })
}

/// Integers with an inclusive range, checked while parsing.
macro_rules! ranged_u32 {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $default:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
        #[serde(into = "u32")]
        pub struct $name(u32);

        impl $name {
            pub const MIN: u32 = $min;
            pub const MAX: u32 = $max;

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self($default)
            }
        }

        impl TryFrom<i64> for $name {
            type Error = String;
            fn try_from(value: i64) -> Result<Self, String> {
                match u32::try_from(value) {
                    Ok(v) if (Self::MIN..=Self::MAX).contains(&v) => Ok(Self(v)),
                    _ => Err(format!(
                        "{} must be {}..={}, got {value}",
                        $what,
                        Self::MIN,
                        Self::MAX
                    )),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                checked_int(
                    d,
                    concat!($what, " from ", stringify!($min), " to ", stringify!($max)),
                    Self::try_from,
                )
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

ranged_u32!(
    /// Provisioned DynamoDB read or write capacity units.
    Capacity, 1, 40000, defaults::READ_CAPACITY, "capacity units"
);
ranged_u32!(
    /// Lambda memory in MB.
    MemoryMb, 128, 10240, defaults::MEMORY_MB, "memory in MB"
);
ranged_u32!(
    /// Lambda timeout in seconds: at most API Gateway's 29-second integration
    /// timeout, after which the browser gets a 504 whatever the function does.
    TimeoutS, 1, 29, defaults::TIMEOUT_S,
    "timeout in seconds (API Gateway ends every request after 29 s, so a longer function timeout is never used)"
);
ranged_u32!(
    /// One side of the thumbnail box, in pixels.
    ThumbnailSide, 16, 2048, defaults::THUMBNAIL_WIDTH, "thumbnail side in pixels"
);
ranged_u32!(
    /// Browser preflight cache time for the bucket's CORS rule, in seconds.
    CorsMaxAge, 0, 86400, defaults::CORS_MAX_AGE_S, "CORS max age in seconds"
);
ranged_u32!(
    /// Steady requests per second of an API stage (the account's default
    /// regional limit is 10,000).
    RateLimit, 1, 10000, defaults::API_RATE_LIMIT, "requests per second"
);
ranged_u32!(
    /// Requests in a burst above the steady rate (the account's default
    /// regional limit is 5,000).
    BurstLimit, 1, 5000, defaults::API_BURST_LIMIT, "burst requests"
);
ranged_u32!(
    /// Largest upload, in MB.
    MaxUploadMb, 1, 200, defaults::MAX_UPLOAD_MB, "upload size in MB"
);

impl Capacity {
    fn default_read() -> Self {
        Self(defaults::READ_CAPACITY)
    }
    fn default_write() -> Self {
        Self(defaults::WRITE_CAPACITY)
    }
}

impl ThumbnailSide {
    fn default_width() -> Self {
        Self(defaults::THUMBNAIL_WIDTH)
    }
    fn default_height() -> Self {
        Self(defaults::THUMBNAIL_HEIGHT)
    }
}

/// Retention of the function's log group: one of the values CloudWatch Logs accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u32")]
pub struct LogRetentionDays(u32);

impl<'de> Deserialize<'de> for LogRetentionDays {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_int(
            d,
            "a number of days CloudWatch Logs accepts",
            Self::try_from,
        )
    }
}

impl LogRetentionDays {
    pub const ALLOWED: &[u32] = &[
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
        2922, 3288, 3653,
    ];

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for LogRetentionDays {
    fn default() -> Self {
        Self(defaults::LOG_RETENTION_DAYS)
    }
}

impl TryFrom<i64> for LogRetentionDays {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        match u32::try_from(value) {
            Ok(v) if Self::ALLOWED.contains(&v) => Ok(Self(v)),
            _ => Err(format!(
                "log retention must be one of {} days, got {value}",
                Self::ALLOWED
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl From<LogRetentionDays> for u32 {
    fn from(value: LogRetentionDays) -> u32 {
        value.0
    }
}

/// Strings checked by a predicate while parsing.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(into = "String")]
        pub struct $name(String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                checked_str(d, concat!("a string (", stringify!($name), ")"), |v| {
                    Self::try_from(v.to_owned())
                })
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                $check(&value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// The application's name: lowercase letters, digits and hyphens.
    AppName,
    check_app_name
);
checked_string!(
    /// An AWS region code such as `ap-southeast-1`.
    Region,
    check_region
);
checked_string!(
    /// A 12-digit AWS account id.
    AccountId,
    check_account_id
);
checked_string!(
    /// An `http://` or `https://` endpoint with a host and an optional port.
    EndpointUrl,
    check_endpoint_url
);
checked_string!(
    /// An S3 bucket name, by S3's general-purpose bucket naming rules.
    BucketName,
    check_bucket_name
);
checked_string!(
    /// A CORS origin: `*` or `scheme://host[:port]`, with at most one `*`.
    CorsOrigin,
    check_cors_origin
);
checked_string!(
    /// A request header a browser may send, or `*`.
    CorsHeader,
    check_cors_header
);
checked_string!(
    /// A resource tag key.
    TagKey,
    check_tag_key
);
checked_string!(
    /// A resource tag value.
    TagValue,
    check_tag_value
);

/// An HTTP method a CORS rule may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub enum CorsMethod {
    Get,
    Put,
    Head,
    Post,
    Delete,
}

impl CorsMethod {
    pub const ALLOWED: &[&str] = &["GET", "PUT", "HEAD", "POST", "DELETE"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

impl TryFrom<String> for CorsMethod {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "GET" => Ok(Self::Get),
            "PUT" => Ok(Self::Put),
            "HEAD" => Ok(Self::Head),
            "POST" => Ok(Self::Post),
            "DELETE" => Ok(Self::Delete),
            _ => Err(format!(
                "CORS method must be one of {}, got `{value}`",
                CorsMethod::ALLOWED.join(", ")
            )),
        }
    }
}

impl<'de> Deserialize<'de> for CorsMethod {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an HTTP method", |v| Self::try_from(v.to_owned()))
    }
}

impl From<CorsMethod> for String {
    fn from(value: CorsMethod) -> String {
        value.as_str().to_owned()
    }
}

fn check_app_name(value: &str) -> Result<(), String> {
    // Names derived from it: the stack and function `<app>-<stage>` (a function
    // name has at most 64 characters, a stage 20), the log group, the pool.
    let ok = (1..=MAX_APP_NAME).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "app name must be 1 to {MAX_APP_NAME} lowercase letters, digits and hyphens, starting with a letter (the function `<app>-<stage>` may have at most 64 characters); got `{value}`"
        ))
    }
}

/// The longest app name: `<app>-<stage>` names the Lambda function, whose name
/// has at most 64 characters, and a stage name has at most 20.
pub const MAX_APP_NAME: usize = 64 - 1 - MAX_STAGE_NAME;
/// The longest stage name.
pub const MAX_STAGE_NAME: usize = 20;

fn check_region(value: &str) -> Result<(), String> {
    // e.g. ap-southeast-1, us-gov-west-1, cn-north-1, eu-central-2.
    let parts: Vec<&str> = value.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "region must be an AWS region code such as `ap-southeast-1` or `us-east-1`, got `{value}`"
        ))
    }
}

fn check_account_id(value: &str) -> Result<(), String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "account id must be the 12 digits of an AWS account, quoted (`account_id: \"123456789012\"`), got `{value}`"
        ))
    }
}

fn check_endpoint_url(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    let ok = rest.is_some_and(|rest| {
        let host_port = rest.trim_end_matches('/');
        !host_port.is_empty()
            && !host_port.contains('/')
            && !host_port.chars().any(|c| c.is_whitespace() || c == '@')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "endpoint URL must look like `http://127.0.0.1:4566` (scheme, host, optional port, no path), got `{value}`"
        ))
    }
}

/// S3's naming rules for general purpose buckets, without dots: a dotted name
/// breaks TLS for virtual-hosted URLs (`https://a.b.s3.<region>.amazonaws.com`
/// does not match the certificate's `*.s3.<region>.amazonaws.com`), which is how
/// the static assets and photos are served.
fn check_bucket_name(value: &str) -> Result<(), String> {
    let rules = "3 to 63 lowercase letters, digits and hyphens (no dots: they break HTTPS for virtual-hosted bucket URLs), starting and ending with a letter or digit, without `xn--`/`sthree-` prefixes or `-s3alias`/`--ol-s3` suffixes";
    let bytes = value.as_bytes();
    let charset_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ends_ok = bytes
        .first()
        .zip(bytes.last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    let ip_like = value.parse::<std::net::Ipv4Addr>().is_ok();
    let reserved = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| value.starts_with(p))
        || ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| value.ends_with(s));
    if (3..=63).contains(&value.len())
        && charset_ok
        && ends_ok
        && !ip_like
        && !reserved
        && !value.contains("..")
        && !value.contains(".-")
        && !value.contains("-.")
    {
        Ok(())
    } else {
        Err(format!("bucket name must be {rules}; got `{value}`"))
    }
}

fn check_cors_origin(value: &str) -> Result<(), String> {
    if value == "*" {
        return Ok(());
    }
    let wildcards = value.matches('*').count();
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    let ok = wildcards <= 1
        && rest.is_some_and(|host| {
            !host.is_empty() && !host.contains('/') && !host.chars().any(char::is_whitespace)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "CORS origin must be `*` or `scheme://host[:port]` with at most one `*`, e.g. `https://album.example.com`; got `{value}`"
        ))
    }
}

fn check_cors_header(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 256
        && (value == "*"
            || value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "CORS header must be `*` or a header name such as `Content-Type`, got `{value}`"
        ))
    }
}

fn check_tag_key(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 128 {
        Err(format!(
            "tag key must be 1 to 128 characters, got `{value}`"
        ))
    } else if value.to_ascii_lowercase().starts_with("aws:") {
        Err(format!(
            "tag key must not start with `aws:` (reserved by AWS), got `{value}`"
        ))
    } else {
        Ok(())
    }
}

fn check_tag_value(value: &str) -> Result<(), String> {
    if value.len() > 256 {
        Err(format!(
            "tag value must be at most 256 characters, got {}",
            value.len()
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "app: cloudalbum\nregion: ap-southeast-1\n";

    fn parse(text: &str) -> Result<StageConfig, StageError> {
        StageConfig::parse(text, Path::new("stacks/dev.yaml"))
    }

    fn rejection(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("expected a rejection, parsed {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn minimal_file_gets_documented_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.table.read_capacity.get(), defaults::READ_CAPACITY);
        assert_eq!(config.table.write_capacity.get(), defaults::WRITE_CAPACITY);
        assert_eq!(config.function.memory_mb.get(), defaults::MEMORY_MB);
        assert_eq!(config.function.timeout_s.get(), defaults::TIMEOUT_S);
        assert_eq!(config.function.architecture, Architecture::X86_64);
        assert_eq!(config.thumbnail.width.get(), 300);
        assert_eq!(config.thumbnail.height.get(), 200);
        assert_eq!(config.log_retention_days.get(), 14);
        assert_eq!(config.bucket.cors_max_age.get(), 3000);
        assert_eq!(
            config
                .bucket
                .cors_allowed_methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>(),
            ["GET", "HEAD", "PUT"]
        );
        assert!(!config.retain_data);
        assert!(config.endpoint_url.is_none());
    }

    #[test]
    fn read_capacity_zero_names_file_line_column_field_and_range() {
        let text = "app: cloudalbum\nregion: ap-southeast-1\ntable:\n  read_capacity: 0\n";
        assert_eq!(
            rejection(text),
            "stage file `stacks/dev.yaml` line 4 column 18: `table.read_capacity`: capacity units must be 1..=40000, got 0"
        );
    }

    #[test]
    fn write_capacity_above_maximum_is_rejected() {
        let err = rejection(&format!("{MINIMAL}table: {{ write_capacity: 40001 }}\n"));
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("`table.write_capacity`"), "{err}");
        assert!(err.contains("must be 1..=40000, got 40001"), "{err}");
    }

    #[test]
    fn negative_capacity_is_rejected_not_wrapped() {
        let err = rejection(&format!("{MINIMAL}table: {{ read_capacity: -5 }}\n"));
        assert!(err.contains("must be 1..=40000, got -5"), "{err}");
    }

    #[test]
    fn memory_out_of_range_is_rejected() {
        let low = rejection(&format!("{MINIMAL}function:\n  memory_mb: 64\n"));
        assert_eq!(
            low,
            "stage file `stacks/dev.yaml` line 4 column 14: `function.memory_mb`: memory in MB must be 128..=10240, got 64"
        );
        let high = rejection(&format!("{MINIMAL}function:\n  memory_mb: 10241\n"));
        assert!(high.contains("must be 128..=10240, got 10241"), "{high}");
    }

    #[test]
    fn timeout_out_of_range_is_rejected() {
        let err = rejection(&format!("{MINIMAL}function:\n  timeout_s: 901\n"));
        assert!(err.contains("line 4 column 14"), "{err}");
        assert!(err.contains("`function.timeout_s`"), "{err}");
        assert!(err.contains("must be 1..=29, got 901"), "{err}");
        let zero = rejection(&format!("{MINIMAL}function:\n  timeout_s: 0\n"));
        assert!(zero.contains("must be 1..=29, got 0"), "{zero}");
    }

    #[test]
    fn a_timeout_over_api_gateways_limit_is_an_error_that_says_so() {
        let err = rejection(&format!("{MINIMAL}function:\n  timeout_s: 30\n"));
        assert!(
            err.contains("API Gateway ends every request after 29 s"),
            "{err}"
        );
        assert!(err.contains("must be 1..=29, got 30"), "{err}");
        let ok = parse(&format!("{MINIMAL}function:\n  timeout_s: 29\n")).unwrap();
        assert_eq!(ok.function.timeout_s.get(), 29);
    }

    #[test]
    fn api_throttling_and_access_logs_default_to_retained_stages() {
        let dev = parse(MINIMAL).unwrap();
        assert!(!dev.api_throttling() && !dev.api_access_logs());
        let prod = parse(&format!("{MINIMAL}retain_data: true\n")).unwrap();
        assert!(prod.api_throttling() && prod.api_access_logs());
        assert_eq!(prod.api.rate_limit.get(), defaults::API_RATE_LIMIT);
        let tuned = parse(&format!(
            "{MINIMAL}api:\n  throttling: true\n  rate_limit: 20\n  burst_limit: 40\n  access_logs: false\n"
        ))
        .unwrap();
        assert!(tuned.api_throttling() && !tuned.api_access_logs());
        assert_eq!(
            (tuned.api.rate_limit.get(), tuned.api.burst_limit.get()),
            (20, 40)
        );
        let err = rejection(&format!("{MINIMAL}api:\n  burst_limit: 9000\n"));
        assert!(err.contains("burst requests"), "{err}");
    }

    #[test]
    fn another_artifacts_bucket_can_be_named_by_s3_rules() {
        let ok = parse(&format!("{MINIMAL}artifacts_bucket: team-artifacts-1\n")).unwrap();
        assert_eq!(
            ok.artifacts_bucket.map(String::from).as_deref(),
            Some("team-artifacts-1")
        );
        assert!(parse(MINIMAL).unwrap().artifacts_bucket.is_none());
        for bad in ["Team", "a.b.c", "xy", "-lead"] {
            let err = rejection(&format!("{MINIMAL}artifacts_bucket: {bad}\n"));
            assert!(err.contains("`artifacts_bucket`"), "{bad}: {err}");
        }
    }

    #[test]
    fn account_ids_are_twelve_quoted_digits() {
        let ok = parse(&format!("{MINIMAL}account_id: \"012345678901\"\n")).unwrap();
        assert_eq!(ok.account_id.unwrap().as_str(), "012345678901");
        for bad in ["\"12345\"", "\"12345678901a\"", "\"\""] {
            let err = rejection(&format!("{MINIMAL}account_id: {bad}\n"));
            assert!(err.contains("`account_id`"), "{bad}: {err}");
            assert!(err.contains("12 digits"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_fast_build_profile_is_for_inner_loop_stages_only() {
        let dev = parse(&format!("{MINIMAL}function:\n  build_profile: fast\n")).unwrap();
        assert_eq!(dev.function.build_profile, BuildProfile::Fast);
        assert_eq!(
            parse(MINIMAL).unwrap().function.build_profile,
            BuildProfile::Release
        );
        let prod = rejection(&format!(
            "{MINIMAL}retain_data: true\nfunction:\n  build_profile: fast\n"
        ));
        assert!(prod.contains("`retain_data: true`"), "{prod}");
        assert!(prod.contains("remove `build_profile`"), "{prod}");
        let odd = rejection(&format!("{MINIMAL}function:\n  build_profile: debug\n"));
        assert!(
            odd.contains("unknown variant `debug`, expected `release` or `fast`"),
            "{odd}"
        );
    }

    #[test]
    fn unknown_architecture_lists_the_allowed_ones() {
        let err = rejection(&format!("{MINIMAL}function:\n  architecture: amd64\n"));
        assert!(err.contains("line 4 column 17"), "{err}");
        assert!(err.contains("`function.architecture`"), "{err}");
        assert!(
            err.contains("unknown variant `amd64`, expected `x86_64` or `arm64`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_bucket_names_are_rejected() {
        for bad in [
            "Upper",
            "ab",
            "-starts-with-hyphen",
            "ends-with-hyphen-",
            "has..dots",
            "192.168.1.1",
            "xn--punycode",
            "name-s3alias",
            "under_score",
            "my-album.photos-1",
            &"a".repeat(64),
        ] {
            let err = rejection(&format!("{MINIMAL}bucket:\n  name: \"{bad}\"\n"));
            assert!(err.contains("line 4 column 9"), "{bad}: {err}");
            assert!(err.contains("`bucket.name`"), "{bad}: {err}");
            assert!(err.contains("bucket name must be 3 to 63"), "{bad}: {err}");
        }
        let dotted = rejection(&format!("{MINIMAL}bucket:\n  name: my.album\n"));
        assert!(dotted.contains("no dots: they break HTTPS"), "{dotted}");
        let ok = parse(&format!("{MINIMAL}bucket:\n  name: my-album-photos-1\n")).unwrap();
        assert_eq!(ok.bucket.name.unwrap().as_str(), "my-album-photos-1");
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_expected_ones() {
        let err = rejection(&format!("{MINIMAL}table:\n  read_capacit: 10\n"));
        assert!(err.contains("line 4 column 3"), "{err}");
        assert!(err.contains("unknown field `read_capacit`"), "{err}");
        assert!(err.contains("`read_capacity`"), "{err}");
        let top = rejection(&format!("{MINIMAL}retain: true\n"));
        assert!(top.contains("unknown field `retain`"), "{top}");
        assert!(top.contains("line 3 column 1"), "{top}");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let err = rejection(&format!("{MINIMAL}table:\n  read_capacity: ten\n"));
        assert!(err.contains("`table.read_capacity`"), "{err}");
        assert!(err.contains("invalid type: string \"ten\""), "{err}");
        let err = rejection(&format!("{MINIMAL}retain_data: maybe\n"));
        assert!(err.contains("`retain_data`"), "{err}");
        assert!(err.contains("expected a boolean"), "{err}");
    }

    #[test]
    fn missing_required_keys_are_named() {
        let err = rejection("app: cloudalbum\n");
        assert!(err.contains("missing field `region`"), "{err}");
    }

    #[test]
    fn empty_file_is_rejected() {
        let err = rejection("\n");
        assert!(err.contains("the file is empty"), "{err}");
    }

    #[test]
    fn bad_region_app_and_log_retention_are_rejected() {
        let err = rejection("app: cloudalbum\nregion: Mars\n");
        assert!(err.contains("`region`"), "{err}");
        assert!(err.contains("AWS region code"), "{err}");
        let err = rejection("app: Cloud_Album\nregion: us-east-1\n");
        assert!(err.contains("`app`"), "{err}");
        let err = rejection(&format!("{MINIMAL}log_retention_days: 10\n"));
        assert!(err.contains("must be one of 1, 3, 5, 7, 14"), "{err}");
    }

    #[test]
    fn cors_values_are_checked() {
        let err = rejection(&format!(
            "{MINIMAL}bucket:\n  cors_allowed_methods: [GET, PATCH]\n"
        ));
        assert!(err.contains("`bucket.cors_allowed_methods[1]`"), "{err}");
        assert!(
            err.contains("must be one of GET, PUT, HEAD, POST, DELETE, got `PATCH`"),
            "{err}"
        );
        let err = rejection(&format!(
            "{MINIMAL}bucket:\n  cors_allowed_origins: [\"example.com\"]\n"
        ));
        assert!(err.contains("CORS origin must be"), "{err}");
    }

    #[test]
    fn tags_cannot_use_the_aws_prefix() {
        let err = rejection(&format!("{MINIMAL}tags:\n  \"aws:owner\": me\n"));
        assert!(err.contains("must not start with `aws:`"), "{err}");
    }

    #[test]
    fn missing_stage_lists_existing_stages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(STACKS_DIR)).unwrap();
        std::fs::write(dir.path().join("stacks/dev.yaml"), MINIMAL).unwrap();
        std::fs::write(dir.path().join("stacks/prod.yaml"), MINIMAL).unwrap();
        let err = Stage::load(dir.path(), "qa").unwrap_err().to_string();
        assert_eq!(
            err,
            "stage `qa` has no stage file `stacks/qa.yaml`; stages that exist: `dev`, `prod`; add `stacks/qa.yaml` or pick one of those with `--stage`"
        );
    }

    #[test]
    fn stage_names_are_checked() {
        assert!(StageName::parse("dev").is_ok());
        assert!(StageName::parse("pr-42").is_ok());
        for bad in ["", "Dev", "../etc", "9lives", "x-", &"a".repeat(21)] {
            assert!(StageName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stack_name_joins_app_and_stage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(STACKS_DIR)).unwrap();
        std::fs::write(dir.path().join("stacks/dev.yaml"), MINIMAL).unwrap();
        let stage = Stage::load(dir.path(), "dev").unwrap();
        assert_eq!(stage.stack_name(), "cloudalbum-dev");
    }
}
