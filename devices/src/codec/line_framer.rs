//! Newline framing shared by the `lines` and `json` codecs.
//!
//! A line ends at `\n`; a `\r` right before it is part of the line ending.
//! The framer enforces `max_frame` on the line content while buffering: once
//! more than `max_frame` bytes have arrived without a newline, it reports the
//! line as too long, drops what it holds and discards everything up to and
//! including the next `\n` (as tokio-util's `LinesCodec` does), so a peer
//! that never sends a newline cannot make the buffer grow.

use bytes::{Buf, BytesMut};

use super::error::{CorruptFrame, CorruptKind};

/// Where the next line is in the buffer: `content` bytes of line, followed
/// by a line ending; `consumed` bytes in all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineSpan {
    pub(crate) content: usize,
    pub(crate) consumed: usize,
}

/// Newline framing state: resumable across reads, bounded by `max_frame`.
#[derive(Debug, Clone)]
pub(crate) struct LineFramer {
    max_frame: usize,
    discarding: bool,
    /// Bytes already searched for `\n`, so a slow drip is not rescanned.
    searched: usize,
    codec: &'static str,
}

impl LineFramer {
    pub(crate) fn new(codec: &'static str, max_frame: usize) -> Self {
        LineFramer {
            max_frame,
            discarding: false,
            searched: 0,
            codec,
        }
    }

    /// Most bytes left buffered after `next_line` returns `Ok(None)`.
    pub(crate) fn max_buffered(&self) -> usize {
        self.max_frame + 1
    }

    /// Finds the next complete line. The caller must `advance` the buffer by
    /// `consumed` after using the content.
    pub(crate) fn next_line(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<LineSpan>, CorruptFrame> {
        loop {
            let from = self.searched.min(buf.len());
            let Some(off) = memchr::memchr(b'\n', &buf[from..]) else {
                return self.no_newline(buf);
            };
            let nl = from + off;
            self.searched = 0;
            if self.discarding {
                buf.advance(nl + 1);
                self.discarding = false;
                continue;
            }
            let content = if nl > 0 && buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            if content > self.max_frame {
                let err = self.too_long(&buf[..content]);
                buf.advance(nl + 1);
                return Err(err);
            }
            return Ok(Some(LineSpan {
                content,
                consumed: nl + 1,
            }));
        }
    }

    fn no_newline(&mut self, buf: &mut BytesMut) -> Result<Option<LineSpan>, CorruptFrame> {
        if self.discarding {
            buf.clear();
            self.searched = 0;
            return Ok(None);
        }
        let len = buf.len();
        // A trailing '\r' may still turn out to be part of "\r\n".
        let over = len > self.max_frame + 1 || (len == self.max_frame + 1 && buf[len - 1] != b'\r');
        if over {
            let err = self.too_long(&buf[..]);
            buf.clear();
            self.searched = 0;
            self.discarding = true;
            return Err(err);
        }
        self.searched = len;
        Ok(None)
    }

    fn too_long(&self, content: &[u8]) -> CorruptFrame {
        CorruptFrame::new(
            CorruptKind::TooLong,
            format!(
                "{} line longer than max_frame {}",
                self.codec, self.max_frame
            ),
            content,
        )
    }

    /// At end of input: an unterminated line is a truncated frame.
    pub(crate) fn finish(&mut self, buf: &mut BytesMut) -> Option<CorruptFrame> {
        self.searched = 0;
        if buf.is_empty() || self.discarding {
            self.discarding = false;
            buf.clear();
            return None;
        }
        let err = CorruptFrame::truncated(self.codec, buf);
        buf.clear();
        Some(err)
    }
}
