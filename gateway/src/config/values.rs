//! The value types of the config file: humantime durations, byte sizes, and
//! the closed sets of words only the gateway has (transport, on_corrupt),
//! each with an error message that says what would have been accepted.
//! Words for library enums (codec, restart, ...) are in `words`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A duration written as `"250ms"`, `"60s"`, `"10m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"250ms\", \"60s\" or \"10m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                humantime::parse_duration(s).map(Dur).map_err(|e| {
                    E::custom(format!(
                        "invalid duration {s:?} ({e}); write a number and a unit, e.g. \"250ms\", \"60s\", \"10m\""
                    ))
                })
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a bare number ({n}) is not a duration; add a unit, e.g. \"{n}s\" or \"{n}ms\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size written as `"64MiB"`, `"512KiB"`, `"1GB"` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64MiB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                s.parse::<bytesize::ByteSize>()
                    .map(|b| Size(b.as_u64()))
                    .map_err(|e| {
                        E::custom(format!(
                            "invalid size {s:?} ({e}); write e.g. \"64MiB\", \"512KiB\" or \"1GB\""
                        ))
                    })
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
                u64::try_from(n)
                    .map(Size)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({n})")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Declares a closed set of config words with its parser and `as_str`.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// The word as written in the config file.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(
    /// How a sensor is reached.
    Transport {
        /// A serial port (USB adapter, UART, RS-485).
        Serial = "serial",
        /// The gateway connects out to the sensor.
        Tcp = "tcp",
        /// Sensors connect in; one child per connection.
        TcpListen = "tcp-listen",
        /// Messages on a local MQTT broker.
        Mqtt = "mqtt",
        /// A Modbus RTU bus on a serial port; one child per unit.
        ModbusRtu = "modbus-rtu",
        /// A Modbus TCP server; one child per unit.
        ModbusTcp = "modbus-tcp",
    }
);

impl Transport {
    /// Whether the sensor is a Modbus bus (polled) rather than a stream of
    /// readings.
    pub fn is_modbus(self) -> bool {
        matches!(self, Transport::ModbusRtu | Transport::ModbusTcp)
    }
}

words!(
    /// What a corrupt frame does.
    OnCorrupt {
        /// Crash with reason `corrupt_frame` (the default).
        Crash = "crash",
        /// Count it, send a dead letter, keep reading.
        Skip = "skip",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        d: Option<Dur>,
        s: Option<Size>,
    }

    #[test]
    fn durations_and_sizes_parse_like_the_spec_writes_them() {
        let t: T = toml::from_str("d = \"250ms\"\ns = \"64MiB\"").unwrap();
        assert_eq!(t.d, Some(Dur(Duration::from_millis(250))));
        assert_eq!(t.s, Some(Size(64 * 1024 * 1024)));
        let t: T = toml::from_str("d = \"10m\"\ns = 4096").unwrap();
        assert_eq!(t.d, Some(Dur(Duration::from_secs(600))));
        assert_eq!(t.s, Some(Size(4096)));
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        let err = toml::from_str::<T>("d = \"5 minutez\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("invalid duration \"5 minutez\""), "{err}");
        let err = toml::from_str::<T>("d = 30").err().unwrap().to_string();
        assert!(err.contains("add a unit, e.g. \"30s\""), "{err}");
    }
}
