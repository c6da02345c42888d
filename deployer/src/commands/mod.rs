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
pub mod status;
pub mod synth;
pub mod up;
pub mod url;
pub mod watch;

use crate::deploy::session::{Session, SessionOptions};
use crate::{Context, Error};

/// The session of the stage the global options name: the stage file is read
/// and validated first, so a bad one never reaches AWS.
pub async fn open_session(context: &Context) -> Result<Session, Error> {
    let stage = context.load_stage(&context.global.stage)?;
    Ok(Session::open(stage, &session_options(context), context.printer).await?)
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
