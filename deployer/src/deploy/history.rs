//! Deployment history, kept next to the code in the artifacts bucket so any
//! machine sees it: every `up` that changed the stage (a change set, or a
//! hotswap, or a `rollback`) writes one record,
//! `history/<stack>/deployments/<id>.json`, and the exact template it
//! deployed, `history/<stack>/templates/<sha256>.json`. Ids sort by time
//! (`20261202T004912.123Z-1a2b3c4d`). A `rollback` redeploys a record's
//! template, code and static manifest exactly; the last [`KEEP`] records'
//! code and static files are never retired or pruned.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use base64::Engine as _;
use contract::assets::Manifest;
use serde::{Deserialize, Serialize};

use crate::aws::{Aws, AwsError};
use crate::deploy::artifacts;
use crate::digest::sha256_hex;
use crate::exit;
use crate::output::Printer;

/// How many of a stack's newest records keep their code and static files.
pub const KEEP: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "stage `{stage}` has no deployment `{id}` in its history; `deployer history --stage {stage}` lists the ids"
    )]
    UnknownId { stage: String, id: String },
    #[error(
        "stage `{stage}` has no earlier deployment to roll back to ({count} recorded); `deployer history --stage {stage}` lists them, and `--to ID` picks one"
    )]
    NothingEarlier { stage: String, count: usize },
    #[error(
        "deployment record `{key}` in bucket `{bucket}` cannot be read: {message}; delete it (`aws s3 rm s3://{bucket}/{key}`) or restore it"
    )]
    Unreadable {
        bucket: String,
        key: String,
        message: String,
    },
    #[error(
        "deployment `{id}` cannot be rolled back to: {}; nothing was changed. Deploy that version again with `deployer up` from its commit instead",
        missing.join("; ")
    )]
    Missing { id: String, missing: Vec<String> },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl HistoryError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::UnknownId { .. } | Self::NothingEarlier { .. } => exit::INVALID_INPUT,
            Self::Unreadable { .. } | Self::Missing { .. } => exit::DEPLOY_FAILED,
            Self::Aws(e) => e.exit_code(),
        }
    }
}

/// How a deployment reached the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `up` through a change set.
    Up,
    /// `up --hotswap` (or `watch`): code or static files straight to the function.
    Hotswap,
    /// `rollback` to an earlier record.
    Rollback,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Hotswap => "hotswap",
            Self::Rollback => "rollback",
        }
    }
}

/// The code a deployment ran: its key in the artifacts bucket and the zip's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRef {
    pub key: String,
    pub sha256: String,
}

/// The template a deployment ran, stored by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub key: String,
    pub sha256: String,
}

/// The static files' manifest the function linked to (`STATIC_ASSETS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRef {
    pub manifest: String,
    pub sha256: String,
}

/// The project's git commit at deploy time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    /// Tracked files differed from the commit.
    pub dirty: bool,
}

/// One deployment of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub kind: Kind,
    pub stage: String,
    pub stack: String,
    pub code: CodeRef,
    pub template: TemplateRef,
    #[serde(rename = "static")]
    pub static_files: StaticRef,
    /// The caller's ARN (STS `GetCallerIdentity`).
    pub caller: Option<String>,
    pub commit: Option<Commit>,
    /// For a rollback: the record it went back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<String>,
}

impl Record {
    /// Whether two records deployed the same template, code and static files.
    pub fn same_deployment(&self, other: &Self) -> bool {
        self.code.sha256 == other.code.sha256
            && self.template.sha256 == other.template.sha256
            && self.static_files.sha256 == other.static_files.sha256
    }

    /// Lambda's `CodeSha256` (base64 of the zip's SHA-256) of this record's code.
    pub fn lambda_code_sha256(&self) -> Option<String> {
        let bytes = (0..self.code.sha256.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(self.code.sha256.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        (bytes.len() == 32).then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// What one deployment put on the stage, to be recorded.
#[derive(Debug)]
pub struct Deployed<'a> {
    pub kind: Kind,
    pub stage: &'a str,
    pub code_key: &'a str,
    pub code_sha256: &'a str,
    pub template_body: &'a str,
    pub manifest: &'a Manifest,
    pub commit: Option<Commit>,
    pub rolled_back_to: Option<String>,
}

/// A stack's history in the artifacts bucket, named with the account that
/// must own the bucket.
#[derive(Debug)]
pub struct Store<'a> {
    aws: &'a Aws,
    pub bucket: String,
    owner: String,
    stack: String,
}

impl<'a> Store<'a> {
    pub fn new(aws: &'a Aws, bucket: &str, owner: &str, stack: &str) -> Self {
        Self {
            aws,
            bucket: bucket.to_owned(),
            owner: owner.to_owned(),
            stack: stack.to_owned(),
        }
    }

    fn records_prefix(&self) -> String {
        format!("history/{}/deployments/", self.stack)
    }

    fn template_key(&self, sha256: &str) -> String {
        format!("history/{}/templates/{sha256}.json", self.stack)
    }

    /// The newest `limit` records (all with `None`), newest first. The
    /// records are read at once (every `up` reads the newest ten).
    pub async fn list(&self, limit: Option<usize>) -> Result<Vec<Record>, HistoryError> {
        let mut keys = self.record_keys().await?;
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.truncate(limit.unwrap_or(usize::MAX));
        let mut reads = tokio::task::JoinSet::new();
        for (index, key) in keys.iter().enumerate() {
            let (aws, bucket, owner, key) = (
                self.aws.clone(),
                self.bucket.clone(),
                self.owner.clone(),
                key.clone(),
            );
            reads.spawn(async move { (index, get_object(&aws, &bucket, &owner, &key).await) });
        }
        let mut slots: Vec<Option<Record>> = keys.iter().map(|_| None).collect();
        while let Some(done) = reads.join_next().await {
            let (index, bytes) = done.map_err(|e| self.unreadable("(a record)", &e))?;
            let key = &keys[index];
            let record = serde_json::from_slice(&bytes?).map_err(|e| self.unreadable(key, &e))?;
            slots[index] = Some(record);
        }
        Ok(slots.into_iter().flatten().collect())
    }

    async fn record_keys(&self) -> Result<Vec<String>, AwsError> {
        let aws = self.aws;
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = aws
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .expected_bucket_owner(&self.owner)
                .prefix(self.records_prefix())
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("s3:ListBucket", aws.target(), e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| {
                        std::path::Path::new(k)
                            .extension()
                            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
                    })
                    .map(str::to_owned),
            );
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, HistoryError> {
        get_object(self.aws, &self.bucket, &self.owner, key).await
    }

    fn unreadable(&self, key: &str, error: &dyn fmt::Display) -> HistoryError {
        unreadable(&self.bucket, key, error)
    }

    /// Whether `key` is in the bucket.
    pub async fn exists(&self, key: &str) -> bool {
        self.aws
            .s3
            .head_object()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// The exact template a record deployed, checked against its hash.
    pub async fn template(&self, record: &Record) -> Result<String, HistoryError> {
        let bytes = self.get(&record.template.key).await?;
        if sha256_hex(&bytes) != record.template.sha256 {
            return Err(self.unreadable(
                &record.template.key,
                &"its content does not match the recorded SHA-256",
            ));
        }
        String::from_utf8(bytes).map_err(|e| self.unreadable(&record.template.key, &e))
    }

    /// Writes the template (once per content) and the record of `deployed`.
    pub async fn save(
        &self,
        printer: &Printer,
        deployed: &Deployed<'_>,
    ) -> Result<Record, HistoryError> {
        let template_sha = sha256_hex(deployed.template_body.as_bytes());
        let template_key = self.template_key(&template_sha);
        artifacts::upload_if_missing(
            self.aws,
            &self.bucket,
            &self.owner,
            &template_key,
            deployed.template_body.as_bytes(),
        )
        .await?;
        let caller = match self.aws.caller().await {
            Ok(caller) => Some(caller.arn),
            Err(e) => {
                printer.warn(format_args!(
                    "the deployment is recorded without its caller: {e}"
                ));
                None
            }
        };
        let manifest = deployed.manifest.to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let static_sha = sha256_hex(manifest.as_bytes());
        let seed = format!(
            "{}/{}/{template_sha}/{static_sha}/{}",
            self.stack,
            deployed.code_sha256,
            now.as_nanos()
        );
        let record = Record {
            id: record_id(now, &seed),
            time: rfc3339(now),
            kind: deployed.kind,
            stage: deployed.stage.to_owned(),
            stack: self.stack.clone(),
            code: CodeRef {
                key: deployed.code_key.to_owned(),
                sha256: deployed.code_sha256.to_owned(),
            },
            template: TemplateRef {
                key: template_key,
                sha256: template_sha,
            },
            static_files: StaticRef {
                manifest,
                sha256: static_sha,
            },
            caller,
            commit: deployed.commit.clone(),
            rolled_back_to: deployed.rolled_back_to.clone(),
        };
        let json =
            serde_json::to_vec_pretty(&record).map_err(|e| self.unreadable(&record.id, &e))?;
        let key = format!("{}{}.json", self.records_prefix(), record.id);
        self.aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .expected_bucket_owner(&self.owner)
            .key(&key)
            .content_type("application/json")
            .body(json.into())
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObject", self.aws.target(), e))?;
        Ok(record)
    }

    /// What the newest [`KEEP`] records need to be deployable again.
    pub async fn kept(&self) -> Result<Kept, HistoryError> {
        let records = self.list(Some(KEEP)).await?;
        Ok(Kept {
            code_keys: records.iter().map(|r| r.code.key.clone()).collect(),
            manifests: records
                .iter()
                .filter_map(|r| Manifest::parse(&r.static_files.manifest).ok())
                .collect(),
        })
    }
}

/// The code and static files the newest records link to: kept for rollback.
#[derive(Debug, Default, Clone)]
pub struct Kept {
    pub code_keys: Vec<String>,
    pub manifests: Vec<Manifest>,
}

/// Records `deployed` after a deploy that changed the stage. A deploy that
/// succeeded is never failed for its record: a failure to write it is a
/// warning. Returns the record's id.
pub async fn record(
    store: &Store<'_>,
    printer: &Printer,
    deployed: &Deployed<'_>,
) -> Option<String> {
    match store.save(printer, deployed).await {
        Ok(record) => {
            printer.detail(format_args!("recorded deployment {}", record.id));
            Some(record.id)
        }
        Err(e) => {
            printer.warn(format_args!(
                "the deployment succeeded but was not recorded in its history: {e}"
            ));
            None
        }
    }
}

/// What to keep, read from the history; empty (with a warning) when it
/// cannot be read, so the deploy goes on with the newest-ten rule alone.
pub async fn kept_or_empty(store: &Store<'_>, printer: &Printer) -> Kept {
    store.kept().await.unwrap_or_else(|e| {
        printer.warn(format_args!("cannot read the deployment history: {e}"));
        Kept::default()
    })
}

/// The record a rollback goes to: `to` by id, or else the newest record that
/// deployed something else than the newest one did. `records` are newest first.
pub fn target<'r>(
    records: &'r [Record],
    to: Option<&str>,
    stage: &str,
) -> Result<&'r Record, HistoryError> {
    if let Some(id) = to {
        return records
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| HistoryError::UnknownId {
                stage: stage.to_owned(),
                id: id.to_owned(),
            });
    }
    let nothing = || HistoryError::NothingEarlier {
        stage: stage.to_owned(),
        count: records.len(),
    };
    let current = records.first().ok_or_else(nothing)?;
    records
        .iter()
        .skip(1)
        .find(|r| !r.same_deployment(current))
        .ok_or_else(nothing)
}

/// The git commit of `project_dir`, and whether its tracked files differ
/// from it; `None` when it is not a git checkout or git is missing.
pub fn commit_of(project_dir: &Path) -> Option<Commit> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(project_dir)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let sha = git(&["rev-parse", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(Commit { sha, dirty })
}

/// `2026-12-02T00:49:12.123Z`.
fn rfc3339(since_epoch: std::time::Duration) -> String {
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let whole = DateTime::from_secs(seconds)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default();
    let millis = since_epoch.subsec_millis();
    match whole.strip_suffix('Z') {
        Some(head) => format!("{head}.{millis:03}Z"),
        None => whole,
    }
}

/// A sortable id: `20261202T004912.123Z-1a2b3c4d` (UTC time, then 8 hex
/// digits of `seed`'s hash).
fn record_id(since_epoch: std::time::Duration, seed: &str) -> String {
    let compact: String = rfc3339(since_epoch)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let hash = sha256_hex(seed.as_bytes());
    format!("{compact}-{}", hash.get(..8).unwrap_or(&hash))
}

/// The records as a table, newest first.
#[derive(Debug, Serialize)]
pub struct HistoryReport {
    pub stage: String,
    pub stack: String,
    pub deployments: Vec<Record>,
}

impl fmt::Display for HistoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deployments.is_empty() {
            return write!(
                f,
                "stage {} has no recorded deployments (stack `{}`)",
                self.stage, self.stack
            );
        }
        write!(
            f,
            "{:<31} {:<24} {:<8} {:<14} {:<12} WHO",
            "ID", "TIME", "KIND", "COMMIT", "ARTIFACT"
        )?;
        for r in &self.deployments {
            let commit = r.commit.as_ref().map_or_else(
                || "-".to_owned(),
                |c| {
                    let short = c.sha.get(..7).unwrap_or(&c.sha);
                    if c.dirty {
                        format!("{short}+dirty")
                    } else {
                        short.to_owned()
                    }
                },
            );
            let who = r
                .caller
                .as_deref()
                .map_or("-", |arn| arn.rsplit(':').next().unwrap_or(arn));
            let kind = match &r.rolled_back_to {
                Some(to) => format!("{} (to {to})", r.kind.as_str()),
                None => r.kind.as_str().to_owned(),
            };
            write!(
                f,
                "\n{:<31} {:<24} {:<8} {:<14} {:<12} {who}",
                r.id,
                r.time,
                r.kind.as_str(),
                commit,
                r.code.sha256.get(..12).unwrap_or(&r.code.sha256),
            )?;
            if r.rolled_back_to.is_some() {
                write!(f, "  [{kind}]")?;
            }
        }
        Ok(())
    }
}

/// One object of the artifacts bucket, whole.
async fn get_object(
    aws: &Aws,
    bucket: &str,
    owner: &str,
    key: &str,
) -> Result<Vec<u8>, HistoryError> {
    let object = aws
        .s3
        .get_object()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .key(key)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:GetObject", aws.target(), e))?;
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| unreadable(bucket, key, &e))?;
    Ok(body.into_bytes().to_vec())
}

fn unreadable(bucket: &str, key: &str, error: &dyn fmt::Display) -> HistoryError {
    HistoryError::Unreadable {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, code: &str) -> Record {
        Record {
            id: id.to_owned(),
            time: "2026-12-02T00:00:00.000Z".to_owned(),
            kind: Kind::Up,
            stage: "dev".to_owned(),
            stack: "cloudalbum-dev".to_owned(),
            code: CodeRef {
                key: format!("cloudalbum-dev/bootstrap/{code}.zip"),
                sha256: code.to_owned(),
            },
            template: TemplateRef {
                key: "t".to_owned(),
                sha256: "t".to_owned(),
            },
            static_files: StaticRef {
                manifest: String::new(),
                sha256: "s".to_owned(),
            },
            caller: Some("arn:aws:iam::123456789012:user/alice".to_owned()),
            commit: Some(Commit {
                sha: "0123456789abcdef".to_owned(),
                dirty: true,
            }),
            rolled_back_to: None,
        }
    }

    #[test]
    fn ids_sort_by_time_and_times_are_utc() {
        let early = std::time::Duration::from_millis(1_796_172_552_123);
        let late = early + std::time::Duration::from_millis(5);
        assert_eq!(rfc3339(early), "2026-12-02T00:49:12.123Z");
        let a = record_id(early, "x");
        let b = record_id(late, "a");
        assert!(a.starts_with("20261202T004912.123Z-"), "{a}");
        assert_eq!(a.len(), "20261202T004912.123Z-".len() + 8);
        assert!(a < b);
    }

    #[test]
    fn rollback_goes_to_the_newest_other_deployment_or_the_named_one() {
        let records = [record("3", "bbb"), record("2", "bbb"), record("1", "aaa")];
        assert_eq!(target(&records, None, "dev").unwrap().id, "1");
        assert_eq!(target(&records, Some("2"), "dev").unwrap().id, "2");
        let unknown = target(&records, Some("9"), "dev").unwrap_err();
        assert_eq!(unknown.exit_code(), exit::INVALID_INPUT);
        assert!(unknown.to_string().contains("deployer history --stage dev"));
        let alone = target(&records[..2], None, "dev").unwrap_err();
        assert!(matches!(
            alone,
            HistoryError::NothingEarlier { count: 2, .. }
        ));
    }

    #[test]
    fn lambda_code_sha256_is_base64_of_the_hex_digest() {
        let mut r = record("1", "");
        // `printf hello | sha256sum`; Lambda's form from the hotswap test.
        r.code.sha256 =
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".to_owned();
        assert_eq!(
            r.lambda_code_sha256().as_deref(),
            Some("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=")
        );
        r.code.sha256 = "zz".to_owned();
        assert_eq!(r.lambda_code_sha256(), None);
    }

    #[test]
    fn the_table_shows_kind_commit_artifact_and_who() {
        let mut rolled = record("20261202T010000.000Z-2", "bbbbbbbbbbbbbbbb");
        rolled.kind = Kind::Rollback;
        rolled.rolled_back_to = Some("20261202T000000.000Z-1".to_owned());
        let report = HistoryReport {
            stage: "dev".to_owned(),
            stack: "cloudalbum-dev".to_owned(),
            deployments: vec![rolled, record("20261202T000000.000Z-1", "aaaaaaaaaaaaaaaa")],
        };
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].contains("rollback") && lines[1].contains("bbbbbbbbbbbb"),
            "{text}"
        );
        assert!(
            lines[1].contains("0123456+dirty") && lines[1].contains("user/alice"),
            "{text}"
        );
        assert!(lines[1].contains("to 20261202T000000.000Z-1"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["deployments"][0]["kind"], "rollback");
        assert_eq!(json["deployments"][1]["commit"]["dirty"], true);
    }
}
