//! `watchhouse`: one binary for the hub, the collector, the demo, log diagnosis and
//! administration. This crate is a thin shell: argument parsing, configuration and wiring.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// mimalloc for every allocation in the process: Rust's (decoded batches, detection state) and,
/// through its `override` feature, the bundled SQLite's and other C code's `malloc`. Under
/// embedded ingest glibc's allocator took about a fifth of the CPU; with mimalloc the hub
/// stored 2,000,000 events over HTTP at a median 309k events/s against 295k (9 runs each,
/// alternated), for about 90 MB more peak memory (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod config;
mod demo;
mod intel_cmd;
mod parse_cmd;
mod report_cmd;

/// Watchhouse: an open cyber alarm for police forces and the organisations they protect.
///
/// Collectors read members' firewall logs and keep private traffic private; the hub spots
/// hostile traffic in seconds, tells each member in plain English what to do, and gives police
/// the picture across members.
#[derive(Debug, Parser)]
#[command(name = "watchhouse", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Every key can also be set with WATCHHOUSE__SECTION__KEY.
    #[arg(long, short = 'c', global = true, env = "WATCHHOUSE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub: web UI, JSON API and collector ingest.
    Hub(HubArgs),
    /// Run the collector agent on a member's network.
    Collect(CollectArgs),
    /// Run hub, collectors and a traffic simulator in one process, with demo accounts.
    Demo(demo::DemoArgs),
    /// Read firewall log lines and print each as OCSF Network Activity JSON (for diagnosing formats).
    Parse(parse_cmd::ParseArgs),
    /// Manage forces, members, users, enrolment tokens and collectors.
    Admin(admin::AdminArgs),
    /// Threat intelligence from the command line: look values up in feed files.
    Intel(intel_cmd::IntelArgs),
    /// Member reports for a period, as PDF, HTML or JSON.
    Report(report_cmd::ReportArgs),
}

#[derive(Debug, clap::Args)]
struct HubArgs {
    /// Print the configuration file with every default, commented, and exit.
    #[arg(long)]
    print_config: bool,
    /// Listen address (overrides hub.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (overrides hub.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database URL, e.g. sqlite:///var/lib/watchhouse/watchhouse.db (overrides hub.database).
    #[arg(long)]
    database: Option<String>,
    /// An intelligence feed, as NAME=PATH-OR-URL (repeatable; adds to hub.feeds with defaults).
    #[arg(long = "feed", value_name = "NAME=PATH")]
    feeds: Vec<String>,
    /// What this process does: all (one node), api (web UI and API; batches go onto the
    /// queue) or worker (takes batches off the queue and stores them; serves only /healthz
    /// and /metrics). api and worker need --database postgres://… and --queue (overrides
    /// hub.role).
    #[arg(long, value_parser = ["all", "api", "worker"])]
    role: Option<String>,
    /// The queue between API nodes and workers, e.g. nats://127.0.0.1:4222 (overrides
    /// hub.queue).
    #[arg(long)]
    queue: Option<String>,
}

#[derive(Debug, clap::Args)]
struct CollectArgs {
    /// Print the configuration file with every default, commented, and exit.
    #[arg(long)]
    print_config: bool,
    /// The hub's URL (overrides collector.hub_url).
    #[arg(long)]
    hub: Option<String>,
    /// Data directory for credential, checkpoints and spool (overrides collector.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// One-time enrolment token from your Watchhouse administrator (first run only).
    #[arg(long, env = "WATCHHOUSE_ENROL_TOKEN", hide_env_values = true)]
    enrol_token: Option<String>,
    /// A name for this collector, e.g. the site or firewall.
    #[arg(long)]
    name: Option<String>,
    /// Syslog UDP listen address (repeatable; replaces collector.udp_listen).
    #[arg(long = "udp", value_name = "ADDR")]
    udp: Vec<String>,
    /// Syslog TCP listen address (repeatable; replaces collector.tcp_listen).
    #[arg(long = "tcp", value_name = "ADDR")]
    tcp: Vec<String>,
    /// A log file to follow (repeatable; adds to collector.files).
    #[arg(long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Parser: auto, or a format such as netfilter, filterlog, fortigate, cisco_asa (overrides
    /// collector.format).
    #[arg(long)]
    format: Option<String>,
    /// Ship nothing: listen on the configured sources and show, every two seconds, what is
    /// arriving, which parser took it, what would stay on your network, and samples of lines
    /// that could not be read. Needs no enrolment.
    #[arg(long)]
    diagnose: bool,
}

fn init_logging(cfg: &config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WATCHHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.level));
    use std::io::IsTerminal;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if cfg.format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

/// Completes when Ctrl-C or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn parse_feed(s: &str) -> Result<watchhouse_hub::FeedConfig> {
    let (name, path) = s
        .split_once('=')
        .with_context(|| format!("--feed {s}: expected NAME=PATH-OR-URL"))?;
    let mut f = watchhouse_hub::FeedConfig::file(name, path);
    f.url = path.to_owned();
    Ok(f)
}

/// Opens the hub's store and builds the app state with the configured feeds.
pub async fn hub_state(
    cfg: &watchhouse_hub::HubConfig,
) -> Result<(
    watchhouse_hub::AppState,
    Vec<watchhouse_hub::intel::FeedState>,
)> {
    watchhouse_hub::intel::feeds::validate(&cfg.feeds)
        .map_err(|e| anyhow::anyhow!("hub.feeds: {e}"))?;
    let store = watchhouse_store::open(&cfg.database_url())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                watchhouse_store::redact_url(&cfg.database_url())
            )
        })?;
    let files = cfg
        .open_files()
        .with_context(|| format!("cannot open the file store {}", cfg.files_url()))?;
    let feeds = watchhouse_hub::intel::feeds::initial(&cfg.feeds, &files, &cfg.feed_ca_file).await;
    let state = watchhouse_hub::AppState::new(
        store,
        files,
        cfg.clone(),
        watchhouse_hub::intel::Intel::empty(),
    );
    state.load_asn();
    watchhouse_hub::intel::feeds::rebuild(&state, &feeds).await;
    Ok((state, feeds))
}

async fn run_hub(cfg: watchhouse_hub::HubConfig) -> Result<()> {
    cfg.check_role().map_err(anyhow::Error::msg)?;
    let (state, feeds) = hub_state(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is another hub running?)", cfg.listen))?;
    let addr = listener.local_addr()?;
    let mut tasks = vec![tokio::spawn(watchhouse_hub::intel::feeds::run(
        state.clone(),
        feeds,
    ))];
    let (stop_worker, stop_rx) = tokio::sync::watch::channel(false);
    let mut worker = None;
    if !cfg.queue.is_empty() {
        let queue = watchhouse_hub::worker::open_queue(&cfg)
            .await
            .with_context(|| format!("cannot open the queue {}", cfg.queue))?;
        if cfg.role.serves_api() {
            let _ = state.queue.set(queue.clone());
        }
        if cfg.role.works() {
            worker = Some(tokio::spawn(watchhouse_hub::worker::run(
                state.clone(),
                queue,
                stop_rx,
            )));
        }
    }
    if cfg.role.works() {
        tasks.push(tokio::spawn(watchhouse_hub::notify::run(state.clone())));
        tasks.push(tokio::spawn(watchhouse_hub::worker::housekeeping(
            state.clone(),
        )));
    }
    let role = format!("{:?}", cfg.role).to_lowercase();
    if cfg.tls_enabled() {
        let tls = watchhouse_hub::tls::server_config(
            std::path::Path::new(&cfg.tls_cert),
            std::path::Path::new(&cfg.tls_key),
        )
        .map_err(anyhow::Error::msg)?;
        let listener = watchhouse_hub::tls::TlsListener::new(listener, tls)?;
        tracing::info!(listen = %addr, %role, database = %watchhouse_store::redact_url(&cfg.database_url()), "hub running (https)");
        watchhouse_hub::serve(listener, state, shutdown_signal()).await?;
    } else {
        tracing::info!(listen = %addr, %role, database = %watchhouse_store::redact_url(&cfg.database_url()), "hub running (http)");
        watchhouse_hub::serve(listener, state, shutdown_signal()).await?;
    }
    // A worker finishes the batch in hand and gives back the others it fetched.
    let _ = stop_worker.send(true);
    if let Some(w) = worker {
        let abort = w.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(30), w)
            .await
            .is_err()
        {
            tracing::warn!(
                "worker did not stop within 30 s; its batches come back after the ack wait"
            );
            abort.abort();
        }
    }
    for t in tasks {
        t.abort();
    }
    tracing::info!("hub stopped");
    Ok(())
}

async fn run_collect(cfg: watchhouse_collector::CollectorConfig) -> Result<()> {
    let running = watchhouse_collector::start(cfg).await?;
    shutdown_signal().await;
    tracing::info!("stopping: sealing received lines into the spool");
    running.stop(std::time::Duration::from_secs(5)).await;
    Ok(())
}

fn main() -> Result<()> {
    // One TLS provider for the whole process (several are compiled in through dependencies).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let mut cfg = config::load(cli.config.as_deref(), std::env::vars())?;
    cfg.hub.detect = cfg.detect.clone();
    match cli.command {
        Command::Parse(args) => parse_cmd::run(args),
        Command::Intel(a) => match intel_cmd::run(a) {
            // Exit statuses like grep: 0 listed, 1 not listed, 2 error.
            Ok(listed) => std::process::exit(if listed { 0 } else { 1 }),
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::exit(2)
            }
        },
        Command::Hub(a) => {
            if a.print_config {
                print!("{}", config::DEFAULT_CONFIG);
                return Ok(());
            }
            if let Some(l) = a.listen {
                cfg.hub.listen = l;
            }
            if let Some(d) = a.data_dir {
                cfg.hub.data_dir = d;
            }
            if let Some(d) = a.database {
                cfg.hub.database = d;
            }
            if let Some(r) = a
                .role
                .as_deref()
                .and_then(watchhouse_hub::config::HubRole::from_name)
            {
                cfg.hub.role = r;
            }
            if let Some(q) = a.queue {
                cfg.hub.queue = q;
            }
            for f in &a.feeds {
                cfg.hub.feeds.push(parse_feed(f)?);
            }
            init_logging(&cfg.log);
            runtime()?.block_on(run_hub(cfg.hub))
        }
        Command::Collect(a) => {
            if a.print_config {
                print!("{}", config::DEFAULT_CONFIG);
                return Ok(());
            }
            let c = &mut cfg.collector;
            if let Some(v) = a.hub {
                c.hub_url = v;
            }
            if let Some(v) = a.data_dir {
                c.data_dir = v;
            }
            if let Some(v) = a.enrol_token {
                c.enrolment_token = v;
            }
            if let Some(v) = a.name {
                c.name = v;
            }
            if !a.udp.is_empty() {
                c.udp_listen = a.udp;
            }
            if !a.tcp.is_empty() {
                c.tcp_listen = a.tcp;
            }
            for p in a.files {
                c.files.push(watchhouse_collector::FileSource {
                    path: p,
                    format: "auto".into(),
                });
            }
            if let Some(f) = a.format {
                c.format = f;
            }
            init_logging(&cfg.log);
            if a.diagnose {
                return runtime()?.block_on(async {
                    watchhouse_collector::diagnose::run(
                        cfg.collector,
                        std::time::Duration::from_secs(2),
                        shutdown_signal(),
                        |d| println!("\n== {} ==\n{}", jiff::Timestamp::now(), d.render()),
                    )
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
                });
            }
            runtime()?.block_on(run_collect(cfg.collector))
        }
        Command::Demo(a) => {
            init_logging(&cfg.log);
            runtime()?.block_on(demo::run(a, cfg))
        }
        Command::Admin(a) => runtime()?.block_on(admin::run(a, cfg.hub)),
        Command::Report(a) => runtime()?.block_on(report_cmd::run(a, cfg.hub)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
