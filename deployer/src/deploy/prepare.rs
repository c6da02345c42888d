//! The first step: the stage's template and its code, ready for a change set.
//! No AWS calls.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::deploy::artifacts::{self, Artifact};
use crate::deploy::error::DeployError;
use crate::deploy::history::{self, Commit};
use crate::deploy::report::Stopwatch;
use crate::deploy::session::Session;
use crate::deploy::static_files;
use crate::deploy::static_sync::Site;
use crate::template::composition::stage_template;
use crate::template::synth::Template;

/// The template and code of a stage, ready for a change set.
pub struct Prepared {
    pub template: Template,
    pub artifact: Artifact,
    /// `static/` as it is published: bytes, versioned keys, manifest.
    pub site: Site,
    /// How long building the code took.
    pub build_ms: u64,
    /// The project's git commit, for the deployment's history record.
    pub commit: Option<Commit>,
    /// The code is the app, which answers requests; stand-in code (the
    /// app's tests, [`prepare_with_code`]) is never invoked after a deploy.
    pub answers_requests: bool,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("artifact", &self.artifact.key)
            .finish_non_exhaustive()
    }
}

/// Checks that `static/` is complete (running the front-end step if not),
/// reads and versions it, synthesizes the template and builds the app's
/// `bootstrap` from the project in `project_dir`.
pub fn prepare(session: &Session, project_dir: &Path) -> Result<Prepared, DeployError> {
    prepare_code(session, project_dir, None)
}

/// As [`prepare`]; with `prebuilt`, that `bootstrap` binary (built by an
/// earlier CI job, say) is deployed instead of building one.
pub fn prepare_code(
    session: &Session,
    project_dir: &Path,
    prebuilt: Option<&Path>,
) -> Result<Prepared, DeployError> {
    static_files::ensure_complete(project_dir, session.printer.quiet)?;
    let site = Site::read(&project_dir.join(static_files::STATIC_DIR))?;
    let template = stage_template(&session.stage, &session.target);
    let watch = Stopwatch::start();
    let binary_path = if let Some(path) = prebuilt {
        path.to_owned()
    } else {
        build_for_stage(session, project_dir)?
    };
    let artifact = Artifact::for_binary(&binary_path)?;
    Ok(Prepared {
        template,
        artifact,
        site,
        build_ms: watch.millis(),
        commit: history::commit_of(project_dir),
        answers_requests: true,
    })
}

/// Builds the stage's `bootstrap` with the stage's build profile.
fn build_for_stage(session: &Session, project_dir: &Path) -> Result<PathBuf, DeployError> {
    let function = &session.stage.config.function;
    session.printer.detail(format_args!(
        "building the app's bootstrap (profile `{}`)",
        function.build_profile.as_str()
    ));
    let printer = &session.printer;
    Ok(artifacts::build_bootstrap(
        project_dir,
        function.architecture,
        function.build_profile,
        printer.quiet || printer.verbose == 0,
    )?)
}

/// The stage's template with code built elsewhere (a test's stand-in) and the
/// static files of `static_dir`.
pub fn prepare_with_code(
    session: &Session,
    binary: &[u8],
    static_dir: &Path,
) -> Result<Prepared, DeployError> {
    Ok(Prepared {
        template: stage_template(&session.stage, &session.target),
        artifact: Artifact::from_binary(binary)?,
        site: Site::read(static_dir)?,
        build_ms: 0,
        commit: None,
        answers_requests: false,
    })
}
