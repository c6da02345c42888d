//! One module per subcommand; each only orchestrates the library's steps.

pub mod down;
pub mod local;
pub mod plan;
pub mod status;
pub mod synth;
pub mod up;
pub mod url;

use std::io::{BufRead, Write};

use crate::aws::{Aws, Settings};
use crate::cfn::{self, StackInfo};
use crate::model::Target;
use crate::progress::interactive;
use crate::stage::Stage;
use crate::{Context, Error};

/// A stage, where it is deployed, and clients to reach it.
#[derive(Debug)]
pub struct Session {
    pub stage: Stage,
    pub stack: String,
    pub target: Target,
    pub aws: Aws,
}

impl Session {
    /// Reads and validates the stage file first — a bad one never reaches AWS —
    /// then connects with the region, profile and endpoint in force.
    pub async fn open(context: &Context) -> Result<Self, Error> {
        let stage = context.load_stage(&context.global.stage)?;
        let target = synth::target(&stage, context.global.endpoint_url.as_deref());
        let settings = Settings {
            region: context
                .global
                .region
                .clone()
                .unwrap_or_else(|| stage.config.region.to_string()),
            profile: context.global.profile.clone(),
            endpoint: match &target {
                Target::Aws => None,
                Target::Endpoint(url) => Some(url.clone()),
            },
        };
        let aws = Aws::connect(&settings).await?;
        Ok(Self {
            stack: stage.stack_name(),
            stage,
            target,
            aws,
        })
    }

    /// The deployed stack, or the "not deployed" error naming the fix.
    pub async fn deployed_stack(&self) -> Result<StackInfo, Error> {
        cfn::describe(&self.aws, &self.stack)
            .await?
            .ok_or_else(|| Error::NotDeployed {
                stage: self.stage.name.to_string(),
                stack: self.stack.clone(),
                target: self.aws.target(),
            })
    }
}

/// Asks `question` at a terminal; `--yes` answers for the user. Off a
/// terminal (CI) there is no one to ask: without `--yes` that is an error.
pub fn confirm(context: &Context, question: &str, action: &str) -> Result<bool, Error> {
    if context.global.yes {
        return Ok(true);
    }
    if !interactive() {
        return Err(Error::NeedsConfirmation {
            action: action.to_owned(),
        });
    }
    eprint!("{question} [y/N] ");
    drop(std::io::stderr().flush());
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(Error::Runtime)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
