//! Errors that say what went wrong and where (file, line, item).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An OS error on a file (reading or writing); printed once, with the path.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub fn line(path: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        DataError::Line {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }

    pub fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::File {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            err: source,
        }
    }
}
