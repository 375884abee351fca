//! Checks of single values: ids, broker URLs, addresses, MQTT topic
//! filters, timeouts and the keep-alive. Each returns a message and a hint a
//! person can act on.

use std::time::Duration;

use edgevisor_devices::link::mqtt::plain_url;
use edgevisor_devices::link::{split_host_port, InvalidUrl};

use super::BrokerUrl;

/// `[A-Za-z0-9_-]{1,64}`: safe as an MQTT topic level and a path segment.
pub fn id(kind: &str, id: &str) -> Result<(), (String, String)> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        return Ok(());
    }
    Err((
        format!("invalid {kind} id {id:?}"),
        "use 1 to 64 characters from A-Z a-z 0-9 _ - (it becomes an MQTT topic level)".into(),
    ))
}

/// `mqtt://host[:port]` or `mqtts://host[:port]`, parsed by
/// [`BrokerUrl`]'s `FromStr`; this adds the hint.
pub fn broker_url(url: &str) -> Result<BrokerUrl, (String, String)> {
    url.parse().map_err(|e: InvalidUrl| {
        (
            e.to_string(),
            "write it as mqtt://host:1883 or mqtts://host:8883".to_string(),
        )
    })
}

/// A `transport = "mqtt"` sensor's broker: `mqtt://` only, because the
/// link has no TLS (see `edgevisor_devices::link::mqtt::plain_url`);
/// refused here so the mistake shows at its line, not at the first connect.
pub fn sensor_broker_url(url: &str) -> Result<BrokerUrl, (String, String)> {
    plain_url(url).map_err(|e| {
        (
            e.to_string(),
            "sensor brokers are local: write it as mqtt://host:1883".to_string(),
        )
    })
}

/// `host:port` for a TCP sensor (a name or an address; the port is required).
pub fn host_port(address: &str) -> Result<(), (String, String)> {
    let hint = || "write it as host:port, e.g. 192.168.1.40:4001 or weather.local:4001".to_string();
    match split_host_port(address) {
        Ok((_, Some(_))) => Ok(()),
        Ok((_, None)) => Err((format!("address {address:?} has no port"), hint())),
        Err(why) => Err((format!("invalid address {address:?}: {why}"), hint())),
    }
}

/// An MQTT topic filter: non-empty, `#` only as the whole last level, `+`
/// only as a whole level, no NUL.
pub fn topic_filter(filter: &str) -> Result<(), (String, String)> {
    let hint = || {
        "a filter is levels separated by '/', where '+' is a whole level and '#' only the last, e.g. zigbee2mqtt/+ or sensors/#".to_string()
    };
    if filter.is_empty() || filter.contains('\0') {
        return Err((format!("invalid topic filter {filter:?}"), hint()));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let wildcard_misused = (level.contains('#') && (*level != "#" || i + 1 != levels.len()))
            || (level.contains('+') && *level != "+");
        if wildcard_misused {
            return Err((
                format!("invalid topic filter {filter:?}: misplaced wildcard in level {level:?}"),
                hint(),
            ));
        }
    }
    Ok(())
}

/// A topic prefix: one or more levels of characters every broker takes as
/// they are. Wildcards cannot be published to; `$` starts the brokers' own
/// topics (`$SYS`), which clients may not publish to; spaces and control
/// characters are refused by some brokers; NATS refuses `.` (it closes the
/// connection at CONNECT, over the Will's topic) and RabbitMQ rewrites it
/// to `/`, so `a.b` and `a/b` would share topics (docs/brokers.md).
pub fn topic_prefix(prefix: &str) -> Result<(), (String, String)> {
    let why = if prefix.is_empty() {
        Some("it is empty")
    } else if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        Some("it has an empty level (a leading, trailing or doubled '/')")
    } else if prefix.contains(['+', '#']) {
        Some("'+' and '#' are wildcards, which cannot be published to")
    } else if prefix.starts_with('$') {
        Some("topics starting with '$' belong to the broker ($SYS)")
    } else if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("some brokers refuse spaces and control characters in topics")
    } else if prefix.contains('.') {
        Some("NATS refuses '.' in topics and RabbitMQ rewrites it to '/'")
    } else {
        None
    };
    match why {
        Some(why) => Err((
            format!("invalid topic_prefix {prefix:?}: {why}"),
            "use levels of letters, digits, '-' and '_', e.g. \"edgevisor\" or \"farm/edgevisor\""
                .into(),
        )),
        None => Ok(()),
    }
}

/// The longest MQTT keep-alive: CONNECT carries it as 16-bit seconds.
pub const MAX_KEEP_ALIVE: Duration = Duration::from_secs(u16::MAX as u64);

/// `keep_alive` within what MQTT can carry: 1 s to 65535 s.
pub fn keep_alive(d: Duration) -> Result<(), (String, String)> {
    let hint = || "use e.g. keep_alive = \"30s\"; MQTT allows 1s to 65535s (18h 12m 15s)".into();
    if d < Duration::from_secs(1) {
        return Err(("keep_alive must be at least 1s".into(), hint()));
    }
    if d > MAX_KEEP_ALIVE {
        let got = humantime::format_duration(d);
        return Err((
            format!("keep_alive must be at most 65535s (got {got})"),
            hint(),
        ));
    }
    Ok(())
}

/// A timeout that must be more than zero: a zero one fires before anything
/// can arrive, so the sensor would crash and restart forever.
pub fn timeout(key: &str, d: Duration, example: &str) -> Result<(), (String, String)> {
    if d.is_zero() {
        return Err((
            format!("{key} must be more than 0"),
            format!("a zero {key} fails at once on every start; use e.g. {key} = \"{example}\""),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_prefixes_that_brokers_refuse_or_rewrite_are_refused() {
        for good in ["edgevisor", "farm/edgevisor", "site-1/a_b"] {
            assert!(topic_prefix(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("/a", "empty level"),
            ("a//b", "empty level"),
            ("a/+", "wildcards"),
            ("#", "wildcards"),
            ("$SYS/x", "belong to the broker"),
            ("my farm", "spaces"),
            ("farm.one", "NATS refuses"),
        ] {
            let (message, _) = topic_prefix(bad).unwrap_err();
            assert!(message.contains(why), "{bad:?}: {message}");
        }
    }

    #[test]
    fn broker_urls() {
        let u = broker_url("mqtt://broker.example:1883").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (false, "broker.example", 1883)
        );
        assert_eq!(broker_url("mqtts://b").unwrap().port, 8883);
        assert_eq!(broker_url("mqtt://[::1]:1884").unwrap().host, "::1");
        assert!(broker_url("http://b:1883").is_err());
        assert!(broker_url("mqtt://:1883").is_err());
        assert!(broker_url("mqtt://b:99999").is_err());
        assert!(sensor_broker_url("mqtt://b").is_ok());
        assert!(sensor_broker_url("mqtts://b").is_err());
    }

    #[test]
    fn topic_filters() {
        for ok in ["zigbee2mqtt/+", "a/#", "#", "+/+/x", "a/b"] {
            assert!(topic_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/#/b", "a/b#", "a+/b", "a/+x"] {
            assert!(topic_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keep_alive_fits_mqtt_and_timeouts_are_positive() {
        assert!(keep_alive(Duration::from_secs(1)).is_ok());
        assert!(keep_alive(MAX_KEEP_ALIVE).is_ok());
        assert!(keep_alive(Duration::from_millis(999)).is_err());
        assert!(keep_alive(MAX_KEEP_ALIVE + Duration::from_millis(1)).is_err());
        assert!(timeout("read_timeout", Duration::from_millis(1), "30s").is_ok());
        assert!(timeout("read_timeout", Duration::ZERO, "30s").is_err());
    }

    #[test]
    fn ids_and_addresses() {
        assert!(id("sensor", "barn-gps_2").is_ok());
        assert!(id("sensor", "barn/gps").is_err());
        assert!(id("sensor", "").is_err());
        assert!(host_port("192.168.1.40:4001").is_ok());
        assert!(host_port("weather.local:4001").is_ok());
        assert!(host_port("weather.local").is_err());
    }
}
