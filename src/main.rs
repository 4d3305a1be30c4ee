//! `secret-rotator`: parse, run, exit with the documented code.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    // A panic (a bug) is reported with every secret value scrubbed from its message.
    std::panic::set_hook(Box::new(|info| {
        let message = secret_rotator::secret::redact_panic(&info.to_string());
        eprintln!("secret-rotator: internal error (a bug, please report it): {message}");
    }));
    let exit = secret_rotator::run::main(std::env::args_os().collect(), secret_rotator::inputs::Env::from_process());
    std::process::ExitCode::from(exit.code())
}
