//! Preview stages on AWS: opening one (its expiry from `--ttl`, else from
//! its stack's tag), finding a preview's base through the `deployer:base`
//! tag of its stack, listing every deployed stage of the app, and tearing
//! down the expired previews with the same steps as `down`
//! ([`crate::deploy::teardown`]). The model (TTL, expiry, tags) is
//! [`crate::preview`].

use std::fmt;

use contract::outputs;
use serde::Serialize;

use crate::aws::AwsError;
use crate::deploy::error::DeployError;
use crate::deploy::report::DownReport;
use crate::deploy::session::{Session, SessionOptions};
use crate::deploy::stack::{self, StackInfo, StackStatus};
use crate::deploy::teardown;
use crate::output::Printer;
use crate::preview::{self, Preview, PreviewError, Timestamp, Ttl};
use crate::stage::{Stage, StageName};

/// The session of preview `stage` made from `base`: its expiry is `ttl`
/// from now when given, else the one its stack already carries (so a later
/// `up` never drops the tag), else the default TTL from now.
pub async fn open_preview(
    stage: Stage,
    base: StageName,
    notes: Vec<String>,
    ttl: Option<Ttl>,
    options: &SessionOptions,
    printer: Printer,
) -> Result<Session, DeployError> {
    let mut session = Session::open(stage, options, printer).await?;
    let existing = stack::describe(&session.aws, &session.stack)
        .await?
        .and_then(|stack| Preview::from_tags(&stack.tags))
        .and_then(|preview| preview.expires);
    let expires = match (ttl, existing) {
        (Some(ttl), _) => Timestamp::after(preview::now()?, ttl),
        (None, Some(expires)) => expires,
        (None, None) => Timestamp::after(preview::now()?, Ttl::DEFAULT),
    };
    for note in &notes {
        printer.info(format_args!("preview `{}`: {note}", session.stage.name));
    }
    printer.info(format_args!(
        "stage `{}` is a preview of `{base}`; it expires {expires} (`deployer down --expired` removes it after)",
        session.stage.name
    ));
    session.preview = Some(Preview {
        base,
        expires: Some(expires),
        notes,
    });
    Ok(session)
}

/// The session of `name`, a stage without a file: the preview whose stack
/// (`<app>-<name>`, for each app, region and endpoint the stage files name)
/// carries a `deployer:base` tag naming one of `files`.
pub async fn open_found(
    name: &StageName,
    files: &[Stage],
    ttl: Option<Ttl>,
    options: &SessionOptions,
    printer: Printer,
) -> Result<Session, DeployError> {
    let mut searched = Vec::new();
    let mut failure = None;
    for candidate in candidates(files, options) {
        let (probe, _) = preview::derive(candidate, name.clone());
        let session = match Session::open(probe, options, printer).await {
            Ok(session) => session,
            Err(err) => {
                failure.get_or_insert(err);
                continue;
            }
        };
        searched.push(format!("`{}` on {}", session.stack, session.aws.target()));
        let found = match stack::describe(&session.aws, &session.stack).await {
            Ok(found) => found,
            Err(err) => {
                failure.get_or_insert(err.into());
                continue;
            }
        };
        let Some(stack) = found else { continue };
        let Some(found) = Preview::from_tags(&stack.tags) else {
            return Err(PreviewError::NotFound {
                stage: name.to_string(),
                reason: format!(
                    "stack `{}` exists but has no `{}` tag (was its stage file deleted? restore `stacks/{name}.yaml`)",
                    stack.name,
                    preview::BASE_TAG
                ),
                existing: names(files),
            }
            .into());
        };
        let Some(base) = files.iter().find(|f| f.name == found.base) else {
            return Err(PreviewError::BaseGone {
                stage: name.to_string(),
                base: found.base.to_string(),
                stack: stack.name,
            }
            .into());
        };
        let (stage, notes) = preview::derive(base, name.clone());
        return open_preview(stage, found.base, notes, ttl, options, printer).await;
    }
    if let Some(err) = failure {
        return Err(err);
    }
    Err(PreviewError::NotFound {
        stage: name.to_string(),
        reason: if searched.is_empty() {
            "there is no stage file to take an app and region from".to_owned()
        } else {
            format!("no stack {}", searched.join(" or "))
        },
        existing: names(files),
    }
    .into())
}

fn names(files: &[Stage]) -> Vec<String> {
    files.iter().map(|f| f.name.to_string()).collect()
}

/// One stage file per distinct app, region and endpoint (after the
/// overrides), those on AWS first.
fn candidates<'a>(files: &'a [Stage], options: &SessionOptions) -> Vec<&'a Stage> {
    let key = |stage: &Stage| {
        (
            options.endpoint_url.clone().or_else(|| {
                stage
                    .config
                    .endpoint_url
                    .as_ref()
                    .map(|u| u.as_str().to_owned())
            }),
            stage.config.app.to_string(),
            options
                .region
                .clone()
                .unwrap_or_else(|| stage.config.region.to_string()),
        )
    };
    let mut sorted: Vec<&Stage> = files.iter().collect();
    sorted.sort_by_key(|s| key(s));
    sorted.dedup_by_key(|s| key(s));
    sorted
}

/// A deployed stage of the app, as `deployer stages` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeployedStage {
    pub stage: String,
    pub stack: String,
    pub status: StackStatus,
    pub created: Option<Timestamp>,
    pub age_s: Option<u64>,
    pub url: Option<String>,
    /// Whether `stacks/<stage>.yaml` exists: such a stage is never removed
    /// as an expired preview.
    pub has_file: bool,
    /// For a preview: the stage it was made from.
    pub base: Option<String>,
    pub expires: Option<Timestamp>,
    pub expired: bool,
    #[serde(skip)]
    stack_id: String,
    #[serde(skip)]
    termination_protection: bool,
}

/// Every deployed stage of one app in one account and region.
#[derive(Debug, Serialize)]
pub struct StagesReport {
    pub app: String,
    pub target: String,
    pub now: Timestamp,
    pub stages: Vec<DeployedStage>,
}

impl fmt::Display for StagesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stages.is_empty() {
            return write!(
                f,
                "no stage of `{}` is deployed on {}",
                self.app, self.target
            );
        }
        let width = |get: fn(&DeployedStage) -> usize, title: &str| {
            self.stages
                .iter()
                .map(get)
                .max()
                .unwrap_or(0)
                .max(title.len())
        };
        let stage_w = width(|s| s.stage.len(), "STAGE");
        let status_w = width(|s| s.status.as_str().len(), "STATUS");
        let url_w = width(|s| s.url.as_deref().map_or(1, str::len), "URL");
        write!(
            f,
            "{:<stage_w$}  {:<status_w$}  {:<7}  {:<url_w$}  {:<6}  EXPIRES",
            "STAGE", "STATUS", "AGE", "URL", "BASE"
        )?;
        for s in &self.stages {
            let age = s.age_s.map_or_else(|| "-".to_owned(), preview::human_age);
            let expires = match (s.expires, s.expired) {
                (Some(at), true) => format!("{at} (expired)"),
                (Some(at), false) => at.to_string(),
                (None, _) => "-".to_owned(),
            };
            write!(
                f,
                "\n{:<stage_w$}  {:<status_w$}  {age:<7}  {:<url_w$}  {:<6}  {expires}",
                s.stage,
                s.status.as_str(),
                s.url.as_deref().unwrap_or("-"),
                s.base.as_deref().unwrap_or("-"),
            )?;
        }
        Ok(())
    }
}

/// Every stack of the session's app in its account and region (tagged
/// `deployer:app` with the app and `deployer:stage`), oldest first;
/// `files` are the stages that have a stage file.
pub async fn list(
    session: &Session,
    now: Timestamp,
    files: &[String],
) -> Result<StagesReport, DeployError> {
    let app = session.stage.config.app.to_string();
    let mut stages = Vec::new();
    let mut pages = session.aws.cfn.describe_stacks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            AwsError::from_sdk("cloudformation:DescribeStacks", session.aws.target(), e)
        })?;
        for stack in page.stacks() {
            let info = stack::info_of(stack, "");
            if info.status != StackStatus::DeleteComplete {
                stages.extend(deployed_stage(&app, info, now, files));
            }
        }
    }
    stages.sort_by(|a, b| (a.created, &a.stage).cmp(&(b.created, &b.stage)));
    Ok(StagesReport {
        app,
        target: session.aws.target(),
        now,
        stages,
    })
}

fn deployed_stage(
    app: &str,
    info: StackInfo,
    now: Timestamp,
    files: &[String],
) -> Option<DeployedStage> {
    if info.tags.get("deployer:app").map(String::as_str) != Some(app) {
        return None;
    }
    let stage = info.tags.get("deployer:stage")?.clone();
    if info.name != format!("{app}-{stage}") {
        return None;
    }
    let preview = Preview::from_tags(&info.tags);
    Some(DeployedStage {
        has_file: files.contains(&stage),
        stage,
        status: info.status,
        created: info.created,
        age_s: info.created.map(|c| now.seconds_since(c)),
        url: info.outputs.get(outputs::API_URL).cloned(),
        base: preview.as_ref().map(|p| p.base.to_string()),
        expires: preview.as_ref().and_then(|p| p.expires),
        expired: preview.as_ref().is_some_and(|p| p.is_expired(now)),
        stack_id: info.id,
        termination_protection: info.termination_protection,
        stack: info.name,
    })
}

/// A stage `down --expired` left alone, and why.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub stage: String,
    pub reason: String,
}

/// An expired preview whose teardown failed.
#[derive(Debug, Serialize)]
pub struct Failed {
    pub stage: String,
    pub error: String,
    pub exit_code: u8,
}

/// What `down --expired` did.
#[derive(Debug, Serialize)]
pub struct ExpiredReport {
    pub target: String,
    pub now: Timestamp,
    pub removed: Vec<DownReport>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
}

impl fmt::Display for ExpiredReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.removed.is_empty() && self.skipped.is_empty() && self.failed.is_empty() {
            return write!(f, "no preview on {} has expired", self.target);
        }
        let mut lines = Vec::new();
        lines.extend(self.removed.iter().map(|r| format!("removed: {r}")));
        lines.extend(
            self.skipped
                .iter()
                .map(|s| format!("left alone: stage {}: {}", s.stage, s.reason)),
        );
        lines.extend(
            self.failed
                .iter()
                .map(|s| format!("failed: stage {}: {}", s.stage, s.error)),
        );
        f.write_str(&lines.join("\n"))
    }
}

/// Tears down every preview of the session's app whose expiry has passed at
/// `now`, each as `down` would (`delete_data` as `down --delete-data`);
/// never a stage with a file, a termination-protected or a retaining stack.
/// Asks once for all of them (`--yes` answers).
pub async fn down_expired(
    session: &Session,
    now: Timestamp,
    files: &[String],
    delete_data: bool,
    options: &SessionOptions,
) -> Result<ExpiredReport, DeployError> {
    let listed = list(session, now, files).await?;
    let mut report = ExpiredReport {
        target: listed.target,
        now,
        removed: Vec::new(),
        skipped: Vec::new(),
        failed: Vec::new(),
    };
    let mut doomed = Vec::new();
    for stage in listed.stages.into_iter().filter(|s| s.expired) {
        let reason = if stage.has_file {
            Some("it has a stage file of its own")
        } else if stage.termination_protection {
            Some("its stack has termination protection")
        } else {
            None
        };
        match (reason, StageName::parse(&stage.stage)) {
            (Some(reason), _) => report.skipped.push(Skipped {
                stage: stage.stage,
                reason: reason.to_owned(),
            }),
            (None, Err(err)) => report.skipped.push(Skipped {
                stage: stage.stage,
                reason: err.to_string(),
            }),
            (None, Ok(name)) => doomed.push((name, stage)),
        }
    }
    if doomed.is_empty() {
        return Ok(report);
    }
    for (name, stage) in &doomed {
        session.printer.info(format_args!(
            "expired: stage `{name}` (stack `{}`, preview of `{}`, expired {})",
            stage.stack,
            stage.base.as_deref().unwrap_or("?"),
            stage.expires.map_or_else(String::new, |e| e.to_string())
        ));
    }
    if !session.confirm(
        &format!("delete {} expired preview stage(s)?", doomed.len()),
        "deleting expired preview stages",
    )? {
        return Err(DeployError::Refused("nothing was deleted".to_owned()));
    }
    let options = SessionOptions {
        assume_yes: true,
        ..options.clone()
    };
    for (name, stage) in doomed {
        match tear_down(session, name, &stage, delete_data, &options).await {
            Ok(Some(removed)) => report.removed.push(removed),
            Ok(None) => report.skipped.push(Skipped {
                stage: stage.stage,
                reason: "its template retains data (`DeletionPolicy: Retain`)".to_owned(),
            }),
            Err(err) => {
                session
                    .printer
                    .warn(format_args!("stage `{}`: {err}", stage.stage));
                report.failed.push(Failed {
                    stage: stage.stage,
                    exit_code: err.exit_code(),
                    error: err.to_string(),
                });
            }
        }
    }
    Ok(report)
}

/// One expired preview, torn down; `None` when its template retains data.
async fn tear_down(
    session: &Session,
    name: StageName,
    stage: &DeployedStage,
    delete_data: bool,
    options: &SessionOptions,
) -> Result<Option<DownReport>, DeployError> {
    let (derived, _) = preview::derive(&session.stage, name);
    let preview = Session::open(derived, options, session.printer).await?;
    if preview.stack != stage.stack {
        return Err(DeployError::Failed(format!(
            "stack `{}` does not follow the name `{}`; delete it with `deployer down --stage {}`",
            stage.stack, preview.stack, stage.stage
        )));
    }
    if !teardown::retained_logical_ids(&preview, &stage.stack_id)
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    teardown::down(&preview, delete_data).await.map(Some)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn info(name: &str, tags: &[(&str, &str)]) -> StackInfo {
        StackInfo {
            id: format!("arn:{name}"),
            name: name.to_owned(),
            status: StackStatus::CreateComplete,
            status_reason: None,
            outputs: BTreeMap::from([(outputs::API_URL.to_owned(), format!("https://{name}/"))]),
            parameters: BTreeMap::new(),
            last_updated: None,
            termination_protection: false,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            created: Timestamp::parse("2026-12-01T00:00:00Z"),
        }
    }

    #[test]
    fn only_the_apps_stages_are_listed_and_previews_carry_base_and_expiry() {
        let now = Timestamp::parse("2026-12-02T03:00:00Z").unwrap();
        let files = ["dev".to_owned()];
        let dev = deployed_stage(
            "cloudalbum",
            info(
                "cloudalbum-dev",
                &[("deployer:app", "cloudalbum"), ("deployer:stage", "dev")],
            ),
            now,
            &files,
        )
        .unwrap();
        assert!(dev.has_file && !dev.expired && dev.base.is_none());
        assert_eq!(dev.age_s, Some(27 * 3600));
        let preview = |expires| {
            deployed_stage(
                "cloudalbum",
                info(
                    "cloudalbum-pr-7",
                    &[
                        ("deployer:app", "cloudalbum"),
                        ("deployer:stage", "pr-7"),
                        ("deployer:base", "dev"),
                        ("deployer:expires", expires),
                    ],
                ),
                now,
                &files,
            )
            .unwrap()
        };
        let live = preview("2026-12-09T00:00:00Z");
        assert_eq!(live.base.as_deref(), Some("dev"));
        assert!(!live.expired && !live.has_file);
        assert!(preview("2026-12-02T02:59:59Z").expired);
        // Another app's stack, an untagged one, a name that does not match.
        for (name, tags) in [
            (
                "other-dev",
                vec![("deployer:app", "other"), ("deployer:stage", "dev")],
            ),
            ("cloudalbum-x", vec![]),
            (
                "cloudalbum-dev2",
                vec![("deployer:app", "cloudalbum"), ("deployer:stage", "dev")],
            ),
        ] {
            assert!(deployed_stage("cloudalbum", info(name, &tags), now, &files).is_none());
        }
        let report = StagesReport {
            app: "cloudalbum".to_owned(),
            target: "AWS (ap-southeast-1)".to_owned(),
            now,
            stages: vec![dev, preview("2026-12-02T02:00:00Z")],
        };
        let text = report.to_string();
        assert!(text.starts_with("STAGE"), "{text}");
        assert!(
            text.contains("pr-7   CREATE_COMPLETE  1d 3h    https://cloudalbum-pr-7/  dev     2026-12-02T02:00:00Z (expired)"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["stages"][1]["expires"], "2026-12-02T02:00:00Z");
        assert_eq!(json["stages"][1]["expired"], true);
        assert_eq!(json["stages"][0]["has_file"], true);
    }
}
