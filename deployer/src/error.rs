//! The error every command can return, and its exit code ([`crate::exit`]).

use std::path::PathBuf;

use crate::ci::CiError;
use crate::deploy::error::DeployError;
use crate::exit;
use crate::localcloud::LocalCloudError;
use crate::preview::PreviewError;
use crate::stage::StageError;
use crate::template::synth::SynthError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Logs(#[from] crate::deploy::logs::LogsError),
    #[error(transparent)]
    LocalCloud(#[from] LocalCloudError),
    #[error(transparent)]
    Ci(#[from] CiError),
    #[error(transparent)]
    Preview(#[from] PreviewError),
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
    #[error("{0}")]
    Refused(String),
    /// A command that does not apply to this stage (e.g. `watch` on a
    /// retained stage); the message names what to do instead.
    #[error("{0}")]
    NotForStage(String),
}

impl From<crate::aws::AwsError> for Error {
    fn from(err: crate::aws::AwsError) -> Self {
        Self::Deploy(DeployError::Aws(err))
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Deploy(e) => e.exit_code(),
            Self::Ci(e) => e.exit_code(),
            Self::Logs(e) => e.exit_code(),
            Self::Stage(_)
            | Self::ProjectNotFound { .. }
            | Self::Write { .. }
            | Self::CurrentDir(_)
            | Self::Synth(_)
            | Self::Preview(_)
            | Self::NotForStage(_) => exit::INVALID_INPUT,
            Self::LocalCloud(_) | Self::Runtime(_) | Self::Refused(_) => exit::DEPLOY_FAILED,
        }
    }
}
