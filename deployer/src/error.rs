//! The error every command can return, and its exit code (DESIGN 3.5).

use std::path::PathBuf;

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
    #[error("`deployer {0}` is not implemented yet; `deployer synth` works today")]
    NotImplemented(&'static str),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Stage(_)
            | Self::ProjectNotFound { .. }
            | Self::NotImplemented(_)
            | Self::Write { .. }
            | Self::CurrentDir(_)
            | Self::Synth(_) => exit::INVALID_INPUT,
        }
    }
}
