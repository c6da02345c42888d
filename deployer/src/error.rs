//! The error every command can return, and its exit code (DESIGN 3.5).

use std::path::PathBuf;

use crate::artifact::ArtifactError;
use crate::assets::AssetsError;
use crate::aws::AwsError;
use crate::cfn::CfnError;
use crate::localcloud::LocalCloudError;
use crate::stage::StageError;
use crate::synth::SynthError;

/// Exit codes: 0 success, 1 deployment failed, 2 invalid input or usage,
/// 3 credentials or permissions.
pub mod exit {
    pub const DEPLOY_FAILED: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const CREDENTIALS: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Cfn(#[from] CfnError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Assets(#[from] AssetsError),
    #[error(transparent)]
    LocalCloud(#[from] LocalCloudError),
    #[error(
        "no `stacks/` folder in `{}` or any parent; run `deployer` from the project root or pass `--project-dir`",
        start.display()
    )]
    ProjectNotFound { start: PathBuf },
    #[error("cannot write `{}`: {source}; check the folder exists and is writable", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find the current folder: {0}")]
    CurrentDir(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "stage `{stage}` is not deployed: there is no stack `{stack}` on {target}; deploy it with `deployer up --stage {stage}`"
    )]
    NotDeployed {
        stage: String,
        stack: String,
        target: String,
    },
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Refused(String),
    #[error(
        "{action} needs confirmation, and this is not an interactive terminal; pass `--yes` to go ahead"
    )]
    NeedsConfirmation { action: String },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Aws(e) => e.exit_code(),
            Self::Cfn(e) => e.exit_code(),
            Self::Artifact(ArtifactError::Aws(e)) | Self::Assets(AssetsError::Aws(e)) => {
                e.exit_code()
            }
            Self::Stage(_)
            | Self::ProjectNotFound { .. }
            | Self::Write { .. }
            | Self::CurrentDir(_)
            | Self::Synth(_)
            | Self::NeedsConfirmation { .. }
            | Self::Artifact(ArtifactError::Architecture { .. }) => exit::INVALID_INPUT,
            Self::Artifact(_)
            | Self::Assets(_)
            | Self::LocalCloud(_)
            | Self::Runtime(_)
            | Self::NotDeployed { .. }
            | Self::Failed(_)
            | Self::Refused(_) => exit::DEPLOY_FAILED,
        }
    }
}
