use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // A `.env` file in the working directory fills in what the environment does not set
    // (variables already set win), as deploy/example.env describes.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(err) if err.not_found() => {}
        Err(err) => {
            eprintln!("error: could not read .env in the working directory: {err}");
            return ExitCode::FAILURE;
        }
    }
    let cli = cusp::cli::Cli::parse();
    // The demo prints its own account of what happened; only errors are logged.
    let default_filter = match cli.command {
        cusp::cli::CliCommand::Demo(_) => "error",
        _ => "info,sqlx=warn",
    };
    cusp::telemetry::init(cli.log_format, default_filter);
    match cusp::cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
