//! `secret-rotator`: parse, run, exit with the documented code.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let exit = secret_rotator::run::main(std::env::args_os().collect(), secret_rotator::inputs::Env::from_process());
    std::process::ExitCode::from(exit.code())
}
