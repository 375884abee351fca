//! The Sparkplug birth/death sequence number (`bdSeq`), kept in
//! `state_dir/sparkplug-bdseq` across restarts. Sparkplug 3.0 wants it
//! raised by one (255 wraps to 0) for every MQTT CONNECT, since the Will
//! (the NDEATH) is fixed at CONNECT and a host pairs each NDEATH with the
//! NBIRTH of the same session by it. Written like the boot counter:
//! temp file, fsync, rename, fsync of the directory, so a power cut never
//! repeats a value.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in `state_dir`.
pub const FILE: &str = "sparkplug-bdseq";

/// The bdSeq of the last connect attempt, and where it is kept.
#[derive(Debug)]
pub struct BdSeq {
    path: PathBuf,
    /// The value of the last attempt; `None` before the first ever.
    last: Option<u8>,
}

impl BdSeq {
    /// Reads the last value from `state_dir`. A missing file starts at 0
    /// (the first connect uses 0); a file that is not a number 0..=255 is
    /// an error naming the fix.
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(state_dir)?;
        let path = state_dir.join(FILE);
        let last = match fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().parse::<u8>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} holds {:?}, not a number 0..=255 ({e}); fix or remove it",
                        path.display(),
                        text.trim()
                    ),
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self { path, last })
    }

    /// The value for the next connect attempt, stored before it is used.
    /// A write that fails is returned with the value, which is used all the
    /// same (the node keeps working; only a restart could repeat it).
    pub fn next(&mut self) -> (u8, std::io::Result<()>) {
        let next = self.last.map_or(0, |last| last.wrapping_add(1));
        self.last = Some(next);
        (next, self.store(next))
    }

    fn store(&self, value: u8) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = self.path.with_extension("tmp");
        let mut file = fs::File::create(&tmp)?;
        writeln!(file, "{value}")?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_zero_counts_across_opens_wraps_and_refuses_garbage() {
        let dir = std::env::temp_dir().join(format!("edgevisor-bdseq-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut seq = BdSeq::open(&dir).unwrap();
        assert_eq!(seq.next().0, 0);
        assert_eq!(seq.next().0, 1);
        let mut again = BdSeq::open(&dir).unwrap();
        assert_eq!(again.next().0, 2, "kept across a restart");
        fs::write(dir.join(FILE), "255\n").unwrap();
        let mut wrapped = BdSeq::open(&dir).unwrap();
        assert_eq!(wrapped.next().0, 0, "255 wraps to 0");
        fs::write(dir.join(FILE), "256").unwrap();
        let err = BdSeq::open(&dir).unwrap_err().to_string();
        assert!(err.contains("not a number 0..=255"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
