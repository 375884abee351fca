//! The Modbus slave simulator over a real TCP socket and a real pty:
//! hand-written request bytes in, exact reply bytes out.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

use std::path::Path;
use std::time::Duration;

use crc::{Crc, CRC_16_MODBUS};
use edgevisor_harness::sim::modbus::{Animation, Fault, FaultMode, ModbusSim, Table, UnitCounts};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::net::TcpStream;
use tokio::time::timeout;

const SOON: Duration = Duration::from_secs(2);
const SILENCE: Duration = Duration::from_millis(150);

/// Appends the CRC, low byte first, computed here independently.
fn with_crc(bytes: &[u8]) -> Vec<u8> {
    let crc = Crc::<u16>::new(&CRC_16_MODBUS).checksum(bytes);
    [bytes, &[crc as u8, (crc >> 8) as u8]].concat()
}

fn sim() -> ModbusSim {
    let sim = ModbusSim::with_table_size(&[1, 2], 16);
    sim.set_registers(1, Table::Holding, 0, &[0x1234, 0x5678])
        .unwrap();
    sim
}

async fn read_n(r: &mut (impl AsyncRead + Unpin), n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(SOON, r.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

async fn assert_silent(r: &mut (impl AsyncRead + Unpin)) {
    let mut buf = [0u8; 64];
    let got = timeout(SILENCE, r.read(&mut buf)).await;
    assert!(got.is_err(), "expected silence, got {got:?}");
}

/// The slave side, as the gateway would open it.
struct Line {
    tx: pipe::Sender,
    rx: pipe::Receiver,
}

impl Line {
    fn open(path: &Path) -> Line {
        let mut o = pipe::OpenOptions::new();
        o.unchecked(true).read_write(true);
        Line {
            tx: o.open_sender(path).unwrap(),
            rx: o.open_receiver(path).unwrap(),
        }
    }

    async fn ask(&mut self, request: &[u8], reply_len: usize) -> Vec<u8> {
        self.tx.write_all(request).await.unwrap();
        read_n(&mut self.rx, reply_len).await
    }
}

#[tokio::test]
async fn modbus_rtu_reads_holding_registers_with_crc_low_byte_first() {
    let rtu = sim().serve_rtu(None).await.unwrap();
    let mut line = Line::open(&rtu.path().unwrap());
    let reply = line
        .ask(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xc4, 0x0b], 9)
        .await;
    let body = [0x01, 0x03, 0x04, 0x12, 0x34, 0x56, 0x78];
    let crc = Crc::<u16>::new(&CRC_16_MODBUS).checksum(&body);
    assert_eq!(reply[..7], body);
    assert_eq!(reply[7..], [(crc & 0xff) as u8, (crc >> 8) as u8]);
}

#[tokio::test]
async fn modbus_rtu_exceptions_and_bits() {
    let s = sim();
    s.set_bits(1, Table::Discrete, 0, &[true, false, false, true])
        .unwrap();
    let rtu = s.serve_rtu(None).await.unwrap();
    let mut line = Line::open(&rtu.path().unwrap());
    let cases: [(&[u8], &[u8]); 4] = [
        (&[1, 3, 0, 0, 0, 0], &[1, 0x83, 3]),      // quantity 0
        (&[1, 4, 0, 15, 0, 2], &[1, 0x84, 2]),     // past the end
        (&[1, 0x2b, 0x0e, 1, 0], &[1, 0xab, 1]),   // unsupported
        (&[1, 2, 0, 0, 0, 4], &[1, 2, 1, 0b1001]), // bits, LSB first
    ];
    for (req, want) in cases {
        let reply = line.ask(&with_crc(req), want.len() + 2).await;
        assert_eq!(reply, with_crc(want), "request {req:02x?}");
    }
    let c = s.counts(1);
    assert_eq!((c.requests, c.replies, c.exceptions), (4, 1, 3));
}

#[tokio::test]
async fn modbus_rtu_ignores_other_units_bad_crc_and_garbage_then_resyncs() {
    let rtu = sim().serve_rtu(None).await.unwrap();
    let mut line = Line::open(&rtu.path().unwrap());
    let good = with_crc(&[1, 3, 0, 0, 0, 1]);
    let mut bad = good.clone();
    bad[7] ^= 0x55;
    for req in [
        with_crc(&[9, 3, 0, 0, 0, 1]),
        with_crc(&[0, 3, 0, 0, 0, 1]),
        bad,
        vec![0xff, 0x42, 0x17],
    ] {
        line.tx.write_all(&req).await.unwrap();
        assert_silent(&mut line.rx).await;
    }
    assert_eq!(rtu.discarded(), 2);
    assert_eq!(line.ask(&good, 7).await, with_crc(&[1, 3, 2, 0x12, 0x34]));
}

#[tokio::test]
async fn modbus_rtu_counter_goes_up_in_every_reply_that_reads_it() {
    let s = sim().with_counter(2, Table::Input, 10).unwrap();
    let rtu = s.serve_rtu(None).await.unwrap();
    let mut line = Line::open(&rtu.path().unwrap());
    for n in 1..=3u8 {
        let reply = line.ask(&with_crc(&[2, 4, 0, 10, 0, 2]), 9).await;
        assert_eq!(reply, with_crc(&[2, 4, 4, 0, 0, 0, n]));
    }
    let want = UnitCounts {
        requests: 3,
        replies: 3,
        last_counter: 3,
        ..UnitCounts::default()
    };
    assert_eq!(s.counts(2), want);
}

#[tokio::test]
async fn modbus_rtu_faults() {
    let s = sim();
    let rtu = s.serve_rtu(None).await.unwrap();
    let mut line = Line::open(&rtu.path().unwrap());
    let req = with_crc(&[1, 3, 0, 1, 0, 1]);
    let good = with_crc(&[1, 3, 2, 0x56, 0x78]);
    let set = |f| s.set_fault(1, Some((f, FaultMode::Always))).unwrap();

    set(Fault::BadCrc);
    let reply = line.ask(&req, 7).await;
    assert_eq!(reply[..5], good[..5]);
    assert_ne!(reply[5..], good[5..]);
    set(Fault::WrongUnit);
    assert_eq!(line.ask(&req, 7).await, with_crc(&[2, 3, 2, 0x56, 0x78]));
    set(Fault::Exception(6));
    assert_eq!(line.ask(&req, 5).await, with_crc(&[1, 0x83, 6]));
    set(Fault::Slow(Duration::from_millis(300)));
    line.tx.write_all(&req).await.unwrap();
    assert_silent(&mut line.rx).await;
    assert_eq!(read_n(&mut line.rx, 7).await, good);

    s.set_fault(1, Some((Fault::Silent, FaultMode::OneIn(2))))
        .unwrap();
    assert_eq!(line.ask(&req, 7).await, good);
    line.tx.write_all(&req).await.unwrap();
    assert_silent(&mut line.rx).await;
    assert_eq!(line.ask(&req, 7).await, good);
    let c = s.counts(1);
    assert_eq!(
        (c.requests, c.faults, c.replies, c.exceptions),
        (7, 5, 3, 1)
    );
}

#[tokio::test]
async fn modbus_rtu_unplug_and_replug_follow_the_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("usb-modbus");
    let s = sim();
    let rtu = s.serve_rtu(Some(&link)).await.unwrap();
    let first = rtu.slave_path().unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), first);
    let mut line = Line::open(&link);
    let req = with_crc(&[1, 3, 0, 0, 0, 1]);
    assert_eq!(line.ask(&req, 7).await.len(), 7);

    rtu.unplug().await;
    assert!(!link.exists() && rtu.slave_path().is_none());
    let mut buf = [0u8; 8];
    let end = timeout(SOON, line.rx.read(&mut buf)).await.unwrap();
    assert!(
        matches!(end, Ok(0) | Err(_)),
        "reader sees the end: {end:?}"
    );

    let second = rtu.replug().await.unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), second);
    let mut line = Line::open(&link);
    assert_eq!(line.ask(&req, 7).await, with_crc(&[1, 3, 2, 0x12, 0x34]));
    drop(rtu);
    assert!(!link.exists(), "dropping the simulator removes its link");
}

async fn tcp_ask(stream: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    stream.write_all(request).await.unwrap();
    let mut reply = read_n(stream, 6).await;
    let len = usize::from(u16::from_be_bytes([reply[4], reply[5]]));
    reply.extend(read_n(stream, len).await);
    reply
}

#[tokio::test]
async fn modbus_tcp_reads_writes_and_exceptions() {
    let s = sim();
    let tcp = s.serve_tcp().await.unwrap();
    let mut a = TcpStream::connect(tcp.addr()).await.unwrap();
    let mut b = TcpStream::connect(tcp.addr()).await.unwrap();
    let read = [0, 7, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2];
    let want = [0, 7, 0, 0, 0, 7, 1, 3, 4, 0x12, 0x34, 0x56, 0x78];
    assert_eq!(tcp_ask(&mut a, &read).await, want);
    assert_eq!(tcp_ask(&mut b, &read).await, want, "a second connection");
    let write = [0, 8, 0, 0, 0, 11, 1, 0x10, 0, 2, 0, 2, 4, 0xab, 0xcd, 0, 1];
    assert_eq!(
        tcp_ask(&mut a, &write).await,
        [0, 8, 0, 0, 0, 6, 1, 0x10, 0, 2, 0, 2]
    );
    assert_eq!(
        s.registers(1, Table::Holding, 1, 3).unwrap(),
        [0x5678, 0xabcd, 1]
    );
    let too_many = [0, 9, 0, 0, 0, 6, 2, 3, 0, 0, 0, 126];
    assert_eq!(
        tcp_ask(&mut b, &too_many).await,
        [0, 9, 0, 0, 0, 3, 2, 0x83, 3]
    );
}

#[tokio::test]
async fn modbus_tcp_unknown_units_get_silence_or_exception_0b() {
    let silent = sim().serve_tcp().await.unwrap();
    let mut c = TcpStream::connect(silent.addr()).await.unwrap();
    let req = [0, 1, 0, 0, 0, 6, 7, 4, 0, 0, 0, 1];
    c.write_all(&req).await.unwrap();
    assert_silent(&mut c).await;

    let gw = sim()
        .with_unknown_unit_exception()
        .serve_tcp()
        .await
        .unwrap();
    let mut c = TcpStream::connect(gw.addr()).await.unwrap();
    assert_eq!(
        tcp_ask(&mut c, &req).await,
        [0, 1, 0, 0, 0, 3, 7, 0x84, 0x0b]
    );
}

// Several workers: the counts must already include a reply the master read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_tcp_faults_keep_the_transaction_id_and_the_counter_counts() {
    let s = sim().with_counter(1, Table::Holding, 4).unwrap();
    let tcp = s.serve_tcp().await.unwrap();
    let mut c = TcpStream::connect(tcp.addr()).await.unwrap();
    let req = |tid: u8| [0, tid, 0, 0, 0, 6, 1, 3, 0, 4, 0, 2];
    let reply = |tid: u8, n: u8| [0, tid, 0, 0, 0, 7, 1, 3, 4, 0, 0, 0, n];
    assert_eq!(tcp_ask(&mut c, &req(1)).await, reply(1, 1));

    s.set_fault(
        1,
        Some((Fault::Slow(Duration::from_millis(300)), FaultMode::Always)),
    )
    .unwrap();
    c.write_all(&req(2)).await.unwrap();
    assert_silent(&mut c).await; // the master gives up ...
    s.set_fault(1, None).unwrap();
    c.write_all(&req(3)).await.unwrap(); // ... and asks again
    assert_eq!(
        read_n(&mut c, 13).await,
        reply(2, 2),
        "late, with its own id"
    );
    assert_eq!(read_n(&mut c, 13).await, reply(3, 3));

    s.set_fault(1, Some((Fault::WrongUnit, FaultMode::Always)))
        .unwrap();
    let wrong = tcp_ask(&mut c, &req(4)).await;
    assert_eq!(wrong[6], 2);
    s.set_fault(1, Some((Fault::Silent, FaultMode::Always)))
        .unwrap();
    c.write_all(&req(5)).await.unwrap();
    assert_silent(&mut c).await;
    s.set_fault(1, Some((Fault::BadCrc, FaultMode::Always)))
        .unwrap();
    c.write_all(&req(6)).await.unwrap();
    let mut junk = [0u8; 4];
    timeout(SOON, c.read_exact(&mut junk))
        .await
        .unwrap()
        .unwrap();

    let c = s.counts(1);
    assert_eq!(
        (c.requests, c.replies, c.faults, c.last_counter),
        (6, 3, 4, 4)
    );
}

#[tokio::test(start_paused = true)]
async fn modbus_animations_tick_on_their_own() {
    let s = sim();
    s.animate(2, Table::Input, 3, Animation::Count).unwrap();
    let _running = s.animate_every(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.registers(2, Table::Input, 3, 1).unwrap(), [2]);
}
