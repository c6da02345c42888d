//! A stage, where it is deployed, clients to reach it, and how to talk to the
//! person (or CI job) running the deployer: what every pipeline step takes.

use crate::aws::{Aws, Settings};
use crate::deploy::artifacts;
use crate::deploy::error::DeployError;
use crate::deploy::stack::{self, StackInfo};
use crate::output::{Answer, Printer};
use crate::preview::Preview;
use crate::stage::{BucketName, Stage};
use crate::template::composition::Target;

/// Where the calls go: overrides of what the stage file says.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// `--region`; the stage file's `region` otherwise.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--endpoint-url`; the stage file's `endpoint_url` otherwise; AWS if neither.
    pub endpoint_url: Option<String>,
    /// `--artifacts-bucket`; the stage file's `artifacts_bucket` otherwise.
    pub artifacts_bucket: Option<BucketName>,
    /// `--yes`: every confirmation is answered yes.
    pub assume_yes: bool,
    /// `--allow-replace`: stateful resources that may be replaced or deleted.
    pub allow_replace: Vec<String>,
}

/// A stage, where it is deployed, and clients to reach it.
#[derive(Debug)]
pub struct Session {
    pub stage: Stage,
    pub stack: String,
    pub target: Target,
    pub aws: Aws,
    pub printer: Printer,
    pub assume_yes: bool,
    /// Stateful resources the user allowed to be replaced or deleted.
    pub allow_replace: Vec<String>,
    /// A named artifacts bucket (flag or stage file); `None`: the default name.
    pub artifacts_bucket: Option<String>,
    /// Set for a preview stage (`up --from`): its base and expiry, written
    /// into the stack's tags by every change set.
    pub preview: Option<Preview>,
}

impl Session {
    /// Connects with the region, profile and endpoint in force, and refuses
    /// credentials of another account than the stage file's `account_id`
    /// (before anything else is asked of AWS). The stage file was read and
    /// validated before: a bad one never reaches AWS.
    pub async fn open(
        stage: Stage,
        options: &SessionOptions,
        printer: Printer,
    ) -> Result<Self, DeployError> {
        let target = Target::of(&stage, options.endpoint_url.as_deref());
        let artifacts_bucket = options
            .artifacts_bucket
            .clone()
            .or_else(|| stage.config.artifacts_bucket.clone())
            .map(String::from);
        let settings = Settings {
            region: options
                .region
                .clone()
                .unwrap_or_else(|| stage.config.region.to_string()),
            profile: options.profile.clone(),
            endpoint: match &target {
                Target::Aws => None,
                Target::Endpoint(url) => Some(url.clone()),
            },
        };
        let aws = Aws::connect(&settings).await?;
        if let Some(expected) = &stage.config.account_id {
            let caller = aws.caller().await?;
            if caller.account != expected.as_str() {
                return Err(DeployError::WrongAccount {
                    stage: stage.name.to_string(),
                    expected: expected.to_string(),
                    actual: caller.account,
                    arn: caller.arn,
                });
            }
        }
        Ok(Self {
            stack: stage.stack_name(),
            stage,
            target,
            aws,
            printer,
            assume_yes: options.assume_yes,
            allow_replace: options.allow_replace.clone(),
            artifacts_bucket,
            preview: None,
        })
    }

    /// The artifacts bucket's name: the one the user named, or the default
    /// of `account` in this region.
    pub fn artifacts_bucket(&self, account: &str) -> String {
        self.artifacts_bucket
            .clone()
            .unwrap_or_else(|| artifacts::bucket_name(account, &self.aws.region))
    }

    /// The deployed stack, or the "not deployed" error naming the fix.
    pub async fn deployed_stack(&self) -> Result<StackInfo, DeployError> {
        stack::describe(&self.aws, &self.stack)
            .await?
            .ok_or_else(|| DeployError::NotDeployed {
                stage: self.stage.name.to_string(),
                stack: self.stack.clone(),
                target: self.aws.target(),
            })
    }

    /// Asks `question` at a terminal; `--yes` answers for the user. Off a
    /// terminal (CI) there is no one to ask: without `--yes` that is an error
    /// naming `action`.
    pub fn confirm(&self, question: &str, action: &str) -> Result<bool, DeployError> {
        if self.assume_yes {
            return Ok(true);
        }
        match self.printer.ask(question) {
            Answer::Yes => Ok(true),
            Answer::No => Ok(false),
            Answer::CannotAsk => Err(DeployError::NeedsConfirmation {
                action: action.to_owned(),
            }),
        }
    }
}
