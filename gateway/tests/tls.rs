//! The upstream over TLS (`mqtts://`, rustls with ring): a Mosquitto with a
//! TLS listener and a certificate from a CA the test makes, the gateway
//! trusting that CA through `ca_file`, and readings arriving. Without the CA
//! the gateway refuses the broker and says why. Needs the `openssl` command
//! to make the certificates; skips with a message without it.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_harness::sim::certs::{make_certificates, make_client_certificate};
use edgevisor_harness::sim::tcp::TcpSensorServer;
use edgevisor_harness::sim::SimConfig;
use nix::sys::signal::Signal;
use support::{free_port, Gateway, TempDir, Upstream};

fn mosquitto() -> Option<std::path::PathBuf> {
    edgevisor_harness::sim::broker::find_mosquitto()
}

/// A Mosquitto with a plain listener (for the test's observer) and a TLS
/// one with the test CA's server certificate, plus `tls_extra` lines for
/// the TLS listener; returns it with the two ports.
async fn tls_broker(
    binary: std::path::PathBuf,
    dir: &Path,
    tls_extra: &str,
) -> (tokio::process::Child, u16, u16) {
    let (plain, tls) = (free_port(), free_port());
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest none\nlistener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n{tls_extra}",
            dir.display()
        ),
    )
    .unwrap();
    let broker = tokio::process::Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    (broker, plain, tls)
}

/// A gateway `id` reading one lines sensor at `sensor`, publishing to
/// `mqtts://localhost:port` with `upstream_keys` added to `[upstream]`.
fn tls_gateway_config(
    dir: &Path,
    id: &str,
    port: u16,
    upstream_keys: &str,
    sensor: std::net::SocketAddr,
) -> String {
    format!(
        "[gateway]\nid = \"{id}\"\nstate_dir = \"{}\"\n\n[upstream]\nurl = \"mqtts://localhost:{port}\"\n{upstream_keys}keep_alive = \"5s\"\n\n[[sensor]]\nid = \"w\"\ntransport = \"tcp\"\naddress = \"{sensor}\"\ncodec = \"lines\"\n",
        dir.join(id).display(),
    )
}

/// Waits for five readings of gateway `id`, then stops it cleanly.
async fn delivers_then_stops(upstream: &Upstream, mut gateway: Gateway, id: &str, what: &str) {
    let topic = format!("edgevisor/{id}/telemetry/w");
    upstream
        .wait(what, 15, |m| {
            m.iter().filter(|m| m.topic == topic).count() >= 5
        })
        .await;
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_reach_a_tls_broker_whose_ca_is_configured() {
    let dir = TempDir::new("tls");
    let (Some(broker_bin), true) = (mosquitto(), make_certificates(&dir.0)) else {
        eprintln!("SKIPPED: needs the mosquitto and openssl commands");
        return;
    };
    let (mut broker, plain, tls) = tls_broker(broker_bin, &dir.0, "").await;
    let upstream = Upstream::connect(plain).await;
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 20.0))
        .await
        .unwrap();
    let ca = format!("ca_file = \"{}\"\n", dir.0.join("ca.crt").display());
    let config =
        |gateway: &str, keys: &str| tls_gateway_config(&dir.0, gateway, tls, keys, sim.addr());

    let trusted = TempDir::new("tls-trusted");
    let gateway = Gateway::start_in(trusted, &config("trusting", &ca)).await;
    delivers_then_stops(&upstream, gateway, "trusting", "readings over TLS").await;

    let untrusted = TempDir::new("tls-untrusted");
    let mut gateway = Gateway::start_in(untrusted, &config("doubting", "")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        upstream.on("doubting/telemetry/w").is_empty(),
        "an unknown CA is refused"
    );
    let log = gateway.log();
    assert!(
        log.contains("invalid peer certificate: UnknownIssuer"),
        "the log says why: {log}"
    );
    // Unreachable upstream: the stop does not wait for a drain that cannot
    // happen (the outbox keeps everything for the next start).
    let stopping = std::time::Instant::now();
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        stopping.elapsed()
    );
    let _ = broker.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_requires_a_client_certificate_gets_the_configured_one() {
    let dir = TempDir::new("mtls");
    let (Some(broker_bin), true) = (
        mosquitto(),
        make_certificates(&dir.0) && make_client_certificate(&dir.0),
    ) else {
        eprintln!("SKIPPED: needs the mosquitto and openssl commands");
        return;
    };
    let (mut broker, plain, mtls) =
        tls_broker(broker_bin, &dir.0, "require_certificate true\n").await;
    let upstream = Upstream::connect(plain).await;
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 20.0))
        .await
        .unwrap();
    let ca = format!("ca_file = \"{}\"\n", dir.0.join("ca.crt").display());
    let client = format!(
        "{ca}client_cert_file = \"{0}/client.crt\"\nclient_key_file = \"{0}/client.key\"\n",
        dir.0.display()
    );
    let config =
        |gateway: &str, keys: &str| tls_gateway_config(&dir.0, gateway, mtls, keys, sim.addr());
    let with = TempDir::new("mtls-with");
    let gateway = Gateway::start_in(with, &config("certified", &client)).await;
    delivers_then_stops(&upstream, gateway, "certified", "readings over mutual TLS").await;

    let without = TempDir::new("mtls-without");
    let gateway = Gateway::start_in(without, &config("anonymous", &ca)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(upstream.on("anonymous/telemetry/w").is_empty());
    let log = gateway.log();
    assert!(log.contains("cannot connect upstream"), "{log}");
    let _ = broker.kill().await;
}

/// `edgevisor fleet` against a broker that wants TLS and a login, as a
/// fleet's broker usually does: `mqtts://`, `--ca-file`, `--username`,
/// `--password-file`. Without the CA it never connects, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_view_reads_a_tls_broker_that_wants_a_login() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("tls-fleet");
    let (Some(broker_bin), true) = (mosquitto(), make_certificates(&dir.0)) else {
        eprintln!("SKIPPED: needs the mosquitto and openssl commands");
        return;
    };
    let users = dir.0.join("mosquitto-users");
    let made = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&users)
        .args(["viewer", "s3cret"])
        .status()
        .unwrap();
    assert!(made.success());
    let login = format!("allow_anonymous false\npassword_file {}\n", users.display());
    let (_broker, _plain, tls) = tls_broker(broker_bin, &dir.0, &login).await;
    let secret = dir.0.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 5.0))
        .await
        .unwrap();
    let keys = format!(
        "ca_file = \"{}\"\nusername = \"viewer\"\npassword_file = \"{}\"\n",
        dir.0.join("ca.crt").display(),
        secret.display()
    );
    let config = tls_gateway_config(&dir.0, "barn-tls", tls, &keys, sim.addr());
    let gateway = Gateway::start_in(TempDir::new("tls-fleet-gw"), &config).await;

    let fleet = |with_ca: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgevisor"));
        command
            .args(["fleet", "--once", "--settle", "3s", "--broker"])
            .arg(format!("mqtts://localhost:{tls}"))
            .args(["--username", "viewer", "--password-file"])
            .arg(&secret);
        if with_ca {
            command.arg("--ca-file").arg(dir.0.join("ca.crt"));
        }
        command.output()
    };
    let mut seen = String::new();
    for _ in 0..5 {
        let out = fleet(true).await.unwrap();
        seen = String::from_utf8_lossy(&out.stdout).into_owned();
        if seen
            .lines()
            .any(|l| l.starts_with("barn-tls") && l.contains("online"))
        {
            break;
        }
    }
    assert!(
        seen.lines()
            .any(|l| l.starts_with("barn-tls") && l.contains("online")),
        "the view sees the gateway over TLS with a login:\n{seen}\nlog:\n{}",
        gateway.log()
    );
    let refused = fleet(false).await.unwrap();
    assert_eq!(
        refused.status.code(),
        Some(1),
        "an unknown CA: no connection"
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("certificate") || said.contains("UnknownIssuer"),
        "{said}"
    );
}
