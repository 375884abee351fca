//! Disk faults: the outbox on a small tmpfs the test mounts. Disk full and
//! a read-only filesystem are reported (`storage_error`, one fault episode
//! each) and survived: readings stay readable from memory up to the bound,
//! past it the oldest are dropped and counted, and when the disk recovers
//! the outbox commits again. Skipped, with a message, where mounting is
//! not allowed (not root, no CAP_SYS_ADMIN).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use edgevisor::outbox::{Class, Cursor, Message, Outbox, DB_FILE};

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(size: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!(
            "edgevisor-outbox-tmpfs-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Self(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn reading(seq: u64) -> Message {
    Message {
        class: Class::Telemetry,
        sensor: if seq % 2 == 0 { "a" } else { "b" }.into(),
        topic: "edgevisor/gw/telemetry/a".into(),
        seq: Some(seq),
        payload: format!("{{\"seq\":{seq},\"data\":\"{}\"}}", "x".repeat(1000))
            .into_bytes()
            .into(),
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "a synchronous test thread; no async runtime to block"
)]
fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rows(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    conn.query_row("SELECT count(*) FROM telemetry", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn disk_full_is_reported_survived_and_recovered_from() {
    let Some(mount) = Mount::tmpfs("2m") else {
        println!("SKIPPED: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); disk-full test not run");
        return;
    };
    let max_bytes = 3 * 1024 * 1024;
    let (outbox, _) = Outbox::open(&mount.0, max_bytes);
    let mut seq = 0;
    // Fill the disk.
    while outbox.stats().storage_error.is_none() {
        seq += 1;
        outbox.append(vec![reading(seq)]);
        if seq % 50 == 0 {
            outbox.sync();
        }
        assert!(seq < 10_000, "the 2 MiB disk never filled");
    }
    let stats = outbox.stats();
    println!("disk full after {seq} readings: {:?}", stats.storage_error);
    assert_eq!(stats.storage_faults, 1);
    // Readings keep being accepted and readable from memory...
    for _ in 0..1000 {
        seq += 1;
        outbox.append(vec![reading(seq)]);
    }
    let held = outbox.read(&mut Cursor::default(), 100_000);
    assert_eq!(
        held.last().map(|m| m.id),
        Some(seq),
        "the newest is readable"
    );
    // ...up to the bound; past it the oldest staged are dropped, counted.
    for _ in 0..3000 {
        seq += 1;
        outbox.append(vec![reading(seq)]);
    }
    let stats = outbox.stats();
    let dropped: u64 = stats.dropped.values().sum();
    assert!(dropped > 0, "memory stays bounded: {stats:?}");
    assert!(stats.bytes <= max_bytes + 2 * 1024 * 1024, "{stats:?}");
    assert_eq!(stats.storage_faults, 1, "one episode, however long");
    let expected = stats.depth;

    // The disk recovers: everything held is committed.
    mount.remount("size=64m");
    wait_until("recovery", 10, || outbox.stats().storage_error.is_none());
    outbox.sync();
    let after = outbox.stats();
    // Disk and memory together were over the bound: the oldest telemetry
    // (on disk) made room, counted like any other drop.
    assert!(after.bytes <= max_bytes, "{after:?}");
    let dropped_now: u64 = after.dropped.values().sum();
    assert_eq!(dropped_now - dropped, expected - after.depth);
    let expected = after.depth;
    assert_eq!(rows(&mount.0) as u64, expected, "all held readings on disk");
    let newest = outbox.read(&mut Cursor::default(), 100_000);
    assert_eq!(newest.last().map(|m| m.id), Some(seq), "the newest survive");

    drop(outbox);
}

#[test]
fn a_read_only_filesystem_is_reported_survived_and_recovered_from() {
    let Some(mount) = Mount::tmpfs("16m") else {
        println!("SKIPPED: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); read-only test not run");
        return;
    };
    // Linux refuses to remount read-only while files are open for writing,
    // so the filesystem is read-only from the start.
    mount.remount("ro");
    let (outbox, opened) = Outbox::open(&mount.0, 64 << 20);
    println!("read-only: {:?}", opened.storage_error);
    assert!(opened.storage_error.is_some());
    assert_eq!(outbox.stats().storage_faults, 1);
    for seq in 1..=100 {
        outbox.append(vec![reading(seq)]);
    }
    assert_eq!(outbox.read(&mut Cursor::default(), 1000).len(), 100);
    let first = outbox.read(&mut Cursor::default(), 1)[0].id;
    outbox.ack(&[first]);
    assert!(outbox.stats().storage_error.is_some());
    mount.remount("rw");
    wait_until("recovery from read-only", 10, || {
        outbox.stats().storage_error.is_none()
    });
    outbox.sync();
    assert_eq!(rows(&mount.0), 99);
    assert_eq!(outbox.stats().storage_faults, 1);
    drop(outbox);
    let (outbox, opened) = Outbox::open(&mount.0, 64 << 20);
    assert_eq!(opened.recovered, 99);
    outbox.append(vec![reading(101)]);
    let ids: Vec<u64> = outbox
        .read(&mut Cursor::default(), 1000)
        .iter()
        .map(|m| m.id)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids keep increasing");
}
