//! Logging for `edgevisor run` (SPEC section 7): journald when it is there,
//! stderr otherwise, JSON lines for containers. `RUST_LOG` filters (default
//! `info`); the `log` records of library crates (rumqttc, rustls) are
//! bridged into `tracing` so they land in the same place.
//!
//! Under journald, event fields keep their names as journal fields: the
//! crash line's `SENSOR`, `CHILD_PATH`, `REASON`, `ACTION` and
//! `EVIDENCE_HEX` become fields of those names (no `F_` prefix), so
//! `journalctl -u edgevisor SENSOR=barn-gps` works.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// journald's native-protocol socket; its presence means journald listens.
const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// Where log lines go (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// journald if stderr is connected to the journal (`JOURNAL_STREAM`) or
    /// its socket answers, else human-readable text on stderr.
    #[default]
    Auto,
    /// Human-readable lines on stderr.
    Text,
    /// One JSON object per line on stderr, for container log collectors.
    Json,
    /// journald's native protocol with structured fields; stderr text if
    /// journald cannot be reached (never a startup failure).
    Journald,
}

/// Which sink [`init`] installed, so callers and tests can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// journald's native protocol.
    Journald,
    /// Text on stderr.
    Text,
    /// JSON lines on stderr.
    Json,
}

/// Installs the subscriber for `format` (once; later calls do nothing) and
/// says which sink it chose. Missing journald is not an error: logs then go
/// to stderr, with one line saying why when journald was asked for.
pub fn init(format: LogFormat) -> Sink {
    let wants_journald = match format {
        LogFormat::Auto => journald_expected(),
        LogFormat::Journald => true,
        LogFormat::Text | LogFormat::Json => false,
    };
    let mut fallback_reason = None;
    if wants_journald {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_field_prefix(None)
                    .with_syslog_identifier("edgevisor".into());
                let _ = tracing_subscriber::registry()
                    .with(log_filter())
                    .with(layer)
                    .try_init();
                return Sink::Journald;
            }
            Err(e) => fallback_reason = Some(e),
        }
    }
    let sink = if format == LogFormat::Json {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .finish()
            .with(log_filter())
            .try_init();
        Sink::Json
    } else {
        // Colours only for a person at a terminal, never in files or pipes.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .finish()
            .with(log_filter())
            .try_init();
        Sink::Text
    };
    if let (LogFormat::Journald, Some(e)) = (format, fallback_reason) {
        tracing::warn!(error = %e, "journald is not reachable; logging to stderr");
    }
    sink
}

/// `RUST_LOG` as a list of `level` and `target=level` directives (for
/// example `debug` or `info,rumqttc=warn`), `info` when unset or invalid.
/// Per-target levels are all a gateway's operator needs; `EnvFilter`'s span
/// and field filters would bring a regex engine, a tenth of the binary that
/// must fit a Pi's 8 MiB budget.
fn log_filter() -> Targets {
    filter_from(std::env::var("RUST_LOG").ok().as_deref())
}

fn filter_from(directives: Option<&str>) -> Targets {
    directives
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// True when journald is the natural destination: systemd connected our
/// stderr to the journal, or journald's socket accepts a datagram.
fn journald_expected() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some() || socket_answers(Path::new(JOURNALD_SOCKET))
}

fn socket_answers(path: &Path) -> bool {
    UnixDatagram::unbound()
        .and_then(|socket| socket.send_to(&[], path))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_target_and_defaults_to_info() {
        let f = super::filter_from(Some("warn,rumqttc=error,edgevisor=debug"));
        assert!(f.would_enable("edgevisor::uplink", &Level::DEBUG));
        assert!(!f.would_enable("rumqttc::state", &Level::WARN));
        assert!(!f.would_enable("rustls", &Level::INFO));
        for unset_or_bad in [None, Some("edgevisor=loud")] {
            let f = super::filter_from(unset_or_bad);
            assert!(f.would_enable("edgevisor", &Level::INFO));
            assert!(!f.would_enable("edgevisor", &Level::DEBUG));
        }
    }

    use super::*;

    #[test]
    fn a_missing_socket_does_not_answer() {
        assert!(!socket_answers(Path::new("/nonexistent/edgevisor/journal")));
    }

    #[test]
    fn a_bound_datagram_socket_answers() {
        let dir = std::env::temp_dir().join(format!("edgevisor-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let _listener = UnixDatagram::bind(&path).unwrap();
        assert!(socket_answers(&path));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
