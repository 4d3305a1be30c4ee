//! The command line: flags come from the input table; secrets never come from argv.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config;
use crate::error::InputError;
use crate::inputs::{flag, Kind};

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rotate (or plan, with `--dry-run`).
    Rotate,
    /// Validate and preflight only.
    Check,
    /// The freshness inventory: reads only.
    Status,
}

/// The parsed command line.
#[derive(Debug)]
pub struct Cli {
    /// The subcommand.
    pub mode: Mode,
    /// Input name -> value; secret files as `<name>_file`.
    pub flags: HashMap<String, String>,
    /// `--config`
    pub config: Option<PathBuf>,
    /// `--only`, repeatable.
    pub only: Vec<String>,
    /// `--dry-run`
    pub dry_run: bool,
}

/// The clap command, built from the input table.
pub fn command() -> Command {
    let mut root = Command::new("secret-rotator")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Rotate a CI credential at its upstream and write it back to CI secrets, never losing or leaking it.")
        .after_help(
            "Every input is also read from INPUT_<NAME> (what a GitHub container action receives). \
             Secret inputs are read only from INPUT_<NAME> or from --<name>-file, never from a flag.\n\
             Exit codes: 0 ok, 1 failed safely, 2 bad input, 3 CRITICAL (new credential not stored everywhere), \
             4 current credential rejected by the upstream. status: 0 when every verdict is ok or due, else 1 (4: \
             a credential was rejected).",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(Command::new("rotate").about("Run every rotation (or the one the inputs describe)"))
        .subcommand(
            Command::new("check").about("Validate and run the preflight: can every target be written? Rotates nothing"),
        )
        .subcommand(Command::new("status").about(
            "The freshness inventory: last update, expiry, next due and a verdict for every target. Writes nothing, \
             spends no credential",
        ));
    for spec in config::table() {
        let long = flag(spec.input);
        let arg = match spec.kind {
            Kind::Plain => {
                let mut a = Arg::new(spec.input).long(long).value_name("VALUE").help(spec.help).global(true);
                if spec.input == "only" {
                    a = a.action(ArgAction::Append);
                }
                a
            }
            Kind::Secret => Arg::new(format!("{}_file", spec.input))
                .long(format!("{long}-file"))
                .value_name("PATH")
                .help(format!("{} (read from this file; or INPUT_{})", spec.help, spec.input.to_ascii_uppercase()))
                .global(true),
            Kind::Bool => Arg::new(spec.input).long(long).action(ArgAction::SetTrue).help(spec.help).global(true),
        };
        root = root.arg(arg);
    }
    root
}

/// Refuses a secret passed as a flag before clap could echo it back.
pub fn refuse_secret_flags(args: &[OsString]) -> Result<(), InputError> {
    for a in args.iter().skip(1) {
        let Some(a) = a.to_str() else { continue };
        if a == "--" {
            break;
        }
        let Some(name) = a.strip_prefix("--") else {
            continue;
        };
        let name = name.split('=').next().unwrap_or(name);
        if let Some(spec) = config::table().into_iter().find(|s| s.kind == Kind::Secret && flag(s.input) == name) {
            return Err(InputError::new(
                format!("--{name}"),
                format!(
                    "secrets are never accepted as flags (other processes can read argv): set INPUT_{} or use --{name}-file PATH",
                    spec.input.to_ascii_uppercase()
                ),
            ));
        }
    }
    Ok(())
}

/// Reads the matches into a [`Cli`].
pub fn from_matches(m: &ArgMatches) -> Cli {
    let (mode, sub) = match m.subcommand() {
        Some(("check", s)) => (Mode::Check, s),
        Some(("status", s)) => (Mode::Status, s),
        Some((_, s)) => (Mode::Rotate, s),
        None => (Mode::Rotate, m),
    };
    let mut flags = HashMap::new();
    let mut only = Vec::new();
    let mut dry_run = false;
    for spec in config::table() {
        match spec.kind {
            Kind::Plain if spec.input == "only" => {
                if let Some(vals) = sub.get_many::<String>(spec.input) {
                    only.extend(vals.flat_map(|v| v.split(',').map(|s| s.trim().to_owned())).filter(|s| !s.is_empty()));
                }
            }
            Kind::Plain => {
                if let Some(v) = sub.get_one::<String>(spec.input) {
                    flags.insert(spec.input.to_owned(), v.clone());
                }
            }
            Kind::Secret => {
                let key = format!("{}_file", spec.input);
                if let Some(v) = sub.get_one::<String>(&key) {
                    flags.insert(key, v.clone());
                }
            }
            Kind::Bool => {
                if sub.get_flag(spec.input) {
                    dry_run |= spec.input == "dry_run";
                    flags.insert(spec.input.to_owned(), "true".to_owned());
                }
            }
        }
    }
    let config = flags.remove("config").map(PathBuf::from);
    Cli { mode, flags, config, only, dry_run }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn secret_flags_are_refused_without_echo() {
        let args: Vec<OsString> =
            ["secret-rotator", "rotate", "--refresh-token=abc-secret-value"].iter().map(OsString::from).collect();
        let e = refuse_secret_flags(&args).unwrap_err();
        assert!(!e.to_string().contains("abc-secret-value"));
        assert!(e.to_string().contains("INPUT_REFRESH_TOKEN"));
        let ok: Vec<OsString> =
            ["secret-rotator", "rotate", "--refresh-token-file", "x"].iter().map(OsString::from).collect();
        assert!(refuse_secret_flags(&ok).is_ok());
    }

    #[test]
    fn flags_work_after_the_subcommand() {
        let m = command()
            .try_get_matches_from([
                "secret-rotator",
                "check",
                "--token-url",
                "https://x",
                "--only",
                "a,b",
                "--only",
                "c",
            ])
            .unwrap();
        let cli = from_matches(&m);
        assert_eq!(cli.mode, Mode::Check);
        assert_eq!(cli.flags.get("token_url").map(String::as_str), Some("https://x"));
        assert_eq!(cli.only, vec!["a", "b", "c"]);
    }
}
