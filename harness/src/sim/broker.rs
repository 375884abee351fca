//! A real Mosquitto broker for tests and the swarm harness.
//!
//! Started on a free ephemeral port on 127.0.0.1 with a generated config
//! (`allow_anonymous true`, no persistence), it can be killed, frozen
//! (SIGSTOP) and thawed (SIGCONT), and restarted on the same port, which is
//! what "the broker restarted and lost its state" looks like to a client.
//! The binary is looked up on `PATH`, then in `/usr/sbin`; the system
//! broker on 1883 is never touched.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Why a broker could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No `mosquitto` binary; install the `mosquitto` package.
    #[error("mosquitto not found on PATH or in /usr/sbin; install the mosquitto package")]
    NotFound,
    /// Writing the config or spawning failed.
    #[error("starting mosquitto: {0}")]
    Io(#[from] std::io::Error),
    /// It started but never accepted connections.
    #[error("mosquitto did not listen on 127.0.0.1:{0} within 5 s")]
    NotListening(u16),
    /// Sending a signal failed.
    #[error("signalling mosquitto: {0}")]
    Signal(#[from] nix::Error),
}

/// A running (or stopped) Mosquitto owned by the caller; killed on drop.
#[derive(Debug)]
pub struct Mosquitto {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Config lines a test added (limits, say).
    extra: String,
}

/// Finds the `mosquitto` binary.
pub fn find_mosquitto() -> Option<PathBuf> {
    // No PATH: only the sbin directories below are searched.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// A port free on 127.0.0.1 now (it may be taken before it is used).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn unique_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "edgevisor-mosquitto-{}-{n}-{}",
        std::process::id(),
        fastrand::u32(..)
    ))
}

impl Mosquitto {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub async fn start() -> Result<Self, BrokerError> {
        Self::start_with("").await
    }

    /// Like [`start`](Self::start), with `extra` lines appended to the
    /// broker's config (e.g. `message_size_limit 1024`).
    pub async fn start_with(extra: &str) -> Result<Self, BrokerError> {
        let binary = find_mosquitto().ok_or(BrokerError::NotFound)?;
        let dir = unique_dir();
        std::fs::create_dir_all(&dir)?;
        let mut last = BrokerError::NotListening(0);
        // The port is free when probed but could be taken before mosquitto
        // binds it; try a few.
        for _ in 0..5 {
            let mut m = Mosquitto {
                binary: binary.clone(),
                dir: dir.clone(),
                port: free_port()?,
                child: None,
                extra: extra.to_string(),
            };
            match m.spawn().await {
                Ok(()) => return Ok(m),
                Err(e) => {
                    m.dir = PathBuf::new(); // keep the directory for the next try
                    last = e;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last)
    }

    fn write_config(&self) -> std::io::Result<PathBuf> {
        let conf = self.dir.join("mosquitto.conf");
        let text = format!(
            // No per-client queue limit: Mosquitto's default (1000 QoS 1
            // messages) silently drops messages for a subscriber that falls
            // behind, and an observer counting deliveries must never be a
            // source of loss itself.
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\nmax_queued_bytes 0\n{}\n",
            self.port, self.extra
        );
        std::fs::write(&conf, text)?;
        Ok(conf)
    }

    async fn spawn(&mut self) -> Result<(), BrokerError> {
        let conf = self.write_config()?;
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return Err(BrokerError::NotListening(self.port));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                self.child = Some(child);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill().await;
        Err(BrokerError::NotListening(self.port))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:<port>`, for link and simulator configs.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Whether the process is running (possibly frozen).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the broker (SIGKILL: no goodbye to clients, state lost).
    pub async fn kill(&mut self) -> Result<(), BrokerError> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // A frozen process must be able to die.
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            }
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts it again on the same port (after `kill`, or kills it first).
    pub async fn restart(&mut self) -> Result<(), BrokerError> {
        self.kill().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn().await {
                Ok(()) => return Ok(()),
                // The old socket may linger for a moment.
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn signal(&self, sig: Signal) -> Result<(), BrokerError> {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return Ok(());
        };
        kill(Pid::from_raw(pid as i32), sig)?;
        Ok(())
    }

    /// Freezes it (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) -> Result<(), BrokerError> {
        self.signal(Signal::SIGSTOP)
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) -> Result<(), BrokerError> {
        self.signal(Signal::SIGCONT)
    }

    /// The directory holding its generated config.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            }
            let _ = child.start_kill();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
