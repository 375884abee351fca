//! Where the status socket lives, and the service's side of it.
//!
//! `edgevisor run` puts the socket in `$RUNTIME_DIRECTORY` when systemd sets
//! it (the unit's `RuntimeDirectory=edgevisor`, i.e. `/run/edgevisor`), else
//! in the config's `state_dir`. The socket is `0660`, owned by the service's
//! user and group, so the service's group may read it and nobody else. A
//! socket left by a killed service is removed at start; one another live
//! service answers on is left alone (this one then does not answer). The
//! socket is removed at a clean stop.
//!
//! Each connection gets one JSON document, then the server closes it.

use std::ffi::OsStr;
use std::fs::{self, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};

use super::{document, Sources};
use crate::shutdown::{Background, Shutdown};

/// The socket's file name in its directory.
pub const SOCKET_FILE: &str = "status.sock";

/// The unit's runtime directory (`RuntimeDirectory=edgevisor`), which an
/// operator's shell does not have in `$RUNTIME_DIRECTORY`.
pub const RUNTIME_DIR: &str = "/run/edgevisor";

/// Permissions of the socket: the service's user and group.
const MODE: u32 = 0o660;

/// A client that does not read its answer within this is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Creating, clearing or restricting the socket failed.
    #[error("{0}; check that the directory exists and belongs to the service's user")]
    Io(#[from] std::io::Error),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; move it away")]
    NotASocket(PathBuf),
    /// Another service answers there.
    #[error("another edgevisor answers on {0}; give each service its own state_dir")]
    InUse(PathBuf),
}

/// The socket `edgevisor run` uses: in `runtime_directory` (systemd's
/// `$RUNTIME_DIRECTORY`, the first if it lists several) when set, else in
/// `state_dir`.
pub fn service_socket(runtime_directory: Option<&OsStr>, state_dir: &Path) -> PathBuf {
    runtime_directory
        .and_then(first_dir)
        .unwrap_or_else(|| state_dir.to_path_buf())
        .join(SOCKET_FILE)
}

/// systemd separates several runtime directories with `:`.
pub(super) fn first_dir(value: &OsStr) -> Option<PathBuf> {
    let text = value.to_string_lossy();
    let first = text.split(':').next().unwrap_or_default();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// Binds the service's socket ([`service_socket`] with systemd's
/// `$RUNTIME_DIRECTORY`) and answers on it from a background task until the
/// service stops. A socket that cannot be set up is logged and the service
/// runs on without it: `status` is for the operator, the data path does not
/// need it.
pub fn start(state_dir: &Path, sources: Sources, background: &mut Background) {
    let runtime_directory = std::env::var_os("RUNTIME_DIRECTORY");
    let path = service_socket(runtime_directory.as_deref(), state_dir);
    match bind(&path) {
        Ok(listener) => {
            tracing::info!(socket = %path.display(), "edgevisor status answers on this socket");
            background.spawn("status socket", move |shutdown| {
                serve(listener, path, sources, shutdown)
            });
        }
        Err(error) => {
            tracing::warn!(socket = %path.display(), %error, "edgevisor status will not answer");
        }
    }
}

fn bind(path: &Path) -> Result<UnixListener, BindError> {
    clear_stale(path)?;
    let listener = UnixListener::bind(path)?;
    // Under the unit's UMask=0077 the socket is born 0600; elsewhere the
    // umask may leave it wider. Either way it ends up 0660.
    fs::set_permissions(path, Permissions::from_mode(MODE))?;
    Ok(listener)
}

/// Removes a socket nobody answers on (left by a killed service).
fn clear_stale(path: &Path) -> Result<(), BindError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse(path.to_path_buf())),
        Err(_) => {
            tracing::info!(socket = %path.display(), "removing a stale status socket");
            Ok(fs::remove_file(path)?)
        }
    }
}

async fn serve(listener: UnixListener, path: PathBuf, sources: Sources, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => answer(stream, &sources).await,
                Err(error) => {
                    // E.g. out of file descriptors: do not spin on it.
                    tracing::warn!(%error, "status socket: cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.recv() => break,
        }
    }
    drop(listener);
    if let Err(error) = fs::remove_file(&path) {
        if error.kind() != ErrorKind::NotFound {
            tracing::warn!(socket = %path.display(), %error, "cannot remove the status socket");
        }
    }
}

/// Writes the document and closes; bounded, so a client that does not read
/// holds nothing up.
async fn answer(mut stream: UnixStream, sources: &Sources) {
    let body = document(sources);
    let write = async {
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "status socket: client went away"),
        Err(_) => tracing::debug!("status socket: client did not read in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_prefers_systemds_runtime_directory() {
        let state = Path::new("/var/lib/edgevisor");
        assert_eq!(
            service_socket(None, state),
            Path::new("/var/lib/edgevisor/status.sock")
        );
        assert_eq!(
            service_socket(Some(OsStr::new("/run/edgevisor")), state),
            Path::new("/run/edgevisor/status.sock")
        );
        assert_eq!(
            service_socket(Some(OsStr::new("/run/a:/run/b")), state),
            Path::new("/run/a/status.sock")
        );
        assert_eq!(
            service_socket(Some(OsStr::new("")), state),
            Path::new("/var/lib/edgevisor/status.sock")
        );
    }

    #[test]
    fn a_stale_socket_is_removed_and_a_file_is_not() {
        let dir = std::env::temp_dir().join(format!("edgevisor-sock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SOCKET_FILE);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        clear_stale(&path).unwrap();
        assert!(!path.exists());
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(matches!(clear_stale(&path), Err(BindError::InUse(_))));
        drop(live);
        fs::remove_file(&path).unwrap();
        fs::write(&path, "x").unwrap();
        assert!(matches!(clear_stale(&path), Err(BindError::NotASocket(_))));
        fs::remove_dir_all(&dir).unwrap();
    }
}
