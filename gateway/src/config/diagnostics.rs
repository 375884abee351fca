//! Config errors as a person needs them: `FILE:LINE:COL: message`, then a
//! hint saying how to fix it. Every error of a file is collected before any
//! is shown, so one `edgevisor check` run lists them all.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a config file, located by byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Byte range in the file (None: the file as a whole).
    pub span: Option<Range<usize>>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem at `span`.
    pub fn at(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the fix.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A located problem, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem of one config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// Locates `problems` in `text` (the contents of `file`), sorted by place.
    pub fn locate(file: &Path, text: &str, problems: Vec<Problem>) -> Self {
        let mut errors: Vec<(usize, ConfigError)> = problems
            .into_iter()
            .map(|p| {
                let offset = p.span.as_ref().map_or(0, |s| s.start.min(text.len()));
                let (line, column) = line_column(text, offset);
                let error = ConfigError {
                    file: file.to_path_buf(),
                    line,
                    column,
                    message: p.message,
                    hint: p.hint,
                };
                (offset, error)
            })
            .collect();
        errors.sort_by_key(|(offset, _)| *offset);
        errors.dedup_by(|a, b| a.1 == b.1);
        Self(errors.into_iter().map(|(_, e)| e).collect())
    }

    /// An error about the file as a whole (unreadable, say).
    pub fn whole_file(file: &Path, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self(vec![ConfigError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message: message.into(),
            hint: Some(hint.into()),
        }])
    }
}

/// 1-based line and character column of byte `offset`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The known key closest to `unknown`, if it is close enough to be a typo.
pub fn closest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    // Jaro-Winkler favours a shared prefix, which is how key typos look
    // (`baudrate` for `baud`, `keepalive` for `keep_alive`).
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, text.find('=').unwrap()), (1, 3));
        let second_eq = text.rfind('=').unwrap();
        assert_eq!(line_column(text, second_eq), (2, 4));
    }

    #[test]
    fn typos_find_their_key() {
        assert_eq!(
            closest("baudrate", &["baud", "device", "parity"]),
            Some("baud")
        );
        assert_eq!(closest("adress", &["address", "listen"]), Some("address"));
        assert_eq!(closest("zzzzzz", &["address", "listen"]), None);
        assert_eq!(
            closest("keepalive", &["keep_alive", "topic_prefix"]),
            Some("keep_alive")
        );
        assert_eq!(
            closest("baudrate", &["data_bits", "parity", "backoff_reset"]),
            None
        );
    }
}
