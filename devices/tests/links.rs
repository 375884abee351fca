//! Integration tests of the links against simulated sensors over real
//! sockets and real pty pairs.

use std::time::{Duration, Instant};

use edgevisor_devices::codec::CodecKind;
use edgevisor_devices::link::serial::{self, SerialConfig};
use edgevisor_devices::link::tcp::{self, TcpConfig};
use edgevisor_devices::link::tcp_listen::{TcpAcceptor, TcpListenConfig};
use edgevisor_devices::link::{Link, LinkError};
use edgevisor_harness::sim::serial::PtySensor;
use edgevisor_harness::sim::tcp::{TcpSensorClient, TcpSensorServer};
use edgevisor_harness::sim::{seq_of, Fault, SimConfig};

const T: Duration = Duration::from_secs(5);

/// Reads `n` readings, asserting their sequence numbers are consecutive.
async fn read_seq(link: &mut Link, codec: CodecKind, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let r = tokio::time::timeout(T, link.next())
            .await
            .expect("reading in time")
            .expect("reading");
        seqs.push(seq_of(codec, &r).expect("seq"));
    }
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap in {seqs:?}");
    }
    seqs
}

/// Reads until the link fails; returns the error and the readings seen.
async fn read_until_error(link: &mut Link) -> (LinkError, usize) {
    let mut n = 0;
    loop {
        match tokio::time::timeout(T, link.next())
            .await
            .expect("link ends in time")
        {
            Ok(_) => n += 1,
            Err(e) => return (e, n),
        }
    }
}

fn tcp_config(addr: std::net::SocketAddr, codec: CodecKind) -> TcpConfig {
    TcpConfig {
        read_timeout: Duration::from_millis(500),
        ..TcpConfig::new(addr.to_string(), codec)
    }
}

#[tokio::test]
async fn a_tcp_sensor_that_disconnects_is_seen_as_eof() {
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 200.0))
        .await
        .expect("sim");
    let mut link = tcp::connect(&tcp_config(sim.addr(), CodecKind::Lines))
        .await
        .expect("connect");
    read_seq(&mut link, CodecKind::Lines, 5).await;
    sim.handle.inject(Fault::Disconnect);
    let (err, _) = read_until_error(&mut link).await;
    assert_eq!(err.as_str(), "eof", "{err}");
    assert!(!err.can_continue());
    assert_eq!(
        link.next().await.map_err(|e| e.as_str()).err(),
        Some("eof"),
        "ended links stay ended"
    );
}

#[tokio::test]
async fn a_silent_sensor_ends_with_timeout() {
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Json, 100.0))
        .await
        .expect("sim");
    let mut cfg = tcp_config(sim.addr(), CodecKind::Json);
    cfg.read_timeout = Duration::from_millis(200);
    let mut link = tcp::connect(&cfg).await.expect("connect");
    read_seq(&mut link, CodecKind::Json, 3).await;
    sim.handle.inject(Fault::Silence(Duration::from_secs(3)));
    let started = Instant::now();
    let (err, _) = read_until_error(&mut link).await;
    assert_eq!(err.as_str(), "timeout", "{err}");
    assert!(started.elapsed() >= Duration::from_millis(190));
}

#[tokio::test]
async fn connecting_to_nothing_is_an_io_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let err = tcp::connect(&tcp_config(port, CodecKind::Lines))
        .await
        .expect_err("refused");
    assert_eq!(err.as_str(), "io");
}

#[tokio::test]
async fn corrupt_frames_can_be_skipped_without_losing_readings() {
    for codec in CodecKind::ALL {
        let sim = TcpSensorServer::start(SimConfig::new(codec, 500.0))
            .await
            .expect("sim");
        let mut link = tcp::connect(&tcp_config(sim.addr(), codec))
            .await
            .expect("connect");
        let before = read_seq(&mut link, codec, 2).await;
        for f in [
            Fault::BadChecksum,
            Fault::Garbage(300),
            Fault::Overlong,
            Fault::SlowDrip {
                readings: 2,
                byte_delay: Duration::from_micros(200),
            },
        ] {
            sim.handle.inject(f);
        }
        let mut seqs = vec![before[1]];
        let mut corrupt = 0;
        while seqs.len() < 15 {
            match tokio::time::timeout(T, link.next()).await.expect("in time") {
                Ok(r) => seqs.push(seq_of(codec, &r).expect("seq")),
                Err(e) => {
                    assert_eq!(e.as_str(), "corrupt_frame", "{codec}: {e}");
                    assert!(e.can_continue(), "{codec}: {e}");
                    assert!(e.evidence().is_some());
                    corrupt += 1;
                }
            }
        }
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{codec}: gap in {seqs:?}");
        }
        let want = if codec == CodecKind::Frame { 2 } else { 3 };
        assert!(corrupt >= want, "{codec}: {corrupt} corrupt frames seen");
        if codec == CodecKind::Frame {
            assert!(link.stats().skipped_bytes >= 300, "{:?}", link.stats());
        }
    }
}

#[tokio::test]
async fn tcp_listen_refuses_past_max_connections_and_frees_slots() {
    let mut cfg = TcpListenConfig::new("127.0.0.1:0".parse().expect("addr"), CodecKind::Frame);
    cfg.max_connections = 2;
    cfg.read_timeout = Duration::from_millis(500);
    let mut acceptor = TcpAcceptor::bind(&cfg).await.expect("bind");
    let addr = acceptor.local_addr();
    assert_ne!(addr.port(), 0);
    let sims: Vec<_> = (0..3)
        .map(|_| {
            TcpSensorClient::start(
                SimConfig::new(CodecKind::Frame, 100.0),
                addr,
                Duration::from_millis(50),
            )
        })
        .collect();
    let mut links = Vec::new();
    for _ in 0..2 {
        links.push(
            tokio::time::timeout(T, acceptor.accept())
                .await
                .expect("accepted")
                .into_link(),
        );
    }
    // The third is refused (closed) over and over while both slots are held.
    let refused = tokio::time::timeout(Duration::from_millis(400), acceptor.accept()).await;
    assert!(refused.is_err(), "no third connection while full");
    assert!(acceptor.stats().refused >= 1, "{:?}", acceptor.stats());
    assert_eq!(acceptor.stats().active, 2);
    for link in &mut links {
        read_seq(link, CodecKind::Frame, 3).await;
    }
    drop(links.pop());
    let mut third = tokio::time::timeout(T, acceptor.accept())
        .await
        .expect("slot freed")
        .into_link();
    read_seq(&mut third, CodecKind::Frame, 3).await;
    assert_eq!(acceptor.stats().active, 2);
    drop(sims);
}

#[tokio::test]
async fn acceptor_run_spawns_a_task_per_connection() {
    let mut cfg = TcpListenConfig::new("127.0.0.1:0".parse().expect("addr"), CodecKind::Lines);
    cfg.max_connections = 8;
    let mut acceptor = TcpAcceptor::bind(&cfg).await.expect("bind");
    let _sims: Vec<_> = (0..3)
        .map(|_| {
            TcpSensorClient::start(
                SimConfig::new(CodecKind::Lines, 100.0),
                acceptor.local_addr(),
                Duration::from_millis(50),
            )
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = acceptor.run(|accepted| {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut link = accepted.into_link();
            if link.next().await.is_ok() {
                let _ = tx.send(());
            }
        });
    });
    tokio::select! {
        _ = run => unreachable!("run never returns"),
        _ = async { for _ in 0..3 { rx.recv().await; } } => {}
        _ = tokio::time::sleep(T) => panic!("three connections did not deliver"),
    }
    assert_eq!(acceptor.stats().accepted, 3);
}

fn temp_link_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "edgevisor-devices-test-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

#[tokio::test]
async fn a_pty_sensor_that_is_removed_is_eof_and_reads_again_after_replug() {
    let by_id = temp_link_path("usb-Simulated_GNSS-if00");
    let mut sim = PtySensor::start(SimConfig::new(CodecKind::Nmea, 200.0), Some(by_id.clone()))
        .await
        .expect("pty");
    let mut cfg = SerialConfig::new(&by_id, 9600, CodecKind::Nmea);
    cfg.read_timeout = Duration::from_millis(500);
    let mut link = serial::open(&cfg).expect("open");
    let first = read_seq(&mut link, CodecKind::Nmea, 5).await;
    let old_slave = sim.slave_path().expect("plugged");

    sim.handle.inject(Fault::Remove);
    let (err, _) = read_until_error(&mut link).await;
    assert_eq!(err.as_str(), "eof", "{err}");
    sim.wait_unplugged().await;
    assert_eq!(
        serial::open(&cfg).err().map(|e| e.as_str()),
        Some("io"),
        "unplugged device cannot be opened"
    );

    sim.handle.inject(Fault::Replug);
    let new_slave = tokio::time::timeout(T, sim.wait_plugged())
        .await
        .expect("replugged")
        .expect("path");
    assert_eq!(std::fs::canonicalize(&by_id).expect("symlink"), new_slave);
    let _ = old_slave;
    let mut link = serial::open(&cfg).expect("reopen by the same path");
    let again = read_seq(&mut link, CodecKind::Nmea, 5).await;
    assert!(again[0] > first[4], "sequence continues after re-plug");
    let _ = std::fs::remove_dir_all(by_id.parent().expect("dir"));
}

#[tokio::test]
async fn a_silent_pty_sensor_ends_with_timeout() {
    let sim = PtySensor::start(SimConfig::new(CodecKind::Frame, 200.0), None)
        .await
        .expect("pty");
    let mut cfg = SerialConfig::new(
        sim.slave_path().expect("plugged"),
        115_200,
        CodecKind::Frame,
    );
    cfg.read_timeout = Duration::from_millis(200);
    let mut link = serial::open(&cfg).expect("open");
    read_seq(&mut link, CodecKind::Frame, 3).await;
    sim.handle.inject(Fault::Silence(Duration::from_secs(2)));
    let (err, _) = read_until_error(&mut link).await;
    assert_eq!(err.as_str(), "timeout", "{err}");
}

/// A raw TCP "sensor" that writes `bytes` then closes.
async fn raw_sensor(bytes: Vec<u8>) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(&bytes).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_flood_without_newline_is_one_corrupt_frame_then_the_stream_resumes() {
    let mut bytes = vec![b'x'; 8 << 20];
    bytes.extend_from_slice(b"\nseq=1 temp=20.0\n");
    let addr = raw_sensor(bytes).await;
    let mut link = tcp::connect(&tcp_config(addr, CodecKind::Lines))
        .await
        .expect("connect");
    let err = link.next().await.expect_err("too long");
    assert_eq!(err.as_str(), "corrupt_frame");
    assert!(err.can_continue());
    assert_eq!(
        err.evidence().map(|e| (e.bytes().len(), e.truncated())),
        Some((256, true))
    );
    let r = link.next().await.expect("resynchronised");
    assert_eq!(r.data_json(), r#"{"text":"seq=1 temp=20.0"}"#);
    assert_eq!(
        link.stats().corrupt,
        1,
        "8 MiB of flood is one error, not many"
    );
    assert_eq!(link.next().await.expect_err("closed").as_str(), "eof");
}

#[tokio::test]
async fn end_of_stream_inside_a_frame_is_eof_with_the_partial_frame_as_evidence() {
    let addr = raw_sensor(b"{\"seq\":1}\n{\"seq\":2,\"te".to_vec()).await;
    let mut link = tcp::connect(&tcp_config(addr, CodecKind::Json))
        .await
        .expect("connect");
    assert_eq!(
        link.next().await.expect("first").data_json(),
        r#"{"seq":1}"#
    );
    let err = link.next().await.expect_err("cut off");
    assert_eq!(err.as_str(), "eof");
    assert_eq!(
        err.evidence().map(|e| e.bytes().to_vec()),
        Some(b"{\"seq\":2,\"te".to_vec())
    );
}

/// At a stop the gateway takes what a connection's socket already holds
/// without waiting (`Link::take_buffered`). Bytes that reached the kernel
/// after the runtime last looked at the socket count too: the runtime's
/// readiness lags the kernel until its I/O driver next turns, and a drain
/// that trusted it left them unread, to be lost when the socket closed.
#[tokio::test(flavor = "current_thread")]
async fn a_drain_takes_what_the_socket_holds_before_the_runtime_saw_it() {
    use std::io::Write;
    let cfg = TcpListenConfig::new("127.0.0.1:0".parse().expect("addr"), CodecKind::Json);
    let mut acceptor = TcpAcceptor::bind(&cfg).await.expect("bind");
    let mut sensor = std::net::TcpStream::connect(acceptor.local_addr()).expect("connect");
    let mut link = tokio::time::timeout(T, acceptor.accept())
        .await
        .expect("accepted")
        .into_link();
    sensor.write_all(b"{\"n\":1}\n").expect("write");
    let mut readings = Vec::new();
    link.next_batch(&mut readings).await.expect("first reading");
    assert_eq!(readings.len(), 1);
    // Written while this (only) thread never yields to the I/O driver.
    sensor.write_all(b"{\"n\":2}\n{\"n\":3}\n").expect("write");
    // Blocking on purpose: yielding to the runtime would let its driver see
    // the bytes, which is the case this test is not about.
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(50));
    readings.clear();
    link.take_buffered(&mut readings).expect("no error");
    let taken: Vec<String> = readings.iter().map(|r| r.data_json().to_string()).collect();
    assert_eq!(taken, [r#"{"n":2}"#, r#"{"n":3}"#]);
}
