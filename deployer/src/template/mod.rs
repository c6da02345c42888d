//! The stage's CloudFormation template, pure: no I/O, no clock, no randomness.
//!
//! - [`intrinsic`]: the vocabulary of values — checked logical ids, typed
//!   handles, `Ref`/`Fn::GetAtt`/`Fn::Sub` built from handles;
//! - [`resources`]: the vocabulary of resources and the model of a stack;
//! - [`composition`]: CloudAlbum's resources for one stage;
//! - [`synth`]: the model as a deterministic JSON or YAML template.

pub mod composition;
pub mod intrinsic;
pub mod resources;
pub mod synth;
