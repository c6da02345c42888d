//! AWS clients and what an AWS failure means for the user.
//!
//! Clients are built once per command from one `SdkConfig`: region (stage file
//! or `--region`), profile (`--profile`), endpoint (`--endpoint-url` or the
//! stage file's `endpoint_url`). Every SDK failure becomes an [`AwsError`] that
//! names the action, says what happened and what to do, and picks the exit code.
//!
//! Every call retries transient failures (throttling, HTTP 5xx, reset or
//! refused connections, timeouts, unreadable answers) up to
//! [`MAX_ATTEMPTS`] times with exponential backoff and jitter. Connecting and
//! waiting for an answer have time limits, so a stalled call is retried
//! instead of hanging; uploads get a longer limit ([`Aws::upload_timeouts`]).

use std::fmt;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::{RetryPartition, TokenBucket};

use crate::sdk_failure::{Failure, INITIAL_BACKOFF, MAX_BACKOFF};
use crate::{emulator, exit};

pub use crate::sdk_failure::MAX_ATTEMPTS;

/// Time to open a connection (TCP and TLS) before the attempt counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time from sending a request to the first byte of its answer. Every API
/// call the deployer makes answers in well under a second; CloudFormation's
/// long operations are polled, never waited on in one call.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The same for an upload, whose request body is sent within this time: the
/// function's zip on a slow uplink. A stalled upload is caught earlier by
/// the SDK's stalled-stream protection (no progress for 5 s).
pub const UPLOAD_READ_TIMEOUT: Duration = Duration::from_mins(5);

/// Retries: standard mode, [`MAX_ATTEMPTS`] attempts, backoff from
/// [`INITIAL_BACKOFF`] doubling up to [`MAX_BACKOFF`], randomised.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Time limits of every call (uploads: [`Aws::upload_timeouts`]).
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
}

/// A retry partition of one service whose retries are never refused for lack
/// of "retry quota": the SDK's default bucket stops retrying a service after
/// about a hundred failures in a row, which would end a long deploy early and
/// make "failed after N attempts" untrue. A deploy makes a few hundred calls;
/// the backoff alone keeps the retries gentle.
fn retry_partition(service: &'static str) -> RetryPartition {
    RetryPartition::custom(format!("deployer-{service}"))
        .token_bucket(TokenBucket::unlimited())
        .build()
}

/// The clients a command needs, sharing one configuration.
#[derive(Debug, Clone)]
pub struct Aws {
    pub cfn: aws_sdk_cloudformation::Client,
    /// Cognito user pools: a retained stage's pool is found again through it.
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    /// CloudWatch Logs: the function's log group (`deployer logs`).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub s3: aws_sdk_s3::Client,
    pub s3control: aws_sdk_s3control::Client,
    pub sts: aws_sdk_sts::Client,
    pub region: String,
    /// `Some` when the calls go to an AWS-compatible endpoint, not AWS.
    pub endpoint: Option<String>,
}

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    pub arn: String,
}

/// Where the calls go and as whom.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub region: String,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
}

impl Aws {
    /// Loads the configuration and checks that credentials can be found,
    /// before any call is made.
    pub async fn connect(settings: &Settings) -> Result<Self, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .retry_config(retry_config())
            .timeout_config(timeout_config());
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        // Emulator difference: stand-in credentials for a local endpoint.
        let stand_in = emulator::stand_in_credentials(
            settings.endpoint.as_deref(),
            settings.profile.as_deref(),
            std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        );
        let uses_stand_in = stand_in.is_some();
        if let Some(credentials) = stand_in {
            loader = loader.credentials_provider(credentials);
        }
        let config = loader.load().await;
        if !uses_stand_in {
            check_credentials(&config)
                .await
                .map_err(|problem| AwsError::credentials(problem, settings.profile.as_deref()))?;
        }
        Ok(Self::from_config(&config, settings))
    }

    fn from_config(config: &SdkConfig, settings: &Settings) -> Self {
        // Whole-object MD5 ETags are what `static/` sync compares, and small
        // files gain nothing from streamed checksums: only where required.
        let mut s3 = aws_sdk_s3::config::Builder::from(config)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .retry_partition(retry_partition("s3"));
        if emulator::s3_path_style(settings.endpoint.as_deref()) {
            s3 = s3.force_path_style(true);
        }
        macro_rules! client {
            ($sdk:ident, $service:literal) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config)
                        .retry_partition(retry_partition($service))
                        .build(),
                )
            };
        }
        Self {
            cfn: client!(aws_sdk_cloudformation, "cloudformation"),
            cognito: client!(aws_sdk_cognitoidentityprovider, "cognito-idp"),
            ddb: client!(aws_sdk_dynamodb, "dynamodb"),
            lambda: client!(aws_sdk_lambda, "lambda"),
            logs: client!(aws_sdk_cloudwatchlogs, "logs"),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            s3control: client!(aws_sdk_s3control, "s3control"),
            sts: client!(aws_sdk_sts, "sts"),
            region: settings.region.clone(),
            endpoint: settings.endpoint.clone(),
        }
    }

    /// Who the credentials are: account and ARN.
    pub async fn caller(&self) -> Result<Caller, AwsError> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sts:GetCallerIdentity", self.target(), e))?;
        let missing = |what| {
            AwsError::other(
                "sts:GetCallerIdentity",
                self.target(),
                format!("the answer named no {what}"),
            )
        };
        Ok(Caller {
            account: identity.account.ok_or_else(|| missing("account"))?,
            arn: identity.arn.ok_or_else(|| missing("ARN"))?,
        })
    }

    /// The account the credentials belong to.
    pub async fn account_id(&self) -> Result<String, AwsError> {
        Ok(self.caller().await?.account)
    }

    /// A per-call override for uploads (`customize().config_override(…)`):
    /// the same limits, but [`UPLOAD_READ_TIMEOUT`] to send the body and
    /// get the answer.
    pub fn upload_timeouts() -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::default().timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(UPLOAD_READ_TIMEOUT)
                .build(),
        )
    }

    /// What the calls go to, for messages: `AWS (region)` or the endpoint.
    pub fn target(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("endpoint {endpoint}"),
            None => format!("AWS ({})", self.region),
        }
    }
}

async fn check_credentials(config: &SdkConfig) -> Result<(), String> {
    use aws_sdk_s3::config::ProvideCredentials;
    let Some(provider) = config.credentials_provider() else {
        return Err("no credentials provider is configured".to_owned());
    };
    provider
        .provide_credentials()
        .await
        .map(drop)
        .map_err(|e| crate::sdk_failure::causes(&e))
}

/// The kind of failure, which decides the exit code and the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Credentials,
    AccessDenied,
    Unreachable,
    /// Failed [`MAX_ATTEMPTS`] times with errors that usually pass
    /// (throttling, HTTP 5xx, lost connections, timeouts).
    Transient,
    Other,
}

/// One failed AWS call, explained.
#[derive(Debug, Clone)]
pub struct AwsError {
    /// The IAM action, e.g. `cloudformation:CreateChangeSet`.
    pub action: &'static str,
    pub target: String,
    pub kind: ErrorKind,
    /// The service's error code, e.g. `ValidationError`.
    pub code: Option<String>,
    pub message: String,
}

impl std::error::Error for AwsError {}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            action,
            target,
            message,
            ..
        } = self;
        match self.kind {
            ErrorKind::Credentials => write!(
                f,
                "no usable AWS credentials: {message}; set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` for temporary ones), or name a profile from ~/.aws/config with `--profile` or `AWS_PROFILE` (`aws configure` or `aws sso login` creates one)"
            ),
            ErrorKind::AccessDenied if self.is_code("ForeignBucket") => {
                write!(f, "`{action}` refused on {target}: {message}")
            }
            ErrorKind::AccessDenied => write!(
                f,
                "`{action}` was denied on {target}: {message}; allow `{action}` for your IAM user or role, or use `--profile` for one that has it"
            ),
            ErrorKind::Unreachable => write!(
                f,
                "cannot reach {target} for `{action}`: {message}; check the network and `--region`/`--endpoint-url` (for the local stage, start the emulator with `deployer local`)"
            ),
            ErrorKind::Transient => {
                write!(
                    f,
                    "`{action}` on {target} failed after {MAX_ATTEMPTS} attempts: "
                )?;
                if let Some(code) = &self.code {
                    write!(f, "{code}: ")?;
                }
                write!(
                    f,
                    "{message} (transient); re-run the same command to resume"
                )
            }
            ErrorKind::Other => match &self.code {
                Some(code) => write!(f, "`{action}` failed on {target}: {code}: {message}"),
                None => write!(f, "`{action}` failed on {target}: {message}"),
            },
        }
    }
}

impl AwsError {
    pub fn credentials(problem: String, profile: Option<&str>) -> Self {
        let message = match profile {
            Some(profile) => format!("profile `{profile}`: {problem}"),
            None => problem,
        };
        Self {
            action: "sts:GetCallerIdentity",
            target: "AWS".to_owned(),
            kind: ErrorKind::Credentials,
            code: None,
            message,
        }
    }

    /// Explains an SDK error of `action`.
    #[allow(clippy::needless_pass_by_value)] // takes the error over, as `map_err` hands it
    pub fn from_sdk<E>(action: &'static str, target: String, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Self::from_failure(action, target, Failure::of(&err))
    }

    /// Explains a failure of `action` already described by [`Failure::of`].
    pub fn from_failure(action: &'static str, target: String, failure: Failure) -> Self {
        let kind = match failure.code.as_deref() {
            Some(
                "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "AuthorizationError",
            ) => ErrorKind::AccessDenied,
            Some(
                "InvalidClientTokenId"
                | "UnrecognizedClientException"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "SignatureDoesNotMatch"
                | "InvalidAccessKeyId",
            ) => ErrorKind::Credentials,
            // A refused connection is retried like any lost one, but is more
            // likely a wrong endpoint or a stopped emulator than a blip.
            _ if failure.unreachable => ErrorKind::Unreachable,
            _ if failure.transient => ErrorKind::Transient,
            _ => ErrorKind::Other,
        };
        let message = if failure.unreachable && failure.transient {
            format!("{} (after {MAX_ATTEMPTS} attempts)", failure.summary)
        } else {
            failure.summary
        };
        Self {
            action,
            target,
            kind,
            code: failure.code,
            message,
        }
    }

    /// A bucket of a name we use belongs to another account (or denies us).
    pub fn foreign_bucket(
        action: &'static str,
        target: String,
        bucket: &str,
        account: &str,
    ) -> Self {
        Self {
            action,
            target,
            kind: ErrorKind::AccessDenied,
            code: Some("ForeignBucket".to_owned()),
            message: format!(
                "a bucket named `{bucket}` exists but does not belong to account {account}, so no code or template is written to it. Name a bucket of your own instead: `artifacts_bucket: <name>` in the stage file or `--artifacts-bucket <name>` (created on first use). If it is yours in another account, use that account's credentials (`--profile`) or delete it there; `deployer doctor` shows who the credentials are"
            ),
        }
    }

    /// A failure that is neither credentials, permissions nor the network.
    pub fn other(action: &'static str, target: String, message: impl fmt::Display) -> Self {
        Self {
            action,
            target,
            kind: ErrorKind::Other,
            code: None,
            message: message.to_string(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Credentials | ErrorKind::AccessDenied => exit::CREDENTIALS,
            ErrorKind::Transient => exit::TRANSIENT,
            ErrorKind::Unreachable | ErrorKind::Other => exit::DEPLOY_FAILED,
        }
    }

    /// The service's error code is `code`.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_action_and_the_fix() {
        let err = AwsError {
            action: "cloudformation:CreateChangeSet",
            target: "AWS (us-east-1)".to_owned(),
            kind: ErrorKind::AccessDenied,
            code: Some("AccessDenied".to_owned()),
            message: "User: arn:aws:iam::1:user/ci is not authorized".to_owned(),
        };
        let text = err.to_string();
        assert!(text.starts_with("`cloudformation:CreateChangeSet` was denied"));
        assert!(text.contains("allow `cloudformation:CreateChangeSet`"));
        assert_eq!(err.exit_code(), 3);
    }

    fn failure(status: Option<u16>, code: Option<&str>, summary: &str) -> Failure {
        Failure {
            code: code.map(str::to_owned),
            message: None,
            status,
            transient: true,
            unreachable: false,
            summary: summary.to_owned(),
        }
    }

    #[test]
    fn a_transient_failure_is_one_line_naming_the_call_the_status_and_the_re_run() {
        let err = AwsError::from_failure(
            "cloudformation:DescribeStacks",
            "AWS (us-east-1)".to_owned(),
            failure(
                Some(503),
                None,
                "HTTP 503 with no readable error in the answer",
            ),
        );
        assert_eq!(
            err.to_string(),
            "`cloudformation:DescribeStacks` on AWS (us-east-1) failed after 10 attempts: HTTP 503 with no readable error in the answer (transient); re-run the same command to resume"
        );
        assert_eq!(err.exit_code(), exit::TRANSIENT);

        let throttled = AwsError::from_failure(
            "cloudformation:DescribeStackEvents",
            "AWS (us-east-1)".to_owned(),
            failure(Some(400), Some("Throttling"), "Rate exceeded"),
        );
        assert!(
            throttled
                .to_string()
                .contains("failed after 10 attempts: Throttling: Rate exceeded (transient)"),
            "{throttled}"
        );
    }

    #[test]
    fn a_refused_connection_is_unreachable_not_transient() {
        let mut refused = failure(None, None, "connection refused");
        refused.unreachable = true;
        let err = AwsError::from_failure(
            "s3:ListBucket",
            "endpoint http://127.0.0.1:4566".to_owned(),
            refused,
        );
        assert_eq!(err.kind, ErrorKind::Unreachable);
        assert!(
            err.to_string().starts_with(
                "cannot reach endpoint http://127.0.0.1:4566 for `s3:ListBucket`: connection refused (after 10 attempts); check"
            ),
            "{err}"
        );
        assert_eq!(err.exit_code(), exit::DEPLOY_FAILED);
    }

    #[test]
    fn missing_credentials_name_the_variables_and_profile() {
        let text =
            AwsError::credentials("no providers in chain".to_owned(), Some("ci")).to_string();
        assert!(text.contains("AWS_ACCESS_KEY_ID"));
        assert!(text.contains("--profile"));
        assert!(text.contains("profile `ci`"));
    }
}
