//! TLS for `mqtts://` brokers: the system's CA certificates plus an
//! optional `--ca-file`, rustls with the ring provider (no C, no aws-lc),
//! as the gateway's own uplink does.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::FleetError;

/// The client configuration for a TLS connection to the broker.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, FleetError> {
    let tls = |why: String| FleetError::Tls(why);
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(ca) = ca_file {
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| tls(format!("cannot read --ca-file {}: {e}", ca.display())))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| tls(format!("bad certificate in {}: {e}", ca.display())))?;
            roots.add(cert).map_err(|e| tls(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(tls(
            "no CA certificates: install ca-certificates or pass --ca-file".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
