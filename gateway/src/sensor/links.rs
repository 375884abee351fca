//! A sensor's config as the devices crate's link settings, and opening the
//! link (each restart opens anew: a USB adapter re-plugged under
//! `/dev/serial/by-id/` is found again).

use edgevisor_devices::codec::CodecConfig;
use edgevisor_devices::link::{self, serial, tcp, tcp_listen, Link, LinkError};

use crate::config::{LinkConfig, SensorConfig};

/// The codec settings of `sensor`.
pub fn codec(sensor: &SensorConfig) -> CodecConfig {
    CodecConfig {
        kind: sensor.codec,
        max_frame: sensor.max_frame,
        checksum: sensor.checksum,
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
            config.data_bits = *data_bits;
            config.parity = *parity;
            config.stop_bits = *stop_bits;
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
            let mut config = link::mqtt::MqttConfig::new(
                url.to_string(),
                topics.clone(),
                client_id,
                codec(sensor).kind,
            );
            config.codec = codec(sensor);
            config.read_timeout = sensor.read_timeout;
            link::mqtt::subscribe(&config).await
        }
        LinkConfig::TcpListen { .. } => Err(LinkError::Io {
            context: "tcp-listen sensors are opened by their supervisor's listener".into(),
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
