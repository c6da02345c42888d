//! What a pipeline step can fail with, and the exit code each failure means.

use crate::aws::AwsError;
use crate::deploy::artifacts::ArtifactError;
use crate::deploy::history::HistoryError;
use crate::deploy::static_sync::AssetsError;
use crate::emulator::EmulatorError;
use crate::exit;
use crate::preview::PreviewError;
use crate::stage::StageError;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    StaticSync(#[from] AssetsError),
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Preview(#[from] PreviewError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("CloudFormation could not compute the changes for `{stack}`: {reason}")]
    ChangeSetFailed { stack: String, reason: String },
    #[error(
        "stage `{stage}` is not deployed: there is no stack `{stack}` on {target}; deploy it with `deployer up --stage {stage}`"
    )]
    NotDeployed {
        stage: String,
        stack: String,
        target: String,
    },
    #[error(
        "the credentials belong to account {actual} ({arn}), but stage `{stage}` lives in account {expected} (`account_id` in its stage file); nothing was done. Use credentials of account {expected} (`--profile`, or `AWS_PROFILE`), or deploy another stage"
    )]
    WrongAccount {
        stage: String,
        expected: String,
        actual: String,
        arn: String,
    },
    #[error(
        "refused: the change would replace or delete data of stage `{stage}`:\n  {}\nnothing was changed. CloudFormation replaces these resources with new, empty ones (the old ones and their data are deleted). If that is really meant, run `deployer up --stage {stage} {}`",
        lines.join("\n  "),
        ids.iter().map(|id| format!("--allow-replace {id}")).collect::<Vec<_>>().join(" ")
    )]
    WouldLoseData {
        stage: String,
        /// One line per resource: what would happen and why.
        lines: Vec<String>,
        /// Their logical ids.
        ids: Vec<String>,
    },
    #[error(
        "`static/` is incomplete: the pages link to {} that `static/` does not have; {step}. Nothing was deployed, so the bucket keeps its assets",
        missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
    )]
    IncompleteStatic { missing: Vec<String>, step: String },
    /// An account setting would make the deploy fail half-way; nothing changed.
    #[error("{0}; nothing was changed")]
    AccountSettings(String),
    /// The deployment (or a step of it) failed; the message says what to do.
    #[error("{0}")]
    Failed(String),
    /// Part of a retained stage's data survived and part did not; the
    /// message lists both and what to do. Nothing was changed.
    #[error("{0}")]
    PartialSurvivors(String),
    /// The user (or a rule) said no; nothing was changed.
    #[error("{0}")]
    Refused(String),
    #[error(
        "{action} needs confirmation, and this is not an interactive terminal; pass `--yes` to go ahead"
    )]
    NeedsConfirmation { action: String },
}

impl DeployError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Aws(e)
            | Self::Artifact(ArtifactError::Aws(e))
            | Self::StaticSync(AssetsError::Aws(e)) => e.exit_code(),
            Self::Artifact(ArtifactError::Architecture { .. } | ArtifactError::Read { .. })
            | Self::NeedsConfirmation { .. }
            | Self::Preview(_)
            | Self::Stage(_)
            | Self::IncompleteStatic { .. } => exit::INVALID_INPUT,
            Self::Emulator(e) => e.exit_code(),
            Self::History(e) => e.exit_code(),
            Self::WrongAccount { .. } | Self::AccountSettings(_) => exit::CREDENTIALS,
            Self::WouldLoseData { .. } | Self::PartialSurvivors(_) => exit::REFUSED_DATA,
            Self::Artifact(_)
            | Self::StaticSync(_)
            | Self::ChangeSetFailed { .. }
            | Self::NotDeployed { .. }
            | Self::Failed(_)
            | Self::Refused(_) => exit::DEPLOY_FAILED,
        }
    }
}
