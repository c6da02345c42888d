//! `deployer synth`: stage file → model → template, printed or written. No AWS calls.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::SynthArgs;
use crate::stage::Stage;
use crate::template::composition::{Target, stage_template};
use crate::template::synth::{Format, INLINE_TEMPLATE_LIMIT, Template};
use crate::{Context, Error};

/// The stage's template for the target the global options and stage file name.
pub fn template_for(context: &Context) -> Result<(Stage, Template), Error> {
    let stage = context.load_stage(&context.global.stage)?;
    let target = Target::of(&stage, context.global.endpoint_url.as_deref());
    let template = stage_template(&stage, &target);
    Ok((stage, template))
}

#[derive(Debug, Serialize)]
struct Written {
    stage: String,
    stack: String,
    path: PathBuf,
    format: &'static str,
    bytes: usize,
    sha256: String,
    /// Size of the compact JSON body sent to CloudFormation.
    body_bytes: usize,
    fits_inline: bool,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote the `{}` template to `{}` ({} bytes, sha256 {})",
            self.stage,
            self.path.display(),
            self.bytes,
            self.sha256
        )
    }
}

pub fn run(context: &Context, args: &SynthArgs) -> Result<ExitCode, Error> {
    let (stage, template) = template_for(context)?;
    let text = template.render(args.format)?;
    let body_bytes = template.body().len();
    if template.fits_inline() {
        context.printer.detail(format_args!(
            "template body: {body_bytes} bytes (inline limit {INLINE_TEMPLATE_LIMIT})"
        ));
    } else {
        context.printer.warn(format_args!(
            "the template is {body_bytes} bytes, over CloudFormation's {INLINE_TEMPLATE_LIMIT}-byte limit for inline templates; `deployer up` uploads it to the artifacts bucket and passes its URL instead"
        ));
    }
    match &args.out {
        None => context.printer.raw(&text),
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            context.printer.result(&Written {
                stage: stage.name.to_string(),
                stack: stage.stack_name(),
                path: path.clone(),
                format: match args.format {
                    Format::Yaml => "yaml",
                    Format::Json => "json",
                },
                bytes: text.len(),
                sha256: crate::digest::sha256_hex(text.as_bytes()),
                body_bytes,
                fits_inline: template.fits_inline(),
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes through a temporary file in the same folder, so a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(error)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        drop(std::fs::remove_file(&tmp));
        error(source)
    })
}
