//! `edgevisor status`, the CLI's side: find the socket, read the document,
//! print it as text or JSON, once or every second (`--watch`).
//!
//! Without `--socket`, the sockets tried, in order, are the ones a service
//! could be using: `$RUNTIME_DIRECTORY/status.sock` (when set), the
//! config's `state_dir/status.sock` (the rule `edgevisor run` follows
//! outside systemd), then `/run/edgevisor/status.sock` (the unit's). The
//! first that answers wins; when none does, every one is named with why.

use std::ffi::OsString;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use super::render::render;
use super::socket::{first_dir, RUNTIME_DIR, SOCKET_FILE};
use crate::config::Config;

/// How long to wait for the service's answer.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// `--watch` redraws this often.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What `edgevisor status` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--socket`: this socket only.
    pub socket: Option<PathBuf>,
    /// `--config`: where to find `state_dir`.
    pub config: PathBuf,
    /// `--json`: the document as the service sent it, one line.
    pub json: bool,
    /// `--watch`: again every second until interrupted.
    pub watch: bool,
    /// `--crashes`: how many crash reports the text shows.
    pub crashes: usize,
}

/// Why no status could be shown; every case exits 1.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No socket answered.
    #[error("{}", explain(.tried, .config_note.as_deref()))]
    NotAnswering {
        /// Each socket tried, with what went wrong.
        tried: Vec<(PathBuf, std::io::Error)>,
        /// Why the config gave no socket, if it did not.
        config_note: Option<String>,
    },
    /// The answer was not a status document.
    #[error("{path} answered with something that is not a status document: {source}")]
    BadDocument {
        /// The socket.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Standard output is gone (e.g. a closed pipe).
    #[error("cannot write the status: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs `edgevisor status`: prints the status once, or every second with
/// `--watch` (which only ends when interrupted). A reader that goes away
/// (`| head`) ends it quietly.
pub async fn command(options: &Options) -> Result<(), StatusError> {
    match show(options).await {
        Err(StatusError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// One line about the upstream link from the running service, for
/// `edgevisor outbox stats`: connected, or since when it is down and why;
/// or that no service answered (the file alone cannot tell).
pub async fn upstream_line(config: &Config) -> String {
    let env = std::env::var_os("RUNTIME_DIRECTORY");
    let sockets = candidates(env, Some(&config.gateway.state_dir));
    let doc = match fetch(&sockets, None).await {
        Ok((_, text)) => serde_json::from_str::<Value>(&text).ok(),
        Err(_) => None,
    };
    let Some(uplink) = doc.as_ref().map(|d| &d["uplink"]) else {
        return "upstream: no running service answered (`edgevisor status` says why)".into();
    };
    let broker = uplink["broker"].as_str().unwrap_or("the broker");
    match (uplink["connected"].as_bool(), uplink["down"].as_str()) {
        (Some(true), _) => format!("upstream: connected to {broker}"),
        (_, Some(down)) => format!("upstream: {broker}: {down}"),
        _ => format!("upstream: not connected to {broker}"),
    }
}

async fn show(options: &Options) -> Result<(), StatusError> {
    let (sockets, config_note) = match &options.socket {
        Some(path) => (vec![path.clone()], None),
        None => {
            let (state_dir, note) = match Config::load(&options.config) {
                Ok(config) => (Some(config.gateway.state_dir), None),
                Err(errors) => (None, Some(config_problem(&options.config, &errors))),
            };
            let env = std::env::var_os("RUNTIME_DIRECTORY");
            (candidates(env, state_dir.as_deref()), note)
        }
    };
    let mut out = std::io::stdout();
    loop {
        let shown = fetch(&sockets, config_note.as_deref())
            .await
            .and_then(|(path, text)| {
                let doc: Value = serde_json::from_str(&text)
                    .map_err(|source| StatusError::BadDocument { path, source })?;
                Ok((doc, text))
            });
        if !options.watch {
            let (doc, text) = shown?;
            return print(&mut out, options, &doc, &text);
        }
        match (shown, options.json) {
            (Ok((_, text)), true) => writeln!(out, "{}", text.trim_end())?,
            (Err(e), true) => eprintln!("edgevisor status: {e}"),
            (Ok((doc, _)), false) => write!(out, "\x1b[H\x1b[2J{}", render(&doc, options.crashes))?,
            (Err(e), false) => writeln!(out, "\x1b[H\x1b[2J{e}")?,
        }
        out.flush()?;
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

fn print(
    out: &mut impl Write,
    options: &Options,
    doc: &Value,
    text: &str,
) -> Result<(), StatusError> {
    if options.json {
        writeln!(out, "{}", text.trim_end())?;
    } else {
        write!(out, "{}", render(doc, options.crashes))?;
    }
    Ok(out.flush()?)
}

fn config_problem(path: &Path, errors: &crate::config::ConfigErrors) -> String {
    let first = errors
        .0
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let first = first.lines().next().unwrap_or_default().to_string();
    format!("the config {} gave no state_dir: {first}", path.display())
}

/// The sockets to try, in order (see the module doc).
fn candidates(runtime_directory: Option<OsString>, state_dir: Option<&Path>) -> Vec<PathBuf> {
    let dirs = [
        runtime_directory.as_deref().and_then(first_dir),
        state_dir.map(Path::to_path_buf),
        Some(PathBuf::from(RUNTIME_DIR)),
    ];
    let mut list: Vec<PathBuf> = Vec::new();
    for path in dirs.into_iter().flatten().map(|d| d.join(SOCKET_FILE)) {
        if !list.contains(&path) {
            list.push(path);
        }
    }
    list
}

/// The first socket that answers, and its answer.
async fn fetch(
    sockets: &[PathBuf],
    config_note: Option<&str>,
) -> Result<(PathBuf, String), StatusError> {
    let mut tried = Vec::new();
    for path in sockets {
        match read(path).await {
            Ok(text) => return Ok((path.clone(), text)),
            Err(error) => tried.push((path.clone(), error)),
        }
    }
    Err(StatusError::NotAnswering {
        tried,
        config_note: config_note.map(str::to_string),
    })
}

async fn read(path: &Path) -> std::io::Result<String> {
    let read = async {
        let mut stream = UnixStream::connect(path).await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok(text)
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err(ErrorKind::TimedOut.into()))
}

/// The message when nothing answered: each socket and why, then what to do.
fn explain(tried: &[(PathBuf, std::io::Error)], config_note: Option<&str>) -> String {
    let mut text = String::from("no edgevisor service answered.\n");
    for (path, error) in tried {
        let why = match error.kind() {
            ErrorKind::NotFound => "no socket there".to_string(),
            ErrorKind::ConnectionRefused => "stale socket, nobody answers".to_string(),
            ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => error.to_string(),
        };
        text += &format!("  {}: {why}\n", path.display());
    }
    if let Some(note) = config_note {
        text += &format!("  ({note})\n");
    }
    text += "Is the service running? Try `systemctl status edgevisor`, or pass the\n\
             --config or --socket of the service you mean.";
    if tried
        .iter()
        .any(|(_, e)| e.kind() == ErrorKind::PermissionDenied)
    {
        text += "\nPermission denied: the socket is for the service's group. Join it\n\
                 (`sudo usermod -aG edgevisor $USER`, then log in again) or use sudo.";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_services_rule_then_the_units_directory() {
        assert_eq!(
            candidates(Some("/run/x:/run/y".into()), Some(Path::new("/var/lib/e"))),
            [
                Path::new("/run/x/status.sock"),
                Path::new("/var/lib/e/status.sock"),
                Path::new("/run/edgevisor/status.sock")
            ]
        );
        assert_eq!(
            candidates(Some("/run/edgevisor".into()), Some(Path::new("/s"))),
            [
                Path::new("/run/edgevisor/status.sock"),
                Path::new("/s/status.sock")
            ]
        );
    }

    #[test]
    fn the_error_names_each_socket_and_the_fix() {
        let tried = vec![
            (PathBuf::from("/a/status.sock"), ErrorKind::NotFound.into()),
            (
                PathBuf::from("/b/status.sock"),
                ErrorKind::PermissionDenied.into(),
            ),
        ];
        let text = explain(&tried, Some("the config /c gave no state_dir: x"));
        for part in [
            "/a/status.sock: no socket there",
            "/b/status.sock: permission denied",
            "the config /c gave no state_dir",
            "systemctl status edgevisor",
            "usermod -aG edgevisor",
        ] {
            assert!(text.contains(part), "missing {part:?} in\n{text}");
        }
        let plain = explain(&tried[..1], None);
        assert!(!plain.contains("usermod"), "{plain}");
    }
}
