//! Account settings that would make a deploy fail half-way, read before
//! anything changes: S3 Block Public Access (account and bucket), which
//! makes every public-read upload of `static/` fail after the stack is
//! deployed, and who owns the artifacts bucket.
//!
//! The emulator has no S3 Control service and ignores bucket ownership, so the
//! decisions are pure functions of the answers, tested on stubbed answers; the
//! calls only fetch those answers.

use std::fmt;

use serde::Serialize;

use crate::aws::AwsError;
pub use crate::deploy::artifacts::{BucketAnswer, fetch_bucket_answer};
use crate::deploy::error::DeployError;
use crate::deploy::session::Session;

/// The four switches of a public-access block; `None` where none is set.
#[allow(clippy::struct_excessive_bools)] // S3's own four switches
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// Public-read object ACLs (how `static/` is served) are refused or ignored.
    pub fn blocks_public_acls(self) -> bool {
        self.block_public_acls || self.ignore_public_acls
    }
}

/// A verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "detail")]
pub enum Verdict {
    Ok(String),
    /// Not a problem yet (e.g. the artifacts bucket does not exist).
    Note(String),
    /// A deploy would fail; the text says how to fix it.
    Problem(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(text) | Self::Note(text) | Self::Problem(text) => f.write_str(text),
        }
    }
}

/// The account's public-access block (S3 Control), judged for `static/`.
pub fn account_public_access(account: &str, block: Option<PublicAccessBlock>) -> Verdict {
    match block {
        None => Verdict::Ok(format!("account {account} sets no S3 public-access block")),
        Some(block) if block.blocks_public_acls() => Verdict::Problem(format!(
            "account {account} blocks public ACLs (BlockPublicAcls={}, IgnorePublicAcls={}), so `static/` cannot be public-read and every page loses its CSS, scripts and maps; allow public ACLs while keeping public policies blocked: `aws s3control put-public-access-block --account-id {account} --public-access-block-configuration BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=true,RestrictPublicBuckets=true` (an organisation's policy may forbid it: ask its administrators)",
            block.block_public_acls, block.ignore_public_acls
        )),
        Some(_) => Verdict::Ok(format!(
            "account {account} blocks public policies but allows public ACLs, as `static/` needs"
        )),
    }
}

/// A stage bucket's own public-access block, judged for `static/`.
pub fn bucket_public_access(bucket: &str, block: Option<PublicAccessBlock>) -> Verdict {
    match block {
        Some(block) if block.blocks_public_acls() => Verdict::Problem(format!(
            "bucket `{bucket}` blocks public ACLs, so `static/` cannot be public-read; the stage's template allows them: run `deployer up` to put the bucket's settings back, or `aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=true,RestrictPublicBuckets=true`"
        )),
        _ => Verdict::Ok(format!("bucket `{bucket}` allows public-read ACLs")),
    }
}

/// The artifacts bucket, judged: a bucket of that name that another account
/// owns must never receive our code.
pub fn artifacts_bucket(bucket: &str, account: &str, answer: BucketAnswer) -> Verdict {
    match answer {
        BucketAnswer::Owned => Verdict::Ok(format!(
            "artifacts bucket `{bucket}` belongs to account {account}"
        )),
        BucketAnswer::Missing => Verdict::Note(format!(
            "artifacts bucket `{bucket}` does not exist yet; `deployer up` creates it (private, encrypted)"
        )),
        BucketAnswer::Forbidden => Verdict::Problem(format!(
            "a bucket named `{bucket}` exists but does not belong to account {account} (or denies it access); never deploy code through it: name another with `artifacts_bucket:` in the stage file or `--artifacts-bucket`, delete it if it is yours in another account, or check `--profile`"
        )),
    }
}

/// Before anything changes: an account whose S3 Block Public Access refuses
/// public-read ACLs would let the stack deploy and then fail every `static/`
/// upload, so `up` stops first with the remedy. AWS only: the emulator has no
/// S3 Control service ([`crate::emulator::has_s3_control`]).
pub async fn check_before_deploy(session: &Session) -> Result<(), DeployError> {
    if !crate::emulator::has_s3_control(session.aws.endpoint.as_deref()) {
        return Ok(());
    }
    let account = session.aws.account_id().await?;
    let block =
        fetch_account_public_access(&session.aws.s3control, &account, &session.aws.target())
            .await?;
    match account_public_access(&account, block) {
        Verdict::Problem(text) => Err(DeployError::AccountSettings(text)),
        Verdict::Ok(_) | Verdict::Note(_) => Ok(()),
    }
}

/// The account's public-access block; `None` when it sets none.
pub async fn fetch_account_public_access(
    s3control: &aws_sdk_s3control::Client,
    account: &str,
    target: &str,
) -> Result<Option<PublicAccessBlock>, AwsError> {
    match s3control
        .get_public_access_block()
        .account_id(account)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .public_access_block_configuration
            .map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls.unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
                block_public_policy: c.block_public_policy.unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
            })),
        Err(e) => {
            let err = AwsError::from_sdk("s3:GetAccountPublicAccessBlock", target.to_owned(), e);
            if err.is_code("NoSuchPublicAccessBlockConfiguration") {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    #[test]
    fn an_account_that_blocks_or_ignores_public_acls_is_a_problem_with_the_remedy() {
        for block in [
            PublicAccessBlock {
                block_public_acls: true,
                ..PublicAccessBlock::default()
            },
            PublicAccessBlock {
                ignore_public_acls: true,
                ..PublicAccessBlock::default()
            },
        ] {
            let verdict = account_public_access(ACCOUNT, Some(block));
            let Verdict::Problem(text) = verdict else {
                panic!("{verdict:?}")
            };
            assert!(
                text.contains("aws s3control put-public-access-block"),
                "{text}"
            );
            assert!(text.contains(ACCOUNT), "{text}");
        }
    }

    #[test]
    fn an_account_that_only_blocks_public_policies_is_fine() {
        let policies_only = PublicAccessBlock {
            block_public_policy: true,
            restrict_public_buckets: true,
            ..PublicAccessBlock::default()
        };
        assert!(matches!(
            account_public_access(ACCOUNT, Some(policies_only)),
            Verdict::Ok(_)
        ));
        assert!(matches!(
            account_public_access(ACCOUNT, None),
            Verdict::Ok(_)
        ));
    }

    #[test]
    fn a_bucket_that_blocks_public_acls_is_a_problem() {
        let block = PublicAccessBlock {
            block_public_acls: true,
            ..PublicAccessBlock::default()
        };
        assert!(matches!(
            bucket_public_access("b", Some(block)),
            Verdict::Problem(_)
        ));
        assert!(matches!(bucket_public_access("b", None), Verdict::Ok(_)));
    }

    #[test]
    fn an_artifacts_bucket_of_another_account_is_a_problem() {
        let bucket = "deployer-artifacts-123456789012-eu-west-1";
        assert!(matches!(
            artifacts_bucket(bucket, ACCOUNT, BucketAnswer::Forbidden),
            Verdict::Problem(_)
        ));
        assert!(matches!(
            artifacts_bucket(bucket, ACCOUNT, BucketAnswer::Missing),
            Verdict::Note(_)
        ));
        assert!(matches!(
            artifacts_bucket(bucket, ACCOUNT, BucketAnswer::Owned),
            Verdict::Ok(_)
        ));
    }
}
