//! Reading files a user names: configs, includes, facts, profiles,
//! snapshots, manifests, templates. Regular files only, never more than a
//! stated size, and never a read that can block: a FIFO, a device such as
//! /dev/zero or a socket is refused with a message saying what it is.
//!
//! The file is opened with O_NONBLOCK and checked with fstat on the open
//! descriptor, so nothing can be swapped in between the check and the read.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Place};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;

/// A config file larger than this is not a config file.
pub const MAX_CONFIG: u64 = 10 * MIB;
/// Facts files, profiles, manifests, templates: small documents.
pub const MAX_DOCUMENT: u64 = MIB;

fn human(limit: u64) -> String {
    if limit >= MIB && limit.is_multiple_of(MIB) {
        format!("{} MiB", limit / MIB)
    } else {
        format!("{} KiB", limit.div_ceil(KIB))
    }
}

/// What a path is when it is not a regular file, in words.
fn kind_of(ft: std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Opens a regular file for reading without blocking, or says why not.
/// `what` names the file in messages ("facts file", "profile"...).
pub fn open_regular(path: &Path, what: &str) -> Result<File, Error> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            let hint = match e.raw_os_error() {
                // Opening a Unix socket fails with ENXIO.
                Some(libc::ENXIO) => {
                    "it is a socket or a device without a reader; name a regular file"
                }
                _ if e.kind() == std::io::ErrorKind::NotFound => "check the path",
                _ if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    "check its permissions (and those of its directories)"
                }
                _ => "name a regular file dbtune can read",
            };
            Error::plain(format!("cannot read {what} `{shown}`: {e}"), hint)
        })?;
    let meta = file.metadata().map_err(|e| {
        Error::plain(
            format!("cannot read {what} `{shown}`: {e}"),
            "check the path",
        )
    })?;
    if let Some(kind) = kind_of(meta.file_type()) {
        return Err(Error::plain(
            format!("{what} `{shown}` is {kind}, not a regular file"),
            if meta.is_dir() {
                "name a file in it".to_string()
            } else {
                "dbtune reads only regular files: a pipe or device could block or never end"
                    .to_string()
            },
        ));
    }
    Ok(file)
}

/// The bytes of a regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, Error> {
    read_open(open_regular(path, what)?, path, what, limit)
}

/// The bytes of a file already open (at `path`, for messages), at most
/// `limit` of them.
pub fn read_open(file: File, path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, Error> {
    let too_large = || {
        Error::plain(
            format!(
                "`{}` is too large to be a {what}: the limit is {}",
                path.display(),
                human(limit)
            ),
            "point dbtune at the file itself; nothing that size is a config",
        )
    };
    if file.metadata().is_ok_and(|m| m.len() > limit) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    // The size can change between fstat and the read: read at most one
    // byte past the limit whatever happens.
    file.take(limit + 1).read_to_end(&mut buf).map_err(|e| {
        Error::plain(
            format!("cannot read {what} `{}`: {e}", path.display()),
            "check its permissions",
        )
    })?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// A regular UTF-8 text file of at most `limit` bytes, without NUL bytes.
pub fn read_text(path: &Path, what: &str, limit: u64) -> Result<String, Error> {
    let bytes = read_bytes(path, what, limit)?;
    text_of(bytes, path, what)
}

/// Bytes read from `path` as text: no NUL byte, valid UTF-8.
pub fn text_of(bytes: Vec<u8>, path: &Path, what: &str) -> Result<String, Error> {
    let shown = path.display().to_string();
    if let Some(pos) = bytes.iter().position(|b| *b == 0) {
        let line = bytes[..pos].iter().filter(|b| **b == b'\n').count() + 1;
        return Err(Error::input(
            Place::line(&shown, line),
            format!("this is a binary file, not a {what} (it contains a NUL byte)"),
            format!("point dbtune at the text {what}"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let ok = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..ok].iter().filter(|b| **b == b'\n').count() + 1;
        Error::input(
            Place::line(&shown, line),
            format!("the {what} is not valid UTF-8"),
            "convert it to UTF-8 (iconv -f LATIN1 -t UTF-8): dbtune reads text as UTF-8",
        )
    })
}

/// Whether `path` is a regular file (following symlinks), without opening
/// it: for listings (include_dir, profile directories) that skip the rest.
pub fn is_regular(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        let e = read_text(Path::new("/dev/zero"), "config file", MAX_CONFIG).unwrap_err();
        assert!(e.message().contains("a character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_text(&fifo, "facts file", MAX_DOCUMENT).unwrap_err();
        assert!(e.message().contains("FIFO"), "{e}");
        let e = read_text(dir.path(), "profile", MAX_DOCUMENT).unwrap_err();
        assert!(e.message().contains("a directory"), "{e}");
    }

    #[test]
    fn the_size_limit_is_in_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big.conf");
        std::fs::write(&f, vec![b'#'; 2048]).unwrap();
        let e = read_text(&f, "facts file", 1024).unwrap_err();
        assert!(e.message().contains("the limit is 1 KiB"), "{e}");
        assert_eq!(read_text(&f, "config file", 4096).unwrap().len(), 2048);
    }
}
