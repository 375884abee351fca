//! A sensor's config as the devices crate's link settings, and opening the
//! link (each restart opens anew: a USB adapter re-plugged under
//! `/dev/serial/by-id/` is found again).

use edgevisor_devices::codec::CodecConfig;
use edgevisor_devices::link::{self, serial, tcp, tcp_listen, Link, LinkError};

use crate::config::{LinkConfig, SensorConfig};

/// The codec settings of a sensor whose link is a byte stream; `None` for
/// a Modbus bus, which has no stream codec.
pub fn codec(sensor: &SensorConfig) -> Option<CodecConfig> {
    Some(CodecConfig {
        kind: sensor.codec.stream()?,
        max_frame: sensor.max_frame,
        checksum: sensor.checksum,
    })
}

/// A link asked of a sensor that has none of that kind.
fn not_a_stream(what: &str) -> LinkError {
    LinkError::Io {
        context: what.into(),
        source: std::io::Error::from(std::io::ErrorKind::Unsupported),
    }
}

/// Opens the link of a serial, tcp or mqtt sensor.
pub async fn open(sensor: &SensorConfig, client_id: &str) -> Result<Link, LinkError> {
    let codec = codec(sensor).ok_or_else(|| not_a_stream("a Modbus bus is polled, not read"))?;
    match &sensor.link {
        LinkConfig::Serial {
            device,
            baud,
            data_bits,
            parity,
            stop_bits,
        } => {
            let mut config = serial::SerialConfig::new(device, *baud, codec.kind);
            config.codec = codec;
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
            let mut config = tcp::TcpConfig::new(address.clone(), codec.kind);
            config.codec = codec;
            config.connect_timeout = *connect_timeout;
            config.read_timeout = sensor.read_timeout;
            tcp::connect(&config).await
        }
        LinkConfig::Mqtt { url, topics } => {
            let mut config =
                link::mqtt::MqttConfig::new(url.to_string(), topics.clone(), client_id, codec.kind);
            config.codec = codec;
            config.read_timeout = sensor.read_timeout;
            link::mqtt::subscribe(&config).await
        }
        LinkConfig::TcpListen { .. } => Err(not_a_stream(
            "tcp-listen sensors are opened by their supervisor's listener",
        )),
        LinkConfig::Modbus(_) => Err(not_a_stream("a Modbus bus is polled, not read")),
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
    let codec = codec(sensor)?;
    let mut config = tcp_listen::TcpListenConfig::new(*listen, codec.kind);
    config.codec = codec;
    config.max_connections = *max_connections;
    config.read_timeout = sensor.read_timeout;
    Some(config)
}
