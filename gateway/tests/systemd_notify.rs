//! sd_notify end to end, under a fake service manager: the test binds a
//! Unix datagram socket, hands it to the gateway as `NOTIFY_SOCKET` with a
//! 1 s `WATCHDOG_USEC`, and reads what a real systemd would: `READY=1`,
//! `STATUS=`, `WATCHDOG=1` every half second, `RELOADING=1` / `READY=1`
//! around SIGHUP, no more pings once the root supervisor is made to hang
//! (the `EDGEVISOR_TEST_HANG_AFTER` hook) while the process lives on, and
//! `STOPPING=1` on SIGTERM. (No systemd manager runs here, so
//! `systemd-run --user` is not an option; the socket protocol is the same.)
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{header, Mosquitto, TempDir};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixDatagram};
use tokio::process::{Child, Command};
use tokio::time::{sleep, timeout, Instant};

/// Every datagram received, one line per assignment, with its arrival time.
type Received = Arc<Mutex<Vec<(Instant, String)>>>;

fn lines(received: &Received) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| l.clone())
        .collect()
}

fn count(received: &Received, line: &str) -> usize {
    lines(received).iter().filter(|l| *l == line).count()
}

async fn wait_for(received: &Received, what: &str, secs: u64, done: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(&lines(received)) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; got {:?}",
            lines(received)
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// Binds the fake service manager's socket at `path` and records every
/// line the gateway sends to it.
fn notify_socket(path: &std::path::Path) -> (Received, tokio::task::JoinHandle<()>) {
    let socket = UnixDatagram::bind(path).unwrap();
    let received: Received = Arc::default();
    let sink = received.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf).await {
            let now = Instant::now();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let mut sink = sink.lock().unwrap();
            sink.extend(text.lines().map(|l| (now, l.to_string())));
        }
    });
    (received, reader)
}

/// A TCP sensor that sends a reading every 200 ms to whoever connects.
async fn sensor() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                for i in 0u64.. {
                    if stream.write_all(format!("{i}\n").as_bytes()).await.is_err() {
                        return;
                    }
                    sleep(Duration::from_millis(200)).await;
                }
            });
        }
    });
    addr
}

fn spawn_gateway(dir: &TempDir, config: &str, socket: &std::path::Path) -> Child {
    let path = dir.0.join("edgevisor.toml");
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.0.join("gateway.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .args(["run", "--log-format", "text", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("EDGEVISOR_TEST_HANG_AFTER", "6s")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_status_watchdog_until_the_tree_hangs_then_stopping_on_sigterm() {
    let broker = Mosquitto::start().await.unwrap();
    let dir = TempDir::new("systemd-notify");
    let addr = sensor().await;
    let config = format!(
        "{}\n[[sensor]]\nid = \"probe\"\ntransport = \"tcp\"\naddress = \"{addr}\"\ncodec = \"lines\"\nread_timeout = \"5s\"\n",
        header("notify-gw", broker.port(), &dir.0.join("state"))
    );
    let socket_path = dir.0.join("notify.sock");
    let (received, reader) = notify_socket(&socket_path);
    let mut child = spawn_gateway(&dir, &config, &socket_path);
    let pid = Pid::from_raw(child.id().unwrap() as i32);
    let log = || std::fs::read_to_string(dir.0.join("gateway.log")).unwrap_or_default();

    wait_for(&received, "READY=1", 10, |l| {
        l.iter().any(|l| l == "READY=1")
    })
    .await;
    wait_for(&received, "a STATUS with the sensor running", 10, |l| {
        l.iter().any(|l| {
            l.starts_with("STATUS=sensors: 1 running") && l.ends_with("upstream: connected")
        })
    })
    .await;
    wait_for(&received, "three watchdog pings", 10, |l| {
        l.iter().filter(|l| *l == "WATCHDOG=1").count() >= 3
    })
    .await;

    kill(pid, Signal::SIGHUP).unwrap();
    wait_for(&received, "RELOADING=1 then READY=1", 10, |l| {
        let reloading = l.iter().position(|l| l == "RELOADING=1");
        let ready_again = l.iter().rposition(|l| l == "READY=1");
        matches!((reloading, ready_again), (Some(a), Some(b)) if b > a)
    })
    .await;
    assert!(
        lines(&received)
            .iter()
            .any(|l| l.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 comes with MONOTONIC_USEC"
    );

    // The hook hangs the root 6 s after the gateway started; then give the
    // last in-flight ping (one interval plus the probe's timeout) time to
    // land.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !log().contains("hanging the root supervisor on purpose") {
        assert!(
            Instant::now() < deadline,
            "hook did not fire; log:\n{}",
            log()
        );
        sleep(Duration::from_millis(20)).await;
    }
    sleep(Duration::from_millis(1500)).await;
    let pings_at_hang = count(&received, "WATCHDOG=1");
    assert!(
        pings_at_hang >= 5,
        "only {pings_at_hang} pings before the hang"
    );
    sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&received, "WATCHDOG=1"),
        pings_at_hang,
        "pings went on for 3 s (6 intervals) after the tree hung; log:\n{}",
        log()
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the process must still be alive"
    );
    assert!(log().contains("not pinging the systemd watchdog"));

    kill(pid, Signal::SIGTERM).unwrap();
    wait_for(&received, "STOPPING=1", 10, |l| {
        l.iter().any(|l| l == "STOPPING=1")
    })
    .await;
    let status = timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{}", log());
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_without_notify_socket() {
    // The same service with NOTIFY_SOCKET unset runs and stops normally;
    // with nowhere to send, the notifier does not start at all.
    let dir = TempDir::new("systemd-none");
    let addr = sensor().await;
    let port = support::free_port();
    let config = format!(
        "{}\n[[sensor]]\nid = \"probe\"\ntransport = \"tcp\"\naddress = \"{addr}\"\ncodec = \"lines\"\nread_timeout = \"5s\"\n",
        header("quiet-gw", port, &dir.0.join("state"))
    );
    let path = dir.0.join("edgevisor.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .args(["run", "--log-format", "text", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    sleep(Duration::from_secs(2)).await;
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let output = timeout(Duration::from_secs(20), async {
        let mut stderr = String::new();
        use tokio::io::AsyncReadExt;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        (child.wait().await.unwrap(), stderr)
    })
    .await
    .unwrap();
    assert_eq!(output.0.code(), Some(0), "stderr:\n{}", output.1);
    assert!(!output.1.contains("READY=1"), "stderr:\n{}", output.1);
    assert!(
        !output.1.contains("watchdog enabled"),
        "stderr:\n{}",
        output.1
    );
}

/// A broker that refuses every connection: `STATUS=` says since when the
/// link is down and why, and the log warns once (then at most once a
/// minute), instead of once and then never again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_named_in_status_with_its_last_error() {
    let dir = TempDir::new("systemd-down");
    let config = header("down", support::free_port(), &dir.0.join("state"));
    let socket_path = dir.0.join("notify.sock");
    let (received, reader) = notify_socket(&socket_path);
    let _child = spawn_gateway(&dir, &config, &socket_path);
    wait_for(
        &received,
        "a STATUS naming the refused connection",
        10,
        |l| {
            l.iter().any(|l| {
                l.contains("upstream: never connected (since ")
                    && l.contains("UTC; last error: ")
                    && l.contains("refused")
            })
        },
    )
    .await;
    // Several attempts have failed by now (250 ms, then doubling).
    sleep(Duration::from_secs(2)).await;
    let log = std::fs::read_to_string(dir.0.join("gateway.log")).unwrap();
    assert_eq!(log.matches("cannot connect upstream").count(), 1, "{log}");
    // `outbox stats` says the same, from the running service.
    let stats = std::process::Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .args(["outbox", "stats", "--config"])
        .arg(dir.0.join("edgevisor.toml"))
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout);
    assert!(
        stats.contains(": never connected (since ") && stats.contains("last error: "),
        "{stats}"
    );
    reader.abort();
}
