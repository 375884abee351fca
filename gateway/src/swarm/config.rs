//! The gateway config of a swarm run, built as TOML tables and written
//! with `toml::to_string`, then checked with the gateway's own parser.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::fleet::Fleet;

/// A TOML table from `(key, value)` pairs.
fn toml_table<const N: usize>(pairs: [(&str, toml::Value); N]) -> toml::Table {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A table as config text.
fn config_text(table: &toml::Table) -> anyhow::Result<String> {
    toml::to_string(table).context("cannot write the swarm's config")
}

/// Writes the gateway's config (fast backoff, short quarantine, the fleet's
/// sensors) and checks it with the gateway's own parser.
pub(super) fn write(dir: &Path, port: u16, fleet: &Fleet) -> anyhow::Result<PathBuf> {
    let state_dir = dir.join("state").display().to_string();
    let head = toml_table([
        (
            "gateway",
            toml_table([("id", "swarm".into()), ("state_dir", state_dir.into())]).into(),
        ),
        (
            "upstream",
            toml_table([
                ("url", format!("mqtt://127.0.0.1:{port}").into()),
                ("keep_alive", "5s".into()),
            ])
            .into(),
        ),
        (
            "supervisor",
            toml_table([
                ("backoff_initial", "50ms".into()),
                ("backoff_max", "1s".into()),
                ("backoff_reset", "10s".into()),
                ("intensity", 10.into()),
                ("period", "10s".into()),
                ("quarantine_for", "5s".into()),
            ])
            .into(),
        ),
    ]);
    let config = format!("{}\n{}", config_text(&head)?, fleet.sensors_toml);
    let config_path = dir.join("edgevisor.toml");
    std::fs::write(&config_path, &config)?;
    crate::config::Config::parse(&config_path, &config)
        .map_err(|e| anyhow::anyhow!("generated config is invalid:\n{e}"))?;
    Ok(config_path)
}

/// The port of a `--broker` URL, read by the gateway's own parser so that
/// `--broker` takes exactly what `[upstream] url` takes.
pub(super) fn broker_port(url: &str) -> anyhow::Result<u16> {
    let text = config_text(&toml_table([
        ("gateway", toml_table([("id", "x".into())]).into()),
        ("upstream", toml_table([("url", url.into())]).into()),
    ]))?;
    let config = crate::config::Config::parse(Path::new("--broker"), &text)
        .map_err(|e| anyhow::anyhow!("invalid --broker {url}: {e}"))?;
    Ok(config.upstream.url.port)
}
