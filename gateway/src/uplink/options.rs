//! Connection options from `[upstream]`: the CONNECT packet (client id,
//! keep-alive, a clean session because the outbox, not the broker, holds
//! what is unacknowledged, the Last Will, credentials) and TLS (rustls with
//! ring; the system's CA store plus `ca_file`).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::mqttbytes::v4::{Connect, LastWill};
use rumqttc::mqttbytes::QoS;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
    /// The password file can be read by any user of the machine.
    #[error("password_file {path} is readable by every user (mode {mode:03o}); run `chmod 600 {path}` (or 640 with the service's group), then start again")]
    PasswordExposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
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
            Some(path) => read_password(path)?,
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

/// The password in `path` (trailing newline removed). A file any user may
/// read is refused: the password would be everyone's.
fn read_password(path: &std::path::Path) -> Result<String, OptionsError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = || path.display().to_string();
    let unreadable = |source| OptionsError::Password {
        path: shown(),
        source,
    };
    let mode = std::fs::metadata(path)
        .map_err(unreadable)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o004 != 0 {
        return Err(OptionsError::PasswordExposed {
            path: shown(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// The client certificate chain and its key. A key any user may read is
/// refused, like a password file.
fn client_identity(
    client: &crate::config::ClientCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), OptionsError> {
    use std::os::unix::fs::PermissionsExt;
    let (cert, key) = (&client.cert_file, &client.key_file);
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            OptionsError::Tls(format!(
                "cannot read client_cert_file {}: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(OptionsError::Tls(format!(
            "client_cert_file {} holds no certificate",
            cert.display()
        )));
    }
    let mode = std::fs::metadata(key)
        .map_err(|e| {
            OptionsError::Tls(format!(
                "cannot read client_key_file {}: {e}",
                key.display()
            ))
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o004 != 0 {
        return Err(OptionsError::Tls(format!(
            "client_key_file {} is readable by every user (mode {mode:03o}); run `chmod 600 {}`",
            key.display(),
            key.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        OptionsError::Tls(format!(
            "cannot read client_key_file {}: {e}",
            key.display()
        ))
    })?;
    Ok((chain, private))
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
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OptionsError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match &upstream.client_cert {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let (chain, key) = client_identity(client)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| OptionsError::Tls(format!("client certificate: {e}")))?
        }
    };
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
            client_cert: None,
            topic_prefix: "edgevisor".into(),
            keep_alive: std::time::Duration::from_secs(30),
            outbox_max_bytes: 1 << 20,
            max_message_size: 1 << 20,
            replay_rate: None,
        }
    }

    #[test]
    fn the_password_comes_from_its_file_without_the_newline() {
        let path = std::env::temp_dir().join(format!("edgevisor-pw-{}", std::process::id()));
        std::fs::write(&path, "s3cret-value\n").unwrap();
        set_mode(&path, 0o640);
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

    fn set_mode(path: &std::path::Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_password_file_every_user_can_read_is_refused_with_the_fix() {
        let path = std::env::temp_dir().join(format!("edgevisor-pw-open-{}", std::process::id()));
        std::fs::write(&path, "s3cret-value\n").unwrap();
        set_mode(&path, 0o644);
        let Err(err) = connect_options(&upstream(Some(path.clone())), "t/status".into(), vec![])
        else {
            panic!("a world-readable password file must be refused");
        };
        let err = err.to_string();
        assert!(
            err.contains("is readable by every user (mode 644)"),
            "{err}"
        );
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
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
