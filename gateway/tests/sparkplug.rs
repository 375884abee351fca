//! The Sparkplug B edge node end to end (SPEC section 11): a Mosquitto
//! started here, the `edgevisor` binary with `[sparkplug]`, TCP sensors the
//! test writes to, and a Sparkplug host (`support::sparkplug_host`) that
//! decodes with the gateway's own proto types. Shown: NBIRTH, DBIRTH, DDATA
//! with continuous seq; a rebirth on NCMD; the Will NDEATH with the bdSeq
//! of the last NBIRTH after a SIGKILL; bdSeq still rising after a restart;
//! NDEATH at a clean stop; readings taken during a broker outage arrive
//! flagged historical, live ones not.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use edgevisor::sparkplug::proto::{data_type, metric};
use nix::sys::signal::Signal;
use support::sparkplug::{assert_ordered, count, env_data, historical, nbirths, reading, Rig};
use support::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn births_data_rebirth_and_deaths_with_bdseq_across_a_sigkill() {
    let Rig {
        broker: _broker,
        host,
        env,
        raw,
        gateway,
    } = Rig::start("sparkplug", "", "").await;

    for i in 1..=3 {
        env.send(&reading(&format!("a{i}"), 20.0 + f64::from(i)))
            .await;
    }
    raw.send("hello 1").await;
    host.wait("DDATA a1..a3 and raw", 20, |m| {
        (1..=3).all(|i| env_data(m, &format!("a{i}")).is_some())
            && count(m, "DDATA", Some("raw")) >= 1
    })
    .await;
    let msgs = host.all();
    assert_ordered(&msgs);
    assert_eq!(
        nbirths(&msgs)[0].bd_seq(),
        0,
        "the first connect uses bdSeq 0"
    );
    assert_eq!(
        nbirths(&msgs)[0].metric("Node Control/Rebirth").value,
        Some(metric::Value::BooleanValue(false))
    );
    let a2 = env_data(&msgs, "a2").unwrap();
    let temp = a2.metric("temp");
    assert_eq!(temp.datatype, Some(data_type::DOUBLE));
    assert_eq!(temp.value, Some(metric::Value::DoubleValue(22.0)));
    assert_eq!(temp.is_historical, None, "a live reading is not historical");
    assert!(
        temp.timestamp.unwrap() > 1_700_000_000_000,
        "the reading's time in ms"
    );
    assert_eq!(
        a2.metric("ok").value,
        Some(metric::Value::BooleanValue(true))
    );
    assert_eq!(a2.metric("missing").is_null, Some(true));
    let dbirth = msgs
        .iter()
        .find(|m| m.kind == "DBIRTH" && m.device.as_deref() == Some("env"))
        .unwrap();
    assert_eq!(
        dbirth.metric("temp").properties.as_ref().unwrap().keys,
        ["engUnit"]
    );
    let raw_data = msgs
        .iter()
        .find(|m| m.kind == "DDATA" && m.device.as_deref() == Some("raw"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw_data.text("json")).unwrap();
    assert_eq!(
        json["text"], "hello 1",
        "a sensor without fields sends data as JSON text"
    );

    // Rebirth on request: NBIRTH again (same session, same bdSeq), then
    // every device's DBIRTH, then data.
    host.rebirth("plant", "gw").await;
    host.wait("a second NBIRTH and both DBIRTHs after it", 10, |m| {
        let Some(at) = m
            .iter()
            .rposition(|m| m.kind == "NBIRTH")
            .filter(|_| nbirths(m).len() == 2)
        else {
            return false;
        };
        ["env", "raw"].iter().all(|d| {
            m[at..]
                .iter()
                .any(|m| m.kind == "DBIRTH" && m.device.as_deref() == Some(d))
        })
    })
    .await;
    env.send(&reading("b1", 30.0)).await;
    host.wait("DDATA b1", 10, |m| env_data(m, "b1").is_some())
        .await;
    let msgs = host.all();
    assert_ordered(&msgs);
    assert_eq!(
        nbirths(&msgs)[1].bd_seq(),
        0,
        "a rebirth keeps the session's bdSeq"
    );

    // SIGKILL: the broker sends the Will, NDEATH with the last NBIRTH's bdSeq.
    env.forget().await;
    raw.forget().await;
    let cfg = std::fs::read_to_string(&gateway.config).unwrap();
    let dir = gateway.kill().await;
    host.wait("NDEATH after the SIGKILL", 10, |m| {
        count(m, "NDEATH", None) == 1
    })
    .await;
    let msgs = host.all();
    let death = msgs.iter().find(|m| m.kind == "NDEATH").unwrap();
    assert_eq!(death.bd_seq(), nbirths(&msgs).last().unwrap().bd_seq());
    assert_eq!(death.payload.seq, None, "NDEATH carries no seq");

    // Restart on the same state_dir: bdSeq goes on rising.
    let mut gateway = Gateway::start_in(dir, &cfg).await;
    env.send(&reading("c1", 40.0)).await;
    host.wait("DDATA c1 from the restarted gateway", 20, |m| {
        env_data(m, "c1").is_some()
    })
    .await;
    let msgs = host.all();
    assert_ordered(&msgs);
    let births = nbirths(&msgs);
    assert_eq!(births.len(), 3);
    assert!(
        births[2].bd_seq() > births[1].bd_seq(),
        "bdSeq after the restart: {} then {}",
        births[1].bd_seq(),
        births[2].bd_seq()
    );
    let kept =
        std::fs::read_to_string(gateway.dir.0.join("state").join("sparkplug-bdseq")).unwrap();
    assert_eq!(kept.trim().parse::<u64>().unwrap(), births[2].bd_seq());

    // A clean stop publishes NDEATH itself (its DISCONNECT drops the Will).
    gateway.signal(Signal::SIGTERM);
    assert_eq!(
        gateway.exit_code(20).await,
        Some(0),
        "log:\n{}",
        gateway.log()
    );
    host.wait("NDEATH at the clean stop", 10, |m| {
        count(m, "NDEATH", None) == 2
    })
    .await;
    let msgs = host.all();
    let last_death = msgs.iter().rfind(|m| m.kind == "NDEATH").unwrap();
    assert_eq!(last_death.bd_seq(), births[2].bd_seq());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_taken_during_a_broker_outage_arrive_flagged_historical() {
    let Rig {
        mut broker,
        host,
        env,
        raw: _raw,
        gateway,
    } = Rig::start("sparkplug-history", "", "").await;
    for i in 1..=3 {
        env.send(&reading(&format!("live{i}"), 1.0)).await;
    }
    host.wait("live DDATA", 20, |m| {
        (1..=3).all(|i| env_data(m, &format!("live{i}")).is_some())
    })
    .await;

    broker.kill().await.unwrap();
    for i in 1..=5 {
        env.send(&reading(&format!("outage{i}"), 2.0)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for the gateway to read them into its outbox.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The broker keeps no subscriptions: the host subscribes again before
    // the gateway may publish.
    gateway.signal(Signal::SIGSTOP);
    broker.restart().await.unwrap();
    host.wait_subscribed(2).await;
    gateway.signal(Signal::SIGCONT);

    host.wait("the outage's readings", 30, |m| {
        (1..=5).all(|i| env_data(m, &format!("outage{i}")).is_some())
    })
    .await;
    for i in 1..=3 {
        env.send(&reading(&format!("after{i}"), 3.0)).await;
    }
    host.wait("live readings after the outage", 15, |m| {
        (1..=3).all(|i| env_data(m, &format!("after{i}")).is_some())
    })
    .await;
    let msgs = host.all();
    assert_ordered(&msgs);
    assert!(nbirths(&msgs).len() >= 2, "a new NBIRTH after the outage");
    let unflagged = |tag: &str| {
        let m = env_data(&msgs, tag).unwrap();
        m.payload.metrics.iter().all(|m| m.is_historical.is_none())
    };
    for i in 1..=3 {
        assert!(unflagged(&format!("live{i}")), "live{i} was live");
        assert!(unflagged(&format!("after{i}")), "after{i} was live");
    }
    for i in 1..=5 {
        let m = env_data(&msgs, &format!("outage{i}")).unwrap();
        assert!(historical(m), "outage{i} waited out the outage: {m:?}");
    }
    drop(gateway);
}
