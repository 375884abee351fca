//! SIGHUP: read the config again and change only what changed. Sensors and
//! groups that were removed stop, new ones start (after the existing ones),
//! changed ones restart; a changed member of an unchanged group restarts
//! alone (it rejoins the group after its siblings). Changes to `[gateway]`,
//! `[upstream]` or `[supervisor]` need a service restart and are reported.
//! An invalid file is rejected with its errors and nothing changes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use edgevisor_runtime::SupervisorHandle;

use crate::config::{Config, GroupConfig, RootChild};
use crate::sensor::{self, Gateway};
use crate::tree;

fn id(child: &RootChild) -> &str {
    match child {
        RootChild::Sensor(s) => &s.id,
        RootChild::Group(g) => &g.id,
    }
}

/// Reloads `path` over `current`; returns whether the new config was taken.
pub async fn reload(
    path: &Path,
    current: &mut Config,
    root: &SupervisorHandle,
    gateway: &Arc<Gateway>,
) -> bool {
    let new = match Config::load(path) {
        Ok(new) => new,
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!("{error}");
            }
            tracing::error!(
                "reload rejected: {} error(s); the running tree is unchanged",
                errors.0.len()
            );
            return false;
        }
    };
    if new.gateway != current.gateway
        || new.upstream != current.upstream
        || new.root != current.root
    {
        tracing::warn!(
            "changes to [gateway], [upstream] or [supervisor] take effect after a service restart"
        );
    }
    let old: HashMap<&str, &RootChild> = current.children.iter().map(|c| (id(c), c)).collect();
    let fresh: HashMap<&str, &RootChild> = new.children.iter().map(|c| (id(c), c)).collect();
    for gone in old.keys().filter(|k| !fresh.contains_key(*k)) {
        tracing::info!(child = gone, "reload: removing");
        if let Err(e) = root.terminate_child(gone).await {
            tracing::warn!(child = gone, error = %e, "reload: could not remove");
        }
    }
    for child in &new.children {
        let name = id(child);
        match old.get(name) {
            None => start(root, child, gateway).await,
            Some(before) if *before == child => {}
            Some(RootChild::Group(before)) => match child {
                RootChild::Group(after) if same_shape(before, after) => {
                    if let Some(group) = root.child_supervisor(name) {
                        restart_changed_members(&group, before, after, gateway).await;
                    }
                }
                _ => replace(root, child, gateway).await,
            },
            Some(_) => replace(root, child, gateway).await,
        }
    }
    *current = new;
    tracing::info!("reload applied");
    true
}

/// Same strategy, policy and members in the same order: only members' own
/// settings differ.
fn same_shape(a: &GroupConfig, b: &GroupConfig) -> bool {
    a.strategy == b.strategy
        && a.policy == b.policy
        && a.sensors
            .iter()
            .map(|s| &s.id)
            .eq(b.sensors.iter().map(|s| &s.id))
}

async fn restart_changed_members(
    group: &SupervisorHandle,
    before: &GroupConfig,
    after: &GroupConfig,
    gateway: &Arc<Gateway>,
) {
    for (old, new) in before.sensors.iter().zip(&after.sensors) {
        if old != new {
            tracing::info!(sensor = %new.id, "reload: restarting changed sensor");
            let _ = group.terminate_child(&new.id).await;
            if let Err(e) = group.start_child(sensor::child_spec(new, gateway)).await {
                tracing::error!(sensor = %new.id, error = %e, "reload: could not start");
            }
        }
    }
}

async fn replace(root: &SupervisorHandle, child: &RootChild, gateway: &Arc<Gateway>) {
    tracing::info!(child = id(child), "reload: restarting changed child");
    let _ = root.terminate_child(id(child)).await;
    start(root, child, gateway).await;
}

async fn start(root: &SupervisorHandle, child: &RootChild, gateway: &Arc<Gateway>) {
    if let Err(e) = root.start_child(tree::root_child(child, gateway)).await {
        tracing::error!(child = id(child), error = %e, "reload: could not start");
    }
}
