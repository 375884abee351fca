//! The durable outbox as a library: it behaves like the in-memory model
//! (send order, acks, the bound), keeps what it committed across a reopen,
//! opens with the pragmas its durability rests on, moves a corrupt file
//! aside, and survives a torn WAL tail (what a power cut leaves).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use edgevisor::outbox::{Class, Cursor, Message, Outbox, DB_FILE};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "edgevisor-outbox-{tag}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn reading(sensor: &str, seq: u64, size: usize) -> Message {
    let payload = format!(
        "{{\"gateway\":\"gw\",\"sensor\":\"{sensor}\",\"boot\":1,\"seq\":{seq},\"data\":\"{}\"}}",
        "x".repeat(size)
    );
    Message {
        class: Class::Telemetry,
        sensor: sensor.into(),
        topic: format!("edgevisor/gw/telemetry/{sensor}").into(),
        seq: Some(seq),
        payload: payload.into_bytes().into(),
    }
}

fn report(sensor: &str) -> Message {
    Message {
        class: Class::Report,
        sensor: sensor.into(),
        topic: format!("edgevisor/gw/crash/{sensor}").into(),
        seq: None,
        payload: b"{}".to_vec().into(),
    }
}

fn ids(outbox: &Outbox, limit: usize) -> Vec<u64> {
    outbox
        .read(&mut Cursor::default(), limit)
        .iter()
        .map(|m| m.id)
        .collect()
}

fn pragma(path: &Path, name: &str) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .map(|v| format!("{v:?}"))
    .unwrap()
}

#[test]
fn send_order_acks_and_a_reopen_keep_exactly_the_unacknowledged() {
    let d = dir("reopen");
    let (outbox, opened) = Outbox::open(&d, 1 << 30);
    assert_eq!(opened.recovered, 0);
    outbox.append(vec![reading("a", 1, 10), report("a"), reading("b", 1, 10)]);
    // Staged (not yet committed) messages are readable at once.
    assert_eq!(ids(&outbox, 10), [2, 1, 3]);
    outbox.sync();
    outbox.append((2..=5).map(|s| reading("a", s, 10)).collect());
    outbox.ack(&[1, 2, 5]);
    outbox.sync();
    assert_eq!(ids(&outbox, 10), [3, 4, 6, 7]);
    let mut cursor = Cursor::default();
    let first = outbox.read(&mut cursor, 2);
    assert_eq!(first.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 4]);
    let rest = outbox.read(&mut cursor, 10);
    assert_eq!(rest.iter().map(|m| m.id).collect::<Vec<_>>(), [6, 7]);
    assert_eq!(outbox.accepted().get("a"), Some(&5));
    assert_eq!(outbox.stats().depth, 4);
    drop(outbox);

    let path = d.join(DB_FILE);
    assert_eq!(pragma(&path, "journal_mode"), "Text(\"wal\")");
    let (outbox, opened) = Outbox::open(&d, 1 << 30);
    assert_eq!(opened.recovered, 4);
    assert_eq!(ids(&outbox, 10), [3, 4, 6, 7]);
    outbox.append(vec![reading("a", 1, 10)]);
    assert_eq!(
        ids(&outbox, 10),
        [3, 4, 6, 7, 8],
        "ids continue after max(id)"
    );
    let stats = outbox.stats();
    assert_eq!(stats.depth, 5);
    assert!(stats.oldest_age.is_some());
    assert!(stats.storage_error.is_none());
    drop(outbox);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_ack_before_the_commit_means_the_message_is_never_written() {
    let d = dir("early-ack");
    let (outbox, _) = Outbox::open(&d, 1 << 30);
    outbox.append((1..=100).map(|s| reading("a", s, 10)).collect());
    let all: Vec<u64> = ids(&outbox, 1000);
    outbox.ack(&all);
    outbox.sync();
    assert_eq!(outbox.stats().depth, 0);
    assert_eq!(
        outbox.accepted().get("a"),
        Some(&100),
        "acked counts as safe"
    );
    drop(outbox);
    let conn = rusqlite::Connection::open(d.join(DB_FILE)).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM telemetry", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn past_the_bound_the_oldest_telemetry_goes_first_counted_per_sensor() {
    let d = dir("bound");
    let (outbox, _) = Outbox::open(&d, 20_000);
    outbox.append(vec![report("r")]);
    for s in 1..=100 {
        outbox.append(vec![reading(if s % 2 == 0 { "a" } else { "b" }, s, 900)]);
        if s % 10 == 0 {
            outbox.sync();
        }
    }
    outbox.sync();
    outbox.sync();
    let stats = outbox.stats();
    assert!(
        stats.bytes <= 20_000,
        "bytes {} over the bound",
        stats.bytes
    );
    let dropped: u64 = stats.dropped.values().sum();
    assert!(dropped >= 70, "{:?}", stats.dropped);
    assert!(stats.dropped.contains_key("a") && stats.dropped.contains_key("b"));
    let held = outbox.read(&mut Cursor::default(), 1000);
    assert_eq!(held[0].class, Class::Report, "the report is kept");
    let telemetry: Vec<u64> = held.iter().skip(1).map(|m| m.id).collect();
    assert_eq!(
        *telemetry.last().unwrap(),
        101,
        "the newest reading is kept"
    );
    assert!(
        telemetry.windows(2).all(|w| w[1] == w[0] + 1),
        "a suffix survives: {telemetry:?}"
    );
    drop(outbox);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn reads_stream_a_large_outbox_in_pages() {
    let d = dir("stream");
    let (outbox, _) = Outbox::open(&d, 1 << 30);
    for chunk in 0..20 {
        outbox.append(
            (1..=1000)
                .map(|s| reading("a", chunk * 1000 + s, 100))
                .collect(),
        );
    }
    outbox.sync();
    drop(outbox);
    let (outbox, opened) = Outbox::open(&d, 1 << 30);
    assert_eq!(opened.recovered, 20_000);
    let mut cursor = Cursor::default();
    let mut seen = 0u64;
    loop {
        let page = outbox.read(&mut cursor, 512);
        if page.is_empty() {
            break;
        }
        for m in &page {
            seen += 1;
            assert_eq!(m.id, seen, "oldest first, no gaps");
        }
    }
    assert_eq!(seen, 20_000);
    drop(outbox);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_corrupt_file_is_moved_aside_never_deleted_and_a_fresh_one_started() {
    let d = dir("corrupt");
    let garbage = vec![0xA5u8; 64 * 1024];
    std::fs::write(d.join(DB_FILE), &garbage).unwrap();
    let (outbox, opened) = Outbox::open(&d, 1 << 30);
    let (moved, why) = opened.moved_aside.clone().expect("moved aside");
    assert!(moved
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("outbox.db.corrupt-"));
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        garbage,
        "kept byte for byte"
    );
    assert!(!why.is_empty());
    outbox.append(vec![reading("a", 1, 10)]);
    outbox.sync();
    assert!(outbox.stats().storage_error.is_none());
    drop(outbox);
    let (_outbox, opened) = Outbox::open(&d, 1 << 30);
    assert_eq!(opened.recovered, 1);
    assert!(opened.moved_aside.is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_damaged_page_found_by_quick_check_also_moves_the_file_aside() {
    let d = dir("damaged");
    let (outbox, _) = Outbox::open(&d, 1 << 30);
    outbox.append((1..=2000).map(|s| reading("a", s, 200)).collect());
    outbox.sync();
    drop(outbox);
    let path = d.join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    // Scribble over a b-tree page in the middle of the file.
    let page = 4096 * (bytes.len() / 4096 / 2);
    for b in &mut bytes[page..page + 4096] {
        *b = 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap();
    let (_outbox, opened) = Outbox::open(&d, 1 << 30);
    assert!(opened.moved_aside.is_some(), "{opened:?}");
    assert_eq!(opened.recovered, 0);
    std::fs::remove_dir_all(&d).unwrap();
}

/// The power-loss argument's last step (docs/outbox.md): whatever a power
/// cut leaves after the last fsync'd commit (a WAL tail cut short, or
/// garbage in it) is ignored on reopen, and every message whose commit
/// returned is still there.
#[test]
fn a_torn_wal_tail_loses_nothing_that_was_committed() {
    for round in 0..20 {
        let d = dir("torn");
        let (outbox, _) = Outbox::open(&d, 1 << 30);
        let n = 50 + fastrand::usize(..500);
        outbox.append((1..=n as u64).map(|s| reading("a", s, 300)).collect());
        outbox.sync();
        let wal = d.join(format!("{DB_FILE}-wal"));
        let synced = std::fs::metadata(&wal).unwrap().len() as usize;
        // More work whose commit had not returned when the power went.
        outbox.append((1..=200).map(|s| reading("b", s, 300)).collect());
        outbox.sync();
        // The files as the disk holds them at the cut (the outbox is still
        // open: closing would checkpoint and remove the WAL).
        let cut_dir = dir("torn-copy");
        std::fs::copy(d.join(DB_FILE), cut_dir.join(DB_FILE)).unwrap();
        let mut bytes = std::fs::read(&wal).unwrap();
        drop(outbox);
        let cut = synced + fastrand::usize(..=bytes.len() - synced);
        bytes.truncate(cut);
        if round % 2 == 0 {
            bytes.extend((0..fastrand::usize(..8192)).map(|_| fastrand::u8(..)));
        }
        std::fs::write(cut_dir.join(format!("{DB_FILE}-wal")), &bytes).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
        let d = cut_dir;
        let (outbox, opened) = Outbox::open(&d, 1 << 30);
        assert!(opened.moved_aside.is_none(), "round {round}: {opened:?}");
        let held = outbox.read(&mut Cursor::default(), 10_000);
        assert!(held.len() >= n, "round {round}: {} < {n}", held.len());
        assert!(held
            .iter()
            .take(n)
            .enumerate()
            .all(|(i, m)| m.id == i as u64 + 1));
        drop(outbox);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// Regression: an ack that queued a deletion did not wake the writer, so
/// once the broker stopped acknowledging, nothing was committed for up to
/// a second.
#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "a synchronous test thread; no async runtime to block"
)]
fn commits_keep_pace_when_acks_stop() {
    let d = dir("pace");
    let (outbox, _) = Outbox::open(&d, 1 << 30);
    let mut cursor = Cursor::default();
    let conn = rusqlite::Connection::open(d.join(DB_FILE)).unwrap();
    let rows = || -> i64 {
        conn.query_row("SELECT count(*) FROM telemetry", [], |r| r.get(0))
            .unwrap()
    };
    for s in 1..=250 {
        outbox.append(vec![reading("a", s, 100)]);
        let got = outbox.read(&mut cursor, 512);
        if s <= 200 {
            let ids: Vec<u64> = got.iter().map(|m| m.id).collect();
            std::thread::sleep(std::time::Duration::from_millis(fastrand::u64(0..8)));
            outbox.ack(&ids);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Unacknowledged readings are committed one to two lingers (50 ms)
    // after they arrive; the regression took up to a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
    while rows() < 50 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(rows(), 50, "unacknowledged readings not committed in time");
    drop(outbox);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn ids_are_never_handed_out_twice_even_after_the_newest_were_deleted() {
    let dir = dir("high-water");
    let newest = {
        let (outbox, _) = Outbox::open(&dir, 1 << 20);
        outbox.append((1..=5).map(|n| reading("a", n, 10)).collect());
        outbox.sync();
        let all = ids(&outbox, 10);
        // The newest rows are acknowledged and their deletion committed:
        // the table's own max(id) now lies below the ids handed out.
        outbox.ack(&all[2..]);
        outbox.sync();
        assert_eq!(ids(&outbox, 10), all[..2].to_vec());
        *all.last().unwrap()
    };
    let (outbox, _) = Outbox::open(&dir, 1 << 20);
    outbox.append(vec![reading("a", 6, 10)]);
    let fresh = *ids(&outbox, 10).last().unwrap();
    assert!(
        fresh > newest,
        "id {fresh} was handed out before (up to {newest})"
    );
    drop(outbox);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Back-pressure: once a quarter of the memory bound is staged faster than
/// the disk takes it, `room` waits, and it resolves once a commit drains it.
#[tokio::test]
async fn room_waits_while_the_disk_falls_behind_and_resolves_after_a_commit() {
    let d = dir("room");
    // The memory bound is min(max_bytes, 8 MiB): 40,000 bytes, full at 10,000.
    let (outbox, _) = Outbox::open(&d, 40_000);
    outbox.room().await;
    outbox.append((1..=40).map(|s| reading("a", s, 300)).collect());
    let waiting = tokio::time::timeout(std::time::Duration::from_millis(5), outbox.room()).await;
    assert!(waiting.is_err(), "room must wait while 12 KB are staged");
    tokio::time::timeout(std::time::Duration::from_secs(5), outbox.room())
        .await
        .expect("room once the writer committed");
    drop(outbox);
    std::fs::remove_dir_all(&d).unwrap();
}
