//! One module per subcommand; each parses its options, composes the library's
//! steps (`crate::deploy`) and prints the report. No SDK calls of their own.

pub mod ci;
pub mod doctor;
pub mod down;
pub mod history;
pub mod local;
pub mod logs;
pub mod plan;
pub mod rollback;
pub mod stages;
pub mod status;
pub mod synth;
pub mod up;
pub mod url;
pub mod watch;

use crate::deploy::previews;
use crate::deploy::session::{Session, SessionOptions};
use crate::preview::{self, PreviewError, Ttl};
use crate::stage::{StageError, StageName};
use crate::{Context, Error};

/// The session of the stage the global options name: the stage file is read
/// and validated first, so a bad one never reaches AWS.
pub async fn open_session(context: &Context) -> Result<Session, Error> {
    open_stage(context, &session_options(context), None, None).await
}

/// The session of `--stage`: its own stage file; else a preview stage made
/// `from` another stage's file, or found through its stack's `deployer:base`
/// tag. `ttl` sets a preview's expiry anew.
pub async fn open_stage(
    context: &Context,
    options: &SessionOptions,
    from: Option<&str>,
    ttl: Option<Ttl>,
) -> Result<Session, Error> {
    let name = StageName::parse(&context.global.stage)?;
    let printer = context.printer;
    match (context.load_stage_file(name.as_str()), from) {
        (Ok(stage), Some(_)) => Err(PreviewError::HasOwnFile {
            stage: name.to_string(),
            path: stage.path,
        }
        .into()),
        (Ok(stage), None) if ttl.is_some() => Err(PreviewError::TtlWithoutPreview {
            stage: name.to_string(),
            path: stage.path,
        }
        .into()),
        (Ok(stage), None) => Ok(Session::open(stage, options, printer).await?),
        (Err(StageError::NotFound { .. }), Some(base)) => {
            let base = context.load_stage_file(base)?;
            let (stage, notes) = preview::derive(&base, name);
            Ok(previews::open_preview(stage, base.name, notes, ttl, options, printer).await?)
        }
        (Err(StageError::NotFound { .. }), None) => {
            let files = context.stage_files();
            Ok(previews::open_found(&name, &files, ttl, options, printer).await?)
        }
        (Err(err), _) => Err(err.into()),
    }
}

/// Region, profile, endpoint and `--yes` from the global options.
pub fn session_options(context: &Context) -> SessionOptions {
    SessionOptions {
        region: context.global.region.clone(),
        profile: context.global.profile.clone(),
        endpoint_url: context.global.endpoint_url.clone(),
        artifacts_bucket: context.global.artifacts_bucket.clone(),
        assume_yes: context.global.yes,
        allow_replace: Vec::new(),
    }
}
