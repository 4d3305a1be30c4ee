//! The top level: inputs -> plan -> engine -> outputs -> exit code.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

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
    let workspace =
        env.get("GITHUB_WORKSPACE").filter(|_| in_actions).map(PathBuf::from).unwrap_or_else(|| cwd.clone());
    // (where the report is written, how the `report` output names it)
    let report = match inputs.get("report") {
        Some(p) => Some((PathBuf::from(p), output_path(Path::new(p), &cwd, &workspace))),
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
    // The `report` output names only a report that was written.
    let written = report.as_ref().and_then(|(path, named)| match report::write_json(path, &outcome.report) {
        Ok(()) => Some(named.as_str()),
        Err(e) => {
            log::error(&format!("cannot write the report to {}: {e}", path.display()));
            None
        }
    });
    if in_actions {
        write_actions_outputs(&env, &outcome, written);
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

/// How an output names a file the run wrote at `path`: relative to the workspace when it is in
/// the workspace (the next step runs on the host, where the container's `/github/workspace` is
/// another path), else as given.
fn output_path(path: &Path, cwd: &Path, workspace: &Path) -> String {
    let absolute = cwd.join(path);
    match absolute.strip_prefix(workspace) {
        Ok(inside) if !inside.as_os_str().is_empty() => inside.display().to_string(),
        _ => path.display().to_string(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_name_a_file_in_the_workspace_relative_to_it() {
        let (ws, cwd) = (Path::new("/github/workspace"), Path::new("/github/workspace"));
        let named = |p: &str| output_path(Path::new(p), cwd, ws);
        assert_eq!(named("/github/workspace/out/report.json"), "out/report.json");
        assert_eq!(named("out/report.json"), "out/report.json");
        assert_eq!(named("report.json"), "report.json");
        // Outside the workspace no relative name means the same file on the host: as given.
        assert_eq!(named("/tmp/report.json"), "/tmp/report.json");
        assert_eq!(named("/github/workspace-2/r.json"), "/github/workspace-2/r.json");
        // A working directory below the workspace (a binary started in a subfolder).
        assert_eq!(output_path(Path::new("r.json"), Path::new("/ws/sub"), Path::new("/ws")), "sub/r.json");
    }
}
