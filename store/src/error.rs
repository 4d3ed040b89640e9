//! What can go wrong when reading or writing the store. Every message names the file and says
//! what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The results dir (or a run folder in it) cannot be used; the message says what to change.
    #[error("{0}")]
    Layout(String),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file exists but is not what the schema says it should be.
    #[error("{} is not a valid run file: {message}", path.display())]
    Schema { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads a JSON file of the run folder into `T`.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Schema {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
