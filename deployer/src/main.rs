//! The `deployer` binary: parse arguments, run, print the error once, exit.

use std::process::ExitCode;

use clap::Parser;
use deployer::cli::{Cli, OutputMode};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.output == OutputMode::Json;
    match deployer::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            if json {
                let report = serde_json::json!({
                    "error": { "message": err.to_string(), "exit_code": err.exit_code() }
                });
                println!("{report}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
