//! Serial links (USB adapters, UARTs) via tokio-serial.
//!
//! The configured path is resolved at every open, so a
//! `/dev/serial/by-id/...` symlink that udev re-points after a re-plug (the
//! adapter comes back as another `/dev/ttyUSBn`) is followed each time a
//! supervisor restarts the link. An unplug shows as a read of 0 bytes or
//! `EIO`, both reported as `eof`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::error::LinkError;
use super::stream::StreamLink;
use super::Link;
use crate::codec::{CodecConfig, CodecKind};

/// Character size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataBits {
    /// 5 bits
    Five,
    /// 6 bits
    Six,
    /// 7 bits
    Seven,
    /// 8 bits (default)
    #[default]
    Eight,
}

/// Parity checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parity {
    /// No parity bit (default).
    #[default]
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Stop bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopBits {
    /// One stop bit (default).
    #[default]
    One,
    /// Two stop bits.
    Two,
}

/// A serial setting the config spells wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected {expected}")]
pub struct InvalidSerialSetting {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for DataBits {
    type Err = InvalidSerialSetting;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "5" => Ok(DataBits::Five),
            "6" => Ok(DataBits::Six),
            "7" => Ok(DataBits::Seven),
            "8" => Ok(DataBits::Eight),
            _ => Err(InvalidSerialSetting {
                what: "data_bits",
                value: s.into(),
                expected: "5, 6, 7 or 8",
            }),
        }
    }
}

impl FromStr for Parity {
    type Err = InvalidSerialSetting;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Parity::None),
            "odd" => Ok(Parity::Odd),
            "even" => Ok(Parity::Even),
            _ => Err(InvalidSerialSetting {
                what: "parity",
                value: s.into(),
                expected: "none, odd or even",
            }),
        }
    }
}

impl FromStr for StopBits {
    type Err = InvalidSerialSetting;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1" => Ok(StopBits::One),
            "2" => Ok(StopBits::Two),
            _ => Err(InvalidSerialSetting {
                what: "stop_bits",
                value: s.into(),
                expected: "1 or 2",
            }),
        }
    }
}

/// A `transport = "serial"` sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// Device path; prefer `/dev/serial/by-id/...` (stable across re-plugs).
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// Character size.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Silence longer than this ends the link with `timeout`.
    pub read_timeout: Duration,
    /// How to decode what the device sends.
    pub codec: CodecConfig,
}

impl SerialConfig {
    /// 8N1 at `baud`, 30 s read timeout, codec defaults.
    pub fn new(path: impl Into<PathBuf>, baud: u32, codec: CodecKind) -> Self {
        SerialConfig {
            path: path.into(),
            baud,
            data_bits: DataBits::default(),
            parity: Parity::default(),
            stop_bits: StopBits::default(),
            read_timeout: super::DEFAULT_READ_TIMEOUT,
            codec: CodecConfig::new(codec),
        }
    }

    fn builder(&self, path: &str) -> tokio_serial::SerialPortBuilder {
        tokio_serial::new(path, self.baud)
            .data_bits(match self.data_bits {
                DataBits::Five => tokio_serial::DataBits::Five,
                DataBits::Six => tokio_serial::DataBits::Six,
                DataBits::Seven => tokio_serial::DataBits::Seven,
                DataBits::Eight => tokio_serial::DataBits::Eight,
            })
            .parity(match self.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Odd => tokio_serial::Parity::Odd,
                Parity::Even => tokio_serial::Parity::Even,
            })
            .stop_bits(match self.stop_bits {
                StopBits::One => tokio_serial::StopBits::One,
                StopBits::Two => tokio_serial::StopBits::Two,
            })
            .flow_control(tokio_serial::FlowControl::None)
    }
}

/// Opens the device (resolving symlinks now, not at config time). Must be
/// called inside a tokio runtime.
pub fn open(config: &SerialConfig) -> Result<Link, LinkError> {
    let port = config.open_port()?;
    let what = format!("serial {}", config.path.display());
    Ok(Link::stream(StreamLink::new(
        Box::new(port),
        config.codec.decoder(),
        config.read_timeout,
        what,
    )))
}

impl SerialConfig {
    /// Opens the port itself, for a caller with its own framing (Modbus
    /// RTU). Resolves symlinks now, like [`open`].
    pub fn open_port(&self) -> Result<tokio_serial::SerialStream, LinkError> {
        let shown = self.path.display().to_string();
        let resolved = std::fs::canonicalize(&self.path)
            .map_err(|e| LinkError::io(format!("resolve {shown}"), e))?;
        let resolved = resolved.to_string_lossy().into_owned();
        let port = tokio_serial::SerialStream::open(&self.builder(&resolved))
            .map_err(|e| LinkError::io(format!("open {shown} ({resolved})"), e.into()))?;
        tracing::debug!(path = %shown, device = %resolved, "serial port open");
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_from_config_words() {
        assert_eq!("7".parse::<DataBits>(), Ok(DataBits::Seven));
        assert_eq!("even".parse::<Parity>(), Ok(Parity::Even));
        assert_eq!("2".parse::<StopBits>(), Ok(StopBits::Two));
        assert!("9".parse::<DataBits>().is_err());
        assert!("mark".parse::<Parity>().is_err());
    }

    #[tokio::test]
    async fn a_missing_device_is_an_io_error() {
        let cfg = SerialConfig::new("/dev/serial/by-id/does-not-exist", 9600, CodecKind::Nmea);
        let err = open(&cfg).err().map(|e| e.as_str());
        assert_eq!(err, Some("io"));
    }
}
