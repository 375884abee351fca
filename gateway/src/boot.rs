//! The boot counter of SPEC section 5: a number in `state_dir` that grows by
//! one each time the service starts, written atomically (temp file, fsync,
//! rename, fsync of the directory) so a power cut never resets or repeats it.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Reads the last boot number (0 when there is none), stores the next and
/// returns it.
pub fn next_boot(state_dir: &Path) -> std::io::Result<u64> {
    fs::create_dir_all(state_dir)?;
    let path = state_dir.join("boot");
    let last = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds {:?}, not a number ({e}); fix or remove it",
                    path.display(),
                    text.trim()
                ),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let next = last + 1;
    let tmp = state_dir.join("boot.tmp");
    let mut file = fs::File::create(&tmp)?;
    writeln!(file, "{next}")?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    fs::File::open(state_dir)?.sync_all()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_across_starts_and_refuses_garbage() {
        let dir = std::env::temp_dir().join(format!("edgevisor-boot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(next_boot(&dir).unwrap(), 1);
        assert_eq!(next_boot(&dir).unwrap(), 2);
        assert_eq!(next_boot(&dir).unwrap(), 3);
        fs::write(dir.join("boot"), "garbage").unwrap();
        assert!(next_boot(&dir)
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
