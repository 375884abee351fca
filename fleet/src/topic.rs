//! The topics of SPEC section 5 read back: which gateway a message is
//! about and which of its topics it came on, and the subscription filters
//! the fleet view needs. A prefix may span several levels (`site/a`); a
//! gateway id is exactly one level; a sensor name is one level, or two for
//! a Modbus unit (`meters/meter-1`), hence `#` after `state`, `crash` and
//! `deadletter`.

/// One of a gateway's topics that the fleet view reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    /// `status`: online, offline (the Will) or stopped; retained.
    Status,
    /// `state/<sensor>`: one sensor's supervision state; retained.
    State(&'a str),
    /// `crash/<sensor>`: one crash report.
    Crash(&'a str),
    /// `deadletter/<sensor>`: one corrupt frame skipped.
    DeadLetter(&'a str),
    /// `tree`: the whole supervision tree; retained.
    Tree,
}

/// A topic name taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The gateway's id, the level after the prefix.
    pub gateway: &'a str,
    /// Which of its topics.
    pub topic: Topic<'a>,
}

/// `prefix` without the slashes at its ends, so `edgevisor/` and
/// `edgevisor` mean the same thing.
pub fn normalise(prefix: &str) -> &str {
    prefix.trim_matches('/')
}

/// Takes `topic` apart, or `None` when it is not one the view reads (a
/// topic outside `prefix`, telemetry, a malformed name).
pub fn parse<'a>(prefix: &str, topic: &'a str) -> Option<Parsed<'a>> {
    let prefix = normalise(prefix);
    let rest = if prefix.is_empty() {
        topic
    } else {
        topic.strip_prefix(prefix)?.strip_prefix('/')?
    };
    let (gateway, rest) = rest.split_once('/')?;
    if gateway.is_empty() {
        return None;
    }
    let topic = match rest.split_once('/') {
        None => match rest {
            "status" => Topic::Status,
            "tree" => Topic::Tree,
            _ => return None,
        },
        Some((_, "")) => return None,
        Some(("state", sensor)) => Topic::State(sensor),
        Some(("crash", sensor)) => Topic::Crash(sensor),
        Some(("deadletter", sensor)) => Topic::DeadLetter(sensor),
        Some(_) => return None,
    };
    Some(Parsed { gateway, topic })
}

/// The subscription filters, split by whether their messages are retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    /// `status`, `state/#`, `tree`: what a view must get on subscribing.
    pub retained: Vec<String>,
    /// `crash/#`, `deadletter/#`: events, never retained.
    pub events: Vec<String>,
}

/// The five filters of the fleet view under `prefix`.
pub fn filters(prefix: &str) -> Filters {
    let prefix = normalise(prefix);
    let under = |tail: &str| {
        if prefix.is_empty() {
            format!("+/{tail}")
        } else {
            format!("{prefix}/+/{tail}")
        }
    };
    Filters {
        retained: vec![under("status"), under("state/#"), under("tree")],
        events: vec![under("crash/#"), under("deadletter/#")],
    }
}

/// `filter` read through the shared subscription group `group`
/// (`$share/<group>/<filter>`, MQTT 5 and Mosquitto, EMQX, HiveMQ, VerneMQ
/// for 3.1.1 clients too).
pub fn shared(group: &str, filter: &str) -> String {
    format!("$share/{group}/{filter}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_topic_of_a_gateway_is_recognised() {
        let p = |t| parse("edgevisor", t).map(|p| (p.gateway, p.topic));
        assert_eq!(p("edgevisor/gw1/status"), Some(("gw1", Topic::Status)));
        assert_eq!(p("edgevisor/gw1/tree"), Some(("gw1", Topic::Tree)));
        assert_eq!(
            p("edgevisor/gw1/state/weather"),
            Some(("gw1", Topic::State("weather")))
        );
        assert_eq!(
            p("edgevisor/gw1/crash/meters/meter-1"),
            Some(("gw1", Topic::Crash("meters/meter-1")))
        );
        assert_eq!(
            p("edgevisor/gw1/deadletter/gps"),
            Some(("gw1", Topic::DeadLetter("gps")))
        );
    }

    #[test]
    fn other_topics_are_ignored() {
        for topic in [
            "edgevisor/gw1/telemetry/weather",
            "edgevisor/gw1/crash/",
            "edgevisor/gw1",
            "edgevisor//status",
            "other/gw1/status",
            "edgevisorx/gw1/status",
            "edgevisor/gw1/status/extra",
        ] {
            assert_eq!(parse("edgevisor", topic), None, "{topic}");
        }
    }

    #[test]
    fn a_prefix_of_several_levels_or_with_slashes_works() {
        let parsed = parse("site/a/", "site/a/gw2/state/x").map(|p| (p.gateway, p.topic));
        assert_eq!(parsed, Some(("gw2", Topic::State("x"))));
        assert_eq!(
            filters("/site/a/").retained[0],
            "site/a/+/status".to_string()
        );
    }

    #[test]
    fn the_filters_cover_spec_topics_and_share_through_a_group() {
        let f = filters("edgevisor");
        assert_eq!(
            f.retained,
            [
                "edgevisor/+/status",
                "edgevisor/+/state/#",
                "edgevisor/+/tree"
            ]
        );
        assert_eq!(
            f.events,
            ["edgevisor/+/crash/#", "edgevisor/+/deadletter/#"]
        );
        assert_eq!(
            shared("ops", &f.events[0]),
            "$share/ops/edgevisor/+/crash/#"
        );
    }
}
