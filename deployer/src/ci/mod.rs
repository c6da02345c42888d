//! `deployer ci init`: a ready CI workflow for the project — tests on every
//! push and pull request, a preview stage per pull request, `dev` from
//! `main`, `prod` from a `v*` tag after a plan and a person's approval.
//!
//! The workflow is a template compiled into the binary (`github.yml`, with
//! the shell helper `run_deployer.sh` that acts on the exit codes) in which a
//! few values are substituted, so its text is byte-identical run to run.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exit;

/// The GitHub Actions workflow, with `@NAME@` placeholders.
const GITHUB_TEMPLATE: &str = include_str!("github.yml");
/// The shell function every deploy step starts with; it replaces the line
/// `@RUN_DEPLOYER@`, indented as that line is.
const RUN_DEPLOYER: &str = include_str!("run_deployer.sh");
/// How a CI job builds the deployer (the binary lands in `target/release/`).
pub const DEPLOYER_BUILD: &str = "cargo build --release --locked --workspace --bin deployer";

#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error(
        "`{}` already exists; compare it with `deployer ci init {provider} --out <other path>`, or pass `--force` to overwrite it",
        path.display()
    )]
    Exists { path: PathBuf, provider: Provider },
    #[error("cannot write the workflow to `{}`: {source}; check the folder is writable, or pass `--out <path>`", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The compiled-in template is broken: a bug of the deployer.
    #[error(
        "the built-in {provider} workflow template is not valid YAML ({message}); this is a bug in deployer, please report it"
    )]
    Template { provider: Provider, message: String },
}

impl CiError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Exists { .. } | Self::Write { .. } => exit::INVALID_INPUT,
            Self::Template { .. } => exit::DEPLOY_FAILED,
        }
    }
}

/// A CI service `deployer ci init` writes a workflow for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// GitHub Actions.
    Github,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Github => "github",
        })
    }
}

impl Provider {
    /// The service's name, for people.
    pub fn title(self) -> &'static str {
        match self {
            Self::Github => "GitHub Actions",
        }
    }

    /// Where the workflow goes, relative to the project root.
    pub fn default_path(self, app: &str) -> PathBuf {
        match self {
            Self::Github => Path::new(".github/workflows").join(format!("{app}.yml")),
        }
    }
}

/// The values a workflow is made from: the stage files' app and regions.
#[derive(Debug, Clone)]
pub struct Values {
    pub app: String,
    /// Region of the credentials of the `dev` and preview jobs.
    pub dev_region: String,
    /// Region of the credentials of the `prod` jobs.
    pub prod_region: String,
}

/// A rendered workflow: its text and the names of its jobs, in order.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub provider: Provider,
    pub text: String,
    pub jobs: Vec<String>,
}

/// The workflow for `provider`, made from `values`.
pub fn render(provider: Provider, values: &Values) -> Result<Workflow, CiError> {
    let template = match provider {
        Provider::Github => GITHUB_TEMPLATE,
    };
    let mut text = String::with_capacity(template.len() * 2);
    for line in template.lines() {
        let content = line.trim_start();
        if content == "@RUN_DEPLOYER@" {
            let indent = &line[..line.len() - content.len()];
            for helper_line in RUN_DEPLOYER.lines() {
                if !helper_line.is_empty() {
                    text.push_str(indent);
                    text.push_str(helper_line);
                }
                text.push('\n');
            }
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    let text = text
        .replace("@APP@", &values.app)
        .replace("@DEV_REGION@", &values.dev_region)
        .replace("@PROD_REGION@", &values.prod_region)
        .replace("@DEPLOYER_BUILD@", DEPLOYER_BUILD);
    let jobs = job_names(&text).map_err(|message| CiError::Template { provider, message })?;
    Ok(Workflow {
        provider,
        text,
        jobs,
    })
}

/// The keys of the workflow's `jobs`, in the order they are written.
fn job_names(text: &str) -> Result<Vec<String>, String> {
    let workflow: serde_norway::Value =
        serde_norway::from_str(text).map_err(|err| err.to_string())?;
    let jobs = workflow
        .get("jobs")
        .and_then(serde_norway::Value::as_mapping)
        .ok_or("it has no `jobs` mapping")?;
    jobs.keys()
        .map(|key| {
            key.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("job name {key:?} is not a string"))
        })
        .collect()
}

/// What `deployer ci init` wrote.
#[derive(Debug, Serialize)]
pub struct Written {
    pub provider: Provider,
    pub path: PathBuf,
    pub bytes: usize,
    pub sha256: String,
    /// Whether an existing file was replaced (`--force`).
    pub replaced: bool,
    pub jobs: Vec<String>,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote the {} workflow to `{}` ({} bytes), jobs: {}",
            self.provider.title(),
            self.path.display(),
            self.bytes,
            self.jobs.join(", ")
        )?;
        write!(
            f,
            "before it can deploy: set the repository variable AWS_DEPLOY_ROLE_ARN (an IAM role trusting GitHub's OIDC provider) and create the environment `production` with required reviewers; see docs/operations.md, \"Generated CI pipeline\""
        )
    }
}

/// Writes `workflow` to `path`, creating its folders. An existing file is
/// left alone unless `force`; a reader never sees half a file.
pub fn write(workflow: &Workflow, path: &Path, force: bool) -> Result<Written, CiError> {
    let existed = path.exists();
    if existed && !force {
        return Err(CiError::Exists {
            path: path.to_owned(),
            provider: workflow.provider,
        });
    }
    let error = |source| CiError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &workflow.text).map_err(error)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        drop(std::fs::remove_file(&tmp));
        error(source)
    })?;
    Ok(Written {
        provider: workflow.provider,
        path: path.to_owned(),
        bytes: workflow.text.len(),
        sha256: crate::digest::sha256_hex(workflow.text.as_bytes()),
        replaced: existed,
        jobs: workflow.jobs.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            app: "album".to_owned(),
            dev_region: "eu-west-1".to_owned(),
            prod_region: "us-east-2".to_owned(),
        }
    }

    #[test]
    fn every_placeholder_is_substituted_and_the_helper_is_indented() {
        let workflow = render(Provider::Github, &values()).unwrap();
        assert!(!workflow.text.contains("@APP@"), "{}", workflow.text);
        assert!(
            !workflow
                .text
                .lines()
                .any(|l| l.contains('@') && l.trim().starts_with('@')),
            "{}",
            workflow.text
        );
        assert!(workflow.text.contains("group: deploy-album-dev"));
        assert!(workflow.text.contains("vars.AWS_REGION || 'eu-west-1'"));
        assert!(workflow.text.contains("vars.AWS_REGION || 'us-east-2'"));
        assert!(
            workflow
                .text
                .contains("          run_deployer() {\n            local attempt code\n")
        );
        assert_eq!(
            workflow.jobs,
            [
                "test",
                "preview",
                "preview-down",
                "expire-previews",
                "dev",
                "prod-plan",
                "prod"
            ]
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        let a = render(Provider::Github, &values()).unwrap();
        let b = render(Provider::Github, &values()).unwrap();
        assert_eq!(a.text, b.text);
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/flow.yml");
        let workflow = render(Provider::Github, &values()).unwrap();
        let first = write(&workflow, &path, false).unwrap();
        assert!(!first.replaced);
        std::fs::write(&path, "mine").unwrap();
        let err = write(&workflow, &path, false).unwrap_err();
        assert_eq!(err.exit_code(), exit::INVALID_INPUT);
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
        assert!(write(&workflow, &path, true).unwrap().replaced);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), workflow.text);
    }
}
