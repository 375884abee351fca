//! One request and its reply on an RTU line, and the drain that keeps a
//! late or garbled reply from meeting the next request (SPEC section 9).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};
use tokio_serial::SerialStream;

use super::error::PollError;
use super::frame::{check_rtu_head, parse_rtu, rtu_reply_len, Reply, ReplyError, Request};

/// Longest RTU frame; more bytes than this without a complete reply is garbage.
const MAX_RTU_FRAME: usize = 256;
/// The least silence that ends a drain of an RTU line.
pub(super) const MIN_DRAIN_SILENCE: Duration = Duration::from_millis(50);

/// Writes `request` and reads its reply, all within `timeout`. A reply
/// whose first bytes do not fit the request fails at once; any failure but
/// an exception drains the line before returning.
pub(super) async fn exchange(
    port: &mut SerialStream,
    request: &Request,
    timeout: Duration,
    silence: Duration,
    tries: u32,
) -> Result<Reply, PollError> {
    let frame = request.rtu();
    let io = |e: std::io::Error| PollError::io(request.describe(), &e, &frame);
    let deadline = Instant::now() + timeout;
    let timed_out = |got: &[u8]| PollError::timeout(request, &frame, got, tries);
    match timeout_at(deadline, port.write_all(&frame)).await {
        Err(_) => return Err(timed_out(&[])),
        Ok(written) => written.map_err(io)?,
    }
    let mut got = Vec::with_capacity(5 + request.reply_bytes());
    let mut chunk = [0u8; MAX_RTU_FRAME];
    let complete = loop {
        if let Err(e) = check_rtu_head(request, &got) {
            drain(port, silence, timeout).await;
            return Err(PollError::reply(request, &frame, &got, &e));
        }
        if let Some(len) = rtu_reply_len(&got).filter(|len| got.len() >= *len) {
            break len;
        }
        match timeout_at(deadline, port.read(&mut chunk)).await {
            Err(_) => {
                drain(port, silence, timeout).await;
                return Err(timed_out(&got));
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
                drain(port, silence, timeout).await;
            }
            Err(PollError::reply(request, &frame, &got, &e))
        }
    }
}

/// Reads and discards until the line has been silent for `silence`, or
/// for at most `limit` on a line that never goes quiet.
pub(super) async fn drain(port: &mut SerialStream, silence: Duration, limit: Duration) {
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
