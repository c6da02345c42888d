//! The function's code in the artifacts bucket: uploaded once per content,
//! under the stack's prefix.

use crate::deploy::artifacts::{self, Artifact};
use crate::deploy::error::DeployError;
use crate::deploy::report::ArtifactReport;
use crate::deploy::session::Session;

/// Puts the code in the artifacts bucket unless it is there already.
pub async fn upload(session: &Session, artifact: &Artifact) -> Result<ArtifactReport, DeployError> {
    let account = session.aws.account_id().await?;
    let bucket = session.artifacts_bucket(&account);
    let bucket = artifacts::ensure_bucket(&session.aws, &account, &bucket).await?;
    let key = artifacts::code_key(&session.stack, artifact);
    let uploaded =
        artifacts::upload_if_missing(&session.aws, &bucket, &account, &key, &artifact.zip).await?;
    let report = ArtifactReport {
        key,
        bucket,
        owner: account,
        bytes: artifact.zip.len(),
        unzipped_bytes: artifact.unzipped_bytes,
        uploaded,
        retired: Vec::new(),
    };
    let sizes = report.sizes();
    if uploaded {
        session.printer.info(format_args!("uploaded {sizes}"));
    } else {
        session.printer.info(format_args!("unchanged {sizes}"));
    }
    Ok(report)
}
