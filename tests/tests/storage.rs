//! When the database cannot be written — the disk is full, another process
//! holds the lock — commands are refused with a clear error, nothing unsaved is
//! shown to anyone, and the server recovers on its own once storage does. A
//! read-only filesystem stops the server at start with a clear error (Linux
//! refuses to remount a filesystem read-only under files open for writing, so
//! that is where a read-only disk is met). The faults are real: a small tmpfs
//! that fills up and is remounted read-only (the test mounts it, so it runs as
//! root, as CI does), and a second SQLite connection holding an exclusive lock.

use crate::support::*;
use protocol::{Command, CommandId, EventBody, RejectCode, ServerMessage, SessionId};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("holdspace-disk-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "this test mounts a small tmpfs, which needs root (as in CI)"
        );
        SmallDisk { dir }
    }

    /// Fills every free byte with a filler file.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }

    fn remount(&self, mode: &str) {
        let status = Process::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn messages(addr: std::net::SocketAddr, token: &str, s: SessionId, text: &str) -> usize {
    full_log(addr, token, s)
        .await
        .iter()
        .filter(|e| matches!(&e.body, EventBody::GroupMessagePosted { text: t } if t == text))
        .count()
}

/// One fault: break storage, try, mend, retry the same key.
async fn survive(
    server: &TestServer,
    s: SessionId,
    fac: &mut TestClient,
    board: &mut TestClient,
    name: &str,
    break_it: impl FnOnce(),
    mend_it: impl FnOnce(),
) {
    let staff = server.staff_token(FACILITATOR).await;
    let text = format!("posted while {name}");
    let key = CommandId::from_uuid(uuid::Uuid::new_v4());
    break_it();
    eprintln!("{name}: broken");
    let answer = fac
        .command_with_id(key, Command::PostGroupMessage { text: text.clone() })
        .await;
    let ServerMessage::Rejected { rejection, .. } = &answer else {
        panic!("{name}: {answer:?}")
    };
    assert_eq!(rejection.code, RejectCode::StorageUnavailable, "{name}");
    assert!(
        rejection.message.contains("nothing was recorded"),
        "{name}: {}",
        rejection.message
    );
    eprintln!("{name}: refused as expected");
    mend_it();
    eprintln!("{name}: mended");
    // The client retries with the same key, as the browser's outbox does.
    let mut accepted = None;
    for _ in 0..50 {
        match fac
            .command_with_id(key, Command::PostGroupMessage { text: text.clone() })
            .await
        {
            ServerMessage::Accepted { first, .. } => {
                accepted = Some(first);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let seq = accepted.unwrap_or_else(|| panic!("{name}: the server did not recover"));
    board.reach(seq).await;
    let shown = board
        .events()
        .iter()
        .filter(|e| matches!(&e.body, EventBody::GroupMessagePosted { text: t } if *t == text))
        .count();
    assert_eq!(shown, 1, "{name}: shown once, only after it was saved");
    assert_eq!(
        messages(server.addr, &staff, s, &text).await,
        1,
        "{name}: recorded once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_failures_refuse_commands_show_nothing_unsaved_and_heal_by_themselves() {
    let disk = SmallDisk::mount(16);
    let data = disk.path().join("data");
    let server = TestServer::start_with(|c| c.data_dir = data.clone()).await;
    let group = server.group("storage faults", 1).await;
    let s = group.session;
    let mut fac =
        TestClient::connect(server.addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let mut board =
        TestClient::connect(server.addr, &server.staff_token(MEDICAL).await, s, None).await;
    let (_, before) = fac
        .ok(Command::PostGroupMessage {
            text: "all is well".into(),
        })
        .await;
    board.reach(before).await;

    survive(
        &server,
        s,
        &mut fac,
        &mut board,
        "the disk is full",
        || disk.fill(),
        || disk.free(),
    )
    .await;

    // A phone connects while nothing can be written: its arrival is recorded
    // once storage returns, without anyone sending anything more.
    disk.fill();
    let _phone = TestClient::connect(server.addr, &group.tokens[0], s, None).await;
    // Longer than the session's retry after a failure (1 s): at least one
    // retry fails too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !board
            .events()
            .iter()
            .any(|e| matches!(e.body, EventBody::ParticipantConnected { .. })),
        "nothing unsaved is shown"
    );
    disk.free();
    board
        .until(|m| {
            matches!(m, ServerMessage::Event { event }
                if event.body == EventBody::ParticipantConnected { seat: group.seats[0] })
        })
        .await;

    // Another process holds the write lock longer than the server waits (5 s).
    let db = data.join("holdspace.sqlite3");
    let locker = std::sync::Arc::new(std::sync::Mutex::new(None::<rusqlite::Connection>));
    let (take, give) = (locker.clone(), locker.clone());
    survive(
        &server,
        s,
        &mut fac,
        &mut board,
        "another process holds the lock",
        move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
            *take.lock().unwrap() = Some(conn);
        },
        move || {
            let conn = give.lock().unwrap().take().unwrap();
            conn.execute_batch("ROLLBACK").unwrap();
        },
    )
    .await;

    // Through all of it the log stayed gap-free and nothing was shown twice.
    let log = full_log(server.addr, &server.staff_token(FACILITATOR).await, s).await;
    let seqs: Vec<u64> = board.events().iter().map(|e| e.seq.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "the board saw a continuous log"
    );
    assert!(log.len() as u64 >= *seqs.last().unwrap());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_disk_stops_the_server_with_a_clear_error_until_it_is_writable() {
    let disk = SmallDisk::mount(8);
    let data = disk.path().join("data");
    let server = env!("CARGO_BIN_EXE_holdspace-under-test");
    let run = |data: &Path| {
        Process::new(server)
            .args(["--bind", "127.0.0.1:0"])
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Create the database, then stop.
    let mut first = run(&data);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(first.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("Holdspace listening"), "{line}");
    first.kill().unwrap();
    first.wait().unwrap();

    disk.remount("ro");
    let refused = run(&data).wait_with_output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("cannot open the data") && said.contains("Read-only file system"),
        "{said}"
    );

    disk.remount("rw");
    let mut again = run(&data);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(again.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.starts_with("Holdspace listening"),
        "starts again once writable: {line}"
    );
    again.kill().unwrap();
    again.wait().unwrap();
}
