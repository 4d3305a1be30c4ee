//! secret-rotator: rotate a CI credential at its upstream and write it back to CI secrets,
//! never losing and never leaking it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alert;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod files;
pub mod http;
pub mod inputs;
pub mod log;
pub mod plan;
pub mod providers;
pub mod registry;
pub mod report;
pub mod run;
pub mod secret;
pub mod services;
pub mod status;
pub mod targets;
