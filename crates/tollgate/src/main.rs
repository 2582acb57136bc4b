//! The `tollgate` binary: command line, logging, runtime and signals. Everything else lives in
//! the library crates.
#![forbid(unsafe_code)]

mod check_config;
mod import;
mod manage;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::ExposeSecret;
use tollgate_core::config::{self, Config};
use tollgate_server::Gateway;
use tollgate_server::logging::{self, LogFormat as OutputFormat};

/// mimalloc: a request allocates and frees many small buffers across tasks; glibc's malloc
/// spends noticeably more CPU per request on that pattern.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "An AI gateway: one OpenAI-compatible endpoint in front of every model provider."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `tollgate --config FILE` serves, as `litellm --config FILE` does.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gateway.
    Serve(ServeArgs),
    /// Validate a config file and print the resolved model table (keys redacted), without serving.
    CheckConfig {
        /// The config file (LiteLLM's config.yaml format).
        file: PathBuf,
    },
    /// Manage virtual keys of a running gateway.
    Keys {
        #[command(flatten)]
        connection: manage::Connection,
        #[command(subcommand)]
        command: manage::KeyCommand,
    },
    /// Manage teams of a running gateway.
    Teams {
        #[command(flatten)]
        connection: manage::Connection,
        #[command(subcommand)]
        command: manage::TeamCommand,
    },
    /// Manage users of a running gateway.
    Users {
        #[command(flatten)]
        connection: manage::Connection,
        #[command(subcommand)]
        command: manage::UserCommand,
    },
    /// Print a running gateway's spend, grouped by team, key, user, model or day.
    Spend {
        #[command(flatten)]
        connection: manage::Connection,
        #[command(flatten)]
        args: manage::SpendArgs,
    },
    /// Import another gateway's keys, teams, users, budgets and spend into Tollgate's store.
    Import {
        #[command(subcommand)]
        source: import::ImportCommand,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The config file (LiteLLM's config.yaml format).
    #[arg(long, short, env = "TOLLGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on.
    #[arg(long, short, env = "PORT", default_value_t = 4000)]
    port: u16,
    /// Log line format.
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Worker threads, each with its own runtime and provider connections (default: one per
    /// core available to the process).
    #[arg(long, env = "TOLLGATE_WORKERS", default_value_t = default_workers(), value_parser = clap::value_parser!(usize))]
    workers: usize,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => check_config::run(&file),
        Some(Command::Keys {
            connection,
            command,
        }) => manage::keys(connection, command),
        Some(Command::Teams {
            connection,
            command,
        }) => manage::teams(connection, command),
        Some(Command::Users {
            connection,
            command,
        }) => manage::users(connection, command),
        Some(Command::Spend { connection, args }) => manage::spend(connection, args),
        Some(Command::Import { source }) => import::run(source),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    init_logging(args.log_format);
    let code = run_gateway(args);
    logging::flush();
    code
}

fn run_gateway(args: ServeArgs) -> ExitCode {
    let Some(path) = args
        .config
        .or_else(|| std::env::var_os("CONFIG_FILE_PATH").map(PathBuf::from))
    else {
        eprintln!("tollgate: no config file given: pass --config FILE (or set TOLLGATE_CONFIG)");
        return ExitCode::from(2);
    };
    let config = match config::load(&path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tollgate: config error: {err}");
            return ExitCode::from(2);
        }
    };
    report_config(&config);

    // The database's connections and the background work live on a runtime of their own,
    // alive as long as the process: workers come and go with shutdown, these must not.
    // Numbered after the workers (`tollgate_core::worker`): its Redis connection is its own.
    let background_thread = args.workers;
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tollgate-background")
        .on_thread_start(move || tollgate_core::worker::set_current(background_thread))
        .enable_all()
        .build()
        .expect("the background runtime starts");
    let database_url = config
        .database_url
        .as_ref()
        .map(|url| url.expose_secret().to_owned())
        .unwrap_or_else(|| tollgate_server::Store::sqlite_url(&config.database_path));
    let journal = match tollgate_server::Journal::open(
        &config.spend_journal.dir,
        config.spend_journal.max_bytes,
    ) {
        Ok(journal) => journal,
        Err(err) => {
            eprintln!("tollgate: cannot open the spend journal: {err}");
            return ExitCode::from(2);
        }
    };
    let gateway = match Gateway::new(config, args.workers) {
        Ok(gateway) => gateway,
        Err(err) => {
            eprintln!("tollgate: config error: {err}");
            return ExitCode::from(2);
        }
    };
    let opened = background.block_on(async {
        let store = tollgate_server::Store::connect(&database_url).await?;
        gateway.with_store(store, journal).await
    });
    let gateway = match opened {
        Ok(gateway) => Arc::new(gateway),
        Err(err) => {
            eprintln!(
                "tollgate: cannot open the database {}: {err}",
                tollgate_server::redact_url(&database_url)
            );
            return ExitCode::from(2);
        }
    };
    tracing::info!(database = %tollgate_server::redact_url(&database_url), "database ready");
    background.spawn(tollgate_server::background_tasks(gateway.clone()));
    if gateway.is_open() {
        tracing::warn!(
            "no general_settings.master_key is configured: the gateway serves every request without a key"
        );
    }
    let exit = workers::run(gateway.clone(), &args.host, args.port, args.workers);
    // What the last requests cost goes to the database now rather than at the next start.
    match background.block_on(gateway.flush_spend()) {
        Ok(()) => tracing::info!("spend records stored"),
        Err(err) => {
            tracing::warn!(error = %err, "spend records stay in the journal until the next start")
        }
    }
    exit
}

/// One start-up summary, and ONE warning listing every accepted-but-unused key.
fn report_config(config: &Config) {
    tracing::info!(
        config = %config.source.display(),
        model_groups = config.model_names().len(),
        deployments = config.deployments.len(),
        "config loaded"
    );
    if !config.not_implemented.is_empty() {
        tracing::warn!(
            keys = %config.not_implemented.join(", "),
            "these config keys are accepted but not acted on by this version of tollgate"
        );
    }
}

fn init_logging(format: LogFormat) {
    logging::init(match format {
        LogFormat::Text => OutputFormat::Text,
        LogFormat::Json => OutputFormat::Json,
    });
}

/// Listens for SIGINT and SIGTERM from this call on (made inside the runtime that awaits the
/// future, before the gateway serves: a signal before it ends the process the default way, not
/// with a drain); the future resolves on the first of them.
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let listen = |name: &str, kind: SignalKind| match signal(kind) {
        Ok(listener) => Some(listener),
        Err(err) => {
            tracing::error!(%err, "cannot listen for {name}; it will not stop the gateway");
            None
        }
    };
    let mut interrupt = listen("SIGINT", SignalKind::interrupt());
    let mut terminate = listen("SIGTERM", SignalKind::terminate());
    async fn received(listener: &mut Option<Signal>) {
        match listener {
            Some(listener) => {
                listener.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    async move {
        tokio::select! {
            () = received(&mut interrupt) => {}
            () = received(&mut terminate) => {}
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
