//! The gateway config of a swarm or demo run, built as TOML tables and
//! written with `toml::to_string`, then checked by the gateway itself
//! (`edgevisor check`), so the harness needs none of the gateway's code.

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use toml::Table;

/// A TOML table from `(key, value)` pairs.
pub fn table<const N: usize>(pairs: [(&str, toml::Value); N]) -> Table {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The parts of a run's gateway config that differ between runs.
pub struct RunConfig<'a> {
    /// `[gateway] id`, the name in the topics.
    pub gateway_id: &'a str,
    /// Where the run's state lives; `state_dir` is `state` below it, and
    /// the config is written here as `edgevisor.toml`.
    pub dir: &'a Path,
    /// The upstream broker, on 127.0.0.1.
    pub broker_port: u16,
    /// The `[supervisor]` keys.
    pub supervisor: Table,
    /// The `[[group]]` tables.
    pub groups: Vec<Table>,
    /// The `[[sensor]]` tables.
    pub sensors: &'a [Table],
    /// `[upstream]` keys beyond the URL and keep-alive (the fault matrix's
    /// outbox bounds and credentials), replacing those two when given.
    pub upstream: Table,
}

impl<'a> RunConfig<'a> {
    /// The config of a run reading `sensors`, with the gateway's own
    /// supervisor defaults and no groups. The demo and the swarm differ only
    /// in what they add with `supervisor` and `groups`.
    pub fn new(gateway_id: &'a str, dir: &'a Path, broker_port: u16, sensors: &'a [Table]) -> Self {
        Self {
            gateway_id,
            dir,
            broker_port,
            supervisor: Table::new(),
            groups: Vec::new(),
            sensors,
            upstream: Table::new(),
        }
    }

    /// With these `[upstream]` keys added.
    pub fn upstream(self, upstream: Table) -> Self {
        Self { upstream, ..self }
    }

    /// With these `[supervisor]` keys.
    pub fn supervisor(self, supervisor: Table) -> Self {
        Self { supervisor, ..self }
    }

    /// With these `[[group]]` tables.
    pub fn groups(self, groups: Vec<Table>) -> Self {
        Self { groups, ..self }
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let state_dir = self.dir.join("state").display().to_string();
        let mut upstream = table([
            (
                "url",
                format!("mqtt://127.0.0.1:{}", self.broker_port).into(),
            ),
            ("keep_alive", "5s".into()),
        ]);
        upstream.extend(self.upstream.clone());
        let mut doc = table([
            (
                "gateway",
                table([
                    ("id", self.gateway_id.into()),
                    ("state_dir", state_dir.into()),
                ])
                .into(),
            ),
            ("upstream", upstream.into()),
            ("supervisor", self.supervisor.clone().into()),
        ]);
        for (key, tables) in [("group", &self.groups[..]), ("sensor", self.sensors)] {
            if !tables.is_empty() {
                let array = tables.iter().cloned().map(toml::Value::Table).collect();
                doc.insert(key.to_string(), toml::Value::Array(array));
            }
        }
        toml::to_string(&doc).context("cannot write the run's gateway config")
    }

    /// Writes the config to `edgevisor.toml` in the run's directory and has
    /// `binary` (the gateway) check it; returns its path.
    pub async fn write(&self, binary: &Path) -> anyhow::Result<PathBuf> {
        let path = self.dir.join("edgevisor.toml");
        std::fs::write(&path, self.to_toml()?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        super::process::check_config(binary, &path).await?;
        Ok(path)
    }
}

/// The port of a `--broker` URL (`mqtt://host[:port]`).
pub(super) fn broker_port(url: &str) -> anyhow::Result<u16> {
    let url = edgevisor_devices::link::mqtt::plain_url(url)
        .with_context(|| format!("invalid --broker {url}"))?;
    Ok(url.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_config_is_toml_with_every_table() {
        let sensors = [table([("id", "a".into()), ("transport", "tcp".into())])];
        let config = RunConfig {
            gateway_id: "swarm",
            dir: Path::new("/tmp/run \"quoted\""),
            broker_port: 1883,
            supervisor: table([("intensity", 10.into())]),
            groups: vec![table([("id", "g".into())])],
            sensors: &sensors,
            upstream: table([("keep_alive", "2s".into())]),
        };
        let text = config.to_toml().expect("serialises");
        let back: Table = toml::from_str(&text).expect("parses back");
        assert_eq!(back["gateway"]["id"].as_str(), Some("swarm"));
        assert_eq!(
            back["gateway"]["state_dir"].as_str(),
            Some("/tmp/run \"quoted\"/state")
        );
        assert_eq!(
            back["upstream"]["url"].as_str(),
            Some("mqtt://127.0.0.1:1883")
        );
        assert_eq!(back["upstream"]["keep_alive"].as_str(), Some("2s"));
        assert_eq!(back["supervisor"]["intensity"].as_integer(), Some(10));
        assert_eq!(back["group"][0]["id"].as_str(), Some("g"));
        assert_eq!(back["sensor"][0]["transport"].as_str(), Some("tcp"));
    }
}
