use clap::Parser;

// The daemon allocates on every request (JSON, records, history rows);
// mimalloc spends less CPU per allocation than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = leadflow::cli::Cli::parse();
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
