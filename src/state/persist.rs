//! Durable file writes: atomic replace and synced append.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::StateError;

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file:
/// write a temp file, fsync it, rename it over, fsync the directory.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("json.tmp");
    let mut file = File::create(&tmp).map_err(write_error(&tmp))?;
    file.write_all(bytes).map_err(write_error(&tmp))?;
    file.sync_all().map_err(write_error(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(write_error(path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_error(dir))?;
    }
    Ok(())
}

/// Appends one line and fsyncs it.
pub(super) fn append_synced(path: &Path, line: &str) -> Result<(), StateError> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_error(path))?;
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(write_error(path))?;
    file.sync_data().map_err(write_error(path))
}
