//! The reload diff: which root children a new config stops, restarts and
//! starts, worked out from the old and the new config alone. No I/O and no
//! supervisor; `super::apply` carries the plan out.
//!
//! The rules:
//! - a root child whose config is equal in both is kept as it runs;
//! - a root child only in the old config is stopped;
//! - a root child only in the new config is started, after the existing
//!   ones, in file order;
//! - a changed root child is restarted whole (stopped, started again);
//! - a group whose strategy, policy and members (in order) are unchanged but
//!   some of whose members changed keeps running; only the changed members
//!   restart, each alone.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, GroupConfig, RootChild, SensorConfig};

/// What a reload changes in the running tree.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadPlan<'a> {
    /// Ids of root children equal in both configs: left alone.
    pub keep: Vec<&'a str>,
    /// Ids of root children gone from the new config, in the old file order.
    pub stop: Vec<&'a str>,
    /// Root children that changed, in the new file order: each is stopped
    /// and started again with its new config.
    pub restart: Vec<&'a RootChild>,
    /// Groups kept running whose changed members restart alone.
    pub restart_members: Vec<MemberRestart<'a>>,
    /// Root children new in the config, in the new file order; started
    /// after the existing ones.
    pub start: Vec<&'a RootChild>,
    /// `[gateway]`, `[upstream]`, `[supervisor]` or `[sparkplug]` changed:
    /// that takes effect only after a service restart.
    pub service_restart_needed: bool,
}

/// Members of a running group to restart with their new config.
#[derive(Debug, PartialEq)]
pub struct MemberRestart<'a> {
    /// The group's id.
    pub group: &'a str,
    /// The changed members, in the group's order.
    pub sensors: Vec<&'a Arc<SensorConfig>>,
}

impl<'a> ReloadPlan<'a> {
    /// The plan that takes a tree running `old` to `new`.
    pub fn new(old: &'a Config, new: &'a Config) -> Self {
        let mut plan = ReloadPlan {
            service_restart_needed: new.gateway != old.gateway
                || new.upstream != old.upstream
                || new.root != old.root
                || new.sparkplug != old.sparkplug,
            ..ReloadPlan::default()
        };
        let before: HashMap<&str, &RootChild> = old.children.iter().map(|c| (c.id(), c)).collect();
        let after: HashMap<&str, &RootChild> = new.children.iter().map(|c| (c.id(), c)).collect();
        plan.stop = old
            .children
            .iter()
            .map(RootChild::id)
            .filter(|id| !after.contains_key(id))
            .collect();
        for child in &new.children {
            plan.place(before.get(child.id()).copied(), child);
        }
        plan
    }

    /// Adds what becomes of one child of the new config, given its old
    /// config if it had one.
    fn place(&mut self, before: Option<&'a RootChild>, child: &'a RootChild) {
        match (before, child) {
            (None, _) => self.start.push(child),
            (Some(before), _) if before == child => self.keep.push(child.id()),
            (Some(RootChild::Group(before)), RootChild::Group(after))
                if same_shape(before, after) =>
            {
                self.restart_members.push(MemberRestart {
                    group: &after.id,
                    sensors: changed_members(before, after),
                });
            }
            (Some(_), _) => self.restart.push(child),
        }
    }

    /// Whether the plan changes nothing in the running tree.
    pub fn is_empty(&self) -> bool {
        self.stop.is_empty()
            && self.restart.is_empty()
            && self.restart_members.is_empty()
            && self.start.is_empty()
    }
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

/// The members of `after` whose config differs from the same member in
/// `before` (the two have the same shape).
fn changed_members<'a>(before: &GroupConfig, after: &'a GroupConfig) -> Vec<&'a Arc<SensorConfig>> {
    before
        .sensors
        .iter()
        .zip(&after.sensors)
        .filter(|(old, new)| old != new)
        .map(|(_, new)| new)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const HEAD: &str = r#"
[gateway]
id = "gw"
[upstream]
url = "mqtt://127.0.0.1:1883"
"#;

    fn sensor(id: &str, port: u16) -> String {
        format!(
            "[[sensor]]\nid = \"{id}\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\ncodec = \"lines\"\n"
        )
    }

    fn group(id: &str, members: &[&str]) -> String {
        let members: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
        format!(
            "[[group]]\nid = \"{id}\"\nsensors = [{}]\n",
            members.join(", ")
        )
    }

    fn config(tables: &[String]) -> Config {
        let text = format!("{HEAD}{}", tables.concat());
        Config::parse(Path::new("test.toml"), &text).expect("test config is valid")
    }

    fn ids(children: &[&RootChild]) -> Vec<String> {
        children.iter().map(|c| c.id().to_string()).collect()
    }

    #[test]
    fn a_changed_sparkplug_table_needs_a_service_restart() {
        let old = config(&[sensor("a", 1)]);
        let new = config(&[
            "[sparkplug]\ngroup_id = \"plant\"\n".to_string(),
            sensor("a", 1),
        ]);
        assert!(ReloadPlan::new(&old, &new).service_restart_needed);
    }

    #[test]
    fn an_equal_config_changes_nothing() {
        let old = config(&[sensor("a", 1), sensor("b", 2)]);
        let new = config(&[sensor("a", 1), sensor("b", 2)]);
        let plan = ReloadPlan::new(&old, &new);
        assert!(plan.is_empty());
        assert_eq!(plan.keep, ["a", "b"]);
        assert!(!plan.service_restart_needed);
    }

    #[test]
    fn an_unchanged_sensor_is_kept_and_a_changed_one_restarted() {
        let old = config(&[sensor("a", 1), sensor("b", 2)]);
        let new = config(&[sensor("a", 1), sensor("b", 3)]);
        let plan = ReloadPlan::new(&old, &new);
        assert_eq!(plan.keep, ["a"]);
        assert_eq!(ids(&plan.restart), ["b"]);
        assert!(plan.stop.is_empty() && plan.start.is_empty());
        assert!(plan.restart_members.is_empty());
    }

    #[test]
    fn a_removed_sensor_is_stopped_in_old_file_order() {
        let old = config(&[sensor("a", 1), sensor("b", 2), sensor("c", 3)]);
        let new = config(&[sensor("b", 2)]);
        let plan = ReloadPlan::new(&old, &new);
        assert_eq!(plan.stop, ["a", "c"]);
        assert_eq!(plan.keep, ["b"]);
        assert!(plan.restart.is_empty() && plan.start.is_empty());
    }

    #[test]
    fn added_sensors_start_after_the_existing_ones_in_file_order() {
        let old = config(&[sensor("b", 2)]);
        let new = config(&[sensor("z", 9), sensor("b", 2), sensor("a", 1)]);
        let plan = ReloadPlan::new(&old, &new);
        assert_eq!(ids(&plan.start), ["z", "a"]);
        assert_eq!(plan.keep, ["b"]);
        assert!(plan.stop.is_empty() && plan.restart.is_empty());
    }

    #[test]
    fn a_changed_member_of_an_unchanged_group_restarts_alone() {
        let old = config(&[group("g", &["a", "b"]), sensor("a", 1), sensor("b", 2)]);
        let new = config(&[group("g", &["a", "b"]), sensor("a", 1), sensor("b", 3)]);
        let plan = ReloadPlan::new(&old, &new);
        assert_eq!(plan.restart_members.len(), 1);
        let members = &plan.restart_members[0];
        assert_eq!(members.group, "g");
        let changed: Vec<&str> = members.sensors.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(changed, ["b"]);
        assert!(plan.restart.is_empty() && plan.stop.is_empty() && plan.start.is_empty());
    }

    #[test]
    fn a_group_with_other_members_restarts_whole() {
        let old = config(&[group("g", &["a", "b"]), sensor("a", 1), sensor("b", 2)]);
        let new = config(&[group("g", &["b", "a"]), sensor("a", 1), sensor("b", 2)]);
        let plan = ReloadPlan::new(&old, &new);
        assert_eq!(ids(&plan.restart), ["g"]);
        assert!(plan.restart_members.is_empty());
    }

    #[test]
    fn a_sensor_that_becomes_a_group_is_restarted() {
        let old = config(&[sensor("a", 1), sensor("g", 2)]);
        let new = config(&[group("g", &["a"]), sensor("a", 1)]);
        let plan = ReloadPlan::new(&old, &new);
        // "a" moves under the new group "g": the root's "a" stops, "g"
        // (a sensor before, a group now) restarts as a group.
        assert_eq!(plan.stop, ["a"]);
        assert_eq!(ids(&plan.restart), ["g"]);
    }

    #[test]
    fn a_changed_upstream_asks_for_a_service_restart() {
        let old = config(&[sensor("a", 1)]);
        let text = format!("{}{}", HEAD.replace("1883", "1884"), sensor("a", 1));
        let new = Config::parse(Path::new("test.toml"), &text).expect("test config is valid");
        let plan = ReloadPlan::new(&old, &new);
        assert!(plan.service_restart_needed);
        assert!(plan.is_empty());
    }
}
