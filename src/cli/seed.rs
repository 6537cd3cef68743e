//! `pos seed`: creates tenants with their branches and products, fast (bulk
//! inserts, one transaction per chunk of tenants), adding to what exists.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::database::{with_connection, CliError};
use super::keys_file::KeysFile;
use super::names::{self, NameStyle};
use crate::auth::NewKey;
use crate::domain::{Scope, TenantId};
use crate::store::{self, KeyInsert};

/// Tenants per transaction.
const TENANTS_PER_CHUNK: usize = 200;
/// Above this many products per tenant, `--yes` is required.
pub const MAX_PRODUCTS_WITHOUT_YES: u64 = 100_000;
/// Above this many rows in all, `--yes` is required.
pub const MAX_ROWS_WITHOUT_YES: u64 = 50_000_000;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Tenants to create.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub tenants: u64,
    /// Branches per tenant.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub branches: u64,
    /// Products per tenant.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub products: u64,
    /// How rows are named.
    #[arg(long, value_enum, default_value = "realistic")]
    pub names: NameStyle,
    /// Allow very large seeds.
    #[arg(long)]
    pub yes: bool,
    /// Do nothing if the database already has tenants (for scripts run again).
    #[arg(long)]
    pub if_empty: bool,
    /// Make a till key and a back-office key for each tenant made, and one
    /// operator key, and write their tokens to this file (mode 0600) as
    /// {"operator", "tills": {tenant: token}, "backoffices": {tenant:
    /// token}}, for `pos loadgen --keys-file` and `pos history --keys-file`.
    #[arg(long)]
    pub keys_file: Option<std::path::PathBuf>,
}

/// What a seed run made (`None` of it when `--if-empty` found tenants).
#[derive(Debug)]
pub struct SeedReport {
    /// The tenants made, in id order (ids follow the server's
    /// auto-increment step: consecutive unless it is more than 1).
    pub tenants: Vec<TenantId>,
    pub branches: u64,
    pub products: u64,
    pub elapsed: Duration,
    /// Keys made for `--keys-file` (till and back-office keys, the operator key).
    pub keys: usize,
}

/// Checks sizes, migrates (with `migration_url`, if anything is pending),
/// inserts.
pub async fn run(
    args: &SeedArgs,
    database_url: &str,
    migration_url: &str,
    currency: crate::domain::Currency,
) -> Result<Option<SeedReport>, CliError> {
    let total = args.tenants * (1 + args.branches + args.products);
    if !args.yes && (args.products > MAX_PRODUCTS_WITHOUT_YES || total > MAX_ROWS_WITHOUT_YES) {
        return Err(CliError::refused(format!(
            "{total} rows ({} products per tenant) is very large; add --yes if you mean it",
            args.products
        )));
    }
    with_connection(database_url, migration_url, async |conn| {
        if args.if_empty && store::count_tenants(conn).await? > 0 {
            return Ok(None);
        }
        let mut report = insert_all(args, conn, total).await?;
        // In the deployment's currency (a running server would give it
        // only at its next start).
        store::fill_currencies(conn, currency).await?;
        if let Some(path) = &args.keys_file {
            report.keys = write_keys(conn, &report.tenants, path).await?;
        }
        Ok(Some(report))
    })
    .await
}

async fn insert_all(
    args: &SeedArgs,
    conn: &mut mysql_async::Conn,
    total: u64,
) -> Result<SeedReport, CliError> {
    let branch_names: Vec<String> = (0..args.branches as usize)
        .map(|i| names::branch(args.names, i))
        .collect();
    let product_names: Vec<String> = (0..args.products as usize)
        .map(|i| names::product(args.names, i))
        .collect();
    let progress = Progress::new(total);
    let started = Instant::now();
    let mut tenants = Vec::with_capacity(args.tenants as usize);
    let mut done_tenants = 0u64;
    // Chunks small enough that one transaction stays a few MB.
    let per_chunk =
        (TENANTS_PER_CHUNK as u64).min((200_000 / (1 + args.branches + args.products)).max(1));
    while done_tenants < args.tenants {
        let n = per_chunk.min(args.tenants - done_tenants);
        let tenant_names: Vec<String> = (done_tenants..done_tenants + n)
            .map(|i| names::tenant(args.names, i as usize))
            .collect();
        let chunk = store::SeedChunk {
            tenant_names: &tenant_names,
            branch_names: &branch_names,
            product_names: &product_names,
        };
        let made = store::insert_seed_chunk(conn, &chunk).await?;
        tenants.extend(made);
        done_tenants += n;
        progress.add(n * (1 + args.branches + args.products));
    }
    progress.finish();
    Ok(SeedReport {
        tenants,
        branches: args.tenants * args.branches,
        products: args.tenants * args.products,
        elapsed: started.elapsed(),
        keys: 0,
    })
}

/// Makes a till and a back-office key per tenant and an operator key,
/// stores their hashes, and writes the tokens to `path`; returns how many
/// keys it made.
async fn write_keys(
    conn: &mut mysql_async::Conn,
    tenants: &[TenantId],
    path: &std::path::Path,
) -> Result<usize, CliError> {
    let no_random = |e| CliError::refused(format!("no randomness for keys: {e}"));
    let mut scoped = vec![(Scope::Operator, NewKey::generate().map_err(no_random)?)];
    for &tenant in tenants {
        let till = Scope::Till {
            tenant,
            branch: None,
        };
        scoped.push((till, NewKey::generate().map_err(no_random)?));
        let office = Scope::Backoffice { tenant };
        scoped.push((office, NewKey::generate().map_err(no_random)?));
    }
    let rows: Vec<KeyInsert> = scoped
        .iter()
        .map(|(scope, key)| KeyInsert {
            id: &key.id,
            hash: key.hash,
            scope: *scope,
            label: "pos seed",
        })
        .collect();
    store::insert_keys(conn, &rows).await?;
    let mut file = KeysFile::default();
    for (scope, key) in &scoped {
        let token = key.token.clone();
        match *scope {
            Scope::Till { tenant, .. } => file.tills.insert(tenant, token),
            Scope::Backoffice { tenant } => file.backoffices.insert(tenant, token),
            Scope::Operator => file.operator.replace(token),
        };
    }
    file.write(path)?;
    Ok(scoped.len())
}

/// A bar on a terminal; a plain line every few seconds otherwise.
struct Progress {
    bar: ProgressBar,
    total: u64,
    started: Instant,
    last_line: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            total,
            started: Instant::now(),
            last_line: std::cell::Cell::new(Instant::now()),
        }
    }

    fn add(&self, rows: u64) {
        self.bar.inc(rows);
        if self.bar.is_hidden() && self.last_line.get().elapsed() >= Duration::from_secs(2) {
            self.last_line.set(Instant::now());
            eprintln!(
                "seed: {}/{} rows ({:.0} s)",
                self.bar.position(),
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
