//! The deploy pipeline as library steps, each usable alone; `up`, `plan`,
//! `local`, `down` and the tests compose them (as cargo's commands compose
//! its `ops`):
//!
//! [`session`] (stage, target, clients, printer) → [`prepare`] (template and
//! code) → [`artifacts`] (the code in the artifacts bucket) → [`change_set`] →
//! [`apply`] (wait with progress; stuck states) → [`static_sync`] → [`report`].
//! [`pipeline`] runs them in that order; [`teardown`] deletes a stage without
//! losing data, and [`readopt`] brings a retained stage's data back into a
//! new stack; [`stack`] reads stack state and events. [`hotswap`] is the
//! inner loop's fast path: code and static files straight to the function,
//! without a change set, when the template is unchanged. [`history`] records
//! every deployment in the artifacts bucket; [`rollback`] redeploys one.
//! [`previews`] finds preview stages by their stack tags, lists every
//! deployed stage and tears down the expired previews.

pub mod apply;
pub mod artifacts;
pub mod change_set;
pub mod code;
pub mod error;
pub mod first_request;
pub mod function;
pub mod guard;
pub mod history;
pub mod hotswap;
pub mod logs;
pub mod pipeline;
pub mod preflight;
pub mod prepare;
pub mod previews;
pub mod readopt;
pub mod report;
pub mod rollback;
pub mod session;
pub mod stack;
pub mod stack_outputs;
pub mod static_files;
pub mod static_sync;
pub mod teardown;
