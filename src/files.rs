//! Files a run leaves for the job's next step: the JSON report and rescue files.
//!
//! A container action runs as root in the runner's workspace, which belongs to the runner's user,
//! and the next step runs on the host as that user: a mode-0600 file owned by root is one it cannot
//! read (`actions/upload-artifact` fails on it). So a file that root creates is handed to the owner
//! of the directory it is created in. Its mode stays 0600; only its reader changes, to the one
//! who owns the directory (and so could delete or replace the file anyway).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Whether an existing file of the same name is replaced (the report) or kept (a rescue file is
/// never overwritten: opening fails with `AlreadyExists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Create or truncate.
    Replace,
    /// Create only when no file of that name exists.
    New,
}

/// Opens `path` for writing, created with mode 0600 and, when this process is root, owned by the
/// owner of its directory. Failing to change the owner is a warning, never an error: the file
/// may hold the only copy of a credential.
pub fn create_private(path: &Path, how: Create) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    match how {
        Create::Replace => opts.create(true).truncate(true),
        Create::New => opts.create_new(true),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path)?;
    #[cfg(unix)]
    if let Err(e) = give_to_directory_owner(&file, path) {
        crate::log::warn(&format!(
            "{} stays owned by root ({e}): a later step running as another user may not read it",
            path.display()
        ));
    }
    Ok(file)
}

#[cfg(unix)]
fn give_to_directory_owner(file: &File, path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (ours, theirs) = (file.metadata()?, std::fs::metadata(dir)?);
    // Only root can give a file away; a file of any other user is left as it is.
    if ours.uid() != 0 || (theirs.uid(), theirs.gid()) == (ours.uid(), ours.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(theirs.uid()), Some(theirs.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_and_new_never_overwrites() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        create_private(&path, Create::New).unwrap().write_all(b"one").unwrap();
        let err = create_private(&path, Create::New).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        create_private(&path, Create::Replace).unwrap().write_all(b"2").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
