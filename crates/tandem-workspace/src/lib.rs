//! The one reader of workspace files.
//!
//! Walks each workspace folder with the `ignore` crate (`.gitignore`, `.ignore`, git's global
//! and `info/exclude` rules, and `.tandemignore` all honoured), watches it for changes, and
//! publishes one stream of [`FileEvent`]s that every index consumes.
//!
//! Architecture invariant: nothing ignored is ever read. A path reaches `read` only after the
//! walker has yielded it, or, for a file that appears later, after a walk of its directory has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::WalkBuilder;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// The project's own ignore file, with `.gitignore` syntax.
pub const IGNORE_FILE: &str = ".tandemignore";

/// What happened to a workspace file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEvent {
    /// A file was found or changed under `root`; its full text.
    Changed {
        root: Arc<Path>,
        path: PathBuf,
        text: Arc<str>,
    },
    /// A file under `root` was deleted or became ignored.
    Removed { root: Arc<Path>, path: PathBuf },
    /// The first walk of a root has finished.
    Scanned {
        root: PathBuf,
        files: usize,
        bytes: u64,
    },
}

/// Limits on what is read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Files larger than this are skipped.
    pub max_file_bytes: u64,
    /// Stop reading a root once this many bytes have been read from it.
    pub budget_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 1_000_000,
            budget_bytes: 64_000_000,
        }
    }
}

fn walker(dir: &Path) -> WalkBuilder {
    let mut builder = WalkBuilder::new(dir);
    builder
        .hidden(true)
        .git_ignore(true)
        .git_global(true)
        .git_exclude(true)
        .require_git(false)
        .parents(true)
        .add_custom_ignore_filename(IGNORE_FILE);
    builder
}

/// Reads a file the walker yielded, unless it is too large or does not look like source code.
/// What is skipped is logged (at debug level: a large tree skips many files) with the reason.
fn read_source(path: &Path, limits: &Limits) -> Option<String> {
    let skip = |why: &str| {
        tracing::debug!(path = %path.display(), "skipped: {why}");
        None
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return skip(&format!("cannot stat: {e}")),
    };
    if !meta.is_file() {
        return skip("not a regular file");
    }
    if meta.len() > limits.max_file_bytes {
        return skip("larger than workspace.maxFileBytes");
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return skip(&format!("cannot read: {e}")),
    };
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return skip("binary");
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return skip("not UTF-8");
    };
    if looks_generated(path, &text) {
        return skip("minified, generated or a lock file");
    }
    Some(text)
}

/// Minified or machine-written files teach a model nothing about the user's code.
fn looks_generated(path: &Path, text: &str) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.ends_with(".min.js") || name.ends_with(".min.css") || name.ends_with(".map") {
        return true;
    }
    if matches!(
        name,
        "Cargo.lock" | "package-lock.json" | "yarn.lock" | "pnpm-lock.yaml" | "poetry.lock"
    ) {
        return true;
    }
    let lines = text.lines().count().max(1);
    text.len() / lines > 300 || text.lines().any(|l| l.len() > 5000)
}

/// Walks `root` synchronously, calling `on_file` for each readable source file. Returns the
/// directories walked (the places where new files may be read) and the totals.
pub fn scan(root: &Path, limits: &Limits, mut on_file: impl FnMut(PathBuf, String)) -> ScanSummary {
    let mut summary = ScanSummary::default();
    for entry in walker(root).build().flatten() {
        let path = entry.path();
        if entry.file_type().is_some_and(|t| t.is_dir()) {
            summary.dirs.insert(path.to_path_buf());
            continue;
        }
        if summary.bytes >= limits.budget_bytes {
            summary.truncated = true;
            continue;
        }
        if let Some(text) = read_source(path, limits) {
            summary.files += 1;
            summary.bytes += text.len() as u64;
            on_file(path.to_path_buf(), text);
        }
    }
    summary
}

#[derive(Debug, Default)]
pub struct ScanSummary {
    pub files: usize,
    pub bytes: u64,
    /// The budget ran out before every file was read.
    pub truncated: bool,
    pub dirs: HashSet<PathBuf>,
}

/// Whether the workspace rules allow reading `path`, which lies under `root`: no ignore file
/// on the way from `root` down to it excludes it or one of its directories.
pub fn is_allowed(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut dir = root.to_path_buf();
    for component in rel.components() {
        let child = dir.join(component);
        let yielded = walker(&dir)
            .max_depth(Some(1))
            .build()
            .flatten()
            .any(|e| e.path() == child);
        if !yielded {
            return false;
        }
        dir = child;
    }
    true
}

/// Watches workspace folders and publishes their files as events.
pub struct Workspace {
    limits: Limits,
    tx: mpsc::UnboundedSender<FileEvent>,
    /// Roots added and not removed, scanned or still scanning.
    wanted: Mutex<HashSet<PathBuf>>,
    roots: Mutex<Vec<RootWatch>>,
}

struct RootWatch {
    root: PathBuf,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Workspace {
    pub fn new(limits: Limits) -> (Arc<Self>, mpsc::UnboundedReceiver<FileEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                limits,
                tx,
                wanted: Mutex::new(HashSet::new()),
                roots: Mutex::new(Vec::new()),
            }),
            rx,
        )
    }

    /// Starts walking and watching `root` on a background thread; events follow on the stream.
    pub fn add_root(self: &Arc<Self>, root: PathBuf) {
        // Marked before the scan starts, so adding it again meanwhile does not scan it twice.
        let fresh = self
            .wanted
            .lock()
            .map(|mut w| w.insert(root.clone()))
            .unwrap_or(true);
        if !fresh {
            return;
        }
        let this = Arc::clone(self);
        std::thread::Builder::new()
            .name("tandem-scan".into())
            .spawn(move || {
                // Background work: requests (on other threads) come first.
                if let Err(e) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::debug!("cannot lower the scan's priority: {e:?}");
                }
                this.scan_and_watch(root)
            })
            .map_err(|e| tracing::error!("cannot start the workspace scan: {e}"))
            .ok();
    }

    pub fn remove_root(&self, root: &Path) {
        if let Ok(mut wanted) = self.wanted.lock() {
            wanted.remove(root);
        }
        if let Ok(mut roots) = self.roots.lock() {
            roots.retain(|r| r.root != root);
        }
    }

    /// Re-reads `path` (a file the client says changed, was created or deleted), under the
    /// nearest root that contains it: a `Changed` event with its text if the workspace rules
    /// allow reading it and it looks like source code, else `Removed`. Paths outside every
    /// root are ignored.
    pub fn refresh(&self, path: &Path) {
        let root = match self.wanted.lock() {
            Ok(wanted) => wanted
                .iter()
                .filter(|r| path.starts_with(r))
                .max_by_key(|r| r.components().count())
                .cloned(),
            Err(_) => None,
        };
        let Some(root) = root else { return };
        let root: Arc<Path> = Arc::from(root.as_path());
        let text = if path.is_file() && is_allowed(&root, path) {
            read_source(path, &self.limits)
        } else {
            None
        };
        let _ = self.tx.send(match text {
            Some(text) => FileEvent::Changed {
                root,
                path: path.to_path_buf(),
                text: text.into(),
            },
            None => FileEvent::Removed {
                root,
                path: path.to_path_buf(),
            },
        });
    }

    fn scan_and_watch(self: Arc<Self>, root: PathBuf) {
        let started = std::time::Instant::now();
        let tx = self.tx.clone();
        let shared_root: Arc<Path> = Arc::from(root.as_path());
        let summary = scan(&root, &self.limits, |path, text| {
            let _ = tx.send(FileEvent::Changed {
                root: shared_root.clone(),
                path,
                text: text.into(),
            });
        });
        tracing::info!(
            root = %root.display(),
            files = summary.files,
            bytes = summary.bytes,
            truncated = summary.truncated,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "workspace scanned"
        );
        if summary.truncated {
            tracing::warn!(
                "the workspace at {} exceeds the index budget (`workspace.indexBudgetBytes`); \
                 some files were not indexed",
                root.display()
            );
        }
        let _ = self.tx.send(FileEvent::Scanned {
            root: root.clone(),
            files: summary.files,
            bytes: summary.bytes,
        });
        let dirs = Arc::new(Mutex::new(summary.dirs));
        let watcher = self.watch(&root, dirs);
        // Removed while it was being scanned: drop the watcher rather than keep it.
        if !self.wanted.lock().is_ok_and(|w| w.contains(&root)) {
            return;
        }
        if let Ok(mut roots) = self.roots.lock() {
            roots.push(RootWatch {
                root,
                _watcher: watcher,
            });
        }
    }

    fn watch(
        &self,
        root: &Path,
        dirs: Arc<Mutex<HashSet<PathBuf>>>,
    ) -> Option<notify::RecommendedWatcher> {
        let tx = self.tx.clone();
        let limits = self.limits;
        let root_arc: Arc<Path> = Arc::from(root);
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                on_path_event(&root_arc, &path, &limits, &dirs, &tx);
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(
                    "cannot watch {}: {e}; changes on disk will not be seen",
                    root.display()
                );
                return None;
            }
        };
        if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
            tracing::warn!(
                "cannot watch {}: {e}; changes on disk will not be seen",
                root.display()
            );
            return None;
        }
        Some(watcher)
    }
}

fn on_path_event(
    root: &Arc<Path>,
    path: &Path,
    limits: &Limits,
    dirs: &Mutex<HashSet<PathBuf>>,
    tx: &mpsc::UnboundedSender<FileEvent>,
) {
    let Some(parent) = path.parent() else { return };
    let Ok(mut known) = dirs.lock() else { return };
    if !known.contains(parent) {
        return; // inside an ignored directory
    }
    if path.is_dir() {
        if known.contains(path) {
            return;
        }
        // A new directory: read it only if no ignore rule on the way down excludes it (a walk
        // never filters its own starting point), then walk it with its parents' rules.
        if !is_allowed(root, path) {
            return;
        }
        let summary = scan(path, limits, |p, text| {
            let _ = tx.send(FileEvent::Changed {
                root: root.clone(),
                path: p,
                text: text.into(),
            });
        });
        known.extend(summary.dirs);
        return;
    }
    drop(known);
    let text = if is_allowed(root, path) {
        read_source(path, limits)
    } else {
        None
    };
    match text {
        Some(text) => {
            let _ = tx.send(FileEvent::Changed {
                root: root.clone(),
                path: path.to_path_buf(),
                text: text.into(),
            });
        }
        None => {
            let _ = tx.send(FileEvent::Removed {
                root: root.clone(),
                path: path.to_path_buf(),
            });
        }
    }
}

/// The key a file is known by in the indexes, and the path shown to models: relative to its
/// workspace root with `/` separators (absolute for files outside every root).
pub fn file_key(root: Option<&Path>, path: &Path) -> String {
    match root.and_then(|r| path.strip_prefix(r).ok()) {
        Some(rel) => rel.to_string_lossy().replace('\\', "/"),
        None => path.to_string_lossy().into_owned(),
    }
}

/// The workspace's own configuration file, `tandem.toml` at the root.
pub fn read_workspace_config(root: &Path) -> Option<(PathBuf, std::io::Result<String>)> {
    let path = root.join("tandem.toml");
    path.is_file().then(|| {
        let text = std::fs::read_to_string(&path);
        (path, text)
    })
}

/// The user's configuration file: `$XDG_CONFIG_HOME/tandem/config.toml`, else
/// `~/.config/tandem/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("tandem").join("config.toml"))
}

/// Reads a configuration file the user named or owns.
pub fn read_config_file(path: &Path) -> Option<std::io::Result<String>> {
    path.is_file().then(|| std::fs::read_to_string(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-ws-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn ignored_files_are_never_read() {
        let root = tempdir("ignore");
        std::fs::write(root.join(".gitignore"), "secret.rs\nbuild/\n").expect("write");
        std::fs::write(root.join(IGNORE_FILE), "private/\n").expect("write");
        std::fs::create_dir_all(root.join("build")).expect("mkdir");
        std::fs::create_dir_all(root.join("private")).expect("mkdir");
        std::fs::write(root.join("main.rs"), "fn main() {}\n").expect("write");
        std::fs::write(root.join("secret.rs"), "const KEY: &str = \"x\";\n").expect("write");
        std::fs::write(root.join("build/out.rs"), "fn generated() {}\n").expect("write");
        std::fs::write(root.join("private/p.rs"), "fn p() {}\n").expect("write");
        std::fs::write(root.join("blob.bin"), b"\0\0\0").expect("write");
        let mut seen = Vec::new();
        let summary = scan(&root, &Limits::default(), |p, _| {
            seen.push(p.strip_prefix(&root).expect("under root").to_path_buf());
        });
        seen.sort();
        assert_eq!(seen, vec![PathBuf::from("main.rs")]);
        assert_eq!(summary.files, 1);
        assert!(is_allowed(&root, &root.join("main.rs")));
        assert!(!is_allowed(&root, &root.join("secret.rs")));
        assert!(!is_allowed(&root, &root.join("build/out.rs")));
        assert!(!is_allowed(&root, &root.join("private/p.rs")));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn bad_files_are_skipped_and_the_walk_goes_on() {
        let dir = std::env::temp_dir().join(format!("tandem-ws-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("good.rs"), "fn good() {}\n").expect("write");
        std::fs::write(dir.join("binary.rs"), b"fn a() {}\0\0\0").expect("write");
        std::fs::write(dir.join("latin1.py"), b"x = '\xe9t\xe9'\n").expect("write");
        std::fs::write(dir.join("sub/deep.rs"), "fn deep() {}\n").expect("write");
        #[cfg(unix)]
        {
            // A symlink loop, and a link to a missing file.
            let _ = std::os::unix::fs::symlink(&dir, dir.join("sub/loop"));
            let _ = std::os::unix::fs::symlink(dir.join("missing.rs"), dir.join("dangling.rs"));
        }
        let mut read = Vec::new();
        scan(&dir, &Limits::default(), |p, _| {
            read.push(p.strip_prefix(&dir).map(Path::to_path_buf).unwrap_or(p));
        });
        read.sort();
        assert_eq!(
            read,
            [PathBuf::from("good.rs"), PathBuf::from("sub/deep.rs")]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn oversized_and_minified_files_are_skipped() {
        let root = tempdir("limits");
        std::fs::write(root.join("big.rs"), "x".repeat(2000)).expect("write");
        std::fs::write(root.join("app.min.js"), "var a=1;").expect("write");
        std::fs::write(root.join("ok.rs"), "fn ok() {}\n").expect("write");
        let limits = Limits {
            max_file_bytes: 1000,
            budget_bytes: 1 << 20,
        };
        let mut seen = Vec::new();
        scan(&root, &limits, |p, _| seen.push(p));
        assert_eq!(seen, vec![root.join("ok.rs")]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn changes_on_disk_become_events() {
        let root = tempdir("watch");
        std::fs::write(root.join(".gitignore"), "ignored.rs\ntarget/\n").expect("write");
        std::fs::write(root.join("a.rs"), "fn a() {}\n").expect("write");
        let (ws, mut rx) = Workspace::new(Limits::default());
        ws.add_root(root.clone());
        let mut scanned = false;
        while !scanned {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await;
            scanned = matches!(ev, Ok(Some(FileEvent::Scanned { .. })));
            assert!(ev.is_ok(), "scan timed out");
        }
        // The watcher is installed right after the scan event; give it a moment.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        std::fs::write(root.join("ignored.rs"), "fn hidden() {}\n").expect("write");
        std::fs::create_dir_all(root.join("target")).expect("mkdir");
        std::fs::write(root.join("target/gen.rs"), "fn generated() {}\n").expect("write");
        std::fs::create_dir_all(root.join(".hidden")).expect("mkdir");
        std::fs::write(root.join(".hidden/h.rs"), "fn h() {}\n").expect("write");
        std::fs::write(root.join("b.rs"), "fn b() {}\n").expect("write");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut got_b = false;
        while !got_b && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(FileEvent::Changed { path, .. })) => {
                    assert_ne!(path, root.join("ignored.rs"), "an ignored file was read");
                    assert!(
                        !path.starts_with(root.join("target")),
                        "a file in an ignored directory was read"
                    );
                    assert!(
                        !path.starts_with(root.join(".hidden")),
                        "a hidden directory was read"
                    );
                    got_b = path == root.join("b.rs");
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        assert!(got_b, "no event for the new file");
        let _ = std::fs::remove_dir_all(&root);
    }
}
