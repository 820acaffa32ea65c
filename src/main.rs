use clap::Parser;

// The daemon allocates on every request (JSON, records, history rows);
// mimalloc spends less CPU per allocation than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = leadflow::cli::Cli::parse();
    match leadflow::cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
