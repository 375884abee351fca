//! Where the demo's frames go. A terminal gets each frame redrawn in place
//! and fitted to its current size (crossterm): every line cut to the width,
//! the header always on the first row, then the tree, then as many crash
//! reports as there are rows left. Nothing is ever written past the last
//! column or below the last row, so nothing wraps and nothing scrolls.
//! Anything else (a pipe, a test) gets every frame as plain lines.

use std::io::{IsTerminal, Write};

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::style::Print;
use crossterm::terminal::{window_size, Clear, ClearType};
use crossterm::{execute, queue};

use super::view::Frame;

/// Crash reports in a plain frame.
const PLAIN_CRASHES: usize = 8;

/// Rows the crash list keeps when the tree is too long for the screen: a
/// blank line, its title and two reports.
const CRASH_ROWS_KEPT: usize = 4;

/// When the terminal cannot tell its size.
const FALLBACK: (usize, usize) = (80, 24);

/// The demo's output.
pub struct Screen {
    terminal: bool,
}

impl Screen {
    /// Redraws in place when stdout is a terminal, prints plain frames
    /// otherwise.
    pub fn new() -> Self {
        let terminal = std::io::stdout().is_terminal();
        if terminal {
            let _ = execute!(std::io::stdout(), Hide, Clear(ClearType::All));
        }
        Self { terminal }
    }

    /// True when redrawing in place.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Shows `frame`. Output errors are ignored: a closed terminal or pipe
    /// must not stop the demo from cleaning up.
    pub fn draw(&self, frame: &Frame) {
        if self.terminal {
            let (width, rows) = size();
            let _ = paint(&fit(frame, width, rows), rows);
        } else {
            let mut out = std::io::stdout().lock();
            let crashes = frame.crashes.iter().take(PLAIN_CRASHES + 2);
            for line in frame.header.iter().chain(&frame.tree).chain(crashes) {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out);
            let _ = out.flush();
        }
    }

    /// Shows the last `frame` with `message` below it, and leaves the
    /// cursor on the next row for the shell.
    pub fn finish(&self, frame: &Frame, message: &str) {
        if !self.terminal {
            self.draw(frame);
            let _ = writeln!(std::io::stdout(), "{message}");
            return;
        }
        let (width, rows) = size();
        let lines = fit(frame, width, rows.saturating_sub(2));
        let _ = paint(&lines, rows);
        let message = cut(message, width);
        let _ = execute!(
            std::io::stdout(),
            MoveTo(0, row(lines.len())),
            Print(message),
            Print("\r\n")
        );
    }
}

impl Drop for Screen {
    /// The cursor was hidden while redrawing.
    fn drop(&mut self) {
        if self.terminal {
            let _ = execute!(std::io::stdout(), Show);
        }
    }
}

/// Columns and rows of the terminal, or 80x24 when it cannot tell.
fn size() -> (usize, usize) {
    match window_size() {
        Ok(w) if w.columns > 0 && w.rows > 0 => (usize::from(w.columns), usize::from(w.rows)),
        _ => FALLBACK,
    }
}

fn row(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Writes `lines` from the top row, each over what was there, and clears
/// the rows below them.
fn paint(lines: &[String], rows: usize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for (n, line) in lines.iter().enumerate() {
        // Clear first, then print: clearing after a line that fills the
        // width would erase its last column.
        queue!(
            out,
            MoveTo(0, row(n)),
            Clear(ClearType::CurrentLine),
            Print(line)
        )?;
    }
    if lines.len() < rows {
        queue!(
            out,
            MoveTo(0, row(lines.len())),
            Clear(ClearType::FromCursorDown)
        )?;
    }
    out.flush()
}

/// `line` in at most `width` columns, control characters as spaces.
fn cut(line: &str, width: usize) -> String {
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(width)
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// The lines of `frame` that fit `width` x `rows`: the header first, then
/// the tree (cut with a "more" line, keeping a few rows for the crash list
/// when there are crashes), then the crash list cut to the rows left.
pub fn fit(frame: &Frame, width: usize, rows: usize) -> Vec<String> {
    let mut lines: Vec<String> = frame.header.iter().take(rows).cloned().collect();
    let left = rows - lines.len();
    let crash_rows = frame.crashes.len().min(CRASH_ROWS_KEPT).min(left);
    let tree_rows = frame.tree.len().min(left - crash_rows);
    if tree_rows < frame.tree.len() && tree_rows > 0 {
        lines.extend(frame.tree[..tree_rows - 1].iter().cloned());
        let hidden = frame.tree.len() - (tree_rows - 1);
        lines.push(format!(
            "  ... {hidden} more (a taller terminal shows them)"
        ));
    } else {
        lines.extend(frame.tree[..tree_rows].iter().cloned());
    }
    let left = rows - lines.len();
    lines.extend(frame.crashes.iter().take(left).cloned());
    lines.iter().map(|line| cut(line, width)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tree: usize, crashes: usize) -> Frame {
        let numbered = |what: &str, n: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("{what} {i} {}", "x".repeat(100)))
                .collect()
        };
        Frame {
            header: vec!["edgevisor demo    1.0s".into(), "broker".into()],
            tree: numbered("tree", tree),
            crashes: numbered("crash", crashes),
        }
    }

    #[test]
    fn everything_fits_a_big_screen_cut_to_its_width() {
        let lines = fit(&frame(14, 10), 160, 50);
        assert_eq!(lines.len(), 2 + 14 + 10);
        assert!(lines.iter().all(|l| l.chars().count() <= 160));
        assert!(lines[25].starts_with("crash 9 "));
    }

    #[test]
    fn the_crash_list_gets_the_rows_the_tree_leaves() {
        let lines = fit(&frame(14, 30), 80, 24);
        assert_eq!(lines.len(), 24);
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
        assert_eq!(lines[0], "edgevisor demo    1.0s");
        assert!(lines[15].starts_with("tree 13 "));
        assert!(lines[16].starts_with("crash 0 "));
        assert!(lines[23].starts_with("crash 7 "));
    }

    #[test]
    fn a_long_tree_is_cut_and_leaves_room_for_crashes() {
        let lines = fit(&frame(40, 30), 80, 24);
        assert_eq!(lines.len(), 24);
        assert!(lines[19].starts_with("  ... 23 more"), "{}", lines[19]);
        assert!(lines[20].starts_with("crash 0 "));
        assert!(lines[23].starts_with("crash 3 "));
    }

    #[test]
    fn a_tiny_screen_keeps_the_header() {
        let lines = fit(&frame(14, 30), 10, 1);
        assert_eq!(lines, vec!["edgevisor".to_string()]);
        assert!(fit(&frame(14, 30), 10, 0).is_empty());
    }

    #[test]
    fn control_characters_cannot_move_the_cursor() {
        assert_eq!(cut("a\tb\x1b[2Jc", 80), "a b [2Jc");
    }
}
