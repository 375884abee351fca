//! A clean stop leaves nothing running: the service, run in this process
//! against a real Mosquitto with a live sensor link, gets SIGTERM, and once
//! `service::run` has returned no tokio task of it is alive (counted with
//! the runtime's own metrics). Its own test binary, because it raises
//! SIGTERM in the process.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use edgevisor::config::Config;
use edgevisor::service::{self, Ending};
use support::{Mosquitto, TempDir, Upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_task_of_the_service() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    // A sensor that accepts the gateway's connection and stays silent.
    let sensor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir::new("shutdown");
    let path = dir.0.join("edgevisor.toml");
    let mut text = toml::Table::new();
    text.insert("gateway".into(), toml::toml! { id = "gw" }.into());
    text["gateway"].as_table_mut().unwrap().insert(
        "state_dir".into(),
        dir.0.join("state").display().to_string().into(),
    );
    let mut upstream_table = toml::Table::new();
    upstream_table.insert(
        "url".into(),
        format!("mqtt://127.0.0.1:{}", broker.port()).into(),
    );
    text.insert("upstream".into(), upstream_table.into());
    let mut sensor_table = toml::toml! {
        id = "s"
        transport = "tcp"
        codec = "lines"
        read_timeout = "1h"
    };
    sensor_table.insert(
        "address".into(),
        sensor.local_addr().unwrap().to_string().into(),
    );
    text.insert(
        "sensor".into(),
        toml::Value::Array(vec![sensor_table.into()]),
    );
    std::fs::write(&path, toml::to_string(&text).unwrap()).unwrap();
    let config = Config::load(&path).unwrap();

    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let stop = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while upstream.on("status").is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            metrics.num_alive_tasks() > before + 3,
            "the service runs tasks of its own"
        );
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
    };
    let (ending, ()) = tokio::join!(service::run(config), stop);
    assert_eq!(ending.unwrap(), Ending::Clean);
    // Aborted or finished tasks are freed once the runtime has seen them end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while metrics.num_alive_tasks() > before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        before,
        "tasks of the service still alive after a clean stop"
    );
    drop(sensor);
}
