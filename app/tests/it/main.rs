//! Handler tests through the router, against a fresh local cloud holding the
//! `local` stage's resources, created from the stage's own template.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// A journey reads best as one function, step after step.
#![allow(clippy::too_many_lines)]

mod craft;
mod fuzz;
mod images;
mod ingest;
mod lambda;
mod memory;
mod pages;
mod support;
