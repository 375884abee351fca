//! Connection options from `[upstream]`: the CONNECT packet (client id,
//! keep-alive, a clean session because the outbox, not the broker, holds
//! what is unacknowledged, the Last Will, credentials) and TLS (rustls with
//! ring; the system's CA store plus `ca_file`).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::mqttbytes::v4::{Connect, LastWill};
use rumqttc::mqttbytes::QoS;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::UpstreamConfig;

/// Why the uplink could not be set up. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The password file could not be read.
    #[error("cannot read password_file {path}: {source}")]
    Password {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Where and how the uplink connects.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS settings for `mqtts://`; `None` for plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The CONNECT packet sent on every connection.
    pub connect: Connect,
    /// MQTT keep-alive: a PINGREQ goes out after this long without sending,
    /// and a broker silent for as long after it is taken for gone.
    pub keep_alive: Duration,
}

/// Connection options for `upstream`, with `will` as the Last Will payload.
pub fn connect_options(
    upstream: &UpstreamConfig,
    will_topic: String,
    will: Vec<u8>,
) -> Result<ConnectOptions, OptionsError> {
    let mut connect = Connect::new(upstream.client_id.clone());
    // The config check keeps keep_alive within MQTT's 16-bit seconds.
    connect.keep_alive = connect_keep_alive(upstream);
    connect.clean_session = true;
    connect.last_will = Some(LastWill::new(will_topic, will, QoS::AtLeastOnce, true));
    if let Some(user) = &upstream.username {
        let password = match &upstream.password_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| OptionsError::Password {
                    path: path.display().to_string(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => String::new(),
        };
        connect.set_login(user.clone(), password);
    }
    let tls = if upstream.url.tls {
        Some(tls(upstream)?)
    } else {
        None
    };
    Ok(ConnectOptions {
        host: upstream.url.host.clone(),
        port: upstream.url.port,
        tls,
        connect,
        keep_alive: Duration::from_secs(u64::from(connect_keep_alive(upstream))),
    })
}

fn connect_keep_alive(upstream: &UpstreamConfig) -> u16 {
    u16::try_from(upstream.keep_alive.as_secs().max(1)).unwrap_or(u16::MAX)
}

fn tls(upstream: &UpstreamConfig) -> Result<Arc<rustls::ClientConfig>, OptionsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(ca) = &upstream.ca_file {
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| OptionsError::Tls(format!("cannot read ca_file {}: {e}", ca.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                OptionsError::Tls(format!("bad certificate in {}: {e}", ca.display()))
            })?;
            roots
                .add(cert)
                .map_err(|e| OptionsError::Tls(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(OptionsError::Tls(
            "no CA certificates: install ca-certificates or set upstream.ca_file".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OptionsError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerUrl;

    fn upstream(password_file: Option<std::path::PathBuf>) -> UpstreamConfig {
        UpstreamConfig {
            url: BrokerUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1883,
            },
            client_id: "edgevisor-t".into(),
            username: Some("barn".into()),
            password_file,
            ca_file: None,
            topic_prefix: "edgevisor".into(),
            keep_alive: std::time::Duration::from_secs(30),
            outbox_max_bytes: 1 << 20,
        }
    }

    #[test]
    fn the_password_comes_from_its_file_without_the_newline() {
        let path = std::env::temp_dir().join(format!("edgevisor-pw-{}", std::process::id()));
        std::fs::write(&path, "s3cret-value\n").unwrap();
        let options = connect_options(
            &upstream(Some(path.clone())),
            "t/status".into(),
            b"{}".to_vec(),
        )
        .unwrap();
        let login = options.connect.login.unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("barn", "s3cret-value")
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unreadable_password_file_names_the_file_only() {
        let path = std::path::PathBuf::from("/nonexistent/edgevisor/password");
        let Err(err) = connect_options(&upstream(Some(path)), "t/status".into(), b"{}".to_vec())
        else {
            panic!("an unreadable password file must be an error");
        };
        let err = err.to_string();
        assert!(
            err.starts_with("cannot read password_file /nonexistent/edgevisor/password"),
            "{err}"
        );
    }
}
