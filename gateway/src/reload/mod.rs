//! SIGHUP: read the config again and change only what changed. Sensors and
//! groups that were removed stop, new ones start (after the existing ones),
//! changed ones restart; a changed member of an unchanged group restarts
//! alone (it rejoins the group after its siblings). Changes to `[gateway]`,
//! `[upstream]`, `[supervisor]` or `[sparkplug]` need a service restart and
//! are reported.
//! An invalid file is rejected with its errors and nothing changes.
//!
//! - `plan`: the diff, a pure function of the old and the new config;
//! - here: loading the file and carrying the plan out on the running tree.

mod plan;

use std::path::Path;
use std::sync::Arc;

use edgevisor_runtime::SupervisorHandle;

pub use self::plan::{MemberRestart, ReloadPlan};
use crate::config::{Config, RootChild};
use crate::sensor::{self, Gateway};
use crate::tree;

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
    let plan = ReloadPlan::new(current, &new);
    if plan.service_restart_needed {
        tracing::warn!(
            "changes to [gateway], [upstream], [supervisor] or [sparkplug] take effect after a service restart"
        );
    }
    // Before any child of the new config starts, so that its first events
    // are read with the new groups and buses; the old ones stay known for
    // the last events of the children the reload stops.
    let mut layout = crate::tree::Layout::of(&new);
    layout.keep(&crate::tree::Layout::of(current), &new);
    gateway.set_layout(layout);
    apply(&plan, root, gateway).await;
    *current = new;
    tracing::info!("reload applied");
    true
}

/// Carries `plan` out: stops first, then restarts, then new children, so
/// that new children come after the existing ones.
async fn apply(plan: &ReloadPlan<'_>, root: &SupervisorHandle, gateway: &Arc<Gateway>) {
    for gone in &plan.stop {
        tracing::info!(child = gone, "reload: removing");
        if let Err(e) = root.terminate_child(gone).await {
            tracing::warn!(child = gone, error = %e, "reload: could not remove");
        }
    }
    for members in &plan.restart_members {
        restart_members(root, members, gateway).await;
    }
    for child in &plan.restart {
        tracing::info!(child = child.id(), "reload: restarting changed child");
        let _ = root.terminate_child(child.id()).await;
        start(root, child, gateway).await;
    }
    for child in &plan.start {
        start(root, child, gateway).await;
    }
}

async fn restart_members(
    root: &SupervisorHandle,
    members: &MemberRestart<'_>,
    gateway: &Arc<Gateway>,
) {
    let Some(group) = root.child_supervisor(members.group) else {
        return;
    };
    for new in &members.sensors {
        tracing::info!(sensor = %new.id, "reload: restarting changed sensor");
        let _ = group.terminate_child(&new.id).await;
        if let Err(e) = group.start_child(sensor::child_spec(new, gateway)).await {
            tracing::error!(sensor = %new.id, error = %e, "reload: could not start");
        }
    }
}

async fn start(root: &SupervisorHandle, child: &RootChild, gateway: &Arc<Gateway>) {
    if let Err(e) = root.start_child(tree::root_child(child, gateway)).await {
        tracing::error!(child = child.id(), error = %e, "reload: could not start");
    }
}
