//! Config words for settings whose types belong to the libraries: codec and
//! checksum policy (`devices`), parity (`devices` serial link), restart
//! type, group strategy and `on_exhausted` (`runtime`).
//!
//! The config parses straight into the library enums, so there is no mirror
//! enum to keep in step and no mapping to forget a variant in. `runtime`
//! knows no serde (SPEC section 1); this module is the one place that gives
//! its enums their config spelling. A bad word is reported as serde reports
//! an unknown variant, so the diagnostics' hint applies unchanged.

use std::fmt;
use std::marker::PhantomData;

use edgevisor_devices::codec::{ChecksumPolicy, CodecKind};
use edgevisor_devices::link::serial::Parity;
use edgevisor_devices::modbus::{Table, ValueType, WordOrder};
use edgevisor_runtime::{OnExhausted, Restart, Strategy};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A library enum with config words.
pub trait Words: Copy + PartialEq + 'static {
    /// Every value the config may name with its word, in the order error
    /// messages list them.
    fn words() -> Vec<(&'static str, Self)>;

    /// The config word of `self` (for `edgevisor check`'s summary).
    fn word(self) -> &'static str {
        Self::words()
            .into_iter()
            .find_map(|(w, v)| (v == self).then_some(w))
            .unwrap_or("(not a config value)")
    }
}

impl Words for CodecKind {
    fn words() -> Vec<(&'static str, Self)> {
        // The codec names are the devices crate's own (`as_str`).
        CodecKind::ALL
            .into_iter()
            .map(|k| (k.as_str(), k))
            .collect()
    }
}

/// A sensor's wire format: one of the devices crate's stream codecs, or
/// Modbus polling (SPEC section 9), which is not a stream codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `lines`, `nmea`, `frame` or `json`.
    Stream(CodecKind),
    /// `modbus`.
    Modbus,
}

impl Codec {
    /// The config word, also the telemetry's `codec` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Stream(kind) => kind.as_str(),
            Codec::Modbus => "modbus",
        }
    }

    /// The stream codec, for the links that decode a byte stream.
    pub fn stream(self) -> Option<CodecKind> {
        match self {
            Codec::Stream(kind) => Some(kind),
            Codec::Modbus => None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Words for Codec {
    fn words() -> Vec<(&'static str, Self)> {
        let mut words: Vec<_> = CodecKind::words()
            .into_iter()
            .map(|(w, k)| (w, Codec::Stream(k)))
            .collect();
        words.push(("modbus", Codec::Modbus));
        words
    }
}

impl Words for Table {
    fn words() -> Vec<(&'static str, Self)> {
        Table::ALL.into_iter().map(|t| (t.as_str(), t)).collect()
    }
}

impl Words for ValueType {
    fn words() -> Vec<(&'static str, Self)> {
        ValueType::ALL
            .into_iter()
            .map(|t| (t.as_str(), t))
            .collect()
    }
}

impl Words for WordOrder {
    fn words() -> Vec<(&'static str, Self)> {
        WordOrder::ALL
            .into_iter()
            .map(|o| (o.as_str(), o))
            .collect()
    }
}

impl Words for ChecksumPolicy {
    fn words() -> Vec<(&'static str, Self)> {
        vec![
            ("required", ChecksumPolicy::Required),
            ("optional", ChecksumPolicy::Optional),
        ]
    }
}

impl Words for Parity {
    fn words() -> Vec<(&'static str, Self)> {
        vec![
            ("none", Parity::None),
            ("even", Parity::Even),
            ("odd", Parity::Odd),
        ]
    }
}

impl Words for Restart {
    fn words() -> Vec<(&'static str, Self)> {
        vec![
            ("permanent", Restart::Permanent),
            ("transient", Restart::Transient),
            ("temporary", Restart::Temporary),
        ]
    }
}

impl Words for Strategy {
    fn words() -> Vec<(&'static str, Self)> {
        // A group's strategies; `dynamic` is for tcp-listen pools, not
        // something a config names. The words are the runtime's `as_str`.
        [
            Strategy::OneForOne,
            Strategy::OneForAll,
            Strategy::RestForOne,
        ]
        .into_iter()
        .map(|s| (s.as_str(), s))
        .collect()
    }
}

impl Words for OnExhausted {
    fn words() -> Vec<(&'static str, Self)> {
        vec![
            ("escalate", OnExhausted::Escalate),
            ("quarantine", OnExhausted::Quarantine),
        ]
    }
}

/// A library value read from its config word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<T>(pub T);

impl<'de, T: Words> Deserialize<'de> for Word<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(WordVisitor(PhantomData))
    }
}

struct WordVisitor<T>(PhantomData<T>);

impl<T: Words> Visitor<'_> for WordVisitor<T> {
    type Value = Word<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", expected(&T::words()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Word<T>, E> {
        let words = T::words();
        match words.iter().find(|(w, _)| *w == s) {
            Some((_, v)) => Ok(Word(*v)),
            // serde's own wording, which the diagnostics give a hint for.
            None => Err(E::custom(format!(
                "unknown variant `{s}`, expected {}",
                expected(&words)
            ))),
        }
    }
}

/// "`a` or `b`", or "one of `a`, `b`, `c`", as serde words it.
fn expected<T>(words: &[(&'static str, T)]) -> String {
    let quoted: Vec<String> = words.iter().map(|(w, _)| format!("`{w}`")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        many => format!("one of {}", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        codec: Word<CodecKind>,
        restart: Option<Word<Restart>>,
    }

    #[derive(Deserialize)]
    struct U {
        codec: Word<Codec>,
    }

    #[test]
    fn words_parse_into_library_enums() {
        let t: T = toml::from_str("codec = \"nmea\"\nrestart = \"transient\"").unwrap();
        assert_eq!(t.codec.0, CodecKind::Nmea);
        assert_eq!(t.restart.map(|r| r.0), Some(Restart::Transient));
        assert_eq!(Strategy::RestForOne.word(), "rest_for_one");
        assert_eq!(Parity::Odd.word(), "odd");
    }

    #[test]
    fn a_bad_word_lists_the_good_ones() {
        let err = toml::from_str::<T>("codec = \"xml\"").err().unwrap();
        assert_eq!(
            err.message(),
            "unknown variant `xml`, expected one of `lines`, `nmea`, `frame`, `json`"
        );
        let t: U = toml::from_str("codec = \"modbus\"").unwrap();
        assert_eq!(t.codec.0, Codec::Modbus);
        let err = toml::from_str::<U>("codec = \"xml\"").err().unwrap();
        assert_eq!(
            err.message(),
            "unknown variant `xml`, expected one of `lines`, `nmea`, `frame`, `json`, `modbus`"
        );
        let err = toml::from_str::<T>("codec = \"json\"\nrestart = 1")
            .err()
            .unwrap();
        assert!(err.message().contains("one of `permanent`"), "{err}");
    }
}
