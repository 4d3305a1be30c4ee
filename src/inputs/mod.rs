//! Reading what the user gave: the environment, the input table, and [`Fields`] that read one
//! module's settings from the single-rotation inputs or from a section of the config file.
//! Providers, targets and services read their settings through here; the config assembler
//! (`config`) joins them into a plan.

pub mod checks;
pub mod env;
pub mod fields;
pub mod table;
pub mod tls;

pub use checks::{check_token_text, check_url, format_duration, is_loopback, parse_duration};
pub use env::Env;
pub use fields::{Document, Fields};
pub use table::{flag, label, Field, Inputs, Kind, Owner};
