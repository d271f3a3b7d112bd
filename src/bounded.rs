//! Reading the operator's files safely: only regular files, never more than a cap. A FIFO,
//! `/dev/zero` or a device given as an inventory, template or secret file would otherwise
//! block forever or read until memory runs out; every place rollout reads a file the operator
//! named goes through [`read_to_string`] or [`read`] (YAML files through
//! `yaml::Source::read`), or [`check`] where another reader opens the file.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest YAML, template or secret file rollout reads, in bytes (10 MiB).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A FIFO, socket, device or folder: reading it could block or never end.
    #[error("not a regular file")]
    NotRegular,
    /// Larger than the cap (bytes).
    #[error("file is larger than {} MiB", .0 / (1024 * 1024))]
    TooLarge(u64),
    /// Valid size and type, but not UTF-8 text.
    #[error("file is not valid UTF-8")]
    NotUtf8,
    /// Missing, unreadable, or failed while reading.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Refuses `path` unless it is a regular file (symbolic links followed) of at most `cap`
/// bytes. Only looks at metadata: nothing is opened, so a FIFO cannot block.
pub fn check(path: &Path, cap: u64) -> Result<(), ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(())
}

/// Reads a regular file of at most `cap` bytes as UTF-8 text.
///
/// The file is opened with `O_NONBLOCK` so that a FIFO swapped in after [`check`] does not
/// block the open; its type is checked again on the open handle, and the read stops after
/// `cap` bytes in case the file grows.
pub fn read_to_string(path: &Path, cap: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, cap)?).map_err(|_| ReadError::NotUtf8)
}

/// Reads a regular file of at most `cap` bytes, as [`read_to_string`] does, without asking
/// for UTF-8 (a caller that locates the first bad byte itself).
///
/// # Errors
/// [`ReadError::NotRegular`], [`ReadError::TooLarge`] or the I/O error.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    check(path, cap)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_fifos_and_large_files() {
        assert!(matches!(
            read_to_string(Path::new("/dev/zero"), MAX_FILE_BYTES),
            Err(ReadError::NotRegular)
        ));
        let dir = std::env::temp_dir().join(format!("rollout-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read_to_string(&fifo, MAX_FILE_BYTES)
                .unwrap_err()
                .to_string(),
            "not a regular file"
        );
        let big = dir.join("big");
        // Sparse: no 10 MiB written to disk.
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(
            read_to_string(&big, MAX_FILE_BYTES)
                .unwrap_err()
                .to_string(),
            "file is larger than 10 MiB"
        );
        std::fs::write(&big, "x".repeat(11)).unwrap();
        assert_eq!(read_to_string(&big, 11).unwrap(), "x".repeat(11));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
