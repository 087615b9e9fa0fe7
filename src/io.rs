//! Files written so that nothing is lost: every output goes to a temporary file in the same
//! folder and is renamed over the target only when complete, so a crash or a full disk leaves
//! either the old file or the new one, never half of one.

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically (temporary file, `fsync`, rename). Creates missing
/// parent folders.
///
/// ```
/// let dir = std::env::temp_dir().join("rwt-doc-io");
/// let path = dir.join("hello.txt");
/// rwt::io::write_atomic(&path, b"hello")?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    write_atomic_with(path, |tmp| {
        std::fs::File::create(tmp)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|source| Error::Io { path: path.to_path_buf(), source })
    })
}

/// Reads a whole text file; the error names the file.
pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// Writes `path` atomically with `write`, which fills the temporary file it is given (in the
/// target's folder, created if missing); the file is then `fsync`ed and renamed over `path`.
/// On any error the temporary file is removed and the target left as it was; I/O errors name
/// `path`, other errors of `write` pass through.
pub fn write_atomic_with<E>(
    path: impl AsRef<Path>,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> Result<()>
where
    E: Into<Error>,
{
    let path = path.as_ref();
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = write(&tmp).map_err(Into::into).and_then(|()| {
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).and_then(|()| std::fs::rename(&tmp, path)).map_err(io)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_reports_the_path() {
        let dir = std::env::temp_dir().join(format!("rwt-io-{}", std::process::id()));
        let p = dir.join("a/b.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1, "no temporary left behind");
        // A folder in the way: the error names the file.
        let e = write_atomic(dir.join("a"), b"x").unwrap_err().to_string();
        assert!(e.contains("rwt-io-") && e.contains("/a"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
