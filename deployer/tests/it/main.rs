//! Integration tests of the `deployer` crate: one test binary, a module per feature.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod cli;
mod e2e;
mod faulty_proxy;
mod lint;
mod support;
mod templates;
mod web;
