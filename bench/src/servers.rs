//! The three servers under load, each its own process so that its memory and
//! CPU time are its own: the real `holdspace` binary (default configuration,
//! SQLite on disk), the floor (`holdspace-bench floor-server`) and the
//! Socket.IO 4 server on Node (`socketio/server.js`, installed from npm).
//! Also the per-session plan: ids and tokens the clients use.

use anyhow::{Context as _, bail};
use holdspace::client::Api;
use protocol::rest::AddSeat;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// What the clients talk to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The real `holdspace` binary.
    Holdspace,
    /// The bare broadcast floor (no auth, no state, no persistence).
    Floor,
    /// Socket.IO 4 on Node, one room per session.
    Socketio,
}

impl Target {
    /// How tables name it.
    pub fn label(self) -> &'static str {
        match self {
            Target::Holdspace => "Holdspace",
            Target::Floor => "floor (bare broadcast)",
            Target::Socketio => "Socket.IO 4 (Node)",
        }
    }
}

/// Participants per session.
pub const SEATS: usize = 12;
const PASSWORD: &str = "bench-password-not-secret";

/// A running server process.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id, for /proc.
    pub pid: String,
    data: Option<PathBuf>,
}

impl Server {
    /// Kills the process (before the clients close, so the clients' ports
    /// are not left in TIME_WAIT) and removes its data.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        if let Some(dir) = self.data.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One group session as the clients see it.
pub struct SessionPlan {
    /// Session id.
    pub id: String,
    /// Seat ids, in order.
    pub seats: Vec<String>,
    /// Each seat's participant token (empty for the references).
    pub phone_tokens: Vec<String>,
}

/// Every session of a run and the staff tokens.
pub struct Plan {
    /// The sessions.
    pub sessions: Vec<SessionPlan>,
    /// Two facilitators and the medical provider (their boards); the device
    /// bridge uses the medical provider's account.
    pub facilitators: [String; 2],
    /// The medical provider.
    pub medical: String,
}

/// Starts `target` and prepares `sessions` sessions on it.
pub async fn start(
    target: Target,
    holdspace: &Path,
    sessions: usize,
) -> anyhow::Result<(Server, Plan)> {
    match target {
        Target::Holdspace => start_holdspace(holdspace, sessions).await,
        Target::Floor => {
            let exe = std::env::current_exe()?;
            let server =
                spawn(Command::new(exe).arg("floor-server"), "listening on ", None).await?;
            Ok((server, fake_plan(sessions)))
        }
        Target::Socketio => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("socketio");
            if !dir.join("node_modules/socket.io").exists() {
                let status = Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir)
                    .status()
                    .await
                    .context("npm install in bench/socketio (is Node installed?)")?;
                if !status.success() {
                    bail!("npm install in {} failed", dir.display());
                }
            }
            let server = spawn(
                Command::new("node").arg(dir.join("server.js")),
                "listening on ",
                None,
            )
            .await?;
            Ok((server, fake_plan(sessions)))
        }
    }
}

/// Spawns a server and reads its port from the first line it prints.
async fn spawn(
    command: &mut Command,
    prefix: &str,
    data: Option<PathBuf>,
) -> anyhow::Result<Server> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the server")?;
    let pid = child.id().context("no pid")?.to_string();
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("the server did not start within 60 s")??
        .context("the server exited")?;
    let rest = line
        .strip_prefix(prefix)
        .with_context(|| format!("unexpected first line {line:?}"))?;
    let port = rest
        .split(|c: char| !c.is_ascii_alphanumeric() && c != ':' && c != '.')
        .next()
        .unwrap_or("");
    let addr: SocketAddr = if port.contains(':') {
        port.parse()?
    } else {
        format!("127.0.0.1:{port}").parse()?
    };
    // Keep reading its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server {
        child,
        addr,
        pid,
        data,
    })
}

async fn start_holdspace(exe: &Path, sessions: usize) -> anyhow::Result<(Server, Plan)> {
    let dir = std::env::temp_dir().join(format!("holdspace-bench-{}", Uuid::new_v4()));
    for (user, role) in [
        ("fac1", "facilitator"),
        ("fac2", "facilitator"),
        ("med", "medical"),
    ] {
        let status = Command::new(exe)
            .args([
                "user",
                "add",
                "--clinic",
                "Bench clinic",
                "--username",
                user,
                "--role",
                role,
                "--data",
            ])
            .arg(&dir)
            .env("HOLDSPACE_PASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .status()
            .await
            .with_context(|| format!("cannot run {}", exe.display()))?;
        if !status.success() {
            bail!("holdspace user add failed");
        }
    }
    let server = spawn(
        Command::new(exe)
            .args(["--bind", "127.0.0.1:0", "--data"])
            .arg(&dir),
        "Holdspace listening on http://",
        Some(dir),
    )
    .await?;
    let api = Api::new(server.addr);
    let token = |u: &'static str| {
        let api = api.clone();
        async move { anyhow::Ok(api.login(u, PASSWORD).await?.token.token) }
    };
    let facilitators = [token("fac1").await?, token("fac2").await?];
    let medical = token("med").await?;
    let staff = api.with_token(facilitators[0].clone());

    use futures_util::StreamExt as _;
    let plans: Vec<anyhow::Result<SessionPlan>> = futures_util::stream::iter(0..sessions)
        .map(|n| {
            let (staff, api) = (staff.clone(), api.clone());
            async move {
                let session = staff.create_session(&format!("Bench group {n}")).await?.id;
                let (mut seats, mut phone_tokens) = (Vec::new(), Vec::new());
                for i in 0..SEATS {
                    let seat = AddSeat {
                        display_name: format!("P{i}"),
                        weight_kg: Some(70.0),
                        location: None,
                    };
                    let seat = staff.add_seat(session, &seat).await?.seat;
                    let code = staff.join_code(session, seat).await?.code;
                    phone_tokens.push(api.join(&code).await?.token.token);
                    seats.push(seat.to_string());
                }
                Ok(SessionPlan {
                    id: session.to_string(),
                    seats,
                    phone_tokens,
                })
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let sessions = plans.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok((
        server,
        Plan {
            sessions,
            facilitators,
            medical,
        },
    ))
}

/// The references need no accounts; ids only shape the messages alike.
fn fake_plan(sessions: usize) -> Plan {
    Plan {
        sessions: (0..sessions)
            .map(|n| SessionPlan {
                id: n.to_string(),
                seats: (0..SEATS)
                    .map(|i| Uuid::from_u64_pair(n as u64, i as u64).to_string())
                    .collect(),
                phone_tokens: Vec::new(),
            })
            .collect(),
        facilitators: [String::new(), String::new()],
        medical: String::new(),
    }
}
