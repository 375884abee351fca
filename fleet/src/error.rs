//! What can go wrong in the fleet view, each message saying what to do.

/// The fleet view's errors.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// `--broker` is not a URL the view can use.
    #[error("bad --broker {url:?}: {why} (expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT])")]
    BrokerUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// TLS cannot be set up for an `mqtts://` broker.
    #[error("TLS: {0}")]
    Tls(String),
    /// `--password-file` cannot be read.
    #[error("cannot read --password-file {path}: {source}")]
    Password {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A payload that is not what SPEC section 5 says.
    #[error("unreadable payload: {0}")]
    Json(#[from] serde_json::Error),
    /// A payload with a value SPEC section 5 does not have.
    #[error("unexpected payload: {0}")]
    Payload(String),
    /// The web page's address cannot be served.
    #[error("cannot serve the web page on {addr}: {source} (is another program on this port? pick another with --http)")]
    Bind {
        /// The `--http` address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// SIGTERM cannot be watched (no signal support).
    #[error("cannot watch for SIGTERM: {0}")]
    Signal(std::io::Error),
    /// Writing the table failed (a closed terminal).
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
    /// `--once` and the broker never answered.
    #[error("no connection to {broker} within {waited:?}: {why}")]
    NeverConnected {
        /// The broker URL.
        broker: String,
        /// How long the view waited.
        waited: std::time::Duration,
        /// The last error.
        why: String,
    },
}
