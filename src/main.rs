use clap::Parser;

use pos::cli::{Cli, Command};
use pos::config::Config;

fn main() {
    // Before any thread exists: dotenvy sets process variables.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    pos::telemetry::init(&config.log_level, config.log_format);
    let code = actix_web::rt::System::new().block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
        }
    });
    std::process::exit(code);
}

async fn serve(config: Config) -> i32 {
    match pos::startup::start(config) {
        Ok(app) => {
            app.run_until_signal().await;
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

async fn migrate(config: Config) -> i32 {
    match pos::store::migrate(&config.database_url).await {
        Ok(applied) if applied.is_empty() => {
            println!("no pending migrations");
            0
        }
        Ok(applied) => {
            for m in applied {
                println!("applied {m}");
            }
            0
        }
        Err(e) => {
            eprintln!("migrate: {e}");
            1
        }
    }
}
