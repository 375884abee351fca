//! The bench's private Mosquitto: `/usr/sbin/mosquitto -c <conf>` on a free
//! ephemeral port of 127.0.0.1, never the system broker. No per-client
//! queue or in-flight limits, so the counting subscriber is never a source
//! of loss (Mosquitto silently drops QoS 1 messages past
//! `max_queued_messages`, 1,000 by default). Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::workdir::{free_port, WorkDir};

/// Where the broker binary is looked for, in order.
const CANDIDATES: &[&str] = &["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"];

/// A broker that may be started (and stopped) later on the same port.
#[derive(Debug)]
pub struct Mosquitto {
    binary: PathBuf,
    dir: WorkDir,
    port: u16,
    persistent: bool,
    child: Option<Child>,
}

impl Mosquitto {
    /// Picks a port and a directory; does not start anything yet. A
    /// `persistent` broker keeps sessions (and their queued messages)
    /// across a stop and start, in its directory.
    pub fn prepare(root: &Path, persistent: bool) -> anyhow::Result<Self> {
        let binary = CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("mosquitto not found in /usr/sbin; apt-get install mosquitto")?;
        Ok(Self {
            binary,
            dir: WorkDir::new(root, "mosquitto")?,
            port: free_port()?,
            persistent,
            child: None,
        })
    }

    /// Prepares and starts a non-persistent broker.
    pub async fn start_new(root: &Path) -> anyhow::Result<Self> {
        let mut broker = Self::prepare(root, false)?;
        broker.start().await?;
        Ok(broker)
    }

    /// The port it listens on (or will).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn config(&self) -> String {
        let mut text = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\nlog_dest none\n\
             max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 0\n",
            self.port
        );
        if self.persistent {
            text.push_str(&format!(
                "persistence true\npersistence_location {}/\nautosave_interval 0\n",
                self.dir.path().display()
            ));
        } else {
            text.push_str("persistence false\n");
        }
        text
    }

    /// Starts the broker and waits (up to 5 s) until it accepts connections.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(&conf, self.config()).context("writing mosquitto.conf")?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                bail!(
                    "mosquitto exited at start ({status}); is port {} taken?",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "mosquitto did not listen on 127.0.0.1:{} within 5 s",
            self.port
        )
    }

    /// Stops the broker with SIGTERM (a persistent one saves its sessions)
    /// and waits for it to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            crate::forwarder::terminate(&mut child, Duration::from_secs(10)).await?;
        }
        Ok(())
    }
}
