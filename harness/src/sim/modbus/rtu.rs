//! Modbus RTU for the simulated slave, on a pty pair: the simulator holds
//! the master side, the gateway opens the slave path (or the stable
//! symlink) as it would a USB RS-485 adapter. Framing is in `rtu_frame`.
//!
//! One bus serves every unit of the simulator, one request at a time, as a
//! half-duplex line does; requests for other units and broadcasts (unit 0)
//! get no reply. [`RtuSim::unplug`] closes the pty and removes the symlink
//! (the reader sees end of input or EIO); [`RtuSim::replug`] opens a new
//! pty and re-points the symlink, like serial.rs's `Remove` and `Replug`.

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::rtu_frame::{encode, RtuFramer};
use super::service::{Outgoing, Shared};
use crate::sim::serial::{open_pty, point_symlink, Pty};

/// Silence that ends a frame: far above 3.5 characters at any baud rate,
/// far below any master's reply timeout.
const QUIET: Duration = Duration::from_millis(20);

/// A running Modbus RTU slave on a pty; dropping it unplugs for good.
#[derive(Debug)]
pub struct RtuSim {
    commands: mpsc::UnboundedSender<Command>,
    slave: watch::Receiver<Option<PathBuf>>,
    link: Option<PathBuf>,
    discarded: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Command {
    Unplug(oneshot::Sender<()>),
    Replug(oneshot::Sender<io::Result<PathBuf>>),
}

/// A plugged-in pty, readable and writable on the master side.
struct Port {
    pty: Pty,
    /// A second descriptor on the master, for reading: `Pty` writes only.
    rx: pipe::Receiver,
}

fn plug(link: Option<&Path>) -> io::Result<Port> {
    let pty = open_pty()?;
    let rx = pipe::Receiver::from_owned_fd_unchecked(pty.master.as_fd().try_clone_to_owned()?)?;
    if let Some(l) = link {
        point_symlink(l, &pty.path)?;
    }
    Ok(Port { pty, rx })
}

impl RtuSim {
    pub(crate) fn start(shared: Arc<Shared>, link: Option<PathBuf>) -> io::Result<Self> {
        let port = plug(link.as_deref())?;
        let (slave_tx, slave) = watch::channel(Some(port.pty.path.clone()));
        let (commands, rx) = mpsc::unbounded_channel();
        let discarded = Arc::new(AtomicU64::new(0));
        let bus = Bus {
            shared,
            link: link.clone(),
            slave: slave_tx,
            discarded: Arc::clone(&discarded),
        };
        let task = tokio::spawn(bus.run(Some(port), rx));
        Ok(RtuSim {
            commands,
            slave,
            link,
            discarded,
            task,
        })
    }

    /// The current slave device (`/dev/pts/N`), `None` while unplugged.
    pub fn slave_path(&self) -> Option<PathBuf> {
        self.slave.borrow().clone()
    }

    /// The stable symlink, if one was asked for.
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// What the master should open: the symlink when there is one (it
    /// survives replugs), else the current slave.
    pub fn path(&self) -> Option<PathBuf> {
        self.link.clone().or_else(|| self.slave_path())
    }

    /// Closes the pty and removes the symlink; returns once done.
    pub async fn unplug(&self) {
        let (ack, done) = oneshot::channel();
        if self.commands.send(Command::Unplug(ack)).is_ok() {
            // An error means the bus task ended: nothing is plugged in then.
            let _ = done.await;
        }
    }

    /// Opens a new pty (unplugging the current one first) and re-points
    /// the symlink at it; returns the new slave path.
    pub async fn replug(&self) -> io::Result<PathBuf> {
        let (ack, done) = oneshot::channel();
        let gone = || io::Error::other("the Modbus RTU simulator has stopped");
        self.commands
            .send(Command::Replug(ack))
            .map_err(|_| gone())?;
        done.await.map_err(|_| gone())?
    }

    /// Corrupt frames dropped so far (bad CRC, garbage): a master that
    /// counts its own corrupt requests can check them against this.
    pub fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }
}

impl Drop for RtuSim {
    fn drop(&mut self) {
        self.task.abort();
        // Left behind, the link would point at a pts number the kernel
        // hands to the next pty opened.
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// The bus task's state.
struct Bus {
    shared: Arc<Shared>,
    link: Option<PathBuf>,
    slave: watch::Sender<Option<PathBuf>>,
    discarded: Arc<AtomicU64>,
}

enum Event {
    Command(Option<Command>),
    Failed(io::Error),
}

impl Bus {
    async fn run(self, mut port: Option<Port>, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let event = match port.as_mut() {
                Some(p) => tokio::select! {
                    c = commands.recv() => Event::Command(c),
                    e = self.serve(p) => Event::Failed(e),
                },
                None => Event::Command(commands.recv().await),
            };
            match event {
                Event::Command(None) => return,
                Event::Failed(e) => {
                    tracing::warn!(error = %e, "modbus rtu sim: pty failed, unplugging");
                    self.unplug(&mut port);
                }
                Event::Command(Some(Command::Unplug(ack))) => {
                    self.unplug(&mut port);
                    let _ = ack.send(());
                }
                Event::Command(Some(Command::Replug(ack))) => {
                    self.unplug(&mut port);
                    let reply = plug(self.link.as_deref()).map(|p| {
                        let path = p.pty.path.clone();
                        self.slave.send_replace(Some(path.clone()));
                        port = Some(p);
                        path
                    });
                    let _ = ack.send(reply);
                }
            }
        }
    }

    fn unplug(&self, port: &mut Option<Port>) {
        if port.take().is_none() {
            return;
        }
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
        self.slave.send_replace(None);
    }

    /// Serves requests until the pty fails (it cannot end otherwise).
    async fn serve(&self, port: &mut Port) -> io::Error {
        let mut framer = RtuFramer::default();
        let mut buf = [0u8; 256];
        loop {
            let read = if framer.is_idle() {
                Ok(port.rx.read(&mut buf).await)
            } else {
                tokio::time::timeout(QUIET, port.rx.read(&mut buf)).await
            };
            let before = framer.discarded();
            let frames = match read {
                Ok(Ok(0)) => return io::ErrorKind::UnexpectedEof.into(),
                Ok(Ok(n)) => framer.push(&buf[..n]),
                Ok(Err(e)) => return e,
                Err(_quiet) => framer.quiet().into_iter().collect(),
            };
            self.discarded
                .fetch_add(framer.discarded() - before, Ordering::Relaxed);
            for frame in frames {
                if let Err(e) = self.answer(&mut port.pty.master, &frame).await {
                    return e;
                }
            }
        }
    }

    /// Answers one request frame (unit id and PDU), if it is for us.
    async fn answer(&self, tx: &mut pipe::Sender, frame: &[u8]) -> io::Result<()> {
        let Some((&unit, request)) = frame.split_first() else {
            return Ok(());
        };
        if unit == 0 {
            return Ok(());
        }
        let bytes = match self.shared.respond(unit, request, true).await {
            None => return Ok(()),
            Some(Outgoing::Reply { unit, pdu, bad_crc }) => encode(unit, &pdu, bad_crc),
            Some(Outgoing::Garbage(bytes)) => bytes,
        };
        tx.write_all(&bytes).await
    }
}
