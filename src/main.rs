use clap::{CommandFactory, FromArgMatches};
use leadflow::cli::Cli;

// The daemon allocates on every request (JSON, records, history rows);
// mimalloc spends less CPU per allocation than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // clap's own help and errors follow --color too, so read it first.
    let color = leadflow::color::from_args(std::env::args());
    let matches = Cli::command().color(color.clap()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match leadflow::cmd::run(cli) {
        Ok(code) => code,
        // The reader of our output has gone (`leadflow test | head -1`):
        // nothing to report, and nobody to report it to.
        Err(e) if leadflow::out::is_broken_pipe(&e) => {
            std::process::ExitCode::from(leadflow::out::BROKEN_PIPE_EXIT)
        }
        Err(e) => {
            leadflow::errln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
