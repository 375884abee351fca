//! A sensor's config as the devices crate's link settings, and opening the
//! link (each restart opens anew: a USB adapter re-plugged under
//! `/dev/serial/by-id/` is found again).

use edgevisor_devices::codec::{ChecksumPolicy, CodecConfig, CodecKind};
use edgevisor_devices::link::{self, serial, tcp, tcp_listen, Link, LinkError};

use crate::config::{CodecName, LinkConfig, Parity, SensorConfig};

/// The codec settings of `sensor`.
pub fn codec(sensor: &SensorConfig) -> CodecConfig {
    let kind = match sensor.codec {
        CodecName::Lines => CodecKind::Lines,
        CodecName::Nmea => CodecKind::Nmea,
        CodecName::Frame => CodecKind::Frame,
        CodecName::Json => CodecKind::Json,
    };
    CodecConfig {
        kind,
        max_frame: sensor.max_frame,
        checksum: if sensor.checksum_required {
            ChecksumPolicy::Required
        } else {
            ChecksumPolicy::Optional
        },
    }
}

/// Opens the link of a serial, tcp or mqtt sensor.
pub async fn open(sensor: &SensorConfig, client_id: &str) -> Result<Link, LinkError> {
    match &sensor.link {
        LinkConfig::Serial {
            device,
            baud,
            data_bits,
            parity,
            stop_bits,
        } => {
            let mut config = serial::SerialConfig::new(device, *baud, codec(sensor).kind);
            config.codec = codec(sensor);
            config.read_timeout = sensor.read_timeout;
            config.data_bits = match data_bits {
                5 => serial::DataBits::Five,
                6 => serial::DataBits::Six,
                7 => serial::DataBits::Seven,
                _ => serial::DataBits::Eight,
            };
            config.parity = match parity {
                Parity::None => serial::Parity::None,
                Parity::Even => serial::Parity::Even,
                Parity::Odd => serial::Parity::Odd,
            };
            config.stop_bits = if *stop_bits == 2 {
                serial::StopBits::Two
            } else {
                serial::StopBits::One
            };
            serial::open(&config)
        }
        LinkConfig::Tcp {
            address,
            connect_timeout,
        } => {
            let mut config = tcp::TcpConfig::new(address.clone(), codec(sensor).kind);
            config.codec = codec(sensor);
            config.connect_timeout = *connect_timeout;
            config.read_timeout = sensor.read_timeout;
            tcp::connect(&config).await
        }
        LinkConfig::Mqtt { url, topics } => {
            let url = format!("mqtt://{}:{}", url.host, url.port);
            let mut config =
                link::mqtt::MqttConfig::new(url, topics.clone(), client_id, codec(sensor).kind);
            config.codec = codec(sensor);
            config.read_timeout = sensor.read_timeout;
            link::mqtt::subscribe(&config).await
        }
        LinkConfig::TcpListen { .. } => Err(LinkError::Io {
            context: "tcp-listen sensors are opened by their acceptor".into(),
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        }),
    }
}

/// The listener settings of a `tcp-listen` sensor.
pub fn listener(sensor: &SensorConfig) -> Option<tcp_listen::TcpListenConfig> {
    let LinkConfig::TcpListen {
        listen,
        max_connections,
    } = &sensor.link
    else {
        return None;
    };
    let mut config = tcp_listen::TcpListenConfig::new(*listen, codec(sensor).kind);
    config.codec = codec(sensor);
    config.max_connections = *max_connections;
    config.read_timeout = sensor.read_timeout;
    Some(config)
}
