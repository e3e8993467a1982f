//! Source archives (`sourcedir.tar.gz`): listing and unpacking with caps on
//! the unpacked size and the number of entries, so a small gzip bomb can
//! neither fill the disk nor hold a thread for minutes.

use std::io::Read;
use std::path::Path;

/// Bytes a source archive may unpack to (tar stream, headers included).
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// Entries (files, folders, links) a source archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("The source is not a readable .tar.gz archive.")]
    Unreadable,
    #[error("The source archive unpacks to more than {} MiB; keep data in datasets, not in the source folder.", MAX_UNPACKED_BYTES >> 20)]
    TooLarge,
    #[error("The source archive holds more than {MAX_ENTRIES} entries.")]
    TooManyEntries,
    #[error("The source archive could not be unpacked: {0}")]
    Unpack(String),
}

/// A reader that fails once more than `left` bytes came through.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(left) = self.left.checked_sub(n as u64) {
            self.left = left;
            Ok(n)
        } else {
            self.exceeded = true;
            Err(std::io::Error::other("the archive unpacks to too much"))
        }
    }
}

/// Walks the entries of `gz` (at most `cap` unpacked bytes and `max_entries`
/// entries), handing each to `each`; its error ends the walk.
fn walk(
    gz: &[u8],
    cap: u64,
    max_entries: usize,
    mut each: impl FnMut(&mut tar::Entry<'_, Capped<flate2::read::GzDecoder<&[u8]>>>) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let mut archive = tar::Archive::new(Capped { inner: flate2::read::GzDecoder::new(gz), left: cap, exceeded: false });
    archive.set_preserve_permissions(false);
    let result = (|| {
        for (n, entry) in archive.entries().map_err(|_| ArchiveError::Unreadable)?.enumerate() {
            if n >= max_entries {
                return Err(ArchiveError::TooManyEntries);
            }
            each(&mut entry.map_err(|_| ArchiveError::Unreadable)?)?;
        }
        Ok(())
    })();
    // A read past the cap surfaces as whatever error tar made of it.
    if archive.into_inner().exceeded { Err(ArchiveError::TooLarge) } else { result }
}

/// The regular files in a `.tar.gz`, as relative paths.
pub fn list(gz: &[u8]) -> Result<Vec<String>, ArchiveError> {
    list_capped(gz, MAX_UNPACKED_BYTES, MAX_ENTRIES)
}

fn list_capped(gz: &[u8], cap: u64, max_entries: usize) -> Result<Vec<String>, ArchiveError> {
    let mut files = Vec::new();
    walk(gz, cap, max_entries, |entry| {
        if entry.header().entry_type().is_file()
            && let Ok(path) = entry.path()
        {
            files.push(path.to_string_lossy().trim_start_matches("./").to_owned());
        }
        Ok(())
    })?;
    Ok(files)
}

/// Unpacks a `.tar.gz` into `into` (paths escaping it are refused by `tar`).
pub fn unpack(gz: &[u8], into: &Path) -> Result<(), ArchiveError> {
    unpack_capped(gz, into, MAX_UNPACKED_BYTES, MAX_ENTRIES)
}

fn unpack_capped(gz: &[u8], into: &Path, cap: u64, max_entries: usize) -> Result<(), ArchiveError> {
    std::fs::create_dir_all(into).map_err(|e| ArchiveError::Unpack(format!("{}: {e}", into.display())))?;
    walk(gz, cap, max_entries, |entry| {
        entry.unpack_in(into).map(|_| ()).map_err(|e| ArchiveError::Unpack(e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()));
        for (path, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, &body[..]).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gzip")
    }

    #[test]
    fn small_archives_list_and_unpack() {
        let gz = archive(&[("train.py", b"print(1)\n".to_vec()), ("lib/a.py", b"X = 1\n".to_vec())]);
        assert_eq!(list(&gz), Ok(vec!["train.py".to_owned(), "lib/a.py".to_owned()]));
        let dir = std::env::temp_dir().join(format!("capstan-archive-{}", std::process::id()));
        unpack(&gz, &dir).expect("unpacks");
        assert_eq!(std::fs::read_to_string(dir.join("lib/a.py")).expect("file"), "X = 1\n");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(list(b"not gzip at all"), Err(ArchiveError::Unreadable));
    }

    /// 8 MiB of zeros compress to a few kB: past the cap, reading stops.
    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let gz = archive(&[("zeros.bin", vec![0; 8 << 20])]);
        assert!(gz.len() < 64 << 10, "compressed to {} bytes", gz.len());
        assert_eq!(list_capped(&gz, 1 << 20, MAX_ENTRIES), Err(ArchiveError::TooLarge));
        let dir = std::env::temp_dir().join(format!("capstan-bomb-{}", std::process::id()));
        assert_eq!(unpack_capped(&gz, &dir, 1 << 20, MAX_ENTRIES), Err(ArchiveError::TooLarge));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(list_capped(&gz, 9 << 20, MAX_ENTRIES).is_ok(), "under the cap it reads");
    }

    #[test]
    fn too_many_entries_are_refused() {
        let files: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}.py"), Vec::new())).collect();
        let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, b)| (p.as_str(), b.clone())).collect();
        let gz = archive(&refs);
        assert_eq!(list_capped(&gz, MAX_UNPACKED_BYTES, 10), Err(ArchiveError::TooManyEntries));
        assert_eq!(list_capped(&gz, MAX_UNPACKED_BYTES, 20).map(|f| f.len()), Ok(20));
    }
}
