//! Opening one broker connection: TCP (with Nagle off: the uplink already
//! writes whole batches), TLS for `mqtts://`, then CONNECT and the broker's
//! CONNACK. Every step is bounded by [`CONNECT_TIMEOUT`].

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet};
use rumqttc::tokio_rustls::TlsConnector;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::options::ConnectOptions;

/// Longest a connection attempt (TCP, TLS, CONNECT/CONNACK) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest packet accepted from the broker. The uplink only subscribes to
/// nothing, so anything big is a broker bug; it ends the connection.
pub const MAX_INCOMING: usize = 64 * 1024;

/// A byte stream to the broker, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why a connection ended or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// TCP or TLS failed, or the broker closed the connection.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The broker answered CONNECT with a refusal.
    #[error("the broker refused the connection: {0}")]
    Refused(&'static str),
    /// The broker sent something that is not MQTT 3.1.1, or not now.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No answer in time (connect, CONNACK, PINGRESP, or a blocked write).
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl ConnectionError {
    /// An I/O error with what was being done.
    pub fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| ConnectionError::Io { context, source }
    }
}

/// What a refusal code means, in the words an operator needs.
fn refusal(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::Success => "accepted",
        ConnectReturnCode::RefusedProtocolVersion => "it does not speak MQTT 3.1.1",
        ConnectReturnCode::BadClientId => "client id rejected; check upstream.client_id",
        ConnectReturnCode::ServiceUnavailable => "server unavailable",
        ConnectReturnCode::BadUserNamePassword => {
            "bad user name or password; check upstream.username and password_file"
        }
        // Mosquitto answers a wrong password with this code, not the one
        // above.
        ConnectReturnCode::NotAuthorized => {
            "not authorised: a wrong user name or password, or the broker refuses this client; check upstream.username, password_file and the broker's ACL"
        }
    }
}

/// Connects and completes the MQTT handshake; returns the stream and any
/// bytes that arrived after the CONNACK.
pub async fn open(
    options: &ConnectOptions,
) -> Result<(Box<dyn Stream>, BytesMut), ConnectionError> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut stream = transport(options).await?;
        let mut out = BytesMut::new();
        options
            .connect
            .write(&mut out)
            .map_err(|e| ConnectionError::Protocol(e.to_string()))?;
        stream
            .write_all(&out)
            .await
            .map_err(ConnectionError::io("send CONNECT"))?;
        let mut incoming = BytesMut::with_capacity(1024);
        loop {
            match read_packet(&mut incoming)? {
                Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => {
                    return Ok((stream, incoming));
                }
                Some(Packet::ConnAck(ack)) => {
                    return Err(ConnectionError::Refused(refusal(ack.code)))
                }
                Some(other) => {
                    return Err(ConnectionError::Protocol(format!(
                        "expected CONNACK, got {other:?}"
                    )))
                }
                None => {
                    let n = stream
                        .read_buf(&mut incoming)
                        .await
                        .map_err(ConnectionError::io("wait for CONNACK"))?;
                    if n == 0 {
                        return Err(ConnectionError::Io {
                            context: "wait for CONNACK",
                            source: std::io::ErrorKind::UnexpectedEof.into(),
                        });
                    }
                }
            }
        }
    })
    .await
    .map_err(|_| ConnectionError::Timeout("connecting to the broker"))?
}

/// The next whole packet in `incoming`, if one is there.
pub fn read_packet(incoming: &mut BytesMut) -> Result<Option<Packet>, ConnectionError> {
    use rumqttc::mqttbytes::Error;
    match Packet::read(incoming, MAX_INCOMING) {
        Ok(packet) => Ok(Some(packet)),
        Err(Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(ConnectionError::Protocol(e.to_string())),
    }
}

async fn transport(options: &ConnectOptions) -> Result<Box<dyn Stream>, ConnectionError> {
    let tcp = TcpStream::connect((options.host.as_str(), options.port))
        .await
        .map_err(ConnectionError::io("connect"))?;
    tcp.set_nodelay(true)
        .map_err(ConnectionError::io("connect"))?;
    let Some(tls) = &options.tls else {
        return Ok(Box::new(tcp));
    };
    let name = ServerName::try_from(options.host.clone()).map_err(|e| ConnectionError::Io {
        context: "TLS server name",
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })?;
    let stream = TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(ConnectionError::io("TLS handshake"))?;
    Ok(Box::new(stream))
}
