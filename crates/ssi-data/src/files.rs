//! Bounded file reads shared by the dataset, catalogue and settings readers: a size limit checked
//! while reading, and UTF-8 text without a byte-order mark.

use crate::error::DataError;
use std::path::Path;

/// Largest dataset file read (checked while reading, so `/dev/zero` is refused too).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Largest settings file read (`--config`, a run's `config.json` / `state.json`).
pub const MAX_SETTINGS_BYTES: u64 = 16 << 20;

/// Reads a file of at most `MAX_FILE_BYTES` (checked while reading: endless devices stop too).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    read_bytes_max(path, MAX_FILE_BYTES)
}

/// Reads a file of at most `max` bytes, checked while reading: a device or a sparse file stops at
/// the limit instead of filling memory.
pub fn read_bytes_max(path: &Path, max: u64) -> Result<Vec<u8>, DataError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 > max {
        let size = if max >= 1 << 30 {
            format!("{} GiB", max >> 30)
        } else {
            format!("{} MiB", max >> 20)
        };
        return Err(DataError::file(
            path,
            format!("larger than {size}: refused"),
        ));
    }
    Ok(bytes)
}

/// Reads a UTF-8 text file of at most `MAX_FILE_BYTES`, without the byte-order mark some editors
/// put first.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    read_text_max(path, MAX_FILE_BYTES)
}

/// [`read_text`] with a size limit of `max` bytes.
pub fn read_text_max(path: &Path, max: u64) -> Result<String, DataError> {
    let mut bytes = read_bytes_max(path, max)?;
    if bytes.starts_with(b"\xef\xbb\xbf") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        DataError::file(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}
