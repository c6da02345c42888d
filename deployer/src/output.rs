//! One place decides how results and progress are shown: text or JSON,
//! quiet or verbose. Results go to stdout; progress and errors to stderr.

use std::fmt::Display;
use std::io::Write;

use serde::Serialize;

use crate::cli::OutputMode;

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub mode: OutputMode,
    pub quiet: bool,
    pub verbose: u8,
}

impl Printer {
    /// A progress or information line (stderr), hidden by `--quiet`.
    pub fn info(&self, message: impl Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// Detail shown with `-v`.
    pub fn detail(&self, message: impl Display) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A warning (stderr), shown even with `--quiet`.
    pub fn warn(&self, message: impl Display) {
        eprintln!("warning: {message}");
    }

    /// The command's result on stdout: its text form, or one JSON object.
    pub fn result<T: Serialize + Display>(&self, result: &T) {
        let mut out = std::io::stdout().lock();
        let written = match self.mode {
            OutputMode::Text => writeln!(out, "{result}"),
            OutputMode::Json => serde_json::to_string(result)
                .map_err(std::io::Error::other)
                .and_then(|json| writeln!(out, "{json}")),
        };
        // A closed stdout (e.g. `| head`) is not an error worth reporting.
        drop(written);
    }

    /// Raw text on stdout (e.g. a template).
    pub fn raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        drop(out.write_all(text.as_bytes()));
    }
}
