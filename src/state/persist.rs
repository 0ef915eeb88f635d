//! Durable file writes: atomic replace, synced append, and the audit-then-state commit.
//!
//! The audit record goes to disk before the state it explains. A failed state write
//! truncates the record away again, and [`settle_audit`] removes, at the next open, a
//! record whose state never landed (a crash between the two writes) and a torn last
//! line. What remains is the old state, or the new state with its record.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::{Overrides, StateError};

/// How much of the audit log's end is read to find its last record.
const TAIL_BYTES: u64 = 1 << 20;

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file:
/// write a temp file, fsync it, rename it over, fsync the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut file = File::create(&tmp).map_err(write_error(&tmp))?;
    file.write_all(bytes).map_err(write_error(&tmp))?;
    file.sync_all().map_err(write_error(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(write_error(path))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), StateError> {
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_error(dir))?;
    }
    Ok(())
}

/// Appends one line and fsyncs it; returns the file's length before the append.
pub(super) fn append_synced(path: &Path, line: &str) -> Result<u64, StateError> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_error(path))?;
    let before = file.metadata().map_err(write_error(path))?.len();
    let written = file
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_data());
    if let Err(source) = written {
        // Leave no partial record behind for a change that is not happening.
        let _ = file.set_len(before).and_then(|()| file.sync_data());
        return Err(StateError::Write {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(before)
}

/// One single-node commit: the audit record, then the state. On a state failure the
/// record is cut off again, so the caller's error leaves nothing behind.
pub(super) fn commit(
    audit: &Path,
    line: &str,
    state: &Path,
    state_bytes: &[u8],
) -> Result<(), StateError> {
    let audit_len = append_synced(audit, line)?;
    if let Err(e) = write_atomically(state, state_bytes) {
        let undone = OpenOptions::new()
            .write(true)
            .open(audit)
            .and_then(|f| f.set_len(audit_len).and_then(|()| f.sync_data()));
        if let Err(undo) = undone {
            tracing::error!(audit = %audit.display(), error = %undo, "cannot take back the audit record of a failed change");
        }
        return Err(e);
    }
    Ok(())
}

/// Makes the audit log agree with the state on disk at open: drops a torn last line
/// (a crash mid-append) and a last record whose `after` never reached the state file
/// while its `before` is what the file holds (a crash between the two writes; the
/// change was never acknowledged).
pub(super) fn settle_audit(path: &Path, state: &Overrides) -> Result<(), StateError> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StateError::Write {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let len = file.metadata().map_err(write_error(path))?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(write_error(path))?;
    let mut keep = len;
    if !tail.is_empty() && !tail.ends_with(b"\n") {
        let cut = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        keep = start + cut as u64;
        tail.truncate(cut);
        tracing::warn!(audit = %path.display(), "dropping a torn last audit record");
    }
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let last_start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    // A record larger than the tail we read cannot be judged; leave the log alone.
    let whole = start == 0 || last_start > 0;
    if whole && !body.is_empty() {
        if let Ok(record) = serde_json::from_slice::<serde_json::Value>(&body[last_start..]) {
            let on_disk = serde_json::to_value(state).unwrap_or_default();
            if record["after"] != on_disk && record["before"] == on_disk {
                keep = start + last_start as u64;
                tracing::warn!(audit = %path.display(), action = %record["action"], target = %record["target"], "dropping the audit record of a change that never reached state.json (crash before it was acknowledged)");
            }
        }
    }
    if keep != len {
        file.set_len(keep)
            .and_then(|()| file.sync_data())
            .map_err(write_error(path))?;
    }
    Ok(())
}
