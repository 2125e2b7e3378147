//! Bounded file reads shared by the dataset, catalogue and settings readers: a size limit checked
//! while reading, and UTF-8 text without a byte-order mark. Also what a path that should be a
//! folder is instead, for the error that refuses it.

use crate::error::DataError;
use std::path::Path;

/// Largest dataset file read (checked while reading, so `/dev/zero` is refused too).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Largest settings file read (`--config`, a run's `config.json` / `state.json`).
pub const MAX_SETTINGS_BYTES: u64 = 16 << 20;

/// What `path` is when something is there but not a folder (following links): "a file", "a link
/// to nothing", "a link that loops"; `None` when nothing is there or it is a folder.
pub fn not_a_folder(path: &Path) -> Option<String> {
    std::fs::symlink_metadata(path).ok()?;
    match std::fs::metadata(path) {
        // Outputs would land among the system's folders.
        Ok(m) if m.is_dir() && path.canonicalize().is_ok_and(|p| p.parent().is_none()) => {
            Some("the root of the file system".into())
        }
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some("a file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("a link to nothing".into()),
        // ELOOP: the standard library has no stable ErrorKind for it.
        Err(e) if e.raw_os_error() == Some(40) => Some("a link that loops back on itself".into()),
        Err(e) => Some(format!("unreadable ({e})")),
    }
}

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
        return Err(too_large(path, max));
    }
    Ok(bytes)
}

/// Reads a UTF-8 text file of at most `MAX_FILE_BYTES`, without the byte-order mark some editors
/// put first.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    read_text_max(path, MAX_FILE_BYTES)
}

/// [`read_text`] with a size limit of `max` bytes. A NUL byte or a byte sequence that is not UTF-8
/// stops the read where it occurs, so a binary file or a device such as `/dev/zero` is refused
/// after its first block, not after `max` bytes.
pub fn read_text_max(path: &Path, max: u64) -> Result<String, DataError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = file.take(max + 1);
    let mut bytes = Vec::new();
    let mut block = vec![0u8; 1 << 16];
    // Bytes checked so far: a character cut by the end of a block is checked with the next.
    let mut valid = 0;
    loop {
        let n = match reader.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DataError::io(path, e)),
        };
        if bytes.is_empty()
            && (block[..n].starts_with(b"\xff\xfe") || block[..n].starts_with(b"\xfe\xff"))
        {
            return Err(DataError::file(
                path,
                "UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8, e.g. `iconv -f UTF-16 -t UTF-8 FILE > NEW`",
            ));
        }
        if let Some(i) = block[..n].iter().position(|&b| b == 0) {
            bytes.extend_from_slice(&block[..i]);
            return Err(DataError::file(
                path,
                format!(
                    "line {}, byte {} is NUL: not a text file",
                    line_at(&bytes, bytes.len()),
                    bytes.len()
                ),
            ));
        }
        bytes.extend_from_slice(&block[..n]);
        match std::str::from_utf8(&bytes[valid..]) {
            Ok(_) => valid = bytes.len(),
            Err(e) if e.error_len().is_none() => valid += e.valid_up_to(),
            Err(e) => return Err(not_utf8(path, &bytes, valid + e.valid_up_to())),
        }
        if bytes.len() as u64 > max {
            return Err(too_large(path, max));
        }
    }
    if valid < bytes.len() {
        return Err(not_utf8(path, &bytes, valid));
    }
    if bytes.starts_with(b"\xef\xbb\xbf") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        not_utf8(path, e.as_bytes(), at)
    })
}

/// The 1-based line of byte `at`.
fn line_at(bytes: &[u8], at: usize) -> usize {
    bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1
}

fn not_utf8(path: &Path, bytes: &[u8], at: usize) -> DataError {
    DataError::file(
        path,
        format!(
            "not UTF-8 text (line {}, byte {at}): save it as UTF-8, e.g. `iconv -f LATIN1 -t UTF-8 FILE > NEW` for a Latin-1 file",
            line_at(bytes, at)
        ),
    )
}

fn too_large(path: &Path, max: u64) -> DataError {
    let size = if max >= 1 << 30 {
        format!("{} GiB", max >> 30)
    } else if max >= 1 << 20 {
        format!("{} MiB", max >> 20)
    } else {
        format!("{max} bytes")
    };
    DataError::file(path, format!("larger than {size}: refused"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ssi-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[cfg(unix)]
    #[test]
    fn what_is_there_instead_of_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n);
        assert_eq!(not_a_folder(&at("nothing")), None);
        assert_eq!(not_a_folder(dir.path()), None);
        std::fs::write(at("file"), b"x").unwrap();
        assert_eq!(not_a_folder(&at("file")).as_deref(), Some("a file"));
        std::os::unix::fs::symlink(at("nowhere"), at("dangling")).unwrap();
        assert_eq!(
            not_a_folder(&at("dangling")).as_deref(),
            Some("a link to nothing")
        );
        std::os::unix::fs::symlink(at("loop"), at("loop")).unwrap();
        let looped = not_a_folder(&at("loop"));
        assert_eq!(looped.as_deref(), Some("a link that loops back on itself"));
        std::os::unix::fs::symlink(dir.path(), at("to-folder")).unwrap();
        assert_eq!(not_a_folder(&at("to-folder")), None);
    }

    #[test]
    fn text_reads_refuse_nul_and_broken_utf8_where_they_occur() {
        let p = write("nul.txt", b"1 2 3\n4 \x005\n");
        let e = read_text(&p).unwrap_err().to_string();
        assert!(e.contains("line 2, byte 8 is NUL"), "{e}");
        let p = write("latin1.txt", b"1 2 3\ncaf\xe9 4\n");
        let e = read_text(&p).unwrap_err().to_string();
        assert!(e.contains("not UTF-8 text (line 2, byte 9)"), "{e}");
        // A multi-byte character cut at the end of the file is not valid either.
        let p = write("cut.txt", "1 2 é".as_bytes().split_last().unwrap().1);
        let e = read_text(&p).unwrap_err().to_string();
        assert!(e.contains("not UTF-8 text (line 1, byte 4)"), "{e}");
        // UTF-16, as spreadsheets save "Unicode text", is named with the way out.
        for bom in [&b"\xff\xfeu\x00"[..], b"\xfe\xff\x00u"] {
            let p = write("utf16.csv", bom);
            let e = read_text(&p).unwrap_err().to_string();
            assert!(e.contains("UTF-16") && e.contains("iconv"), "{e}");
        }
    }

    #[test]
    fn text_reads_keep_characters_across_blocks_and_drop_the_bom() {
        // "é" (two bytes) straddles the 64 KiB block boundary.
        let mut text = "\u{feff}".to_string() + &"a".repeat((1 << 16) - 4);
        text.push_str("é 1\n");
        let p = write("straddle.txt", text.as_bytes());
        let read = read_text(&p).unwrap();
        assert_eq!(read.len(), text.len() - 3);
        assert!(read.ends_with("é 1\n"));
        let p = write("big.txt", &vec![b'a'; 2048]);
        let e = read_text_max(&p, 1024).unwrap_err().to_string();
        assert!(e.contains("larger than 1024 bytes"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn the_root_is_not_an_output_folder() {
        assert_eq!(
            not_a_folder(Path::new("/")).as_deref(),
            Some("the root of the file system")
        );
        assert_eq!(
            not_a_folder(Path::new("/tmp/..")).as_deref(),
            Some("the root of the file system")
        );
        assert_eq!(not_a_folder(&std::env::temp_dir()), None);
    }

    #[cfg(unix)]
    #[test]
    fn dev_zero_is_refused_after_one_block() {
        let e = read_text(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("byte 0 is NUL"), "{e}");
    }
}
