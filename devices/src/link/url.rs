//! Broker URLs (`mqtt://host[:port]`, `mqtts://host[:port]`) and the
//! `host[:port]` split under them: the one parser for the MQTT link, the
//! harness and the gateway's config, so they never disagree on what a valid
//! address is.

use std::fmt;
use std::str::FromStr;

/// Default port of `mqtt://`.
pub const MQTT_PORT: u16 = 1883;
/// Default port of `mqtts://`.
pub const MQTTS_PORT: u16 = 8883;

/// A broker address from an `mqtt://` or `mqtts://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://`.
    pub tls: bool,
    /// Host name or address (IPv6 without its brackets).
    pub host: String,
    /// Port; default 1883, or 8883 with TLS.
    pub port: u16,
}

/// Why a broker URL or address was refused. The texts name the input so a
/// config error or a log line can be acted on without more context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUrl {
    /// Neither `mqtt://` nor `mqtts://`.
    #[error("unsupported broker URL {0:?}: the scheme must be mqtt:// or mqtts://")]
    Scheme(String),
    /// The part after the scheme is not `host[:port]`.
    #[error("invalid broker URL {url:?}: {why}")]
    Address {
        /// The URL as given.
        url: String,
        /// What is wrong with its address.
        why: AddressError,
    },
}

/// What is wrong with a `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// `[` without `]`.
    #[error("unclosed '[' in IPv6 address")]
    UnclosedBracket,
    /// Empty, or holding characters no host name has.
    #[error("missing or invalid host")]
    Host,
    /// Not a number in 1..=65535.
    #[error("invalid port {0:?}")]
    Port(String),
}

impl FromStr for BrokerUrl {
    type Err = InvalidUrl;

    fn from_str(url: &str) -> Result<Self, InvalidUrl> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else {
            return Err(InvalidUrl::Scheme(url.to_owned()));
        };
        let (host, port) =
            split_host_port(rest.trim_end_matches('/')).map_err(|why| InvalidUrl::Address {
                url: url.to_owned(),
                why,
            })?;
        let default_port = if tls { MQTTS_PORT } else { MQTT_PORT };
        Ok(BrokerUrl {
            tls,
            host: host.to_owned(),
            port: port.unwrap_or(default_port),
        })
    }
}

impl fmt::Display for BrokerUrl {
    /// Parses back to the same value: IPv6 hosts get their brackets again.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host[:port]` (IPv6 in brackets); the port, when given, is
/// 1..=65535. Shared with the config's check of TCP sensor addresses.
pub fn split_host_port(s: &str) -> Result<(&str, Option<u16>), AddressError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(AddressError::UnclosedBracket)?;
        (host, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(AddressError::Host);
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| AddressError::Port(p.to_owned()))?,
        ),
        None => None,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(bool, String, u16), InvalidUrl> {
        url.parse::<BrokerUrl>().map(|u| (u.tls, u.host, u.port))
    }

    #[test]
    fn urls_parse_with_scheme_defaults() {
        assert_eq!(
            parse("mqtt://127.0.0.1:1884"),
            Ok((false, "127.0.0.1".into(), 1884))
        );
        assert_eq!(parse("mqtt://broker"), Ok((false, "broker".into(), 1883)));
        assert_eq!(parse("mqtt://broker/"), Ok((false, "broker".into(), 1883)));
        assert_eq!(parse("mqtts://broker"), Ok((true, "broker".into(), 8883)));
        assert_eq!(parse("mqtt://[::1]:1999"), Ok((false, "::1".into(), 1999)));
        assert_eq!(parse("mqtts://[::1]"), Ok((true, "::1".into(), 8883)));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(matches!(parse("http://b:1883"), Err(InvalidUrl::Scheme(_))));
        for (url, why) in [
            ("mqtt://:1883", AddressError::Host),
            ("mqtt://h:port", AddressError::Port("port".into())),
            ("mqtt://b:99999", AddressError::Port("99999".into())),
            ("mqtt://b:0", AddressError::Port("0".into())),
            ("mqtt://[::1", AddressError::UnclosedBracket),
            ("mqtt://user@b", AddressError::Host),
        ] {
            assert_eq!(
                parse(url),
                Err(InvalidUrl::Address {
                    url: url.into(),
                    why
                }),
                "{url}"
            );
        }
    }

    #[test]
    fn display_parses_back() {
        for url in ["mqtt://b:1", "mqtts://[::1]:8883", "mqtt://10.0.0.1:1883"] {
            let parsed: BrokerUrl = url.parse().unwrap();
            assert_eq!(parsed.to_string(), url);
            assert_eq!(parsed.to_string().parse::<BrokerUrl>(), Ok(parsed));
        }
    }
}
