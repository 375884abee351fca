//! The port of one bus and the request/reply exchange on it: one request
//! at a time, a deadline and retries per request, the quiet time between
//! requests, and no late reply taken for the answer to a later request.
//! The exchanges themselves are in `rtu` and `tcp`.
//!
//! - Each try has one deadline, `timeout` after it starts, that bounds the
//!   write and the wait for the reply alike.
//! - A try that did not finish (its future was dropped, say at shutdown)
//!   leaves the bus marked: the next request first drains an RTU line, or
//!   opens a new TCP connection, so the abandoned reply cannot meet it.
//! - The port is opened on first use and again after it failed, so an
//!   adapter that was unplugged is found again under its
//!   `/dev/serial/by-id/` name, and a TCP device that rebooted is
//!   reconnected.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};
use tokio_serial::SerialStream;

use super::error::PollError;
use super::frame::{Reply, Request};
use super::{rtu, tcp};
use crate::link::serial::SerialConfig;

/// TCP polls in a row that time out before the connection is reopened: a
/// half-open connection (the device lost power, a NAT entry expired) would
/// otherwise time out until the kernel gives up, minutes later.
const SILENT_POLLS_BEFORE_RECONNECT: u32 = 3;

/// Where a bus is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// RS-485 (or RS-232) through a serial port. Its codec and read timeout
    /// are not used.
    Rtu(SerialConfig),
    /// A Modbus TCP server.
    Tcp {
        /// `host:port`.
        address: String,
        /// How long a connect may take.
        connect_timeout: Duration,
    },
}

/// A bus's timing (SPEC section 9 keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// The port.
    pub endpoint: Endpoint,
    /// Per request; default 1 s.
    pub timeout: Duration,
    /// Extra tries of a request before its poll fails; default 1.
    pub retries: u32,
    /// Quiet time between two requests on the line; default 0.
    pub delay_between: Duration,
}

enum Port {
    Rtu(SerialStream),
    Tcp(tcp::Connection),
}

/// One bus: its settings and, once opened, its port.
pub struct Bus {
    config: BusConfig,
    port: Option<Port>,
    next_transaction: u16,
    last_exchange: Option<Instant>,
    /// A try started and did not finish, or timed out: what it asked for
    /// may still arrive.
    unsettled: bool,
    silent_polls: u32,
    late_replies: u64,
}

impl Bus {
    /// A bus whose port opens on first use.
    pub fn new(config: BusConfig) -> Self {
        Bus {
            config,
            port: None,
            next_transaction: 1,
            last_exchange: None,
            unsettled: false,
            silent_polls: 0,
            late_replies: 0,
        }
    }

    /// TCP replies that matched no pending request (dropped).
    pub fn late_replies(&self) -> u64 {
        self.late_replies
    }

    /// Sends `request` and waits for its answer, trying `retries` more times
    /// after a timeout or a garbled reply.
    pub async fn read(&mut self, request: &Request) -> Result<Reply, PollError> {
        let mut tries = 0;
        let result = loop {
            tries += 1;
            match self.attempt(request, tries).await {
                Err(e) if e.retryable() && tries <= self.config.retries => {
                    tracing::debug!(error = %e, tries, "modbus request failed; trying again");
                }
                result => break result,
            }
        };
        self.count_silence(&result);
        result
    }

    /// Reopens a TCP connection after several silent polls in a row.
    fn count_silence(&mut self, result: &Result<Reply, PollError>) {
        let silent = matches!(result, Err(e) if e.reason == crate::link::EndReason::Timeout);
        self.silent_polls = if silent { self.silent_polls + 1 } else { 0 };
        if self.silent_polls >= SILENT_POLLS_BEFORE_RECONNECT
            && matches!(self.port, Some(Port::Tcp(_)))
        {
            tracing::info!(
                polls = self.silent_polls,
                "modbus tcp: silent polls in a row; reconnecting"
            );
            self.port = None;
            self.silent_polls = 0;
        }
    }

    async fn attempt(&mut self, request: &Request, tries: u32) -> Result<Reply, PollError> {
        if let Some(last) = self.last_exchange {
            sleep_until(last + self.config.delay_between).await;
        }
        if self.unsettled && matches!(self.port, Some(Port::Tcp(_))) {
            // A TCP try was abandoned half-way (its future dropped): its
            // request may be half-written and its reply may still come on
            // this connection, so a new one is used.
            self.port = None;
        }
        if self.port.is_none() {
            self.port = Some(self.open().await?);
            self.unsettled = false;
        }
        let timeout = self.config.timeout;
        let silence = drain_silence(&self.config.endpoint);
        // Set until the try ends, whichever way: a try dropped half-way
        // leaves it set for the next one.
        let settle_first = std::mem::replace(&mut self.unsettled, true);
        let result = match self.port.as_mut() {
            Some(Port::Rtu(port)) => {
                if settle_first {
                    rtu::drain(port, silence, timeout).await;
                }
                rtu::exchange(port, request, timeout, silence, tries).await
            }
            Some(Port::Tcp(connection)) => {
                let tid = self.next_transaction;
                self.next_transaction = tid.wrapping_add(1);
                let result = connection.exchange(request, tid, timeout, tries).await;
                self.late_replies += connection.take_late_replies();
                result
            }
            None => Err(PollError::io(
                request.describe(),
                &std::io::Error::from(std::io::ErrorKind::NotConnected),
                &[],
            )),
        };
        self.last_exchange = Some(Instant::now());
        match &result {
            Err(e) if e.reopen => self.port = None,
            // A timed-out RTU try was drained already, but its reply may
            // come later still: the next request drains again. On TCP a
            // late reply is told apart by its transaction id.
            Err(e) => {
                self.unsettled = e.reason == crate::link::EndReason::Timeout
                    && matches!(self.port, Some(Port::Rtu(_)));
            }
            // An answer after a timed-out try may have been the late reply
            // to that try: the reply to this one may still come.
            Ok(_) => self.unsettled = tries > 1 && matches!(self.port, Some(Port::Rtu(_))),
        }
        result
    }

    async fn open(&self) -> Result<Port, PollError> {
        match &self.config.endpoint {
            Endpoint::Rtu(serial) => serial
                .open_port()
                .map(Port::Rtu)
                .map_err(|e| PollError::link(&e)),
            Endpoint::Tcp {
                address,
                connect_timeout,
            } => {
                let context = format!("connect {address}");
                match tokio::time::timeout(*connect_timeout, TcpStream::connect(address)).await {
                    Ok(Ok(stream)) => Ok(Port::Tcp(tcp::Connection::new(stream))),
                    Ok(Err(e)) => Err(PollError::io(context, &e, &[])),
                    Err(_) => Err(PollError::io(
                        context,
                        &std::io::Error::from(std::io::ErrorKind::TimedOut),
                        &[],
                    )),
                }
            }
        }
    }
}

/// The silence that ends an RTU drain: 3.5 characters of 11 bits, at least
/// 50 ms.
fn drain_silence(endpoint: &Endpoint) -> Duration {
    let baud = match endpoint {
        Endpoint::Rtu(serial) => serial.baud.max(1),
        Endpoint::Tcp { .. } => u32::MAX,
    };
    Duration::from_secs_f64(3.5 * 11.0 / f64::from(baud)).max(rtu::MIN_DRAIN_SILENCE)
}
