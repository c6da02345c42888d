//! Command-line definitions (clap) only; the stage-file schema lives in `stage`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ci::Provider;
use crate::preview::Ttl;
use crate::stage::{BucketName, BuildProfile};
use crate::template::synth::Format;

/// Ship CloudAlbum to AWS (or a local emulator) and tear it down again.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success (also \"up to date\"), 1 deployment failed, \
2 invalid input or usage, 3 credentials or permissions, 4 refused: would replace or delete data."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Stage to act on: the file `stacks/<STAGE>.yaml`.
    #[arg(long, global = true, default_value = "dev", env = "DEPLOYER_STAGE")]
    pub stage: String,
    /// AWS region; overrides the stage file's `region`.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named profile from the AWS config and credentials files.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// An AWS-compatible endpoint (e.g. the local emulator) instead of AWS.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The bucket for the function's code and large templates; overrides the
    /// stage file's `artifacts_bucket` (default: `deployer-artifacts-<account>-<region>`).
    #[arg(long, global = true, env = "DEPLOYER_ARTIFACTS_BUCKET", value_name = "BUCKET",
          value_parser = |name: &str| BucketName::try_from(name.to_owned()))]
    pub artifacts_bucket: Option<BucketName>,
    /// Build the function with this cargo profile instead of the stage
    /// file's `function.build_profile` (`fast` is refused on a stage with
    /// `retain_data: true`).
    #[arg(long, global = true, env = "DEPLOYER_BUILD_PROFILE", value_name = "release|fast",
          value_parser = build_profile)]
    pub build_profile: Option<BuildProfile>,
    /// `text` for people, `json` for one machine-readable object on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputMode::Text)]
    pub output: OutputMode,
    /// Answer yes to every confirmation (never prompts in CI either way).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Print only results and errors.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Folder of the stage files (default: `stacks/` in the project root).
    #[arg(long, global = true, env = "DEPLOYER_STACKS_DIR", value_name = "DIR")]
    pub stacks_dir: Option<PathBuf>,
    /// Project root holding `stacks/`, `static/` and `app/` (default: the
    /// current folder or the nearest parent with a `stacks/` folder).
    #[arg(long, global = true, env = "DEPLOYER_PROJECT_DIR", value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
}

fn build_profile(name: &str) -> Result<BuildProfile, String> {
    match name {
        "release" => Ok(BuildProfile::Release),
        "fast" => Ok(BuildProfile::Fast),
        other => Err(format!(
            "`{other}` is not a build profile; use `release` or `fast`"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the stage's CloudFormation template; no AWS calls, no credentials.
    Synth(SynthArgs),
    /// Show what `up` would change (a change set that is never executed).
    Plan,
    /// Build, upload, apply the stage, sync `static/`, print the URL.
    Up(UpArgs),
    /// Rebuild on every change under `app/`, `templates/` and `static/` and
    /// deploy the fastest correct way: new code or static files straight to
    /// the function (a hotswap), anything else through a change set. Not on a
    /// stage with `retain_data: true`. Ctrl-C stops.
    Watch,
    /// Print the stage's URL from the stack outputs.
    Url,
    /// Print the stack status, outputs and last update.
    Status,
    /// Print the stage function's logs (CloudWatch Logs), one line an event.
    Logs(LogsArgs),
    /// Delete the stage; data is protected unless `--delete-data`.
    Down(DownArgs),
    /// List the stage's recorded deployments, newest first.
    History,
    /// Deploy an earlier recorded deployment again (template, code, static
    /// files) through a change set; data is protected as with `up`.
    Rollback(RollbackArgs),
    /// List every deployed stage of the app in the account and region:
    /// status, age, URL, and a preview's base and expiry.
    Stages,
    /// Run the whole app on this machine in a local AWS emulator.
    Local(LocalArgs),
    /// Check the toolchain, credentials, account settings and local cloud:
    /// one line each, with the command that fixes a problem.
    Doctor,
    /// Set up continuous integration: `ci init github` writes a ready workflow.
    Ci(CiArgs),
}

#[derive(Debug, Args)]
pub struct CiArgs {
    #[command(subcommand)]
    pub command: CiCommand,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Write a ready workflow: tests on every push and pull request, a
    /// preview stage per pull request, `dev` from `main`, `prod` from a `v*`
    /// tag after a plan and an approval. No AWS calls.
    Init(CiInitArgs),
}

#[derive(Debug, Args)]
pub struct CiInitArgs {
    /// The CI service.
    #[arg(value_enum)]
    pub provider: Provider,
    /// Where to write the workflow (default: `.github/workflows/<app>.yml`
    /// in the project root).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Template format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Write the template to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Let the change replace or delete this stateful resource (`PhotoTable`,
    /// `PhotoBucket`, `UserPool`) and the data in it; repeat for each. Without
    /// it such a change is refused with exit 4.
    #[arg(long = "allow-replace", value_name = "LOGICAL_ID")]
    pub allow_replace: Vec<String>,
    /// When only the code or `static/` changed, update the function directly
    /// (no change set, seconds instead of a minute); the stage is marked
    /// drifted until the next plain `up`. Anything else deploys as usual.
    #[arg(long)]
    pub hotswap: bool,
    /// Deploy this `bootstrap` binary (built earlier, e.g. by another CI job)
    /// instead of building one; it is checked and zipped as a build is.
    #[arg(long, value_name = "FILE")]
    pub bootstrap: Option<PathBuf>,
    /// Make `--stage` a preview stage from this stage's file (for a name
    /// without a file of its own, e.g. `--stage pr-42 --from dev`); its data
    /// is never retained.
    #[arg(long, value_name = "STAGE")]
    pub from: Option<String>,
    /// How long a preview stage lives: `30m`, `12h`, `7d` (1m to 90d;
    /// default 7d when it is created, else its expiry is kept).
    #[arg(long, value_name = "TTL", value_parser = |ttl: &str| ttl.parse::<Ttl>().map_err(|e| e.to_string()))]
    pub ttl: Option<Ttl>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The deployment to go back to (an id from `deployer history`); default:
    /// the newest one that deployed something else than the current one.
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
    /// As for `up`: let the change replace or delete this stateful resource.
    #[arg(long = "allow-replace", value_name = "LOGICAL_ID")]
    pub allow_replace: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new events (polls every second); Ctrl-C stops.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How far back to start: `30s`, `10m`, `2h`, `1d`.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub since: String,
    /// Only events containing TEXT (a literal term of a CloudWatch filter pattern).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also delete photos: empty a bucket that still holds objects.
    #[arg(long)]
    pub delete_data: bool,
    /// Delete every preview stage of the app whose expiry has passed (never
    /// a stage with a file or a retained one), instead of `--stage`.
    #[arg(long)]
    pub expired: bool,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Start from an empty local cloud (drops saved photos and users).
    #[arg(long)]
    pub fresh: bool,
    /// Port of the local cloud on 127.0.0.1 (default: the port of
    /// `endpoint_url` in `stacks/local.yaml`, else 4566).
    #[arg(long)]
    pub port: Option<u16>,
    /// Where the local cloud keeps its state (default: `.local-cloud/`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
