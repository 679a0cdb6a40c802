//! The `relive` binary: parses the command line and hands over to the library, which maps the
//! outcome to an exit code (0 ok, 1 failure, 2 usage or config error, 130 interrupted).

use clap::Parser;

fn main() -> std::process::ExitCode {
    relive::main_with(relive::config::cli::Cli::parse())
}
