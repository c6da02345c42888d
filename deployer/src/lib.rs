//! `deployer`: ships CloudAlbum stages to AWS CloudFormation and tears them down.
//!
//! The pipeline, one module a step: [`stage`] (the stage file) → [`template`]
//! (typed resources, CloudAlbum's composition, synthesis) → [`deploy`]
//! (artifacts, change set, apply, static sync, report). Commands in
//! [`commands`] only orchestrate; [`output`] decides how everything is shown;
//! [`emulator`] holds every difference of the local emulator, [`localcloud`]
//! runs it; [`exit`] names the exit codes.

pub mod aws;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod digest;
pub mod doctor;
pub mod emulator;
pub mod error;
pub mod exit;
pub mod localcloud;
pub mod output;
pub mod preview;
pub mod progress;
pub mod sdk_failure;
pub mod source_watch;
pub mod stage;
pub mod template;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use error::Error;

use cli::{Cli, Command};
use output::Printer;

/// What every command gets: where the project is, and how to print.
#[derive(Debug, Clone)]
pub struct Context {
    pub project_dir: PathBuf,
    /// The folder of stage files, and how messages name it.
    pub stacks_dir: PathBuf,
    pub stacks_shown_as: PathBuf,
    pub printer: Printer,
    pub global: cli::GlobalArgs,
}

impl Context {
    /// Reads the stage file of `name`; `--build-profile` overrides its
    /// `function.build_profile`.
    pub fn load_stage(&self, name: &str) -> Result<stage::Stage, Error> {
        Ok(self.load_stage_file(name)?)
    }

    /// Every stage that has a readable, valid stage file.
    pub fn stage_files(&self) -> Vec<stage::Stage> {
        stage::existing_stages(&self.stacks_dir)
            .iter()
            .filter_map(|name| self.load_stage_file(name).ok())
            .collect()
    }

    /// [`Context::load_stage`], with the stage file's own error.
    pub fn load_stage_file(&self, name: &str) -> Result<stage::Stage, stage::StageError> {
        let mut stage = stage::Stage::load_in(&self.stacks_dir, &self.stacks_shown_as, name)?;
        if let Some(profile) = self.global.build_profile {
            stage.config = stage.config.with_build_profile(profile, &stage.path)?;
        }
        Ok(stage)
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    let printer = Printer::new(cli.global.output, cli.global.quiet, cli.global.verbose);
    let project_dir = match &cli.global.project_dir {
        Some(dir) => dir.clone(),
        None => find_project_dir(&std::env::current_dir().map_err(Error::CurrentDir)?)?,
    };
    let (stacks_dir, stacks_shown_as) = match &cli.global.stacks_dir {
        Some(dir) => (dir.clone(), dir.clone()),
        None => (
            project_dir.join(stage::STACKS_DIR),
            PathBuf::from(stage::STACKS_DIR),
        ),
    };
    let context = Context {
        project_dir,
        stacks_dir,
        stacks_shown_as,
        printer,
        global: cli.global,
    };
    if let Command::Synth(args) = &cli.command {
        // No AWS, no runtime.
        return commands::synth::run(&context, args);
    }
    if let Command::Ci(args) = &cli.command {
        return commands::ci::run(&context, args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        match &cli.command {
            Command::Synth(args) => commands::synth::run(&context, args),
            Command::Plan => commands::plan::run(&context).await,
            Command::Up(args) => commands::up::run(&context, args).await,
            Command::Watch => Box::pin(commands::watch::run(&context)).await,
            Command::Url => commands::url::run(&context).await,
            Command::Status => commands::status::run(&context).await,
            Command::Logs(args) => Box::pin(commands::logs::run(&context, args)).await,
            Command::Down(args) => commands::down::run(&context, args).await,
            Command::History => commands::history::run(&context).await,
            Command::Rollback(args) => commands::rollback::run(&context, args).await,
            Command::Stages => commands::stages::run(&context).await,
            Command::Local(args) => commands::local::run(&context, args).await,
            Command::Doctor => Box::pin(commands::doctor::run(&context)).await,
            Command::Ci(args) => commands::ci::run(&context, args),
        }
    })
}

/// The nearest folder, from `start` upwards, that holds `stacks/`.
pub fn find_project_dir(start: &Path) -> Result<PathBuf, Error> {
    start
        .ancestors()
        .find(|dir| dir.join(stage::STACKS_DIR).is_dir())
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::ProjectNotFound {
            start: start.to_path_buf(),
        })
}
