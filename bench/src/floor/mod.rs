//! The floor: the least a forwarder can do for the same job, to measure
//! edgevisor against. One tokio task per TCP connection reads JSON lines
//! (each checked to be a JSON object, as edgevisor's `json` codec does);
//! one writer task wraps each in edgevisor's telemetry envelope, encodes
//! the PUBLISH (QoS 1) packets of everything waiting into one buffer and
//! writes it with one `write_all`; one task reads the PUBACKs. No
//! durability, no supervision, no config: a reading lost in a crash is
//! lost. Run by the bench as `edgevisor-bench floor ...`.

mod publisher;

use std::net::SocketAddr;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use clap::Args;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Flags of the floor forwarder.
#[derive(Args)]
pub struct FloorArgs {
    /// Where sensors connect.
    #[arg(long)]
    listen: SocketAddr,
    /// The MQTT broker.
    #[arg(long)]
    broker: SocketAddr,
    /// The topic readings are published on.
    #[arg(long)]
    topic: String,
    /// `gateway` of the envelope.
    #[arg(long, default_value = "bench")]
    gateway: String,
    /// `sensor` of the envelope.
    #[arg(long, default_value = "load")]
    sensor: String,
}

/// Runs the floor forwarder until killed.
pub fn main(args: FloorArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: FloorArgs) -> anyhow::Result<()> {
    let envelope = publisher::Envelope::new(&args.gateway, &args.sensor, &args.topic)?;
    let (tx, rx) = mpsc::channel::<Vec<Bytes>>(4096);
    let mut publisher = tokio::spawn(publisher::run(args.broker, envelope, rx));
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("floor listening on {}", args.listen))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("floor accepting")?;
                tokio::spawn(connection(stream, tx.clone()));
            }
            ended = &mut publisher => return ended.context("floor publisher")?,
        }
    }
}

/// Reads lines from one sensor connection and hands each read's complete
/// lines to the publisher as one batch.
async fn connection(mut stream: TcpStream, tx: mpsc::Sender<Vec<Bytes>>) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut lines = Vec::new();
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(end + 1).freeze();
            let line = line.slice(..line.len() - 1);
            let line = match line.last() {
                Some(b'\r') => line.slice(..line.len() - 1),
                _ => line,
            };
            if is_json_object(&line) {
                lines.push(line);
            }
        }
        if !lines.is_empty() && tx.send(lines).await.is_err() {
            return;
        }
        if buf.len() > 64 * 1024 {
            return; // a "line" this long is not a reading: drop the connection
        }
    }
}

/// What edgevisor's `json` codec accepts: one JSON object.
fn is_json_object(line: &[u8]) -> bool {
    line.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_pass() {
        assert!(is_json_object(br#"{"conn":1,"n":2,"v":21.5}"#));
        assert!(!is_json_object(b"[1,2]"));
        assert!(!is_json_object(br#"{"conn":1"#));
    }
}
