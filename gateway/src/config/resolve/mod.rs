//! Raw tables to a [`Config`]: cross-table checks (unique ids, group members
//! that exist and belong to one group, the keys each transport needs and
//! takes) and defaults, sensor keys over group keys over `[supervisor]` keys.
//!
//! One file per part of the document: `upstream` for `[upstream]`, `policy`
//! for restart-policy layering, `tree` for ids and groups, `sensor` for one
//! `[[sensor]]`, `link` for its transport keys.

mod link;
mod modbus;
mod outputs;
mod policy;
mod sensor;
mod tree;
mod upstream;

use std::path::{Path, PathBuf};

use edgevisor_runtime::OnExhausted;

use super::diagnostics::Problem;
use super::parse::RawDocument;
use super::{checks, Config, GatewayConfig, Policy};

/// A byte range in the config text.
type Span = std::ops::Range<usize>;

/// Checks `doc` and fills in defaults; returns the config when nothing stood
/// in the way of building it, and every problem found.
pub fn resolve(path: &Path, text: &str, doc: RawDocument) -> (Option<Config>, Vec<Problem>) {
    let mut problems = Vec::new();
    for table in &doc.missing {
        problems.push(
            Problem::at(Some(0..0), format!("missing [{table}] table")).hint(format!(
                "add a [{table}] table; see docs/configuration.md (installed as /usr/share/doc/edgevisor/configuration.md)"
            )),
        );
    }
    let gateway = doc.gateway.as_ref().map(|g| gateway(g, &mut problems));
    let upstream = match (&doc.upstream, &gateway) {
        (Some(u), Some(g)) => upstream::upstream(u, &g.id, &mut problems),
        _ => None,
    };
    let root_raw = doc
        .supervisor
        .as_ref()
        .map(|s| s.policy())
        .unwrap_or_default(); // no [supervisor] table: every key takes its default
    let root = policy::layer(
        policy::DEFAULT_POLICY,
        &root_raw,
        "[supervisor]",
        &mut problems,
    );
    let children = tree::tree(&doc, text, root, &mut problems);
    let metrics = doc
        .metrics
        .as_ref()
        .and_then(|m| outputs::metrics(m, &mut problems));
    let homeassistant = doc
        .homeassistant
        .as_ref()
        .and_then(|h| outputs::homeassistant(h, &mut problems));
    let sparkplug = doc
        .sparkplug
        .as_ref()
        .map(|s| outputs::sparkplug(s, &mut problems));
    let config = match (gateway, upstream) {
        (Some(gateway), Some(upstream)) => Some(Config {
            path: path.to_path_buf(),
            gateway,
            upstream,
            root: Policy {
                on_exhausted: OnExhausted::Escalate,
                ..root
            },
            children,
            metrics,
            homeassistant,
            sparkplug,
        }),
        _ => None,
    };
    (config, problems)
}

/// The `[gateway]` table: its id checked, `state_dir` defaulted.
fn gateway(g: &super::raw::RawGateway, problems: &mut Vec<Problem>) -> GatewayConfig {
    if let Err((m, h)) = checks::id("gateway", g.id.get_ref()) {
        problems.push(Problem::at(Some(g.id.span()), m).hint(h));
    }
    GatewayConfig {
        id: g.id.get_ref().clone(),
        state_dir: g
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/edgevisor")),
    }
}
