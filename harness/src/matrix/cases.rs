//! The fault matrix's cases. Each sets up a [`Rig`], injects its fault
//! under load, lets it heal, and returns what the books say plus the case's
//! own checks (a clear log line, no hot loop, a drop count that matches).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::proxy::Link;
use super::rig::{Rig, Setup, Tally};
use crate::sim::Fault;
use crate::swarm::config::table;
use crate::swarm::fleet::Kind;

/// What a case established.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The books once drained.
    pub tally: Tally,
    /// From the end of the fault until everything accepted by then arrived.
    pub recovery: Option<Duration>,
    /// Loss is allowed up to what the gateway reported dropped at its
    /// outbox bound (a documented drop policy), and must equal it.
    pub drop_policy: bool,
    /// The case's own checks that failed.
    pub failures: Vec<String>,
    /// One line of what was seen, for the report.
    pub note: String,
}

impl Outcome {
    fn from(tally: Tally) -> Self {
        Self {
            tally,
            ..Self::default()
        }
    }

    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }
}

/// The load every case runs under before its fault.
const WARM_UP: Duration = Duration::from_secs(3);

async fn rig(setup: Setup, binary: &Path, dir: &Path) -> anyhow::Result<Rig> {
    let rig = Rig::start(setup, binary, dir).await?;
    rig.first_delivery(Duration::from_secs(15)).await?;
    tokio::time::sleep(WARM_UP).await;
    Ok(rig)
}

/// Plain load with nothing wrong; the gateway runs without journald (no
/// `JOURNAL_STREAM`, no journal socket in its environment), logging to
/// stderr.
pub async fn journald_absent(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let logs = rig.logs();
    let mut out = Outcome::from(rig.finish().await);
    out.check(!logs.contains("panicked"), "the gateway panicked");
    out.note = "logs to stderr when journald is absent".into();
    Ok(out)
}

/// The broker is SIGKILLed (its state lost) and started again 3 s later.
pub async fn broker_killed(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut rig = rig(Setup::standard(), binary, dir).await?;
    rig.broker.kill().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    rig.broker.restart().await?;
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    Ok(out)
}

/// The broker is frozen (SIGSTOP) for 8 s, four keep-alives of 2 s.
pub async fn broker_frozen(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    setup.upstream = table([("keep_alive", "2s".into())]);
    let rig = rig(setup, binary, dir).await?;
    rig.broker.pause()?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    rig.broker.resume()?;
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = rig.logs();
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
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
    let recovery = rig.catch_up(Duration::from_secs(60)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
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
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    Ok(out)
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
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    out.drop_policy = true;
    out.check(out.tally.dropped > 0, "the partition did not overflow the outbox");
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
    let mut rig = Rig::start(setup, binary, dir).await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let cpu_refused = rig.gateway().map_or(0.0, |g| g.usage().cpu_s);
    let refused_logs = rig.logs();
    write_secret(&secret, "right-Secret-4711")?;
    if let Some(pid) = rig.gateway().and_then(|g| g.pid()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0)),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
    let fixed = Instant::now();
    rig.first_delivery(Duration::from_secs(10)).await?;
    let recovery = rig
        .catch_up(Duration::from_secs(30))
        .await
        .map(|_| fixed.elapsed());
    let logs = rig.logs();
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    let warnings = refused_logs
        .lines()
        .filter(|l| l.contains("user name or password"))
        .count();
    out.check(warnings >= 1, "no log line names the password as the cause");
    out.check(
        warnings <= 2,
        format!("{warnings} warnings in 8 s: not rate-limited"),
    );
    out.check(
        cpu_refused < 1.0,
        format!("{cpu_refused:.2} CPU-s in 8 s refused: a hot loop"),
    );
    out.check(
        !logs.contains("Secret-"),
        "a password appears in the gateway's log",
    );
    out.note = format!("{warnings} warning(s) in 8 s refused, {cpu_refused:.2} CPU-s; SIGHUP after the fix");
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
            format!("check accepted topic_prefix {prefix:?} (exit {:?})", run.status.code()),
        );
    }
    out.tally.drained = true;
    out.note = "check exits 2 naming topic_prefix for 4 bad prefixes".into();
    Ok(out)
}

/// Four serial sensors on ptys are unplugged and re-plugged every 2 s for
/// 10 s, six TCP sensors beside them.
pub async fn serial_replug(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    (setup.mix.tcp, setup.mix.serial) = (6, 4);
    let rig = rig(setup, binary, dir).await?;
    for _ in 0..5 {
        for sim in rig.fleet.sims.iter().filter(|s| s.kind == Kind::Serial) {
            sim.handle().inject(Fault::Remove);
            sim.handle().inject(Fault::Replug);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    let io = out.tally.crashes.get("io").copied().unwrap_or(0)
        + out.tally.crashes.get("eof").copied().unwrap_or(0);
    out.check(io > 0, "no io or eof crash report for an unplugged port");
    out.note = format!("{io} io/eof crash reports for 20 unplugs");
    Ok(out)
}

/// Half the sensors fall silent for 12 s, past their 10 s `read_timeout`.
pub async fn silent_sensors(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    for sim in rig.fleet.sims.iter().step_by(2) {
        sim.handle().inject(Fault::Silence(Duration::from_secs(12)));
    }
    tokio::time::sleep(Duration::from_secs(14)).await;
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    let timeouts = out.tally.crashes.get("timeout").copied().unwrap_or(0);
    out.check(timeouts >= 5, format!("{timeouts} timeout crash reports for 5 silent sensors"));
    out.note = format!("{timeouts} timeout crash reports");
    Ok(out)
}

/// Half the sensors send a corrupt frame every 100 ms for 6 s: crash
/// reports and quarantines for them, nothing for the other half.
pub async fn corrupt_storm(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(6) {
        for sim in rig.fleet.sims.iter().step_by(2) {
            sim.handle().inject(Fault::BadChecksum);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    let healthy: Vec<String> = rig
        .fleet
        .sims
        .iter()
        .skip(1)
        .step_by(2)
        .map(|s| s.sensor.clone())
        .collect();
    let hit_healthy = {
        let books = rig.account.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        books
            .crashes_by_sensor
            .keys()
            .filter(|(sensor, _)| healthy.contains(sensor))
            .count()
    };
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    let corrupt = out.tally.crashes.get("corrupt_frame").copied().unwrap_or(0);
    out.check(corrupt > 0, "no corrupt_frame crash report");
    out.check(
        hit_healthy == 0,
        format!("{hit_healthy} healthy sensors got crash reports"),
    );
    out.note = format!("{corrupt} corrupt_frame reports, healthy half untouched");
    Ok(out)
}

/// The gateway is SIGKILLed under load 20 times in a row, 1.5 s apart,
/// and started again each time.
pub async fn gateway_sigkill(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut rig = rig(Setup::standard(), binary, dir).await?;
    for _ in 0..20 {
        rig.kill_gateway().await;
        rig.start_gateway()?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    out.note = format!("20 kills, {} duplicates (at-least-once)", out.tally.duplicates);
    Ok(out)
}

/// SIGTERM under load: the gateway must exit within 15 s (tree stop plus
/// at most 10 s of outbox drain); what it did not deliver is delivered by
/// the next start.
pub async fn sigterm_under_load(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    setup.rate = 100.0;
    let mut rig = rig(setup, binary, dir).await?;
    let took = rig.terminate_gateway(Duration::from_secs(15)).await;
    rig.start_gateway()?;
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    out.check(took.is_some(), "the gateway did not exit within 15 s of SIGTERM");
    out.note = match took {
        Some(t) => format!("exited {:.2} s after SIGTERM", t.as_secs_f64()),
        None => "killed after 15 s".into(),
    };
    Ok(out)
}

/// An hour (`span`) at 1,000 sensors (a `tcp-listen` sensor), RSS sampled
/// every minute: it must stay flat.
pub async fn soak(binary: &Path, dir: &Path, span: Duration) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    (setup.mix.tcp, setup.mix.listen, setup.rate) = (0, 1000, 1.0);
    let mut rig = rig(setup, binary, dir).await?;
    let began = Instant::now();
    let mut samples = Vec::new();
    while began.elapsed() < span {
        tokio::time::sleep(Duration::from_secs(60).min(span)).await;
        if let Some(g) = rig.gateway() {
            samples.push(g.rss_bytes());
        }
    }
    let mut out = Outcome::from(rig.finish().await);
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let (first, last) = (
        samples.first().copied().unwrap_or(0),
        samples.last().copied().unwrap_or(0),
    );
    let max = samples.iter().copied().max().unwrap_or(0);
    out.check(
        mib(last) <= mib(first) * 1.2 + 2.0,
        format!("RSS grew from {:.1} to {:.1} MiB", mib(first), mib(last)),
    );
    out.note = format!(
        "RSS per minute (MiB): {}; max {:.1}",
        samples
            .iter()
            .map(|b| format!("{:.1}", mib(*b)))
            .collect::<Vec<_>>()
            .join(" "),
        mib(max)
    );
    Ok(out)
}
