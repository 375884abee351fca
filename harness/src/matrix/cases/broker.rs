//! Faults on the upstream side: the broker or the link to it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{healed, rig, Outcome};
use crate::matrix::proxy::Link;
use crate::matrix::rig::{Rig, Setup};
use crate::swarm::config::table;

/// The broker is SIGKILLed (its state lost) and started again 3 s later.
pub async fn broker_killed(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut rig = rig(Setup::standard(), binary, dir).await?;
    rig.broker.kill().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    rig.broker.restart().await?;
    Ok(healed(rig, Duration::from_secs(2)).await.0)
}

/// The broker is frozen (SIGSTOP) for 8 s, four keep-alives of 2 s.
pub async fn broker_frozen(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    setup.upstream = table([("keep_alive", "2s".into())]);
    let rig = rig(setup, binary, dir).await?;
    rig.broker.pause()?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    rig.broker.resume()?;
    let (mut out, logs) = healed(rig, Duration::from_secs(2)).await;
    out.check(
        logs.contains("upstream"),
        "nothing in the log says the upstream link was lost",
    );
    Ok(out)
}

/// The broker goes down and up every 2 s for `span` (a minute with
/// `--long`).
pub async fn broker_flapping(binary: &Path, dir: &Path, span: Duration) -> anyhow::Result<Outcome> {
    let mut rig = rig(Setup::standard(), binary, dir).await?;
    let began = Instant::now();
    let mut flaps = 0;
    while began.elapsed() < span {
        rig.broker.kill().await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        rig.broker.restart().await?;
        flaps += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let (mut out, _) = healed(rig, Duration::ZERO).await;
    out.note = format!("{flaps} outages of 2 s");
    Ok(out)
}

/// The link to the broker carries 4 KB/s for 10 s (about a twentieth of
/// what the load needs), then recovers.
pub async fn slow_broker(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    rig.proxy.set(Link::Throttled(4096));
    tokio::time::sleep(Duration::from_secs(10)).await;
    rig.proxy.set(Link::Open);
    Ok(healed(rig, Duration::from_secs(1)).await.0)
}

/// A partition longer than the outbox holds: the bound is 1 MiB, 2,000
/// readings/s arrive while the link is cut for 15 s. The oldest telemetry
/// is dropped, and the status's drop counts must equal the loss exactly.
pub async fn partition_overflow(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    setup.rate = 200.0;
    setup.upstream = table([("outbox_max_bytes", "1MiB".into())]);
    let rig = rig(setup, binary, dir).await?;
    rig.proxy.set(Link::Cut);
    tokio::time::sleep(Duration::from_secs(15)).await;
    rig.proxy.set(Link::Open);
    let (mut out, _) = healed(rig, Duration::from_secs(1)).await;
    out.expected_loss = Some(out.tally.dropped);
    out.check(
        out.tally.dropped > 0,
        "the partition did not overflow the outbox",
    );
    for mismatch in out.tally.drop_mismatch.clone() {
        out.check(false, mismatch);
    }
    out.note = format!("dropped {} at the 1 MiB bound", out.tally.dropped);
    Ok(out)
}

/// The broker refuses the gateway's password: one clear warning, backoff,
/// no hot loop; the password fixed on disk plus SIGHUP heals it at once.
/// No log line of any life holds either secret.
pub async fn wrong_password(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let users = dir.join("mosquitto-users");
    let made = tokio::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&users)
        .args(["barn", "right-Secret-4711"])
        .status()
        .await
        .context("cannot run mosquitto_passwd (part of the mosquitto package)")?;
    anyhow::ensure!(made.success(), "mosquitto_passwd failed");
    let secret = dir.join("password");
    write_secret(&secret, "wrong-Secret-0815")?;
    let mut setup = Setup::standard();
    setup.broker = format!("allow_anonymous false\npassword_file {}", users.display());
    setup.upstream = table([
        ("username", "barn".into()),
        ("password_file", secret.display().to_string().into()),
    ]);
    setup.observer_login = Some(("barn".into(), "right-Secret-4711".into()));
    refused_then_fixed(
        setup,
        (binary, dir),
        "user name or password",
        || write_secret(&secret, "right-Secret-4711"),
        &["Secret-"],
    )
    .await
}

/// The broker refuses the gateway's certificate check (a CA it does not
/// trust): one clear warning, backoff, no hot loop; the right CA put in
/// `ca_file` plus SIGHUP heals it at once.
pub async fn untrusted_tls(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let certs = dir.join("tls");
    std::fs::create_dir_all(&certs)?;
    if !(crate::sim::certs::make_certificates(&certs)
        && crate::sim::certs::make_ca(&certs, "other"))
    {
        return Ok(Outcome::skipped(
            "needs the openssl command to make certificates",
        ));
    }
    let trust = dir.join("trusted-ca.pem");
    std::fs::copy(certs.join("other.crt"), &trust)?;
    let mut setup = Setup::standard();
    setup.tls = Some(certs.clone());
    setup.upstream = table([("ca_file", trust.display().to_string().into())]);
    refused_then_fixed(
        setup,
        (binary, dir),
        "certificate",
        || std::fs::copy(certs.join("ca.crt"), &trust).map(|_| ()),
        &[],
    )
    .await
}

/// Runs `setup`, whose broker refuses the gateway, for 8 s; then `fix`es
/// the cause on disk and sends SIGHUP. Checks that the log named `cause`
/// in one or two warnings (rate-limited, not one per attempt), that the
/// refused gateway stayed cool (no hot loop), and that no log line holds
/// any of `secrets`. Recovery runs from the fix.
async fn refused_then_fixed(
    setup: Setup,
    (binary, dir): (&Path, &Path),
    cause: &str,
    fix: impl FnOnce() -> std::io::Result<()>,
    secrets: &[&str],
) -> anyhow::Result<Outcome> {
    let mut rig = Rig::start(setup, binary, dir).await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let cpu_refused = rig.gateway().map_or(0.0, |g| g.usage().cpu_s);
    let refused_logs = rig.logs();
    let delivered_refused = rig.books().1;
    fix()?;
    rig.signal_gateway(nix::sys::signal::Signal::SIGHUP);
    let fixed = Instant::now();
    rig.first_delivery(Duration::from_secs(10)).await?;
    let recovery = rig
        .catch_up(Duration::from_secs(30))
        .await
        .map(|_| fixed.elapsed());
    let logs = rig.logs();
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    let warnings: Vec<&str> = refused_logs
        .lines()
        .filter(|l| l.contains("cannot connect upstream"))
        .collect();
    out.check(delivered_refused == 0, "readings arrived while refused");
    out.check(
        warnings.iter().any(|l| l.contains(cause)),
        format!("no warning names the cause ({cause})"),
    );
    out.check(
        warnings.len() <= 2,
        format!("{} warnings in 8 s: not rate-limited", warnings.len()),
    );
    out.check(
        cpu_refused < 1.0,
        format!("{cpu_refused:.2} CPU-s in 8 s refused: a hot loop"),
    );
    for secret in secrets {
        out.check(
            !logs.contains(secret),
            "a secret appears in the gateway's log",
        );
    }
    out.note = format!(
        "{} warning(s) naming {cause:?} in 8 s refused, {cpu_refused:.2} CPU-s; SIGHUP after the fix",
        warnings.len()
    );
    Ok(out)
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{secret}\n"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// `check` refuses topic prefixes that brokers refuse or rewrite (NATS and
/// RabbitMQ refuse or rewrite `.`; `+`, `#` and a leading `$` are MQTT's).
pub async fn refused_topic(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    for prefix in ["barn.north", "barn/+", "$SYS", "two words"] {
        let config = dir.join("prefix.toml");
        std::fs::write(
            &config,
            format!(
                "[gateway]\nid = \"g\"\nstate_dir = \"{}\"\n[upstream]\nurl = \"mqtt://127.0.0.1:1\"\ntopic_prefix = {prefix:?}\n",
                dir.join("state").display()
            ),
        )?;
        let run = tokio::process::Command::new(binary)
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .await?;
        let said = String::from_utf8_lossy(&run.stderr);
        out.check(
            run.status.code() == Some(2) && said.contains("topic_prefix"),
            format!(
                "check accepted topic_prefix {prefix:?} (exit {:?})",
                run.status.code()
            ),
        );
    }
    out.tally.drained = true;
    out.note = "check exits 2 naming topic_prefix for 4 bad prefixes".into();
    Ok(out)
}

/// One reading larger than the broker's `message_size_limit` (2 KiB), with
/// `replay_rate` set:
/// Mosquitto drops the connection over it, the gateway sets it aside with
/// a report on `crash/_outbox` (after it was alone in flight three times),
/// and everything behind it flows. The one reading is the only loss, and
/// its report must be there.
pub async fn message_too_big(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    setup.broker = "message_size_limit 2048".into();
    // With a replay rate: the refused message is then in the backlog while
    // live readings go first, and must still be found and set aside
    // (without a rate, gateway/tests/message_size.rs shows the same).
    setup.upstream = table([("replay_rate", 1000.into())]);
    // The sensors take the 4 KiB reading; only the broker refuses it.
    setup.max_frame = Some(16 * 1024);
    let rig = rig(setup, binary, dir).await?;
    let json = rig
        .fleet
        .sims
        .iter()
        .find(|s| s.codec == edgevisor_devices::codec::CodecKind::Json)
        .context("no json sensor in the mix")?;
    json.handle().inject(crate::sim::Fault::Overlong);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut out, _) = healed(rig, Duration::from_secs(1)).await;
    out.expected_loss = Some(out.tally.set_aside);
    out.check(
        out.tally.set_aside == 1,
        format!(
            "{} set-aside reports for 1 oversized reading",
            out.tally.set_aside
        ),
    );
    out.note = format!(
        "{} reading set aside and reported on crash/_outbox",
        out.tally.set_aside
    );
    Ok(out)
}
