//! The Sparkplug edge node and the state of others (SPEC section 11): with
//! `primary_host` it publishes only while that host's retained STATE says
//! online (readings meanwhile arrive later, flagged historical; a host
//! going offline gets NDEATH and a new session with the next bdSeq), and a
//! quarantined sensor's device gets its DDEATH. Against a Mosquitto
//! started here, with the host of `support::sparkplug`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use support::sparkplug::{assert_ordered, count, env_data, historical, nbirths, reading, Rig};
use support::Upstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_primary_host_the_node_publishes_only_while_it_is_online() {
    let Rig {
        broker,
        host,
        env,
        raw: _raw,
        mut gateway,
    } = Rig::start("sparkplug-primary", "primary_host = \"scada\"", "").await;
    let plain = Upstream::connect(broker.port()).await;

    // No STATE yet: the reading goes out on the plain topic only.
    env.send(&reading("p1", 1.0)).await;
    plain
        .wait("p1 on the plain topic", 20, |m| {
            m.iter().any(|m| m.topic.ends_with("telemetry/env"))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        host.all().iter().all(|m| !m.numbered()),
        "published before the primary host was online"
    );

    host.state("scada", true).await;
    host.wait("NBIRTH and p1 once the host is online", 15, |m| {
        env_data(m, "p1").is_some()
    })
    .await;
    let msgs = host.all();
    assert_ordered(&msgs);
    assert!(
        historical(env_data(&msgs, "p1").unwrap()),
        "p1 waited for the host"
    );
    let first_bd_seq = nbirths(&msgs)[0].bd_seq();

    // The host goes offline: NDEATH of that session, then silence.
    host.state("scada", false).await;
    host.wait("NDEATH when the host goes offline", 15, |m| {
        count(m, "NDEATH", None) == 1
    })
    .await;
    let death = host.all().into_iter().find(|m| m.kind == "NDEATH").unwrap();
    assert_eq!(death.bd_seq(), first_bd_seq);
    env.send(&reading("p2", 2.0)).await;
    plain
        .wait("p2 on the plain topic", 20, |m| {
            m.iter()
                .filter(|m| m.topic.ends_with("telemetry/env"))
                .count()
                >= 2
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        env_data(&host.all(), "p2").is_none(),
        "published while the primary host was offline"
    );

    // Online again: a new session (a higher bdSeq), p2 as historical.
    host.state("scada", true).await;
    host.wait("p2 after the host is back", 15, |m| {
        env_data(m, "p2").is_some()
    })
    .await;
    let msgs = host.all();
    assert_ordered(&msgs);
    let births = nbirths(&msgs);
    assert_eq!(births.len(), 2);
    assert!(
        births[1].bd_seq() > first_bd_seq,
        "a new session has a new bdSeq"
    );
    assert!(historical(env_data(&msgs, "p2").unwrap()));

    gateway.signal(Signal::SIGTERM);
    assert_eq!(
        gateway.exit_code(20).await,
        Some(0),
        "log:\n{}",
        gateway.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_sensor_gets_its_ddeath() {
    let Rig {
        broker: _broker,
        host,
        env,
        raw: _raw,
        gateway,
    } = Rig::start("sparkplug-ddeath", "", "intensity = 1\nperiod = \"60s\"").await;
    env.send(&reading("q1", 1.0)).await;
    host.wait("DDATA q1", 20, |m| env_data(m, "q1").is_some())
        .await;

    // The sensor goes away for good: its link crashes, fails to restart
    // and is quarantined.
    env.stop().await;
    host.wait("DDEATH env", 20, |m| count(m, "DDEATH", Some("env")) == 1)
        .await;
    let msgs = host.all();
    assert_ordered(&msgs);
    let died = msgs.iter().position(|m| m.kind == "DDEATH").unwrap();
    assert!(
        !msgs[died..]
            .iter()
            .any(|m| m.kind == "DDATA" && m.device.as_deref() == Some("env")),
        "no data for a dead device"
    );
    assert!(
        gateway.log().contains("quarantin"),
        "log:\n{}",
        gateway.log()
    );
}
