//! A link over a byte stream (serial port, TCP connection): reads with a
//! timeout, decodes with the sensor's codec, classifies how it ends.
//!
//! - `Ok(0)`, `EIO` (a USB adapter unplugged), `ECONNRESET`,
//!   `ECONNABORTED` and `EPIPE` all mean the device went away: reason `eof`.
//!   Any frame cut off by the end is kept as evidence.
//! - Silence (no bytes at all) for `read_timeout`: reason `timeout`. A slow
//!   drip of bytes keeps the link alive; `max_frame` bounds what it buffers.
//! - Memory: the buffer holds at most the decoder's `max_buffered` plus one
//!   read of [`READ_CHUNK`] bytes.

use std::io::ErrorKind;
use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Decoder;

use super::error::LinkError;
use super::stats::LinkStats;
use crate::codec::{DecodeError, ReadingDecoder};
use crate::Reading;

/// The most bytes asked for per read.
pub const READ_CHUNK: usize = 8192;

/// Bytes asked for by a link's first read. Each read that fills all it
/// asked for doubles the ask, up to [`READ_CHUNK`]: a quiet sensor (most of
/// them) keeps a small buffer, where 8 KiB each made a thousand idle
/// connections hold 8 MiB, and a busy one reaches full reads within a few.
const FIRST_READ: usize = 512;

/// A link's byte stream: read asynchronously while the link runs, and at
/// a stop, read at once for what the kernel already holds.
pub(crate) trait LinkIo: AsyncRead + Send + Unpin {
    /// Reads what is buffered now, without waiting and without the
    /// runtime's readiness, which lags the kernel until the runtime's I/O
    /// driver next turns: a stopping child that trusted it left the last
    /// bytes a sensor sent unread, to be lost when the socket closed.
    /// `None` where the stream has no such read (its bytes are then taken
    /// only as the runtime sees them).
    fn read_now(&mut self, _buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        None
    }
}

impl LinkIo for tokio::net::TcpStream {
    fn read_now(&mut self, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        use std::io::Read;
        // The socket is non-blocking (tokio's): an empty one is WouldBlock.
        let socket = socket2::SockRef::from(&*self);
        Some((&*socket).read(buf))
    }
}

impl LinkIo for tokio_serial::SerialStream {}

/// Most bytes [`StreamLink::take_buffered`] reads at a stop: a sensor
/// flooding its link does not hold the stop up.
const TAKE_AT_STOP: usize = 64 * READ_CHUNK;

/// A byte stream plus its decoder.
pub(crate) struct StreamLink {
    io: Box<dyn LinkIo>,
    decoder: ReadingDecoder,
    buf: BytesMut,
    /// Bytes the next read asks for (grows from [`FIRST_READ`]).
    want: usize,
    read_timeout: Duration,
    eof: bool,
    /// When the current (or last) read began.
    last_read: Option<Instant>,
    /// Fires at `last_read + read_timeout` or later (made at the
    /// first read: a timer needs the runtime).
    silence: Option<Pin<Box<Sleep>>>,
    /// An error met after readings of the same read were decoded: returned
    /// by the next call, once those readings were handed over.
    deferred: Option<LinkError>,
    what: String,
    pub(crate) stats: LinkStats,
}

fn device_gone(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::EIO)
        || matches!(
            e.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
        )
}

impl StreamLink {
    pub(crate) fn new(
        io: Box<dyn LinkIo>,
        decoder: ReadingDecoder,
        read_timeout: Duration,
        what: String,
    ) -> Self {
        StreamLink {
            io,
            decoder,
            buf: BytesMut::new(),
            want: FIRST_READ,
            read_timeout,
            eof: false,
            last_read: None,
            silence: None,
            deferred: None,
            what,
            stats: LinkStats::default(),
        }
    }

    /// The next reading; cancel-safe (nothing is lost if the future is dropped).
    pub(crate) async fn next(&mut self) -> Result<Reading, LinkError> {
        loop {
            if let Some(error) = self.deferred.take() {
                return Err(error);
            }
            if let Some(result) = self.decode()? {
                return Ok(result);
            }
            self.fill().await?;
        }
    }

    /// Appends every reading decodable from what one read brought (waiting
    /// for that read if nothing is buffered) to `out`. An error met after
    /// some readings is kept for the next call, so the readings before a
    /// corrupt frame are never lost to it. Cancel-safe: it waits only while
    /// `out` is still untouched.
    pub(crate) async fn next_batch(&mut self, out: &mut Vec<Reading>) -> Result<(), LinkError> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        let start = out.len();
        loop {
            if !self.decode_buffered(out, start)? || out.len() > start {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Appends every reading decodable from the buffer to `out`. An error
    /// with nothing appended since `start` is returned; after some readings
    /// it is kept for the next call and `Ok(false)` says to stop there.
    fn decode_buffered(&mut self, out: &mut Vec<Reading>, start: usize) -> Result<bool, LinkError> {
        loop {
            match self.decode() {
                Ok(Some(reading)) => out.push(reading),
                Ok(None) => return Ok(true),
                Err(error) if out.len() == start => return Err(error),
                Err(error) => {
                    self.deferred = Some(error);
                    return Ok(false);
                }
            }
        }
    }

    /// Reads once into the buffer (or notes the end of the stream). Silence
    /// is watched by one timer per link that is re-armed only when it fires
    /// early (to this read's start plus `read_timeout`), not by a fresh timer
    /// per read.
    async fn fill(&mut self) -> Result<(), LinkError> {
        self.buf.reserve(self.want);
        let room = self.buf.capacity() - self.buf.len();
        let read_timeout = self.read_timeout;
        // Silence counts from when this read began, as a per-read timeout
        // would: time the caller spent elsewhere (waiting for room in the
        // outbox) is not the device's silence.
        let last_read = self.last_read.insert(Instant::now());
        let silence = self
            .silence
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(*last_read + read_timeout)));
        let read = loop {
            tokio::select! {
                read = self.io.read_buf(&mut self.buf) => break read,
                _ = silence.as_mut() => {
                    let due = *last_read + read_timeout;
                    if due <= Instant::now() {
                        return Err(LinkError::Timeout(read_timeout));
                    }
                    silence.as_mut().reset(due);
                }
            }
        };
        match read {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.stats.bytes += n as u64;
                if n == room {
                    self.want = (self.want * 2).min(READ_CHUNK);
                }
            }
            Err(e) if device_gone(&e) => self.eof = true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(LinkError::io(format!("read {}", self.what), e)),
        }
        Ok(())
    }

    /// Takes, without waiting, the readings the link holds now: those
    /// decoded from bytes already read, then those in what the kernel has
    /// buffered ([`LinkIo::read_now`]), up to [`TAKE_AT_STOP`] bytes.
    /// Errors as in [`Self::next_batch`]: one met after readings is kept for
    /// the next call.
    pub(crate) fn take_buffered(&mut self, out: &mut Vec<Reading>) -> Result<(), LinkError> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        let start = out.len();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut taken = 0;
        loop {
            if !self.decode_buffered(out, start)? || self.eof || taken >= TAKE_AT_STOP {
                return Ok(());
            }
            match self.io.read_now(&mut chunk) {
                None => return Ok(()),
                Some(Ok(0)) => self.eof = true,
                Some(Ok(n)) => {
                    taken += n;
                    self.stats.bytes += n as u64;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Some(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                // Nothing more now (WouldBlock), or the link failed: what
                // came before is taken.
                Some(Err(_)) => return Ok(()),
            }
        }
    }

    /// One decode step over what is buffered; `Ok(None)` means "read more".
    fn decode(&mut self) -> Result<Option<Reading>, LinkError> {
        let step = if self.eof {
            self.decoder.decode_eof(&mut self.buf)
        } else {
            self.decoder.decode(&mut self.buf)
        };
        self.stats.skipped_bytes = self.decoder.skipped_bytes();
        match step {
            Ok(Some(r)) => {
                self.stats.readings += 1;
                Ok(Some(r))
            }
            Ok(None) if self.eof => Err(LinkError::Eof { truncated: None }),
            Ok(None) => Ok(None),
            Err(DecodeError::Corrupt(c)) if self.eof && !c.can_continue() => {
                Err(LinkError::Eof { truncated: Some(c) })
            }
            Err(DecodeError::Corrupt(c)) => {
                self.stats.corrupt += 1;
                Err(LinkError::Corrupt(c))
            }
            Err(DecodeError::Io(e)) => Err(LinkError::io(format!("decode {}", self.what), e)),
        }
    }
}
