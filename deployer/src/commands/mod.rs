//! One module per subcommand; each only orchestrates the library's steps.

pub mod synth;
