use clap::Parser;

use pos::cli::database::CliError;
use pos::cli::{Cli, Command};
use pos::config::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its option enum is part of its C
/// ABI; the constant is not exported).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Freed pages go back to the OS at once, unless the operator chose a
    // delay (mimalloc reads its MIMALLOC_* variables itself). With the
    // default delay pages are returned only when the same thread allocates
    // again, so start-up's transient rows (about 50 B per product total)
    // stayed resident.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; mimalloc reads it on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    // Before any thread exists: dotenvy sets process variables. Only the
    // working directory's `.env`: one in a parent directory (another
    // project's, or a shared /tmp) is not ours to read.
    let _ = dotenvy::from_path(".env");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap writes them; a usage error
        // is one line, like every other error of `pos`.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "{}",
                text.lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
    };
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
            Command::Keys(args) => keys(args, config).await,
            Command::Shards(args) => shards(args, config).await,
            Command::Rollups(args) => rollups(args, config).await,
            Command::Seed(args) => seed(args, config).await,
            Command::Loadgen(args) => pos::cli::loadgen::run(args).await,
            Command::History(args) => pos::cli::history::run(args).await,
        }
    });
    std::process::exit(code);
}

async fn serve(config: Config) -> i32 {
    match pos::startup::start(config) {
        Ok(app) => match app.run_until_signal().await {
            None => 0,
            Some(fatal) => {
                eprintln!("{}", fatal.message);
                fatal.code
            }
        },
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

async fn migrate(config: Config) -> i32 {
    // Without POS_DATABASE_URL there is no service user to grant (the
    // default URL is a local root).
    let service_named = config.database_url != pos::config::DEFAULT_DATABASE_URL;
    let mut migrated =
        migrate_one(&config.database_url, config.migration_url(), service_named).await;
    if config.pods() {
        // The control database: the same migrations (SPEC 9a).
        if let Ok(applied) = &mut migrated {
            match migrate_one(config.control_url(), config.control_migration_url(), true).await {
                Ok(more) => applied.extend(more.into_iter().map(|m| format!("{m} (control)"))),
                Err(e) => migrated = Err(e),
            }
        }
    }
    match migrated {
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

/// Migrates one database, then narrows its service user's rights to
/// what it needs when `grant`.
async fn migrate_one(
    url: &str,
    migration_url: &str,
    grant: bool,
) -> Result<Vec<String>, pos::store::MigrateError> {
    let applied = pos::store::migrate(migration_url).await?;
    if grant && url != migration_url {
        pos::store::grant_service_user(url, migration_url).await?;
    }
    Ok(applied)
}

/// The URL a tool works with and the one it migrates with: from
/// `POS_DATABASE_URL` and `POS_MIGRATE_DATABASE_URL` (the environment or
/// `./.env`), never from arguments, which `ps` shows to every user.
fn tool_urls(config: &Config) -> (String, String) {
    (
        config.database_url.clone(),
        config.migration_url().to_string(),
    )
}

/// Prints a command's output, or its error as one line after its name.
fn report(tool: &str, result: Result<String, CliError>) -> i32 {
    match result {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            1
        }
    }
}

async fn keys(args: pos::cli::keys::KeysArgs, config: Config) -> i32 {
    let migration_url = config.control_migration_url();
    report(
        "keys",
        // Keys are made and revoked with the privileged URL when there is
        // one: the service's own user may only read them.
        pos::cli::keys::run(
            &args.command,
            migration_url,
            migration_url,
            pos::cli::keys::Branches {
                url: config.migration_url(),
                pods: config.pods(),
            },
        )
        .await,
    )
}

async fn shards(args: pos::cli::shards::ShardsArgs, config: Config) -> i32 {
    // Leases and the shard count are the control database's.
    let (url, migration_url) = (config.control_url(), config.control_migration_url());
    report(
        "shards",
        pos::cli::shards::run(&args.command, url, migration_url, config.pods()).await,
    )
}

async fn rollups(args: pos::cli::rollups::RollupsArgs, config: Config) -> i32 {
    let (url, migration_url) = tool_urls(&config);
    report(
        "rollups",
        pos::cli::rollups::run(&args.command, &url, &migration_url).await,
    )
}

async fn seed(args: pos::cli::seed::SeedArgs, config: Config) -> i32 {
    if config.pods() {
        // It writes one database: with pods, tenants would be missing from
        // the directory and keys from the control database.
        eprintln!("seed: not with pods (POS_CONTROL_DATABASE_URL is set): it seeds one database; make tenants with POST /v1/tenants");
        return 1;
    }
    let migration_url = config.migration_url();
    // Seeding makes keys (an operator key among them): the privileged URL.
    let currency = config.default_currency;
    match pos::cli::seed::run(&args, migration_url, migration_url, currency).await {
        Ok(None) => {
            println!("the database already has tenants; nothing seeded (--if-empty)");
            0
        }
        Ok(Some(r)) => {
            let id = |t: Option<&pos::domain::TenantId>| t.map_or(0, |t| t.get());
            println!(
                "seeded tenants {}..={} ({} tenants, {} branches, {} products) in {:.1} s",
                id(r.tenants.first()),
                id(r.tenants.last()),
                r.tenants.len(),
                r.branches,
                r.products,
                r.elapsed.as_secs_f64()
            );
            if let Some(path) = &args.keys_file {
                println!(
                    "wrote {} keys (a till and a back-office key per tenant, an operator key) to {}",
                    r.keys,
                    path.display()
                );
            }
            0
        }
        Err(e) => {
            eprintln!("seed: {e}");
            1
        }
    }
}
