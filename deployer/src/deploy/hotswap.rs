//! The inner loop's fast path (`up --hotswap`, `watch`), as CDK's and SAM's
//! hotswaps: when the deployed stack already runs exactly this template, new
//! code goes straight to the function (`UpdateFunctionCode`) and new static
//! files are published and linked by updating the function's `STATIC_ASSETS`
//! (`UpdateFunctionConfiguration`), with no change set. Anything else (the
//! template, the code bucket, a missing or unsettled stack) needs the normal
//! change set, and [`hotswap`] says why.
//!
//! A hotswapped function has drifted from its stack, which still names the
//! older code: it carries the tag [`function::HOTSWAP_TAG`] (`status` shows
//! it) until the next plain `up`, whose change set updates only the code
//! parameter, and whose [`reconcile`] makes the function match the stack
//! (also when that change set is empty) and removes the tag.

use std::fmt;

use aws_sdk_cloudformation::types::TemplateStage;
use base64::Engine as _;
use contract::{env, outputs};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::aws::AwsError;
use crate::deploy::apply::{self, Before};
use crate::deploy::artifacts;
use crate::deploy::error::DeployError;
use crate::deploy::function::{self, Function};
use crate::deploy::history::{self, Deployed, Kind, Store};
use crate::deploy::prepare::Prepared;
use crate::deploy::report::{ArtifactReport, Stopwatch};
use crate::deploy::session::Session;
use crate::deploy::stack::StackInfo;
use crate::deploy::static_sync::{self, SyncReport};
use crate::deploy::{code, stack_outputs};
use crate::template::composition::ids;

/// What a hotswap attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// The function runs the new code and static files.
    Hotswapped(Box<HotswapReport>),
    /// Only a change set can deploy this; `reason` says why.
    NeedsChangeSet { reason: String },
}

/// What a hotswap did.
#[derive(Debug, Serialize)]
pub struct HotswapReport {
    pub stage: String,
    pub stack: String,
    pub target: String,
    /// `hotswap`: no change set ran.
    pub mode: &'static str,
    pub url: Option<String>,
    /// Nothing differed from the running function.
    pub up_to_date: bool,
    /// The id of its history record (none when nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The code, when it was swapped in.
    pub code: Option<ArtifactReport>,
    /// Whether the function now links to newly published static files.
    pub static_assets_linked: bool,
    #[serde(rename = "static")]
    pub static_files: SyncReport,
    pub timings_ms: HotswapTimings,
}

/// How long each step of a hotswap took, in milliseconds.
#[derive(Debug, Serialize, Default)]
pub struct HotswapTimings {
    pub build: u64,
    pub check: u64,
    pub code: u64,
    #[serde(rename = "static")]
    pub static_files: u64,
    pub total: u64,
}

impl fmt::Display for HotswapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.up_to_date {
            write!(f, "stage {} is up to date (hotswap)", self.stage)?;
        } else {
            let mut swapped = Vec::new();
            if self.code.is_some() {
                swapped.push("code");
            }
            if self.static_assets_linked {
                swapped.push("static files");
            }
            write!(
                f,
                "hotswapped {} of stage {} in {} ms (the stack is marked drifted until a plain `deployer up`)",
                swapped.join(" and "),
                self.stage,
                self.timings_ms.total
            )?;
        }
        if let Some(url) = &self.url {
            write!(f, "\n{url}")?;
        }
        Ok(())
    }
}

/// Lambda's `CodeSha256` of a zip: base64 of its SHA-256.
pub fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

/// Deploys `prepared` without a change set when only the code or the static
/// files changed; otherwise says why a change set is needed (nothing changed
/// then).
pub async fn hotswap(session: &Session, prepared: &Prepared) -> Result<Outcome, DeployError> {
    let total = Stopwatch::start();
    let watch = Stopwatch::start();
    let stack = match apply::stack_before(session).await? {
        Before::Ready(stack) => stack,
        Before::Missing | Before::RollbackComplete(_) => {
            return Ok(needs(format!(
                "stage `{}` has no deployed stack yet",
                session.stage.name
            )));
        }
    };
    if let Some(reason) = template_difference(session, &stack, prepared).await? {
        return Ok(needs(reason));
    }
    let account = session.aws.account_id().await?;
    let bucket = session.artifacts_bucket(&account);
    if stack.parameters.get(&ids::CODE_BUCKET.to_string()) != Some(&bucket) {
        return Ok(needs(format!(
            "the stack takes its code from another bucket than `{bucket}`"
        )));
    }
    let function = function::deployed(session, &stack).await?;
    let store = Store::new(&session.aws, &bucket, &account, &session.stack);
    let check = watch.millis();

    let watch = Stopwatch::start();
    let code = if function.code_sha256 == code_sha256(&prepared.artifact.zip) {
        None
    } else {
        let uploaded = code::upload(session, &prepared.artifact).await?;
        session.printer.info(format_args!(
            "hotswapping the code of function `{}`",
            function.name
        ));
        function::update_code(session, &function, &uploaded.bucket, &uploaded.key).await?;
        Some(uploaded)
    };
    let code_ms = watch.millis();

    let watch = Stopwatch::start();
    let bucket_name = stack_outputs::bucket(&stack)?;
    let (static_files, static_assets_linked) =
        publish_and_link(session, prepared, &function, &store, &bucket_name).await?;
    let static_ms = watch.millis();

    let up_to_date = code.is_none() && !static_assets_linked;
    let mut deployment = None;
    if !up_to_date {
        let code_hex = &prepared.artifact.sha256;
        let mark = format!("code {}", code_hex.get(..12).unwrap_or(code_hex));
        function::mark_hotswapped(session, &function, &mark).await?;
        let code_key = artifacts::code_key(&session.stack, &prepared.artifact);
        let deployed = Deployed {
            kind: Kind::Hotswap,
            stage: session.stage.name.as_str(),
            code_key: &code_key,
            code_sha256: code_hex,
            template_body: &prepared.template.body(),
            manifest: &prepared.site.manifest,
            commit: prepared.commit.clone(),
            rolled_back_to: None,
        };
        deployment = history::record(&store, &session.printer, &deployed).await;
    }
    Ok(Outcome::Hotswapped(Box::new(HotswapReport {
        stage: session.stage.name.to_string(),
        stack: stack.name.clone(),
        target: session.aws.target(),
        mode: "hotswap",
        url: stack.outputs.get(outputs::API_URL).cloned(),
        up_to_date,
        deployment,
        code,
        static_assets_linked,
        static_files,
        timings_ms: HotswapTimings {
            build: prepared.build_ms,
            check,
            code: code_ms,
            static_files: static_ms,
            total: total.millis() + prepared.build_ms,
        },
    })))
}

/// Uploads the static files the function does not have yet and, when the
/// set changed, links the function to them (`STATIC_ASSETS`) and prunes what
/// neither the new, the replaced nor a kept (rollback) manifest names.
/// Returns the sync and whether the function was relinked.
async fn publish_and_link(
    session: &Session,
    prepared: &Prepared,
    function: &Function,
    store: &Store<'_>,
    bucket_name: &str,
) -> Result<(SyncReport, bool), DeployError> {
    let mut static_files = static_sync::publish(&session.aws, bucket_name, &prepared.site).await?;
    let manifest = prepared.site.manifest.to_string();
    let linked = function.environment.get(env::STATIC_ASSETS);
    let static_assets_linked = linked != Some(&manifest);
    if static_assets_linked {
        session.printer.info(format_args!(
            "linking function `{}` to the new static files",
            function.name
        ));
        let mut environment = function.environment.clone();
        environment.insert(env::STATIC_ASSETS.to_owned(), manifest);
        function::update_environment(session, function, &environment).await?;
        let replaced = linked.and_then(|text| contract::assets::Manifest::parse(text).ok());
        let kept = history::kept_or_empty(store, &session.printer).await;
        static_files.deleted = static_sync::prune(
            &session.aws,
            bucket_name,
            &prepared.site,
            replaced.as_ref(),
            &kept.manifests,
        )
        .await?;
    }
    Ok((static_files, static_assets_linked))
}

fn needs(reason: String) -> Outcome {
    Outcome::NeedsChangeSet { reason }
}

/// Why the deployed template is not `prepared`'s, or `None` if it is.
async fn template_difference(
    session: &Session,
    stack: &StackInfo,
    prepared: &Prepared,
) -> Result<Option<String>, DeployError> {
    let deployed = session
        .aws
        .cfn
        .get_template()
        .stack_name(&stack.name)
        .template_stage(TemplateStage::Original)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudformation:GetTemplate", session.aws.target(), e))?;
    let Some(body) = deployed.template_body.as_deref() else {
        return Ok(Some(
            "CloudFormation returned no template for the stack".to_owned(),
        ));
    };
    // CloudFormation gives back what it was sent (JSON); YAML is accepted too.
    let parsed = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .or_else(|| serde_norway::from_str::<serde_json::Value>(body).ok());
    Ok(match parsed {
        Some(value) if &value == prepared.template.as_json() => None,
        Some(_) => Some("the template changed".to_owned()),
        None => Some("the deployed template could not be read".to_owned()),
    })
}

/// After a plain `up`: a function that a hotswap left drifted is made to
/// match its stack (the code and static files the stack now names, which the
/// change set may not have touched if they were already in the stack) and
/// loses its drift mark. Returns whether there was anything to reconcile.
///
/// `lambda_sha256` is the stack's code as Lambda reports it ([`code_sha256`]).
pub async fn reconcile(
    session: &Session,
    stack: &StackInfo,
    lambda_sha256: &str,
    code: &ArtifactReport,
    manifest: &contract::assets::Manifest,
) -> Result<bool, DeployError> {
    let function = function::deployed(session, stack).await?;
    if function.hotswapped.is_none() {
        return Ok(false);
    }
    if function.code_sha256 != lambda_sha256 {
        function::update_code(session, &function, &code.bucket, &code.key).await?;
    }
    restore_manifest(session, &function, manifest).await?;
    function::clear_hotswapped(session, &function).await?;
    session.printer.info(format_args!(
        "function `{}` matches its stack again (hotswap reconciled)",
        function.name
    ));
    Ok(true)
}

async fn restore_manifest(
    session: &Session,
    function: &Function,
    manifest: &contract::assets::Manifest,
) -> Result<(), DeployError> {
    let manifest = manifest.to_string();
    if function.environment.get(env::STATIC_ASSETS) == Some(&manifest) {
        return Ok(());
    }
    let mut environment = function.environment.clone();
    environment.insert(env::STATIC_ASSETS.to_owned(), manifest);
    function::update_environment(session, function, &environment).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sha256_is_what_lambda_reports() {
        // `printf hello | openssl dgst -sha256 -binary | base64`
        assert_eq!(
            code_sha256(b"hello"),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
    }
}
