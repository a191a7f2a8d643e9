//! The `holdspace` command line: `holdspace` (serve), `holdspace demo`,
//! `holdspace user add`. Flags fall back to environment variables.

use crate::app::App;
use crate::clock::Clock;
use crate::config::Config;
use crate::store::SqliteStore;
use crate::{auth, demo};
use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use protocol::StaffRole;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "holdspace",
    version,
    about = "Live coordination for group ketamine-assisted psychotherapy sessions",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Run the server with a seeded demo clinic and a simulated group session.
    Demo(DemoArgs),
    /// Manage staff accounts.
    User {
        #[command(subcommand)]
        command: UserCmd,
    },
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOLDSPACE_BIND", default_value = "127.0.0.1:7070")]
    bind: SocketAddr,
    /// Directory of the SQLite database [default: ./holdspace-data; demo: ./holdspace-demo-data].
    #[arg(long, env = "HOLDSPACE_DATA")]
    data: Option<PathBuf>,
    /// The built browser app to serve [default: ./web-client/dist if it exists].
    #[arg(long, env = "HOLDSPACE_WEB")]
    web: Option<PathBuf>,
    /// Token signing secret, at least 32 bytes [default: a random secret kept in the database].
    #[arg(long, env = "HOLDSPACE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Messages queued per connection before it is closed as too slow
    /// (more than 288: one batch's events and answers must always fit).
    #[arg(long, env = "HOLDSPACE_OUTBOUND_QUEUE", default_value_t = 1024)]
    outbound_queue: usize,
    /// Sustained messages per second allowed per connection.
    #[arg(long, env = "HOLDSPACE_RATE", default_value_t = 50.0)]
    rate: f64,
    /// Most open WebSocket connections.
    #[arg(long, env = "HOLDSPACE_MAX_CONNECTIONS", default_value_t = 20_000)]
    max_connections: usize,
}

#[derive(Args, Clone)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Speed of the simulated session: 2 plays it twice as fast.
    #[arg(long, default_value_t = 1.0)]
    pace: f64,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a staff account. The password is read from HOLDSPACE_PASSWORD or,
    /// if that is unset, from the first line of standard input.
    Add {
        /// Directory of the SQLite database.
        #[arg(long, env = "HOLDSPACE_DATA", default_value = "holdspace-data")]
        data: PathBuf,
        /// Login name.
        #[arg(long)]
        username: String,
        /// admin, facilitator or medical.
        #[arg(long, value_parser = parse_role)]
        role: StaffRole,
        /// Name shown to colleagues [default: the username].
        #[arg(long)]
        display_name: Option<String>,
        /// Clinic name (created if new).
        #[arg(long, default_value = "Holdspace clinic")]
        clinic: String,
    },
}

fn parse_role(s: &str) -> Result<StaffRole, String> {
    StaffRole::parse(s)
        .ok_or_else(|| format!("{s:?} is not a staff role (admin, facilitator, medical)"))
}

impl ServeArgs {
    fn config(&self, default_data: &str) -> anyhow::Result<Config> {
        let mut config = Config::new(self.data.clone().unwrap_or_else(|| default_data.into()));
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            bail!("--jwt-secret must be at least 32 bytes");
        }
        if self.rate.is_nan() || self.rate <= 0.0 {
            bail!("--rate must be more than 0");
        }
        config.jwt_secret = self.jwt_secret.clone();
        config.web_dir = match &self.web {
            Some(dir) if !dir.join("index.html").exists() => {
                bail!(
                    "--web {}: no index.html there (build it: cargo run -p xtask -- build-web)",
                    dir.display()
                )
            }
            Some(dir) => Some(dir.clone()),
            None => {
                Some(PathBuf::from("web-client/dist")).filter(|d| d.join("index.html").exists())
            }
        };
        if self.outbound_queue <= crate::hub::MAX_BATCH_BURST {
            bail!(
                "--outbound-queue must be more than {}",
                crate::hub::MAX_BATCH_BURST
            );
        }
        config.outbound_queue = self.outbound_queue;
        config.rate_per_second = self.rate;
        config.rate_burst = (self.rate * 2.0).max(10.0);
        config.max_connections = self.max_connections.max(1);
        Ok(config)
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("holdspace=info,warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "could not start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => serve(cli.serve, None).await,
            Some(Cmd::Serve(args)) => serve(args, None).await,
            Some(Cmd::Demo(args)) => serve(args.serve, Some(args.pace)).await,
            Some(Cmd::User { command }) => user(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("holdspace: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs, demo_pace: Option<f64>) -> anyhow::Result<()> {
    let config = args.config(if demo_pace.is_some() {
        "holdspace-demo-data"
    } else {
        "holdspace-data"
    })?;
    let data_dir = config.data_dir.clone();
    let listener =
        crate::listen(args.bind).with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let app = App::start(config, Clock::system(), shutdown.clone())
        .await
        .with_context(|| format!("cannot open the data in {}", data_dir.display()))?;
    announce(&format!(
        "Holdspace listening on http://{addr}  (data: {})",
        data_dir.display()
    ));
    if let Some(pace) = demo_pace {
        let seeded = demo::seed(&app)
            .await
            .context("cannot seed the demo clinic")?;
        announce(&seeded.banner(addr));
        demo::spawn_simulator(&app, addr, seeded, pace);
    }
    tokio::spawn(stop_on_signal(shutdown));
    crate::app::serve(app, listener).await?;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn announce(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new connections; closing sockets; flushing the log");
    shutdown.cancel();
}

async fn user(command: UserCmd) -> anyhow::Result<()> {
    let UserCmd::Add {
        data,
        username,
        role,
        display_name,
        clinic,
    } = command;
    let username = username.trim().to_string();
    if username.is_empty() || username.len() > 60 {
        bail!("--username must be 1 to 60 characters");
    }
    let password = match std::env::var("HOLDSPACE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if password.chars().count() < 10 {
        bail!("the password must be at least 10 characters");
    }
    let store =
        SqliteStore::open(&data).with_context(|| format!("cannot open {}", data.display()))?;
    let now = Clock::system().now();
    let clinic = store.ensure_clinic(clinic, now).await?;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password)).await?;
    let display_name = display_name.unwrap_or_else(|| username.clone());
    let profile = store
        .add_staff(clinic, username, display_name, role, hash, now)
        .await?;
    announce(&format!(
        "added {} ({}) with id {}",
        profile.username,
        profile.role.as_str(),
        profile.id
    ));
    Ok(())
}
