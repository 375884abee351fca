//! Crash consistency: a writer process appends and acknowledges through
//! the real outbox and prints `stored <id>` only after `sync` returned (the
//! commit, fsync included, is done) and `acked <id>` once an ack's deletion
//! is committed. The test SIGKILLs it at 100 random points; after each kill
//! it reopens the file and checks that `quick_check` passes, that every id
//! reported stored and never acknowledged is still there, and that no
//! committed deletion came back.
//!
//! The writer is this test binary run again with `OUTBOX_CRASH_DIR` set.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgevisor::outbox::{Class, Cursor, Message, Outbox, DB_FILE};

const KILLS: usize = 100;

fn message(n: u64) -> Message {
    let report = n % 7 == 0;
    Message {
        class: if report {
            Class::Report
        } else {
            Class::Telemetry
        },
        sensor: "s".into(),
        topic: "edgevisor/gw/telemetry/s".into(),
        seq: (!report).then_some(n),
        payload: format!(
            "{{\"seq\":{n},\"pad\":\"{}\"}}",
            "p".repeat(fastrand::usize(..2000))
        )
        .into_bytes()
        .into(),
    }
}

/// The writer's body: never returns; killed by the test.
fn writer(dir: &str) -> ! {
    let (outbox, _) = Outbox::open(std::path::Path::new(dir), 1 << 30);
    let out = std::io::stdout();
    let mut n = 0u64;
    loop {
        let batch: Vec<Message> = (0..1 + fastrand::u64(..50))
            .map(|_| {
                n += 1;
                message(n)
            })
            .collect();
        outbox.append(batch);
        if fastrand::bool() {
            // Some appends are reported only after the sync that covers them.
            outbox.sync();
            let held: Vec<u64> = outbox
                .read(&mut Cursor::default(), 100_000)
                .iter()
                .map(|m| m.id)
                .collect();
            let mut lock = out.lock();
            for id in &held {
                let _ = writeln!(lock, "stored {id}");
            }
            let _ = lock.flush();
            drop(lock);
            let acks: Vec<u64> = held
                .iter()
                .copied()
                .filter(|_| fastrand::u8(..4) == 0)
                .collect();
            // Announced first: once the ack is issued, the row may go.
            let mut lock = out.lock();
            for id in &acks {
                let _ = writeln!(lock, "acking {id}");
            }
            let _ = lock.flush();
            drop(lock);
            outbox.ack(&acks);
            outbox.sync();
            let mut lock = out.lock();
            for id in &acks {
                let _ = writeln!(lock, "acked {id}");
            }
            let _ = lock.flush();
        }
    }
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "a synchronous test thread; no async runtime to block"
)]
fn a_writer_killed_at_100_random_points_loses_nothing_it_reported_stored() {
    if let Ok(dir) = std::env::var("OUTBOX_CRASH_DIR") {
        writer(&dir);
    }
    let dir = std::env::temp_dir().join(format!(
        "edgevisor-outbox-crash-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let (mut stored, mut acking, mut acked) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_writer_killed_at_100_random_points_loses_nothing_it_reported_stored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("OUTBOX_CRASH_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(20 + fastrand::u64(..150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            match line.split_once(' ') {
                Some(("stored", id)) => {
                    stored.insert(id.parse::<u64>().unwrap());
                }
                Some(("acking", id)) => {
                    acking.insert(id.parse::<u64>().unwrap());
                }
                Some(("acked", id)) => {
                    acked.insert(id.parse::<u64>().unwrap());
                }
                _ => {}
            }
        }
        let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        drop(conn);
        let (outbox, opened) = Outbox::open(&dir, 1 << 30);
        assert!(opened.moved_aside.is_none(), "round {round}: {opened:?}");
        let held: BTreeSet<u64> = outbox
            .read(&mut Cursor::default(), 1_000_000)
            .iter()
            .map(|m| m.id)
            .collect();
        let lost: Vec<u64> = stored
            .difference(&acking)
            .filter(|id| !held.contains(id))
            .copied()
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: reported stored, not acked, missing: {lost:?}"
        );
        let resurrected = acked.intersection(&held).count();
        assert_eq!(
            resurrected, 0,
            "round {round}: committed deletions came back"
        );
        drop(outbox);
    }
    println!(
        "{KILLS} kills in {:.1}s: {} ids reported stored, {} acked, none lost",
        started.elapsed().as_secs_f64(),
        stored.len(),
        acked.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
