//! One request and its reply on a Modbus TCP connection. Replies are
//! matched by transaction id: one that matches no pending request (a late
//! reply to a request that timed out) is dropped and counted, and the wait
//! for the right one goes on (SPEC section 9). Bytes that are not Modbus
//! TCP end the connection, whose framing is lost.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::error::PollError;
use super::frame::{parse_mbap, parse_pdu, Mbap, Reply, ReplyError, Request, MBAP_LEN};

/// An open connection and what it has received but not yet used: reading
/// into a buffer keeps a timeout from cutting a frame in two.
pub(super) struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    late_replies: u64,
}

impl Connection {
    pub(super) fn new(stream: TcpStream) -> Self {
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        Connection {
            stream,
            buffer: Vec::new(),
            late_replies: 0,
        }
    }

    /// Late replies dropped since the last call.
    pub(super) fn take_late_replies(&mut self) -> u64 {
        std::mem::take(&mut self.late_replies)
    }

    /// Writes `request` as transaction `tid` and reads its reply, all
    /// within `timeout`. With unit 0 (a device that ignores the unit id)
    /// any unit byte in the reply is accepted.
    pub(super) async fn exchange(
        &mut self,
        request: &Request,
        tid: u16,
        timeout: Duration,
        tries: u32,
    ) -> Result<Reply, PollError> {
        let frame = request.tcp(tid);
        let io = |e: std::io::Error| PollError::io(request.describe(), &e, &frame);
        let deadline = Instant::now() + timeout;
        match timeout_at(deadline, self.stream.write_all(&frame)).await {
            Err(_) => return Err(PollError::timeout(request, &frame, &[], tries).reopening()),
            Ok(written) => written.map_err(io)?,
        }
        let mut chunk = [0u8; 512];
        loop {
            while let Some(next) = next_frame(&self.buffer) {
                let (mbap, len) = match next {
                    Ok(found) => found,
                    Err(e) => {
                        let got = std::mem::take(&mut self.buffer);
                        return Err(PollError::reply(request, &frame, &got, &e));
                    }
                };
                if self.buffer.len() < len {
                    break;
                }
                let reply: Vec<u8> = self.buffer.drain(..len).collect();
                if mbap.transaction != tid {
                    self.late_replies += 1;
                    tracing::info!(
                        transaction = mbap.transaction,
                        pending = tid,
                        "modbus tcp: a reply to no pending request (late) was dropped"
                    );
                    continue;
                }
                if mbap.unit != request.unit && request.unit != 0 {
                    let e = ReplyError::Corrupt(format!(
                        "reply from unit {}, the request went to unit {}",
                        mbap.unit, request.unit
                    ));
                    return Err(PollError::reply(request, &frame, &reply, &e));
                }
                return parse_pdu(request, &reply[MBAP_LEN..])
                    .map_err(|e| PollError::reply(request, &frame, &reply, &e));
            }
            match timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(PollError::timeout(request, &frame, &self.buffer, tries)),
                Ok(Ok(0)) => return Err(io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(io(e)),
            }
        }
    }
}

/// The header and full length of the frame at the start of `buffer`, once
/// its header is in.
fn next_frame(buffer: &[u8]) -> Option<Result<(Mbap, usize), ReplyError>> {
    let head: &[u8; MBAP_LEN] = buffer.get(..MBAP_LEN)?.try_into().ok()?;
    Some(parse_mbap(head).map(|m| (m, MBAP_LEN + m.pdu_len)))
}
