//! Every difference between the local emulator (ministack) and AWS that the
//! deployer works around, in one place. Nothing here runs against AWS: each
//! function is called only when the stage targets an AWS-compatible endpoint.
//! `docs/emulator.md` lists the differences and how each is tested.
//!
//! - **Credentials**: a loopback endpoint accepts any key, and a developer
//!   running `deployer local` has no AWS account: stand-in credentials
//!   ([`stand_in_credentials`]).
//! - **Addressing**: `<bucket>.127.0.0.1` does not resolve; S3 is addressed by
//!   path ([`s3_path_style`]).
//! - **The function's environment**: the emulator does not hand its endpoint to
//!   functions, and serves the pool's signing keys itself
//!   ([`function_environment`]).
//! - **URLs**: the API and the static assets are served under the endpoint
//!   ([`api_url`], [`static_url`]).
//! - **S3 Control**: the emulator has none, so the account's public-access
//!   block is read on AWS only ([`has_s3_control`]).
//! - **Bucket ownership**: the emulator ignores `OwnershipControls` in the
//!   template, so public-read ACLs on `static/` fail until the same setting is
//!   applied through the S3 API ([`after_deploy`]).
//! - **Live tail's host**: on AWS, `StartLiveTail` goes to the `stream-` host
//!   of the Logs endpoint (the SDK puts the prefix in front of the host); an
//!   endpoint on an IP address cannot take one ([`NoHostPrefix`]).
//! - **Live tail's content**: the emulator's live tail carries what
//!   `PutLogEvents` writes, not the function's output, so `logs --follow`
//!   reads instead there ([`live_tail_shows_function_output`]).
//!
//! Template choices that are equally right on AWS (RCU/WCU as literal numbers,
//! the token issuer built with `Fn::Sub`) are not differences and live in the
//! template itself.

use aws_sdk_cloudwatchlogs::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_cloudwatchlogs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudwatchlogs::error::BoxError;
use aws_sdk_s3::config::Credentials;
use contract::{env, prefix};

use crate::exit;
use crate::sdk_failure::Failure;
use crate::template::intrinsic::{Expr, Handle, Sub};
use crate::template::resources::{Bucket, RestApi, UserPool};

/// A failed emulator-only step.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(
        "the local cloud refused `s3:PutBucketOwnershipControls` on `{bucket}`: {message}; restart it with `deployer local --fresh` if its state is damaged"
    )]
    OwnershipControls { bucket: String, message: String },
}

impl EmulatorError {
    pub fn exit_code(&self) -> u8 {
        exit::DEPLOY_FAILED
    }
}

/// Stand-in credentials for a loopback endpoint when no credentials are named
/// (no profile, no key in the environment); `None` otherwise, and always for
/// AWS. Decided before the SDK loads its configuration, so the credential chain
/// never probes the network (instance metadata) for a local run.
pub fn stand_in_credentials(
    endpoint: Option<&str>,
    profile: Option<&str>,
    access_key_in_env: bool,
) -> Option<Credentials> {
    (endpoint.is_some_and(is_loopback) && profile.is_none() && !access_key_in_env)
        .then(|| Credentials::new("local", "local", None, None, "loopback-emulator"))
}

/// Whether `endpoint` is on this machine.
pub fn is_loopback(endpoint: &str) -> bool {
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Whether the account-level S3 settings (S3 Control) can be read: not on the
/// emulator, which has no S3 Control service. The decision on AWS's answer is
/// tested on stubbed answers (`deploy::preflight`).
pub fn has_s3_control(endpoint: Option<&str>) -> bool {
    endpoint.is_none()
}

/// S3 by path (`<endpoint>/<bucket>/<key>`) whenever an endpoint is named:
/// virtual-hosted names under an IP address or `localhost` do not resolve.
pub fn s3_path_style(endpoint: Option<&str>) -> bool {
    endpoint.is_some()
}

/// Whether a live tail of the function's log group shows what the function
/// prints: on AWS it does; the emulator writes the function's output into
/// the log group without passing it to live tail sessions (only
/// `PutLogEvents` reaches them).
pub fn live_tail_shows_function_output(endpoint: Option<&str>) -> bool {
    endpoint.is_none()
}

/// Takes the host prefix an operation puts in front of the endpoint's host
/// (`stream-127.0.0.1`) off again, before the request is signed.
#[derive(Debug)]
pub struct NoHostPrefix(pub &'static str);

impl Intercept for NoHostPrefix {
    fn name(&self) -> &'static str {
        "NoHostPrefix"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if let Some(uri) = without_host_prefix(request.uri(), self.0) {
            request.set_uri(uri)?;
        }
        Ok(())
    }
}

/// `uri` without `prefix` at the start of its host; `None` if it has none.
pub fn without_host_prefix(uri: &str, prefix: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let rest = rest.strip_prefix(prefix)?;
    Some(format!("{scheme}://{rest}"))
}

/// The emulator does not hand its endpoint to functions: tell the SDK in the
/// function where AWS is, and where the pool's signing keys are served.
pub fn function_environment(endpoint: &str, pool: Handle<UserPool>) -> Vec<(&'static str, Expr)> {
    vec![
        (env::AWS_ENDPOINT_URL, Expr::str(endpoint)),
        (
            env::COGNITO_JWKS_URL,
            Sub::new()
                .lit(format!("{endpoint}/"))
                .var(pool.pool_id())
                .lit("/.well-known/jwks.json")
                .build(),
        ),
    ]
}

/// The emulator serves a REST API at `http://<api-id>.execute-api.localhost:<port>/<stage>/`
/// when it listens on loopback, and under `/_aws/execute-api/<api-id>/<stage>/` otherwise.
pub fn api_url(endpoint: &str, api: Handle<RestApi>, stage: &str) -> Expr {
    let (scheme, authority) = endpoint.split_once("://").unwrap_or(("http", endpoint));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if matches!(host, "127.0.0.1" | "localhost") {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        Sub::new()
            .lit(format!("{scheme}://"))
            .var(api.api_id())
            .lit(format!(".execute-api.localhost{port}/{stage}/"))
            .build()
    } else {
        Sub::new()
            .lit(format!("{endpoint}/_aws/execute-api/"))
            .var(api.api_id())
            .lit(format!("/{stage}/"))
            .build()
    }
}

/// Path-style addressing: `<endpoint>/<bucket>/static/`.
pub fn static_url(endpoint: &str, bucket: Handle<Bucket>) -> Expr {
    Sub::new()
        .lit(format!("{endpoint}/"))
        .var(bucket.name())
        .lit(format!("/{}", prefix::STATIC))
        .build()
}

/// Applied after a stack is created or updated on an endpoint: the emulator
/// ignores `OwnershipControls` in the template, so new buckets reject ACLs
/// (`AccessControlListNotSupported`); the same setting goes through the S3 API
/// so `static/` objects can be public-read as on AWS.
pub async fn after_deploy(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), EmulatorError> {
    use aws_sdk_s3::types::{ObjectOwnership, OwnershipControls, OwnershipControlsRule};
    let failed = |message: String| EmulatorError::OwnershipControls {
        bucket: bucket.to_owned(),
        message,
    };
    let rule = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::BucketOwnerPreferred)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let controls = OwnershipControls::builder()
        .rules(rule)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    s3.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(controls)
        .send()
        .await
        .map_err(|e| failed(Failure::of(&e).describe()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints_are_recognised() {
        assert!(is_loopback("http://127.0.0.1:4566"));
        assert!(is_loopback("http://localhost:4566/"));
        assert!(!is_loopback(
            "https://cloudformation.us-east-1.amazonaws.com"
        ));
        assert!(!is_loopback("http://10.0.0.5:4566"));
    }

    #[test]
    fn stand_in_credentials_only_for_an_anonymous_loopback_endpoint() {
        let local = Some("http://127.0.0.1:4566");
        assert!(stand_in_credentials(local, None, false).is_some());
        assert!(stand_in_credentials(local, Some("dev"), false).is_none());
        assert!(stand_in_credentials(local, None, true).is_none());
        assert!(stand_in_credentials(None, None, false).is_none());
        assert!(stand_in_credentials(Some("https://example.com"), None, false).is_none());
    }

    #[test]
    fn a_host_prefix_is_taken_off_the_endpoint_again() {
        assert_eq!(
            without_host_prefix("http://stream-127.0.0.1:4566/?x=1", "stream-").as_deref(),
            Some("http://127.0.0.1:4566/?x=1")
        );
        assert_eq!(
            without_host_prefix("http://127.0.0.1:4566/", "stream-"),
            None
        );
        assert_eq!(without_host_prefix("no scheme", "stream-"), None);
    }
}
