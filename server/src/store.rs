//! Persistence. The hub sees only [`EventLog`]: append (returns once durable)
//! and read back. [`SqliteStore`] is the embedded default: one SQLite file in
//! WAL mode, one writer thread doing group commit (many jobs, one transaction,
//! one fsync), a small pool of reader connections.

use protocol::rest::{SessionSummary, StaffMember, StaffProfile};
use protocol::{
    ClinicId, ClinicPolicy, CommandId, Event, EventBody, SeatId, Seq, SessionId, SessionPhase,
    StaffId, StaffRole, Timestamp,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::any::Any;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A boxed future, so [`EventLog`] stays usable as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be read or written (disk full, read-only, locked...).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be understood.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another Holdspace process uses this data directory.
    #[error("another Holdspace server is using {0}")]
    InUse(PathBuf),
    /// A unique name is taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The session log as the hub needs it. A server-class store (a PostgreSQL
/// table, a JetStream stream per session) implements this and nothing in the
/// hub changes.
pub trait EventLog: Send + Sync + 'static {
    /// Appends events and resolves once they are durable, handing them back
    /// with the text each was stored as. Events of one call are committed
    /// together or not at all.
    fn append(&self, events: Vec<Event>) -> BoxFuture<'static, Result<Vec<Recorded>, StoreError>>;

    /// Events of `session` with `after < seq`, in order, at most `limit`.
    fn read(
        &self,
        session: SessionId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<Event>, StoreError>>;

    /// Sessions not yet closed (rebuilt at start-up).
    fn open_sessions(&self) -> BoxFuture<'static, Result<Vec<SessionId>, StoreError>>;

    /// The events the commands `commands` recorded in `session` after seq
    /// `after`, in order (none for one never accepted). For retries the hub
    /// no longer remembers.
    fn command_events(
        &self,
        session: SessionId,
        after: Seq,
        commands: Vec<CommandId>,
    ) -> BoxFuture<'static, Result<Vec<Event>, StoreError>>;
}

/// An event the log holds, with its JSON text as stored: the session task
/// sends that text on instead of serializing the event a second time.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The event.
    pub event: Event,
    /// `serde_json` of `event`.
    pub json: String,
}

type WriteResult = Result<Box<dyn Any + Send>, StoreError>;
type WriteWork = Box<dyn FnOnce(&Connection) -> WriteResult + Send>;

struct WriteJob {
    work: WriteWork,
    done: oneshot::Sender<WriteResult>,
}

/// Jobs waiting for the writer. Bounded so that a stalled disk pushes back on
/// the session tasks instead of growing memory without limit.
const WRITE_QUEUE: usize = 4096;
/// Most jobs in one transaction: bounds the latency one commit adds.
const MAX_BATCH: usize = 512;
/// The writer connection's page cache.
const WRITER_CACHE_KIB: u32 = 32 * 1024;
/// The least time from one commit's start to the next. A commit costs an fsync,
/// its locks, and a copy in the WAL of every page it touches (the table's last
/// page and one index page per session in it), however few jobs it holds.
/// Without a pause, commits ran as fast as the disk allowed: at 100 sessions
/// about 850 a second, 1.5 events each. Waiting out the rest of this interval
/// gathers the jobs that arrive meanwhile into one transaction. A clinic's
/// few sessions send further apart than this and never wait; under load a
/// write waits at most this long more.
const COMMIT_INTERVAL: Duration = Duration::from_millis(2);
/// WAL pages past which the writer copies the log into the database file
/// (SQLite's own default). It does so after answering the batch whose commit
/// went past it: SQLite's automatic checkpoint runs inside that `COMMIT`, so
/// the batch's events waited for the copy before anyone saw them.
const CHECKPOINT_PAGES: i32 = 1000;

/// The embedded SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<WriteJob>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: std::sync::Arc<Mutex<Vec<Connection>>>,
    _lock: File,
}

/// The schema, one migration per version; `PRAGMA user_version` records how
/// many have run. Never edit a released step: add the next.
const MIGRATIONS: [&str; 4] = [MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4];

/// A session's events are found through `session_events`, where the writer
/// adds each session's latest events about once a second, all at once
/// ([`index_due`]), instead of an index entry per event: each live session's
/// entries end on a leaf of their own, so an index kept up to date at every
/// commit rewrote one 4-KiB page per event and tripled the writer's time
/// (docs/benchmarks.md). Every event at or before `session_events_upto` is in it;
/// after it, a session's events above its highest indexed seq are read by
/// position.
const MIGRATION_4: &str = "
CREATE TABLE session_events (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
INSERT INTO session_events (session_id, seq, position)
    SELECT session_id, seq, position FROM events ORDER BY session_id, seq;
DROP INDEX events_by_session;
CREATE TABLE session_events_upto (position INTEGER NOT NULL);
INSERT INTO session_events_upto (position) SELECT COALESCE(MAX(position), 0) FROM events;
";

/// Adds every event after the mark to `session_events` (at start-up, and
/// after a failure lost track of what was added).
const INDEX_EVENTS: &str = "
INSERT OR IGNORE INTO session_events (session_id, seq, position)
    SELECT session_id, seq, position FROM events
    WHERE position > (SELECT position FROM session_events_upto)
    ORDER BY session_id, seq;
UPDATE session_events_upto SET position = (SELECT COALESCE(MAX(position), 0) FROM events);
";

/// How long a session's events wait to be added to `session_events`.
const INDEX_INTERVAL: Duration = Duration::from_secs(1);

/// A session that has appended nothing for this long loses the writer's note
/// of its last seq (see `Appended::forget_idle`).
const LAST_SEQ_KEPT: Duration = Duration::from_secs(10 * 60);
/// How often the writer looks for such sessions: each look visits every entry.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// The log in arrival order. Keyed by (session, seq), every commit rewrote one
/// page per session it touched and split them every few events: at 500 live
/// sessions about 3.4 WAL pages per event. Appended in arrival order, a commit's
/// rows share the last pages, and the index that finds a session's events
/// (entries a tenth of a row's size) takes the scattered writes instead.
const MIGRATION_3: &str = "
CREATE TABLE events_in_order (
    position INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    command_id TEXT,
    event TEXT NOT NULL
);
INSERT INTO events_in_order (session_id, seq, at, command_id, event)
    SELECT session_id, seq, at, command_id, event FROM events ORDER BY at, session_id, seq;
DROP TABLE events;
ALTER TABLE events_in_order RENAME TO events;
CREATE UNIQUE INDEX events_by_session ON events (session_id, seq);
";

const MIGRATION_2: &str = "
ALTER TABLE clinics ADD COLUMN policy TEXT;
";

const MIGRATION_1: &str = "
CREATE TABLE IF NOT EXISTS clinics (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS staff (
    id TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'facilitator', 'medical')),
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    title TEXT NOT NULL,
    phase TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_clinic ON sessions (clinic_id, created_at);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    command_id TEXT,
    event TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS join_codes (
    code_hash BLOB PRIMARY KEY,
    session_id TEXT NOT NULL,
    seat_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX IF NOT EXISTS join_codes_by_seat ON join_codes (seat_id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let done: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let done = usize::try_from(done).unwrap_or(usize::MAX);
    if done > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database is from a newer Holdspace (schema {done}, this one knows {})",
            MIGRATIONS.len()
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(done) {
        conn.execute_batch(&format!(
            "BEGIN; {step} PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // FULL: a commit is on disk before anyone is told about it (durable before visible).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )?;
    Ok(conn)
}

/// A staff account with its password hash (never leaves the server).
pub struct StaffRecord {
    /// The profile.
    pub profile: StaffProfile,
    /// argon2 PHC string.
    pub password_hash: String,
}

/// Why a join code could not be exchanged.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeem {
    /// Exchanged now: the seat it was for.
    Seat(SessionId, SeatId),
    /// No such code (or replaced by a newer one).
    Unknown,
    /// Already used.
    Used,
    /// Expired.
    Expired,
}

impl SqliteStore {
    /// Opens (creating if needed) `holdspace.sqlite3` in `dir`, locks the
    /// directory against a second server, and starts the writer thread.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_indexing_every(dir, INDEX_INTERVAL)
    }

    /// [`SqliteStore::open`], adding a session's events to `session_events`
    /// once they have waited `index_interval` (a test asks for never, to
    /// read across the mark).
    fn open_indexing_every(
        dir: &Path,
        index_interval: Duration,
    ) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let lock_path = dir.join("holdspace.lock");
        let lock = File::create(&lock_path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::InUse(dir.to_path_buf()));
        }
        let path = dir.join("holdspace.sqlite3");
        let mut writer_conn = open_connection(&path)?;
        // Every live session adds to its own leaf of the log's index; a cache
        // that holds them all spares the writer re-reading them from the file
        // (the default 2 MiB is ~500 pages: a few hundred sessions).
        writer_conn.execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB};"))?;
        migrate(&writer_conn)?;
        // What a crash left unindexed, so that reads start from the index.
        writer_conn.execute_batch(&format!("BEGIN IMMEDIATE; {INDEX_EVENTS} COMMIT;"))?;
        // In place of SQLite's automatic checkpoint (see CHECKPOINT_PAGES):
        // the log's length after each commit, for the writer to act on. A
        // `PRAGMA wal_autocheckpoint` on this connection would replace this
        // hook and freeze the count: set none.
        let wal_pages = Arc::new(AtomicI32::new(0));
        let seen = wal_pages.clone();
        writer_conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            seen.store(pages, Ordering::Relaxed);
            Ok(())
        }))?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let thread = std::thread::Builder::new()
            .name("holdspace-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, index_interval, wal_pages))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            readers: Default::default(),
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in the writer's next transaction; resolves after the commit.
    pub async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let rx = self.submit(Box::new(move |conn| {
            work(conn).map(|v| Box::new(v) as Box<dyn Any + Send>)
        }))?;
        let boxed = rx.await.map_err(|_| StoreError::Closed)??;
        Ok(*boxed
            .downcast::<T>()
            .expect("write job returns its own type"))
    }

    fn submit(&self, work: WriteWork) -> Result<oneshot::Receiver<WriteResult>, StoreError> {
        let (done, rx) = oneshot::channel();
        let sender = self
            .writer
            .lock()
            .expect("writer lock")
            .clone()
            .ok_or(StoreError::Closed)?;
        // try_send keeps this synchronous; a full queue means the disk is far
        // behind, which callers see as unavailable storage rather than a hang.
        sender
            .try_send(WriteJob { work, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    StoreError::Unavailable("the write queue is full".into())
                }
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        Ok(rx)
    }

    /// Runs `work` on a pooled reader connection, off the async threads.
    pub async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        read_with(self.readers.clone(), self.path.clone(), work).await
    }

    /// Flushes every queued write and stops the writer thread.
    pub fn close(&self) {
        self.writer.lock().expect("writer lock").take();
        if let Some(thread) = self.writer_thread.lock().expect("thread lock").take() {
            let _ = thread.join();
        }
    }

    // ---- settings -------------------------------------------------------

    /// The value of `key`, or `init()` stored under it if there was none.
    pub async fn setting_or_init(
        &self,
        key: &'static str,
        init: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
                params![key, init],
            )?;
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    // ---- clinics and staff ----------------------------------------------

    /// The clinic with this name, created if it does not exist.
    pub async fn ensure_clinic(
        &self,
        name: String,
        now: Timestamp,
    ) -> Result<ClinicId, StoreError> {
        let fresh = uuid::Uuid::new_v4().to_string();
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO clinics (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![fresh, name, now.0],
            )?;
            let id: String =
                c.query_row("SELECT id FROM clinics WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })?;
            parse_id(&id)
        })
        .await
    }

    /// Adds a staff account.
    pub async fn add_staff(
        &self,
        clinic: ClinicId,
        username: String,
        display_name: String,
        role: StaffRole,
        password_hash: String,
        now: Timestamp,
    ) -> Result<StaffProfile, StoreError> {
        let id = StaffId::from_uuid(uuid::Uuid::new_v4());
        self.write(move |c| {
            let inserted = c.execute(
                "INSERT OR IGNORE INTO staff (id, clinic_id, username, display_name, role, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id.to_string(), clinic.to_string(), username, display_name, role.as_str(), password_hash, now.0],
            )?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(format!("a staff account named {username:?}")));
            }
            Ok(StaffProfile { id, clinic, username, display_name, role })
        })
        .await
    }

    /// A staff account by username.
    pub async fn staff_by_username(
        &self,
        username: String,
    ) -> Result<Option<StaffRecord>, StoreError> {
        self.read(move |c| staff_where(c, "username = ?1", &username))
            .await
    }

    /// A staff account by id.
    pub async fn staff_by_id(&self, id: StaffId) -> Result<Option<StaffRecord>, StoreError> {
        self.read(move |c| staff_where(c, "id = ?1", &id.to_string()))
            .await
    }

    /// A clinic's staff, by role and then name.
    pub async fn staff_of(&self, clinic: ClinicId) -> Result<Vec<StaffMember>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, display_name, role FROM staff WHERE clinic_id = ?1 ORDER BY role, display_name",
            )?;
            let rows = stmt.query_map([clinic.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            rows.map(|row| {
                let (id, display_name, role) = row?;
                Ok(StaffMember {
                    id: parse_id(&id)?,
                    display_name,
                    role: StaffRole::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("staff role {role:?}")))?,
                })
            })
            .collect()
        })
        .await
    }

    /// The clinic's policy (the defaults until an admin sets one).
    pub async fn clinic_policy(&self, clinic: ClinicId) -> Result<ClinicPolicy, StoreError> {
        self.read(move |c| {
            let stored: Option<Option<String>> = c
                .query_row(
                    "SELECT policy FROM clinics WHERE id = ?1",
                    [clinic.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            match stored.flatten() {
                None => Ok(ClinicPolicy::default()),
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("policy of clinic {clinic}: {e}"))),
            }
        })
        .await
    }

    /// Sets the clinic's policy for sessions created from now on.
    pub async fn set_clinic_policy(
        &self,
        clinic: ClinicId,
        policy: ClinicPolicy,
    ) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(&policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.write(move |c| {
            c.execute(
                "UPDATE clinics SET policy = ?1 WHERE id = ?2",
                params![json, clinic.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    // ---- sessions --------------------------------------------------------

    /// A clinic's sessions, newest first.
    pub async fn sessions_of(&self, clinic: ClinicId) -> Result<Vec<SessionSummary>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, title, phase, created_at FROM sessions WHERE clinic_id = ?1 ORDER BY created_at DESC",
            )?;
            let rows = stmt.query_map([clinic.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?;
            rows.map(|row| {
                let (id, title, phase, created_at) = row?;
                Ok(SessionSummary {
                    id: parse_id(&id)?,
                    title,
                    phase: parse_phase(&phase)?,
                    created_at: Timestamp(created_at),
                })
            })
            .collect()
        })
        .await
    }

    // ---- join codes -------------------------------------------------------

    /// Stores a new join code's hash for a seat; earlier unused codes for the
    /// seat stop working. `Ok(false)` if another code with this hash is on
    /// record (issued, used or expired): nothing is changed, and the caller
    /// draws another code. Codes are random, so this is rare, but it happens
    /// (one setup of 12,000 seats met it), and a code must name one seat.
    pub async fn save_join_code(
        &self,
        code_hash: Vec<u8>,
        session: SessionId,
        seat: SeatId,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let taken = c
                .query_row("SELECT 1 FROM join_codes WHERE code_hash = ?1", [&code_hash], |_| Ok(()))
                .optional()?
                .is_some();
            if taken {
                return Ok(false);
            }
            c.execute("DELETE FROM join_codes WHERE seat_id = ?1 AND used_at IS NULL", [seat.to_string()])?;
            c.execute(
                "INSERT INTO join_codes (code_hash, session_id, seat_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![code_hash, session.to_string(), seat.to_string(), expires_at.0],
            )?;
            Ok(true)
        })
        .await
    }

    /// Exchanges a join code once.
    pub async fn redeem_join_code(
        &self,
        code_hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Redeem, StoreError> {
        self.write(move |c| {
            let row: Option<(String, String, i64, Option<i64>)> = c
                .query_row(
                    "SELECT session_id, seat_id, expires_at, used_at FROM join_codes WHERE code_hash = ?1",
                    [&code_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((session, seat, expires_at, used_at)) = row else {
                return Ok(Redeem::Unknown);
            };
            if used_at.is_some() {
                return Ok(Redeem::Used);
            }
            if expires_at <= now.0 {
                return Ok(Redeem::Expired);
            }
            c.execute("UPDATE join_codes SET used_at = ?1 WHERE code_hash = ?2", params![now.0, code_hash])?;
            Ok(Redeem::Seat(parse_id(&session)?, parse_id(&seat)?))
        })
        .await
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl EventLog for SqliteStore {
    fn append(&self, events: Vec<Event>) -> BoxFuture<'static, Result<Vec<Recorded>, StoreError>> {
        // Rows are made here, on the session's task, so the one writer thread
        // spends its time in SQLite only.
        let rows = events.iter().map(Row::of).collect::<Result<Vec<_>, _>>();
        let submitted = rows.and_then(|rows| {
            self.submit(Box::new(move |c| {
                insert_events(c, &events, &rows)?;
                let recorded: Vec<Recorded> = events
                    .into_iter()
                    .zip(rows)
                    .map(|(event, row)| Recorded {
                        event,
                        json: row.json,
                    })
                    .collect();
                Ok(Box::new(recorded))
            }))
        });
        Box::pin(async move {
            let boxed = submitted?.await.map_err(|_| StoreError::Closed)??;
            Ok(*boxed
                .downcast::<Vec<Recorded>>()
                .expect("append returns its events"))
        })
    }

    fn read(
        &self,
        session: SessionId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<Event>, StoreError>> {
        let fut = read_with(self.readers.clone(), self.path.clone(), move |c| {
            let id = session.to_string();
            // One snapshot for both parts: an index flush between them would
            // otherwise move events from the second to the first unseen.
            let snapshot = c.unchecked_transaction()?;
            let mut texts: Vec<String> = c
                .prepare_cached(
                    "SELECT e.event FROM session_events s JOIN events e ON e.position = s.position
                     WHERE s.session_id = ?1 AND s.seq > ?2 ORDER BY s.seq LIMIT ?3",
                )?
                .query_map(params![id, after.0 as i64, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if texts.len() < limit {
                let rest = c
                    .prepare_cached(
                        "SELECT event FROM events
                         WHERE position > (SELECT position FROM session_events_upto)
                           AND session_id = ?1 AND seq > ?2
                           AND seq > (SELECT COALESCE(MAX(seq), 0) FROM session_events WHERE session_id = ?1)
                         ORDER BY position LIMIT ?3",
                    )?
                    .query_map(
                        params![id, after.0 as i64, (limit - texts.len()) as i64],
                        |r| r.get::<_, String>(0),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                texts.extend(rest);
            }
            snapshot.commit()?;
            texts.iter().map(|t| decode_event(session, t)).collect()
        });
        Box::pin(fut)
    }

    fn command_events(
        &self,
        session: SessionId,
        after: Seq,
        commands: Vec<CommandId>,
    ) -> BoxFuture<'static, Result<Vec<Event>, StoreError>> {
        // A scan of the session's rows after `after`: rare (only retries the
        // hub no longer remembers), and an index on command ids would cost
        // every append. A client that says when it first sent a command keeps
        // the scan to the time since; the whole log of a long session is
        // ~1 ms per 1,000 rows, and the session waits meanwhile.
        let fut = read_with(self.readers.clone(), self.path.clone(), move |c| {
            let marks: Vec<String> = (0..commands.len()).map(|i| format!("?{}", i + 3)).collect();
            let marks = marks.join(", ");
            use rusqlite::types::Value;
            let values: Vec<Value> = [
                Value::Text(session.to_string()),
                Value::Integer(after.0 as i64),
            ]
            .into_iter()
            .chain(commands.iter().map(|id| Value::Text(id.to_string())))
            .collect();
            let snapshot = c.unchecked_transaction()?;
            let mut texts = Vec::new();
            for sql in [
                format!(
                    "SELECT e.event FROM session_events s JOIN events e ON e.position = s.position
                     WHERE s.session_id = ?1 AND s.seq > ?2 AND e.command_id IN ({marks}) ORDER BY s.seq"
                ),
                format!(
                    "SELECT event FROM events
                     WHERE position > (SELECT position FROM session_events_upto)
                       AND session_id = ?1 AND seq > ?2 AND command_id IN ({marks})
                       AND seq > (SELECT COALESCE(MAX(seq), 0) FROM session_events WHERE session_id = ?1)
                     ORDER BY position"
                ),
            ] {
                let mut stmt = c.prepare(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
                    r.get::<_, String>(0)
                })?;
                for row in rows {
                    texts.push(row?);
                }
            }
            snapshot.commit()?;
            texts.iter().map(|t| decode_event(session, t)).collect()
        });
        Box::pin(fut)
    }

    fn open_sessions(&self) -> BoxFuture<'static, Result<Vec<SessionId>, StoreError>> {
        Box::pin(read_with(self.readers.clone(), self.path.clone(), |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM sessions WHERE phase != 'closed' ORDER BY created_at",
            )?;
            let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
            ids.map(|id| parse_id(&id?)).collect()
        }))
    }
}

fn decode_event(session: SessionId, text: &str) -> Result<Event, StoreError> {
    // The position only: serde's message could quote stored text.
    serde_json::from_str::<Event>(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "an event of session {session} (line {} column {})",
            e.line(),
            e.column()
        ))
    })
}

async fn read_with<T: Send + 'static>(
    pool: std::sync::Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(move || {
        let pooled = pool.lock().expect("reader pool").pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&path)?,
        };
        let result = work(&conn);
        pool.lock().expect("reader pool").push(conn);
        result
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("reader task failed: {e}")))?
}

/// One event as its row in the `events` table.
struct Row {
    session: String,
    command: Option<String>,
    json: String,
}

impl Row {
    fn of(e: &Event) -> Result<Row, StoreError> {
        Ok(Row {
            session: e.session.to_string(),
            command: e.command.map(|c| c.to_string()),
            json: serde_json::to_string(e).map_err(|err| StoreError::Corrupt(err.to_string()))?,
        })
    }
}

/// What the writer thread knows of the log beyond what the database checks.
#[derive(Default)]
struct Appended {
    /// The last seq appended per session, in the open transaction or before,
    /// and when: `session_events` would refuse a seq twice only once it is
    /// added there; this refuses it at once.
    last: std::collections::HashMap<SessionId, (u64, Instant)>,
    /// Events appended and not yet in `session_events`, per session.
    pending: std::collections::HashMap<SessionId, Pending>,
    /// A failure may have lost track of `pending`: the next pass adds every
    /// event after the mark instead.
    rescan: bool,
    /// Calls of `insert_events`: a failed job that made none leaves all of
    /// the above true (a refused account or join code must not cost every
    /// session a look through the log).
    calls: u64,
}

impl Appended {
    /// Drops the last seq of every session that has appended nothing since
    /// `cutoff`. Otherwise every session ever written keeps an entry for the
    /// life of the process. One that writes again reads its last seq from the
    /// log once, as after a restart (an indexed read and a look through the
    /// latest second's events). Dropping all at once would make every live
    /// session pay that look in the same commit.
    fn forget_idle(&mut self, cutoff: Instant) {
        self.last.retain(|_, &mut (_, at)| at >= cutoff);
    }
}

/// One session's events waiting for `session_events`.
struct Pending {
    since: Instant,
    /// (seq, position), in order.
    entries: Vec<(u64, i64)>,
}

thread_local! {
    /// The writer thread's own. The mark logic relies on every event being
    /// appended through `insert_events` on that thread.
    static APPENDED: std::cell::RefCell<Appended> = Default::default();
}

fn insert_events_calls() -> u64 {
    APPENDED.with(|a| a.borrow().calls)
}

/// After any failure: the open transaction may not hold what was noted.
fn forget_appended() {
    APPENDED.with(|a| {
        let mut a = a.borrow_mut();
        a.last.clear();
        a.pending.clear();
        a.rescan = true;
    });
}

/// Adds to `session_events` the events of every session whose first waiting
/// event has waited `older_than`, and moves the mark up to the first event
/// still waiting. Sessions fall due at different moments, so each commit adds
/// a few sessions' events and none stalls on all of them.
fn index_due(c: &Connection, older_than: Duration) -> rusqlite::Result<()> {
    APPENDED.with(|a| {
        let mut a = a.borrow_mut();
        if a.rescan {
            c.execute_batch(INDEX_EVENTS)?;
            a.pending.clear();
            a.rescan = false;
            return Ok(());
        }
        // One clock reading for all: this looks at every live session's
        // entry at every commit.
        let now = Instant::now();
        let due: Vec<SessionId> = a
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.since) >= older_than)
            .map(|(s, _)| *s)
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let mut insert = c.prepare_cached(
            "INSERT INTO session_events (session_id, seq, position) VALUES (?1, ?2, ?3)",
        )?;
        for session in due {
            let Some(pending) = a.pending.remove(&session) else {
                continue;
            };
            let id = session.to_string();
            for (seq, position) in pending.entries {
                insert.execute(params![id, seq as i64, position])?;
            }
        }
        let first_waiting = a
            .pending
            .values()
            .filter_map(|p| p.entries.first())
            .map(|&(_, position)| position)
            .min();
        let upto: i64 = match first_waiting {
            Some(position) => position - 1,
            None => c.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                r.get(0)
            })?,
        };
        c.prepare_cached("UPDATE session_events_upto SET position = ?1")?
            .execute([upto])?;
        Ok(())
    })
}

/// The last seq of `session` in the log (0 for none).
fn last_seq(c: &Connection, session: SessionId) -> rusqlite::Result<u64> {
    let last: Option<i64> = c
        .prepare_cached(
            "SELECT MAX(seq) FROM (
                 SELECT MAX(seq) AS seq FROM session_events WHERE session_id = ?1
                 UNION ALL
                 SELECT MAX(seq) FROM events
                 WHERE position > (SELECT position FROM session_events_upto) AND session_id = ?1)",
        )?
        .query_row([session.to_string()], |r| r.get(0))?;
    Ok(last.unwrap_or(0).max(0) as u64)
}

fn insert_events(c: &Connection, events: &[Event], rows: &[Row]) -> Result<(), StoreError> {
    APPENDED.with(|a| a.borrow_mut().calls += 1);
    let now = Instant::now();
    for e in events {
        let last = match APPENDED.with(|a| a.borrow().last.get(&e.session).copied()) {
            Some((last, _)) => last,
            None => last_seq(c, e.session)?,
        };
        if e.seq.0 <= last {
            return Err(StoreError::Corrupt(format!(
                "seq {} of session {} is already recorded",
                e.seq, e.session
            )));
        }
        APPENDED.with(|a| a.borrow_mut().last.insert(e.session, (e.seq.0, now)));
    }
    let mut insert = c.prepare_cached(
        "INSERT INTO events (session_id, seq, at, command_id, event) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (e, row) in events.iter().zip(rows) {
        insert.execute(params![
            row.session,
            e.seq.0 as i64,
            e.at.0,
            row.command,
            row.json
        ])?;
        let position = c.last_insert_rowid();
        APPENDED.with(|a| {
            a.borrow_mut()
                .pending
                .entry(e.session)
                .or_insert_with(|| Pending {
                    since: Instant::now(),
                    entries: Vec::new(),
                })
                .entries
                .push((e.seq.0, position))
        });
        // The sessions table is an index for listing; the log stays the truth.
        match &e.body {
            EventBody::SessionCreated { clinic, title, .. } => {
                c.execute(
                    "INSERT INTO sessions (id, clinic_id, title, phase, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![e.session.to_string(), clinic.to_string(), title, SessionPhase::Preparation.as_str(), e.at.0],
                )?;
            }
            EventBody::PhaseChanged { to, .. } => {
                c.execute(
                    "UPDATE sessions SET phase = ?1 WHERE id = ?2",
                    params![to.as_str(), e.session.to_string()],
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The group-commit loop: takes every job waiting (up to [`MAX_BATCH`]; if the
/// last commit began less than [`COMMIT_INTERVAL`] ago, also those that arrive
/// until it is over), runs each in its own savepoint so one failing job does
/// not fail the others, commits once, then answers every job.
///
/// Some failures (disk full, I/O error, out of memory) make SQLite roll back
/// the whole transaction, not just the job's savepoint. Then nothing of the
/// batch is saved, every job is told so, and no later job of the batch runs
/// outside a transaction (each would otherwise commit on its own while its
/// caller hears "failed").
fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<WriteJob>,
    index_interval: Duration,
    wal_pages: Arc<AtomicI32>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut last_commit: Option<Instant> = None;
    let mut checkpoint_failing = false;
    let mut forgot_at = Instant::now();
    while rx.blocking_recv_many(&mut jobs, MAX_BATCH) > 0 {
        if let Some(wait) = last_commit.and_then(|at| COMMIT_INTERVAL.checked_sub(at.elapsed())) {
            std::thread::sleep(wait);
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        last_commit = Some(Instant::now());
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            forget_appended();
            fail_all(jobs.drain(..).map(|j| j.done), &e.to_string());
            continue;
        }
        let mut results = Vec::with_capacity(jobs.len());
        let mut lost: Option<String> = None;
        let mut queue = jobs.drain(..);
        for job in queue.by_ref() {
            let calls = insert_events_calls();
            let result = run_cached(&conn, "SAVEPOINT job")
                .map_err(StoreError::from)
                .and_then(|()| (job.work)(&conn));
            if conn.is_autocommit() {
                // The transaction is gone: the whole batch is lost.
                lost = Some(match &result {
                    Err(e) => e.to_string(),
                    Ok(_) => "the transaction ended unexpectedly".into(),
                });
                results.push((job.done, result));
                break;
            }
            let closed = if result.is_ok() {
                run_cached(&conn, "RELEASE job")
            } else {
                if insert_events_calls() != calls {
                    forget_appended();
                }
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            };
            let result = match closed {
                Ok(()) => result,
                Err(e) => Err(StoreError::from(e)),
            };
            results.push((job.done, result));
        }
        let rest: Vec<_> = queue.map(|j| j.done).collect();
        if lost.is_none() {
            // In the batch's transaction, in a savepoint of its own: if it
            // fails, the events are still committed and a later pass adds them.
            let indexed = run_cached(&conn, "SAVEPOINT job")
                .and_then(|()| index_due(&conn, index_interval))
                .and_then(|()| run_cached(&conn, "RELEASE job"));
            if let Err(e) = indexed {
                forget_appended();
                tracing::error!(error = %e, "could not index the latest events; reads find them by position");
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                }
            }
        }
        let outcome = match lost {
            Some(reason) => Err(reason),
            None => conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                e.to_string()
            }),
        };
        match outcome {
            Ok(()) => {
                for (done, result) in results {
                    let _ = done.send(result);
                }
                fail_all(rest.into_iter(), "the write was not attempted");
                if forgot_at.elapsed() >= FORGET_EVERY {
                    forgot_at = Instant::now();
                    if let Some(cutoff) = forgot_at.checked_sub(LAST_SEQ_KEPT) {
                        APPENDED.with(|a| a.borrow_mut().forget_idle(cutoff));
                    }
                }
                if wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES {
                    // As SQLite's own would (passive: readers are not waited
                    // for), once the batch is answered. A failure leaves the
                    // pages in the log, which stays the truth; the next commit
                    // tries again, and only the first failure and the recovery
                    // are logged (this runs up to 500 times a second).
                    let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    match copied {
                        Err(e) if !checkpoint_failing => {
                            checkpoint_failing = true;
                            tracing::warn!(error = %e, "could not copy the log into the database file; retrying after each commit");
                        }
                        Ok(()) if checkpoint_failing => {
                            checkpoint_failing = false;
                            tracing::info!("the log is copied into the database file again");
                        }
                        _ => {}
                    }
                }
            }
            Err(reason) => {
                forget_appended();
                tracing::error!(error = %reason, "the batch is not recorded");
                fail_all(
                    results.into_iter().map(|(done, _)| done).chain(rest),
                    &reason,
                );
            }
        }
    }
}

/// A statement run for every job: parsed once per connection.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn fail_all(dones: impl Iterator<Item = oneshot::Sender<WriteResult>>, reason: &str) {
    for done in dones {
        let _ = done.send(Err(StoreError::Unavailable(reason.to_string())));
    }
}

fn staff_where(
    c: &Connection,
    condition: &str,
    value: &str,
) -> Result<Option<StaffRecord>, StoreError> {
    let sql = format!(
        "SELECT id, clinic_id, username, display_name, role, password_hash FROM staff WHERE {condition}"
    );
    let row: Option<(String, String, String, String, String, String)> = c
        .query_row(&sql, [value], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((id, clinic, username, display_name, role, password_hash)) = row else {
        return Ok(None);
    };
    Ok(Some(StaffRecord {
        profile: StaffProfile {
            id: parse_id(&id)?,
            clinic: parse_id(&clinic)?,
            username,
            display_name,
            role: StaffRole::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("staff role {role:?}")))?,
        },
        password_hash,
    }))
}

fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("id {s:?}")))
}

fn parse_phase(s: &str) -> Result<SessionPhase, StoreError> {
    SessionPhase::ALL
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("phase {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Actor;
    use std::time::Duration;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("holdspace-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    async fn setting(store: &SqliteStore, key: &'static str) -> Option<Vec<u8>> {
        store
            .read(move |c| {
                Ok(
                    c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                        r.get(0)
                    })
                    .optional()?,
                )
            })
            .await
            .unwrap()
    }

    fn job(
        store: &SqliteStore,
        sql: &'static str,
        value: Vec<u8>,
    ) -> oneshot::Receiver<WriteResult> {
        store
            .submit(Box::new(move |c| {
                c.execute(sql, [value])?;
                Ok(Box::new(()) as Box<dyn Any + Send>)
            }))
            .unwrap()
    }

    /// Occupies the writer until the jobs submitted meanwhile have queued, so
    /// they are committed as one batch.
    async fn next_jobs_in_one_batch(store: &SqliteStore) -> oneshot::Receiver<WriteResult> {
        let (started, is_running) = oneshot::channel();
        let hold = store
            .submit(Box::new(move |_| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(200));
                Ok(Box::new(()) as Box<dyn Any + Send>)
            }))
            .unwrap();
        is_running.await.unwrap();
        hold
    }

    fn phase_event(session: SessionId, seq: u64, at: i64) -> Event {
        Event {
            session,
            seq: Seq(seq),
            at: Timestamp(at),
            actor: Actor::System,
            command: Some(CommandId::from_uuid(uuid::Uuid::new_v4())),
            body: EventBody::PhaseChanged {
                from: SessionPhase::Preparation,
                to: SessionPhase::Intentions,
            },
        }
    }

    /// A log written by the version-2 schema (keyed by session and seq)
    /// reads back the same after the move to arrival order, takes new
    /// events after it, and still refuses a seq twice.
    #[tokio::test]
    async fn a_version_2_log_reads_back_unchanged_after_the_move_to_arrival_order() {
        let dir = temp_dir();
        let (a, b) = (new_session(), new_session());
        // Interleaved, as live sessions write.
        let old: Vec<Event> = (1..=5)
            .flat_map(|seq| {
                [
                    phase_event(a, seq, seq as i64),
                    phase_event(b, seq, seq as i64),
                ]
            })
            .collect();
        {
            let c = open_connection(&dir.join("holdspace.sqlite3")).unwrap();
            c.execute_batch(&format!(
                "BEGIN; {MIGRATION_1} {MIGRATION_2} PRAGMA user_version = 2; COMMIT;"
            ))
            .unwrap();
            for e in &old {
                let row = Row::of(e).unwrap();
                c.execute(
                    "INSERT INTO events (session_id, seq, at, command_id, event) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![row.session, e.seq.0 as i64, e.at.0, row.command, row.json],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&dir).unwrap();
        let version: i64 = store
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let log: &dyn EventLog = &store;
        let a_old: Vec<Event> = old.iter().filter(|e| e.session == a).cloned().collect();
        assert_eq!(log.read(a, Seq(0), 100).await.unwrap(), a_old);
        assert_eq!(log.read(a, Seq(3), 1).await.unwrap(), a_old[3..4]);
        let ids = vec![a_old[1].command.unwrap(), a_old[4].command.unwrap()];
        assert_eq!(
            log.command_events(a, Seq(0), ids.clone()).await.unwrap(),
            vec![a_old[1].clone(), a_old[4].clone()]
        );
        assert_eq!(
            log.command_events(a, a_old[1].seq, ids).await.unwrap(),
            vec![a_old[4].clone()],
            "only after the seq the client gives"
        );
        let next = phase_event(a, 6, 6);
        log.append(vec![next.clone()]).await.unwrap();
        assert_eq!(log.read(a, Seq(5), 100).await.unwrap(), vec![next]);
        let again = log.append(vec![phase_event(b, 5, 7)]).await;
        assert!(again.is_err(), "a seq recorded twice must be refused");
        assert_eq!(log.read(b, Seq(0), 100).await.unwrap().len(), 5);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn new_session() -> SessionId {
        SessionId::from_uuid(uuid::Uuid::new_v4())
    }

    /// Adds the events not yet in `session_events` now, not at the next
    /// second's commit.
    async fn index_now(store: &SqliteStore) {
        let done = store
            .submit(Box::new(|c| {
                index_due(c, Duration::ZERO)?;
                Ok(Box::new(()) as Box<dyn Any + Send>)
            }))
            .unwrap();
        done.await.unwrap().unwrap();
    }

    /// The writer forgets the last seq of a session that has appended nothing
    /// for a while (its memory would otherwise grow with every session ever
    /// written), and still refuses that session's seq twice, from the log:
    /// its latest event not yet in `session_events`, its older ones there.
    #[tokio::test]
    async fn an_idle_sessions_last_seq_is_forgotten_and_still_checked() {
        let dir = temp_dir();
        let (a, b) = (new_session(), new_session());
        let store = SqliteStore::open_indexing_every(&dir, Duration::from_secs(3600)).unwrap();
        let log: &dyn EventLog = &store;
        for seq in 1..=2 {
            log.append(vec![phase_event(a, seq, seq as i64)])
                .await
                .unwrap();
        }
        index_now(&store).await;
        log.append(vec![phase_event(a, 3, 3)]).await.unwrap();
        // Monotonic, so comparable with the writer thread's readings.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let cutoff = Instant::now();
        log.append(vec![phase_event(b, 1, 4)]).await.unwrap();
        let remembered = store
            .submit(Box::new(move |_| {
                let kept = APPENDED.with(|ap| {
                    let mut ap = ap.borrow_mut();
                    ap.forget_idle(cutoff);
                    ap.last.keys().copied().collect::<Vec<SessionId>>()
                });
                Ok(Box::new(kept) as Box<dyn Any + Send>)
            }))
            .unwrap()
            .await
            .unwrap()
            .unwrap()
            .downcast::<Vec<SessionId>>()
            .unwrap();
        assert_eq!(*remembered, vec![b], "a appended nothing since the cutoff");
        // a's first, while its entry is the only one gone (any refusal makes
        // the writer forget every entry).
        for (session, seq) in [(a, 3), (a, 2), (b, 1)] {
            let again = log.append(vec![phase_event(session, seq, 9)]).await;
            assert!(again.is_err(), "seq {seq} recorded twice must be refused");
        }
        log.append(vec![phase_event(a, 4, 10)]).await.unwrap();
        assert_eq!(log.read(a, Seq(0), 100).await.unwrap().len(), 4);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The writer copies the log into the database file once the WAL passes
    /// CHECKPOINT_PAGES, so the WAL stays near that size instead of growing
    /// with the data: SQLite's own automatic checkpoint, which did this, is
    /// replaced by the writer's.
    #[tokio::test]
    async fn the_log_is_copied_into_the_database_file_as_it_passes_the_threshold() {
        let dir = temp_dir();
        let store = SqliteStore::open(&dir).unwrap();
        // 40 commits of about 66 pages each (a 256-KiB value, SQLite's
        // default 4-KiB pages): over twice the threshold.
        for i in 0..40 {
            store
                .write(move |c| {
                    c.execute(
                        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                        params![format!("bulk-{i}"), vec![7u8; 64 * 4096]],
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        let size = |name: &str| std::fs::metadata(dir.join(name)).unwrap().len();
        let page = 4096;
        let wal = size("holdspace.sqlite3-wal");
        assert!(
            wal < (CHECKPOINT_PAGES as u64 + 200) * page,
            "the WAL stays near the threshold: {wal} bytes"
        );
        assert!(
            size("holdspace.sqlite3") > CHECKPOINT_PAGES as u64 * page,
            "the pages were copied into the database file: {} bytes",
            size("holdspace.sqlite3")
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Reads find a session's events whether they are in `session_events`
    /// yet or only in the log after it, and across the boundary; a seq is
    /// refused twice on either side of it; reopening indexes the rest.
    #[tokio::test]
    async fn reads_join_the_indexed_events_and_the_latest_ones() {
        let dir = temp_dir();
        let (a, b) = (new_session(), new_session());
        let store = SqliteStore::open_indexing_every(&dir, Duration::from_secs(3600)).unwrap();
        let log: &dyn EventLog = &store;
        let mut a_all = Vec::new();
        for seq in 1..=4 {
            let e = phase_event(a, seq, seq as i64);
            a_all.push(e.clone());
            log.append(vec![e, phase_event(b, seq, seq as i64)])
                .await
                .unwrap();
        }
        index_now(&store).await;
        for seq in 5..=6 {
            let e = phase_event(a, seq, seq as i64);
            a_all.push(e.clone());
            log.append(vec![e]).await.unwrap();
        }
        let upto: i64 = store
            .read(
                |c| Ok(c.query_row("SELECT position FROM session_events_upto", [], |r| r.get(0))?),
            )
            .await
            .unwrap();
        assert_eq!(
            upto, 8,
            "the first eight events are indexed, a's last two are not"
        );
        assert_eq!(log.read(a, Seq(0), 100).await.unwrap(), a_all);
        assert_eq!(log.read(a, Seq(2), 3).await.unwrap(), a_all[2..5]);
        assert_eq!(log.read(a, Seq(5), 3).await.unwrap(), a_all[5..6]);
        assert_eq!(log.read(b, Seq(3), 100).await.unwrap().len(), 1);
        let ids = vec![a_all[1].command.unwrap(), a_all[5].command.unwrap()];
        assert_eq!(
            log.command_events(a, Seq(0), ids).await.unwrap(),
            vec![a_all[1].clone(), a_all[5].clone()]
        );
        for (session, seq) in [(a, 3), (a, 6), (b, 4)] {
            let again = log.append(vec![phase_event(session, seq, 9)]).await;
            assert!(again.is_err(), "seq {seq} recorded twice must be refused");
        }
        log.append(vec![phase_event(b, 5, 9)]).await.unwrap();
        drop(store);

        let store = SqliteStore::open(&dir).unwrap();
        let (indexed, logged): (i64, i64) = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT (SELECT COUNT(*) FROM session_events), (SELECT COUNT(*) FROM events)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        assert_eq!((indexed, logged), (11, 11), "opening indexes what was left");
        let log: &dyn EventLog = &store;
        assert_eq!(log.read(a, Seq(0), 100).await.unwrap(), a_all);
        assert!(log.append(vec![phase_event(a, 6, 10)]).await.is_err());
        log.append(vec![phase_event(a, 7, 10)]).await.unwrap();
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A full disk rolls back the whole transaction: every job of the batch
    /// must hear "failed", and none of them may be on disk.
    #[tokio::test]
    async fn a_failure_that_loses_the_transaction_fails_the_whole_batch_and_saves_nothing() {
        let dir = temp_dir();
        let store = SqliteStore::open(&dir).unwrap();
        store
            .write(|c| {
                let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                c.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))?;
                Ok(())
            })
            .await
            .unwrap();
        let hold = next_jobs_in_one_batch(&store).await;
        let huge = job(
            &store,
            "INSERT INTO settings (key, value) VALUES ('huge', ?1)",
            vec![7u8; 1 << 20],
        );
        let small = job(
            &store,
            "INSERT INTO settings (key, value) VALUES ('small', ?1)",
            vec![1],
        );
        assert!(hold.await.unwrap().is_ok());
        assert!(huge.await.unwrap().is_err(), "the oversized write fails");
        assert!(
            small.await.unwrap().is_err(),
            "its batch-mate is told it failed too"
        );
        assert_eq!(setting(&store, "small").await, None, "and is not on disk");

        // Space again: writes work again.
        store
            .write(|c| Ok(c.execute_batch("PRAGMA max_page_count = 1073741823")?))
            .await
            .unwrap();
        let again = job(
            &store,
            "INSERT INTO settings (key, value) VALUES ('small', ?1)",
            vec![1],
        );
        assert!(again.await.unwrap().is_ok());
        assert_eq!(setting(&store, "small").await, Some(vec![1]));
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A job that fails on its own (a constraint) leaves its batch-mates saved.
    #[tokio::test]
    async fn one_failing_job_does_not_fail_its_batch() {
        let dir = temp_dir();
        let store = SqliteStore::open(&dir).unwrap();
        let hold = next_jobs_in_one_batch(&store).await;
        let first = job(
            &store,
            "INSERT INTO settings (key, value) VALUES ('dup', ?1)",
            vec![1],
        );
        let duplicate = job(
            &store,
            "INSERT INTO settings (key, value) VALUES ('dup', ?1)",
            vec![2],
        );
        let good = job(
            &store,
            "INSERT INTO settings (key, value) VALUES ('good', ?1)",
            vec![3],
        );
        assert!(hold.await.unwrap().is_ok());
        assert!(first.await.unwrap().is_ok());
        assert!(
            duplicate.await.unwrap().is_err(),
            "a duplicate key fails alone"
        );
        assert!(good.await.unwrap().is_ok());
        assert_eq!(setting(&store, "dup").await, Some(vec![1]));
        assert_eq!(setting(&store, "good").await, Some(vec![3]));
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A code drawn twice (used or not) is refused without touching either
    /// seat's codes: each code names one seat, and the seat the second draw
    /// was for keeps the code it had.
    #[tokio::test]
    async fn a_join_code_on_record_is_refused_and_changes_nothing() {
        let dir = temp_dir();
        let store = SqliteStore::open(&dir).unwrap();
        let session = SessionId::from_uuid(uuid::Uuid::new_v4());
        let (a, b) = (
            SeatId::from_uuid(uuid::Uuid::new_v4()),
            SeatId::from_uuid(uuid::Uuid::new_v4()),
        );
        let later = Timestamp(i64::MAX);
        let hash = |code: &str| code.as_bytes().to_vec();
        assert!(
            store
                .save_join_code(hash("AAAA"), session, a, later)
                .await
                .unwrap()
        );
        assert!(
            store
                .save_join_code(hash("BBBB"), session, b, later)
                .await
                .unwrap()
        );
        assert!(
            !store
                .save_join_code(hash("AAAA"), session, b, later)
                .await
                .unwrap()
        );
        let now = Timestamp(0);
        assert_eq!(
            store.redeem_join_code(hash("BBBB"), now).await.unwrap(),
            Redeem::Seat(session, b)
        );
        assert_eq!(
            store.redeem_join_code(hash("AAAA"), now).await.unwrap(),
            Redeem::Seat(session, a)
        );
        assert!(
            !store
                .save_join_code(hash("AAAA"), session, b, later)
                .await
                .unwrap(),
            "a used code is on record too"
        );
        assert_eq!(
            store.redeem_join_code(hash("AAAA"), now).await.unwrap(),
            Redeem::Used
        );
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
