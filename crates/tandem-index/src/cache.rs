//! The on-disk cache of a root's symbols, so that a warm start parses only the files whose
//! content changed.
//!
//! One file per workspace root, `<cache dir>/symbols/<xxh3 of the root path>.bin`: a header
//! (format version, Tandem's version, the root path) then the entries, encoded with postcard.
//! A file that cannot be read, was written by another version, or belongs to another root is
//! ignored (and rewritten at the next save). Writes go to a temporary file renamed into place,
//! so a crash never leaves a torn cache.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::FileSymbols;

/// Bumped whenever the entries' shape or the tags queries change meaning.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    version: String,
    root: String,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    header: Header,
    entries: Vec<(String, FileSymbols)>,
}

#[derive(Serialize)]
struct CacheFileRef<'a> {
    header: Header,
    entries: Vec<(&'a str, &'a FileSymbols)>,
}

/// The user's cache directory for Tandem: `$TANDEM_CACHE_DIR`, else `$XDG_CACHE_HOME/tandem`,
/// else `~/.cache/tandem` (`%LOCALAPPDATA%\tandem` on Windows).
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env("TANDEM_CACHE_DIR") {
        return Some(dir);
    }
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return Some(dir.join("tandem"));
    }
    if cfg!(windows) {
        return env("LOCALAPPDATA").map(|d| d.join("tandem"));
    }
    env("HOME").map(|h| h.join(".cache").join("tandem"))
}

/// Where `root`'s cache file lives under `dir`.
pub fn path_for(dir: &Path, root: &Path) -> PathBuf {
    let key = xxhash_rust::xxh3::xxh3_64(root.to_string_lossy().as_bytes());
    dir.join("symbols").join(format!("{key:016x}.bin"))
}

/// The entries cached for `root`; empty when there is no usable cache file.
pub fn load(dir: &Path, root: &Path) -> HashMap<String, FileSymbols> {
    let path = path_for(dir, root);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read the symbol cache: {e}");
            return HashMap::new();
        }
    };
    match postcard::from_bytes::<CacheFile>(&bytes) {
        Ok(file)
            if file.header.format == FORMAT
                && file.header.version == env!("CARGO_PKG_VERSION")
                && file.header.root == root.to_string_lossy() =>
        {
            file.entries.into_iter().collect()
        }
        Ok(_) => {
            tracing::info!(path = %path.display(), "ignoring a symbol cache from another version");
            HashMap::new()
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring an unreadable symbol cache: {e}");
            HashMap::new()
        }
    }
}

/// Writes `root`'s cache file.
pub fn save(dir: &Path, root: &Path, entries: &[(String, Arc<FileSymbols>)]) -> io::Result<()> {
    let path = path_for(dir, root);
    let parent = path.parent().unwrap_or(dir);
    create_private_dir(parent)?;
    let file = CacheFileRef {
        header: Header {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            root: root.to_string_lossy().into_owned(),
        },
        entries: entries.iter().map(|(k, v)| (k.as_str(), &**v)).collect(),
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // Streamed to the file: the encoding never sits whole in memory.
    let written = std::fs::File::create(&tmp).and_then(|f| {
        let out = postcard::to_io(&file, io::BufWriter::new(f)).map_err(io::Error::other)?;
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, &path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// The cache holds code from the workspace: readable by its owner only.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SymbolIndex, Upserted};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_warm_start_parses_only_changed_files() {
        let dir = temp_dir("warm");
        let root = Path::new("/some/project");
        let cold = SymbolIndex::new(1 << 20, Some(dir.clone()));
        cold.add_root(root);
        cold.upsert(root, "a.rs", "fn a() {}\n");
        cold.upsert(root, "b.rs", "fn b() {}\n");
        cold.save(root);

        let warm = SymbolIndex::new(1 << 20, Some(dir.clone()));
        warm.add_root(root);
        assert_eq!(warm.upsert(root, "a.rs", "fn a() {}\n"), Upserted::Cached);
        assert_eq!(warm.upsert(root, "b.rs", "fn b2() {}\n"), Upserted::Parsed);
        assert_eq!(warm.lookup(root, "a").len(), 1);
        assert!(warm.lookup(root, "b").is_empty());
        let stats = warm.stats(Some(root));
        assert_eq!((stats.from_cache, stats.parsed), (1, 1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_or_foreign_cache_files_are_ignored() {
        let dir = temp_dir("corrupt");
        let root = Path::new("/p");
        let path = path_for(&dir, root);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir)).ok();
        std::fs::write(&path, b"\x01\x02garbage").ok();
        assert!(load(&dir, root).is_empty());
        // Another root's file under this root's name.
        let other = SymbolIndex::new(1 << 20, Some(dir.clone()));
        other.add_root(Path::new("/q"));
        other.upsert(Path::new("/q"), "a.rs", "fn a() {}\n");
        other.save(Path::new("/q"));
        let _ = std::fs::rename(path_for(&dir, Path::new("/q")), &path);
        assert!(load(&dir, root).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
