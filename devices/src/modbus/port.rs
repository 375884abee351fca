//! The port of one bus and the request/reply exchange on it: one request
//! at a time, a timeout and retries per request, the quiet time between
//! requests, and no late reply ever taken for the answer to a later request.
//!
//! - RTU: after a timeout or a garbled reply the line is drained (read until
//!   silent for the longer of 3.5 character times and 50 ms) before the
//!   next request; a reply whose unit, function or length does not fit the
//!   pending request is an error.
//! - TCP: replies are matched by transaction id; one that matches no
//!   pending request is dropped and counted ([`Bus::late_replies`]). Bytes
//!   that are not Modbus TCP close the connection (its framing is lost).
//!
//! The port is opened on first use and after it failed, so an adapter that
//! was unplugged is found again under its `/dev/serial/by-id/` name.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_serial::SerialStream;

use super::error::PollError;
use super::frame::{
    self, parse_mbap, parse_rtu, rtu_reply_len, Reply, ReplyError, Request, MBAP_LEN,
};
use crate::link::serial::SerialConfig;

/// Longest RTU frame; more bytes than this without a complete reply is garbage.
const MAX_RTU_FRAME: usize = 256;
/// The least silence that ends a drain of an RTU line.
const MIN_DRAIN_SILENCE: Duration = Duration::from_millis(50);

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
    Tcp { stream: TcpStream, buffer: Vec<u8> },
}

/// One bus: its settings and, once opened, its port.
pub struct Bus {
    config: BusConfig,
    port: Option<Port>,
    next_transaction: u16,
    last_exchange: Option<Instant>,
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
            late_replies: 0,
        }
    }

    /// TCP replies that matched no pending request (dropped).
    pub fn late_replies(&self) -> u64 {
        self.late_replies
    }

    /// Closes the port; the next request opens it again.
    pub fn close(&mut self) {
        self.port = None;
    }

    /// Sends `request` and waits for its answer, trying `retries` more times
    /// after a timeout or a garbled reply. Costs at most
    /// `(retries + 1) * timeout` plus the drains and quiet times.
    pub async fn read(&mut self, request: &Request) -> Result<Reply, PollError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.attempt(request, tries).await {
                Err(e) if e.retryable() && tries <= self.config.retries => {
                    tracing::debug!(error = %e, tries, "modbus request failed; trying again");
                }
                result => return result,
            }
        }
    }

    async fn attempt(&mut self, request: &Request, tries: u32) -> Result<Reply, PollError> {
        if let Some(last) = self.last_exchange {
            sleep_until(last + self.config.delay_between).await;
        }
        if self.port.is_none() {
            self.port = Some(self.open().await?);
        }
        let timeout = self.config.timeout;
        let result = match self.port.as_mut() {
            Some(Port::Rtu(port)) => {
                let silence = drain_silence(&self.config.endpoint);
                rtu_exchange(port, request, timeout, silence, tries).await
            }
            Some(Port::Tcp { stream, buffer }) => {
                let tid = self.next_transaction;
                self.next_transaction = tid.wrapping_add(1);
                tcp_exchange(
                    stream,
                    buffer,
                    request,
                    tid,
                    timeout,
                    tries,
                    &mut self.late_replies,
                )
                .await
            }
            None => unreachable_port(request),
        };
        self.last_exchange = Some(Instant::now());
        if let Err(e) = &result {
            if e.reason == crate::link::EndReason::Io || tcp_lost_framing(e, &self.port) {
                self.port = None;
            }
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
                    Ok(Ok(stream)) => {
                        // Requests are small and latency matters more than
                        // packet count.
                        let _ = stream.set_nodelay(true);
                        Ok(Port::Tcp {
                            stream,
                            buffer: Vec::new(),
                        })
                    }
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

/// Never happens (the port was just opened); reported as an i/o error
/// rather than a panic.
fn unreachable_port(request: &Request) -> Result<Reply, PollError> {
    let e = std::io::Error::from(std::io::ErrorKind::NotConnected);
    Err(PollError::io(request.describe(), &e, &[]))
}

/// A TCP reply that was not Modbus TCP: the stream lost its framing.
fn tcp_lost_framing(e: &PollError, port: &Option<Port>) -> bool {
    matches!(port, Some(Port::Tcp { .. })) && e.message.contains("not a Modbus TCP header")
}

/// The silence that ends a drain: 3.5 characters of 11 bits, at least 50 ms.
fn drain_silence(endpoint: &Endpoint) -> Duration {
    match endpoint {
        Endpoint::Rtu(serial) => {
            let chars = Duration::from_secs_f64(3.5 * 11.0 / f64::from(serial.baud.max(1)));
            chars.max(MIN_DRAIN_SILENCE)
        }
        Endpoint::Tcp { .. } => MIN_DRAIN_SILENCE,
    }
}

async fn rtu_exchange(
    port: &mut SerialStream,
    request: &Request,
    timeout: Duration,
    silence: Duration,
    tries: u32,
) -> Result<Reply, PollError> {
    let frame = request.rtu();
    let io = |e: std::io::Error| PollError::io(request.describe(), &e, &frame);
    port.write_all(&frame).await.map_err(io)?;
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(5 + request.reply_bytes());
    let mut chunk = [0u8; MAX_RTU_FRAME];
    let complete = loop {
        if let Some(len) = rtu_reply_len(&got).filter(|len| got.len() >= *len) {
            break len;
        }
        if got.len() >= MAX_RTU_FRAME {
            break got.len();
        }
        match timeout_at(deadline, port.read(&mut chunk)).await {
            Err(_) => {
                drain(port, silence, timeout).await;
                return Err(PollError::timeout(request, &frame, &got, tries));
            }
            Ok(Ok(0)) => return Err(io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(io(e)),
        }
    };
    let result = if got.len() > complete {
        Err(ReplyError::Corrupt(format!(
            "{} bytes more than one reply",
            got.len() - complete
        )))
    } else {
        parse_rtu(request, &got)
    };
    match result {
        Ok(reply) => Ok(reply),
        Err(e) => {
            if !matches!(e, ReplyError::Exception { .. }) {
                // The rest of a garbled reply, or noise, must not meet the
                // next request.
                drain(port, silence, timeout).await;
            }
            Err(PollError::reply(request, &frame, &got, &e))
        }
    }
}

/// Reads and discards until the line has been silent for `silence`, or
/// for at most `limit` on a line that never goes quiet.
async fn drain(port: &mut SerialStream, silence: Duration, limit: Duration) {
    let give_up = Instant::now() + limit.max(silence);
    let mut chunk = [0u8; MAX_RTU_FRAME];
    let mut dropped = 0usize;
    loop {
        let quiet_at = (Instant::now() + silence).min(give_up);
        match timeout_at(quiet_at, port.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 && Instant::now() < give_up => dropped += n,
            _ => break,
        }
    }
    if dropped > 0 {
        tracing::debug!(bytes = dropped, "modbus line drained");
    }
}

async fn tcp_exchange(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    request: &Request,
    transaction: u16,
    timeout: Duration,
    tries: u32,
    late_replies: &mut u64,
) -> Result<Reply, PollError> {
    let frame = request.tcp(transaction);
    let io = |e: std::io::Error| PollError::io(request.describe(), &e, &frame);
    stream.write_all(&frame).await.map_err(io)?;
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 512];
    loop {
        while let Some(len) = tcp_frame_len(buffer) {
            let head = match len {
                Ok(len) => len,
                Err(e) => {
                    let got = std::mem::take(buffer);
                    return Err(PollError::reply(request, &frame, &got, &e));
                }
            };
            if buffer.len() < head.1 {
                break;
            }
            let reply: Vec<u8> = buffer.drain(..head.1).collect();
            let mbap = head.0;
            if mbap.transaction != transaction {
                *late_replies += 1;
                tracing::debug!(
                    transaction = mbap.transaction,
                    "modbus tcp reply to no pending request dropped"
                );
                continue;
            }
            let any_unit = matches!(request.unit, 0 | 255);
            if mbap.unit != request.unit && !any_unit {
                let e = ReplyError::Corrupt(format!(
                    "reply from unit {}, the request went to unit {}",
                    mbap.unit, request.unit
                ));
                return Err(PollError::reply(request, &frame, &reply, &e));
            }
            return frame::parse_pdu(request, &reply[MBAP_LEN..])
                .map_err(|e| PollError::reply(request, &frame, &reply, &e));
        }
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Err(PollError::timeout(request, &frame, buffer, tries)),
            Ok(Ok(0)) => return Err(io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(io(e)),
        }
    }
}

/// The header and full length of the frame at the start of `buffer`, once
/// its header is in.
fn tcp_frame_len(buffer: &[u8]) -> Option<Result<(frame::Mbap, usize), ReplyError>> {
    let head: &[u8; MBAP_LEN] = buffer.get(..MBAP_LEN)?.try_into().ok()?;
    Some(parse_mbap(head).map(|m| (m, MBAP_LEN + m.pdu_len)))
}
