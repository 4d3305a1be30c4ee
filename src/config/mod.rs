//! Inputs, the config file, and their validation into a [`Plan`].

pub mod inputs;
pub mod plan;
pub mod raw;

pub use inputs::{Env, Inputs, INPUTS};
pub use plan::{build, Plan, RunOptions};
