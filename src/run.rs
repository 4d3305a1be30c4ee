//! The top level: inputs -> plan -> engine -> outputs -> exit code.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{self, Mode};
use crate::config::{self, RunOptions};
use crate::error::{Exit, InputError};
use crate::http::{Http, Shutdown};
use crate::inputs::{label, Env, Inputs};
use crate::log::{self, Format, Level};
use crate::report::{self, actions};
use crate::secret::Secret;
use crate::{alert, engine, status};

/// Runs the whole program with these arguments and this environment; returns the exit code.
pub fn main(args: Vec<OsString>, env: Env) -> Exit {
    // The job received its secrets before this process started.
    let received_at = jiff::Timestamp::now();
    if let Err(e) = cli::refuse_secret_flags(&args) {
        return bad_input(&e, &env);
    }
    let matches = match cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return if code == 0 { Exit::Ok } else { Exit::BadInput };
        }
    };
    let cli = cli::from_matches(&matches);
    let inputs = Inputs::collect(config::table(), &cli.flags, &env);
    let format = match inputs.get("log_format").unwrap_or("text") {
        "text" => Format::Text,
        "json" => Format::Json,
        other => {
            return bad_input(
                &InputError::new(label("log_format"), format!("`{other}` is not valid: use text or json")),
                &env,
            )
        }
    };
    let level = match inputs.get("log_level") {
        Some(l) => match Level::parse(l) {
            Some(l) => l,
            None => {
                return bad_input(
                    &InputError::new(label("log_level"), format!("`{l}` is not valid: use error, warn, info or debug")),
                    &env,
                )
            }
        },
        None if env.get("RUNNER_DEBUG") == Some("1") => Level::Debug,
        None => Level::Info,
    };
    log::init(format, level);

    let opts = RunOptions {
        config: cli.config.clone(),
        only: cli.only.clone(),
        dry_run: cli.dry_run || cli.mode == Mode::Check,
    };
    let plan = match config::build(&inputs, &env, &opts) {
        Ok(p) => p,
        Err(e) => return bad_input(&e, &env),
    };
    // Files are written in the workspace (a container action's working directory): the next
    // step runs on the host, where only a path relative to the workspace names the same file.
    // `RUNNER_TEMP` is not used: older runners pass its host path into the container unmounted.
    let in_actions = env.is_true("GITHUB_ACTIONS");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let workspace = env.get("GITHUB_WORKSPACE").filter(|_| in_actions).map(PathBuf::from).unwrap_or(cwd);
    // (where the report is written, how the `report` output names it)
    let report = match inputs.get("report") {
        Some(p) => Some((PathBuf::from(p), p.to_owned())),
        None if in_actions => Some((workspace.join(REPORT_FILE), REPORT_FILE.to_owned())),
        None => None,
    };

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            log::error(&format!("cannot start the async runtime: {e}"));
            return Exit::Failed;
        }
    };
    let (trigger, shutdown) = Shutdown::new();
    let http = match Http::new(plan.timeout, plan.ca_pem.as_deref(), shutdown) {
        Ok(h) => h,
        Err(e) => return bad_input(&InputError::new("TLS setup", e), &env),
    };
    if cli.mode == Mode::Status {
        return status::command(&runtime, &plan, &http, &env, report.as_ref());
    }
    let outcome = runtime.block_on(async {
        spawn_signal_listener(trigger);
        let mask = move |s: &Secret| {
            if in_actions {
                actions::add_mask(s)
            }
        };
        let ctx = engine::Context { http: &http, mask: &mask, rescue_dir: workspace.clone(), received_at };
        engine::run(&plan, &ctx).await
    });
    // Files are written once the runtime is done: nothing blocks it, and the new values are
    // still held (and so redacted) until the outputs are written.
    let exit = outcome.report.exit();
    if let Some((path, _)) = &report {
        if let Err(e) = report::write_json(path, &outcome.report) {
            log::error(&format!("cannot write the report to {}: {e}", path.display()));
        }
    }
    if in_actions {
        write_actions_outputs(&env, &outcome, report.as_ref().map(|(_, named)| named.as_str()));
    }
    // Last, and never changing the exit code: the new values are still held (and so redacted).
    if let Some(a) = &plan.alert {
        let command = if cli.mode == Mode::Check { "check" } else { "rotate" };
        runtime.block_on(alert::after_run(&http, a, command, &outcome.report, &env));
    }
    drop(outcome);
    log::info(&format!("done: exit {}", exit.code()));
    exit
}

/// The JSON report's name in the workspace (GitHub Actions).
const REPORT_FILE: &str = "secret-rotator-report.json";

fn write_actions_outputs(env: &Env, outcome: &engine::Outcome, report: Option<&str>) {
    let rotated = outcome.report.rotations.iter().any(|r| r.status == report::RotationStatus::Rotated);
    if let Some(out) = env.get("GITHUB_OUTPUT") {
        let single = outcome.report.rotations.len() == 1;
        let access = if single { outcome.access_tokens[0].as_ref().map(|s| s.expose().to_owned()) } else { None };
        let expires = if single { outcome.report.rotations[0].expires_at.clone() } else { None };
        let report = report.unwrap_or_default();
        let access = zeroize::Zeroizing::new(access.unwrap_or_default());
        let pairs = [
            ("rotated", if rotated { "true" } else { "false" }),
            ("access_token", access.as_str()),
            ("expires_at", expires.as_deref().unwrap_or("")),
            ("report", report),
        ];
        if let Err(e) = actions::write_outputs(std::path::Path::new(out), &pairs) {
            log::error(&format!("cannot write step outputs to GITHUB_OUTPUT: {e}"));
        }
    }
    if let Some(summary) = env.get("GITHUB_STEP_SUMMARY") {
        if let Err(e) = actions::append(std::path::Path::new(summary), &actions::summary(&outcome.report)) {
            log::error(&format!("cannot write the step summary: {e}"));
        }
    }
}

/// Prints a bad input as one line and returns exit 2.
fn bad_input(e: &InputError, env: &Env) -> Exit {
    let line = crate::secret::redact(&e.to_string());
    eprintln!("secret-rotator: error: {line}");
    if env.is_true("GITHUB_ACTIONS") {
        println!("::error title=secret-rotator::{}", actions::escape_data(&line));
        // `rotated` is set on every outcome, so a later step can branch on it.
        if let Some(out) = env.get("GITHUB_OUTPUT") {
            let _ = actions::write_outputs(std::path::Path::new(out), &[("rotated", "false")]);
        }
    }
    Exit::BadInput
}

fn spawn_signal_listener(trigger: tokio::sync::watch::Sender<bool>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log::warn(&format!("{name} received: finishing the writes in flight, then rescuing anything unstored"));
        let _ = trigger.send(true);
        // Further signals are absorbed: the run ends as soon as its values are safe.
        loop {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
    });
}
