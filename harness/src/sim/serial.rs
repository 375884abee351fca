//! A simulated serial sensor on a pseudo-terminal pair.
//!
//! The simulator holds the master side and writes to it; the link opens the
//! slave path exactly as it would a USB adapter. The slave is put in raw
//! mode so the line discipline does not rewrite CR/LF. Like udev's
//! `/dev/serial/by-id/...` links, an optional stable symlink always points
//! at the current slave: `Remove` closes the pty and deletes the symlink
//! (the reader sees end of input), `Replug` opens a new pty and re-points
//! the symlink at it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::faults::Fault;
use super::writer::{LoopEnd, Writer};
use super::{SimConfig, SimHandle};

/// A pty-backed serial sensor.
#[derive(Debug)]
pub struct PtySensor {
    /// Controls the simulator.
    pub handle: SimHandle,
    slave: watch::Receiver<Option<PathBuf>>,
    link: Option<PathBuf>,
}

/// One plugged-in pty: master for writing, slave kept open in raw mode.
pub(crate) struct Pty {
    pub(crate) master: pipe::Sender,
    _slave: OwnedFd,
    pub(crate) path: PathBuf,
}

pub(crate) fn open_pty() -> std::io::Result<Pty> {
    let pair = openpty(None, None)?;
    let mut t = tcgetattr(&pair.slave)?;
    cfmakeraw(&mut t);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &t)?;
    let path = nix::unistd::ttyname(pair.slave.as_fd())?;
    // Not inherited by a gateway process started later: a master kept open
    // there would hide an unplug (no hang-up while a copy stays open).
    for fd in [&pair.master, &pair.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    let flags = OFlag::from_bits_truncate(fcntl(&pair.master, FcntlArg::F_GETFL)?);
    fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let master = pipe::Sender::from_owned_fd_unchecked(pair.master)?;
    Ok(Pty {
        master,
        _slave: pair.slave,
        path,
    })
}

/// Points `link` at `target`, atomically (a reader never sees it missing).
pub(crate) fn point_symlink(link: &Path, target: &Path) -> std::io::Result<()> {
    let tmp = link.with_extension("sim-tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

impl PtySensor {
    /// Plugs in a pty and starts writing. With `link`, a symlink at that
    /// path follows the current slave (use it as the sensor's device).
    pub async fn start(config: SimConfig, link: Option<PathBuf>) -> std::io::Result<Self> {
        let first = open_pty()?;
        if let Some(l) = &link {
            point_symlink(l, &first.path)?;
        }
        let (slave_tx, slave) = watch::channel(Some(first.path.clone()));
        let link_path = link.clone();
        let handle = SimHandle::spawn(&config, move |counters, mut commands| async move {
            let mut pty = Some(first);
            loop {
                let Some(mut current) = pty.take() else {
                    // Unplugged: wait for Replug (other faults make no sense now).
                    match commands.recv().await {
                        None => return,
                        Some(Fault::Replug) => match open_pty() {
                            Ok(p) => {
                                if let Some(l) = &link_path {
                                    if let Err(e) = point_symlink(l, &p.path) {
                                        tracing::warn!(error = %e, "pty sim: cannot re-point symlink");
                                    }
                                }
                                slave_tx.send_replace(Some(p.path.clone()));
                                pty = Some(p);
                            }
                            Err(e) => tracing::warn!(error = %e, "pty sim: cannot open a new pty"),
                        },
                        Some(_) => {}
                    }
                    continue;
                };
                let mut w = Writer::connected(&config, &counters, &mut commands);
                let end = w.run(&mut current.master).await;
                drop(current); // device removal: master and slave closed
                slave_tx.send_replace(None);
                if let Some(l) = &link_path {
                    let _ = std::fs::remove_file(l);
                }
                match end {
                    LoopEnd::Stopped => return,
                    LoopEnd::Replug => {
                        // Re-plug right away: queue it for the unplugged branch.
                        pty = open_pty().ok();
                        if let (Some(p), Some(l)) = (&pty, &link_path) {
                            let _ = point_symlink(l, &p.path);
                        }
                        slave_tx.send_replace(pty.as_ref().map(|p| p.path.clone()));
                    }
                    LoopEnd::Disconnect | LoopEnd::Remove | LoopEnd::PeerGone => {}
                }
            }
        });
        Ok(PtySensor {
            handle,
            slave,
            link,
        })
    }

    /// The current slave device (`/dev/pts/N`), `None` while unplugged.
    pub fn slave_path(&self) -> Option<PathBuf> {
        self.slave.borrow().clone()
    }

    /// Waits until a slave is plugged in and returns its path.
    pub async fn wait_plugged(&mut self) -> Option<PathBuf> {
        self.slave
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|p| p.clone())
    }

    /// Waits until the pty is unplugged.
    pub async fn wait_unplugged(&mut self) {
        let _ = self.slave.wait_for(Option::is_none).await;
    }

    /// The stable symlink, if one was asked for.
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }
}
