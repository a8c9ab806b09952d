//! Reading and writing `run.json`. Writes are atomic (a temporary file in the same
//! directory, then a rename), so a reader never sees half a study, even when the runner
//! is killed mid-write. While a runner writes a study it holds an advisory lock on
//! `run.lock` beside it, which the kernel releases however the runner ends: a reader
//! tells a study still being written from one whose runner was killed.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::schema::{Study, READABLE_SCHEMA_VERSIONS};

/// The results file inside a study directory.
pub const RUN_FILE: &str = "run.json";
/// The same, gzipped: how large raw results are kept in a repository.
pub const RUN_FILE_GZ: &str = "run.json.gz";
/// Locked (flock) by the runner while it writes the study in the same directory.
pub const LOCK_FILE: &str = "run.lock";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "reading {path}: schema version {found}, this gpushare reads versions {}",
        readable_versions()
    )]
    Version { path: PathBuf, found: u64 },
    #[error(
        "reading {path}: not a gpushare study (no `schema_version`; a study's run.json is written by `gpushare run`)"
    )]
    NotAStudy { path: PathBuf },
    #[error("locking {path}: another `gpushare run` is writing a study in this directory")]
    Locked { path: PathBuf },
}

/// Held while a runner writes a study; the lock goes with the file descriptor, so the
/// kernel releases it on any exit, SIGKILL included.
#[derive(Debug)]
pub struct StudyLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl StudyLock {
    /// Takes the lock of the study directory `dir`, creating it if needed.
    pub fn acquire(dir: &Path) -> Result<StudyLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let err = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        if !try_lock(&file).map_err(err)? {
            return Err(StoreError::Locked { path });
        }
        Ok(StudyLock { path, _file: file })
    }

    /// Removes the lock file, then releases the lock as the file closes.
    pub fn release(self) {
        // Best effort: a lock file left behind is only a name; nobody holds it.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a runner holds the lock of the study at `path` (a directory or its run.json)
/// now: the study is still being written.
pub fn is_being_written(path: &Path) -> bool {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    match std::fs::File::open(dir.join(LOCK_FILE)) {
        // Taking the lock ourselves for an instant tells whether another process holds it;
        // it is released when `file` closes at the end of this arm.
        Ok(file) => matches!(try_lock(&file), Ok(false)),
        Err(_) => false,
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: true when taken, false when another process holds it.
fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Writes a study atomically, creating the directory if needed.
pub fn write_study(path: &Path, study: &Study) -> Result<(), StoreError> {
    let err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    let json = serde_json::to_vec_pretty(study).map_err(|e| err(e.into()))?;
    tmp.write_all(&json).map_err(err)?;
    tmp.write_all(b"\n").map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Reads a study from a study directory (its `run.json`, else its `run.json.gz`) or a
/// `run.json` / `run.json.gz` path.
pub fn read_study(path: &Path) -> Result<Study, StoreError> {
    let path = if path.is_dir() && !path.join(RUN_FILE).exists() && path.join(RUN_FILE_GZ).exists()
    {
        path.join(RUN_FILE_GZ)
    } else if path.is_dir() {
        path.join(RUN_FILE)
    } else {
        path.to_path_buf()
    };
    let text = read_text(&path).map_err(|source| StoreError::Read {
        path: path.clone(),
        source,
    })?;
    // Check the version first so an old file gets a clear message, not a field error.
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| StoreError::Parse {
            path: path.clone(),
            source,
        })?;
    let Some(found) = value.get("schema_version").and_then(|v| v.as_u64()) else {
        return Err(StoreError::NotAStudy { path });
    };
    if !READABLE_SCHEMA_VERSIONS.contains(&u32::try_from(found).unwrap_or(u32::MAX)) {
        return Err(StoreError::Version { path, found });
    }
    serde_json::from_value(value).map_err(|source| StoreError::Parse { path, source })
}

/// The readable versions, for messages: "1, 2".
fn readable_versions() -> String {
    READABLE_SCHEMA_VERSIONS
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The file's text, gunzipped when its name ends in `.gz`.
fn read_text(path: &Path) -> std::io::Result<String> {
    if path.extension().is_some_and(|ext| ext == "gz") {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(path)?),
            &mut text,
        )?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

/// The current UTC time, RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(err: &StoreError) -> String {
        crate::errors::error_chain(err)
    }

    #[test]
    fn another_schema_version_is_named_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_FILE);
        std::fs::write(&path, r#"{"schema_version": 99}"#).unwrap();
        let err = read_study(dir.path()).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "reading {}: schema version 99, this gpushare reads versions 1, 2",
                path.display()
            )
        );
    }

    #[test]
    fn json_without_a_schema_version_is_not_a_study() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_FILE);
        for text in ["{}", "[1, 2]", r#"{"schema_version": "2"}"#] {
            std::fs::write(&path, text).unwrap();
            let err = read_study(dir.path()).unwrap_err();
            assert_eq!(
                chain(&err),
                format!(
                    "reading {}: not a gpushare study (no `schema_version`; a study's run.json is written by `gpushare run`)",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn a_held_lock_says_the_study_is_being_written_until_released() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_being_written(dir.path()));
        let lock = StudyLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file: a second open, as another process's,
        // does not get it.
        assert!(is_being_written(dir.path()));
        assert!(is_being_written(&dir.path().join(RUN_FILE)));
        let err = StudyLock::acquire(dir.path()).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "locking {}: another `gpushare run` is writing a study in this directory",
                dir.path().join(LOCK_FILE).display()
            )
        );
        lock.release();
        assert!(!is_being_written(dir.path()));
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn a_file_that_is_not_json_is_a_parse_error_with_its_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_FILE);
        std::fs::write(&path, "{\n  \"schema_version\": 1,\n  oops\n}").unwrap();
        let err = read_study(&path).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "parsing {}: key must be a string at line 3 column 3",
                path.display()
            )
        );
    }

    #[test]
    fn a_gzipped_study_reads_like_the_plain_one() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join(RUN_FILE_GZ);
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        encoder.write_all(br#"{"schema_version": 99}"#).unwrap();
        encoder.finish().unwrap();
        // The directory finds the .gz when there is no run.json; its content was read.
        let err = read_study(dir.path()).unwrap_err();
        assert_eq!(
            chain(&err),
            format!(
                "reading {}: schema version 99, this gpushare reads versions 1, 2",
                gz.display()
            )
        );
    }

    #[test]
    fn a_study_missing_fields_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_FILE);
        std::fs::write(&path, r#"{"schema_version": 1}"#).unwrap();
        let err = read_study(&path).unwrap_err();
        assert_eq!(
            chain(&err),
            format!("parsing {}: missing field `scenario`", path.display())
        );
    }
}
