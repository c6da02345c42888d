//! The printer: one place decides how results and progress are shown — text or
//! JSON, quiet or verbose, spinners or plain lines — and whether a question can
//! be asked. Results go to stdout; progress, questions and errors to stderr.

use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;

use crate::cli::OutputMode;
use crate::progress::StackProgress;

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub mode: OutputMode,
    pub quiet: bool,
    pub verbose: u8,
    /// A person at a terminal (not CI): questions may be asked.
    terminal: bool,
}

/// The answer to a yes/no question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Nobody to ask: not a terminal, or `CI` is set.
    CannotAsk,
}

impl Printer {
    /// A printer for this process: it looks once at the terminal and `CI`.
    pub fn new(mode: OutputMode, quiet: bool, verbose: u8) -> Self {
        Self {
            mode,
            quiet,
            verbose,
            terminal: person_at_terminal(),
        }
    }

    /// Prints nothing but warnings and asks nothing: for library callers and tests.
    pub fn silent() -> Self {
        Self {
            mode: OutputMode::Json,
            quiet: true,
            verbose: 0,
            terminal: false,
        }
    }

    /// Whether a question can be put to a person.
    pub fn can_ask(&self) -> bool {
        self.terminal
    }

    /// Whether progress is drawn as live spinner lines: text output at a
    /// terminal only (never with `--output json`, `-q`, or in CI).
    pub fn fancy(&self) -> bool {
        self.terminal && self.mode == OutputMode::Text && !self.quiet
    }

    /// The display of a stack operation, in this printer's style.
    pub fn progress(&self) -> StackProgress {
        StackProgress::new(self.quiet, self.fancy())
    }

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

    /// `text` marked as dangerous: red at a terminal (unless `NO_COLOR`).
    pub fn alert(&self, text: &str) -> String {
        if self.terminal && crate::progress::colour_allowed() {
            format!("\x1b[31m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Whether results on stdout may be coloured: text output to a terminal,
    /// unless `NO_COLOR`.
    pub fn colour_results(&self) -> bool {
        self.mode == OutputMode::Text
            && std::io::stdout().is_terminal()
            && crate::progress::colour_allowed()
    }

    /// A warning (stderr), shown even with `--quiet`.
    pub fn warn(&self, message: impl Display) {
        eprintln!("warning: {message}");
    }

    /// Asks `question` on stderr and reads the answer from stdin.
    pub fn ask(&self, question: &str) -> Answer {
        if !self.terminal {
            return Answer::CannotAsk;
        }
        eprint!("{question} [y/N] ");
        drop(std::io::stderr().flush());
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return Answer::CannotAsk;
        }
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            Answer::Yes
        } else {
            Answer::No
        }
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

/// A person at a terminal, not a CI job: `CI` unset (or false) and both stdin
/// and stderr are terminals.
fn person_at_terminal() -> bool {
    std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false" || v == "0")
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_never_draws_spinners_and_silent_never_asks() {
        let terminal = Printer {
            mode: OutputMode::Json,
            quiet: false,
            verbose: 0,
            terminal: true,
        };
        assert!(!terminal.fancy());
        assert!(terminal.can_ask());
        let text = Printer {
            mode: OutputMode::Text,
            ..terminal
        };
        assert!(text.fancy());
        assert!(
            !Printer {
                quiet: true,
                ..text
            }
            .fancy()
        );
        assert_eq!(Printer::silent().ask("go?"), Answer::CannotAsk);
    }
}
