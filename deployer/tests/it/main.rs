//! Integration tests of the `deployer` crate: one test binary, a module per feature.

// End-to-end tests walk a whole journey (deploy, use, tear down, come back)
// in one function, as the app's integration tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod architecture;
mod ci;
mod cli;
mod e2e;
mod faulty_proxy;
mod hotswap;
mod lint;
mod logs;
mod preview;
mod rollback;
mod shared_target;
mod support;
mod templates;
mod web;
