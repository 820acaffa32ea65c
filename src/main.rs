use clap::Parser;

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
