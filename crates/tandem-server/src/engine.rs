//! The completion engine: configuration layers, backends, the embedded index, and the path from
//! a snapshot and a cursor to the completions shown. It knows nothing of LSP, so the CLI
//! (`tandem complete`, `tandem context`) runs exactly what the server runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use tandem_core::config::{ContextSource, LayerSource, resolve};
use tandem_core::context::PromptBudget;
use tandem_core::tokens::TokenCounter;
use tandem_core::{
    BackendConfig, CompletionRequest, Config, CursorWindow, FimTemplate, Flow, PostProcessor,
    Snapshot,
};
use tandem_core::{Edit, Snippet};
use tandem_index::{DefinitionQuery, SymbolIndex};
use tandem_models::{Backend, BackendError, EmbeddedIndex, WirePreview};
use tandem_syntax::ParsedDocument;

/// A loaded token counter, or why it could not be loaded (kept, so a bad file is read once).
type CounterResult = Result<Arc<dyn TokenCounter>, BackendError>;

/// What a completion is computed from.
#[derive(Debug, Clone)]
pub struct CompletionInput {
    pub snapshot: Snapshot,
    /// The cursor, as a character offset into the snapshot.
    pub offset: usize,
    /// Path for the prompt: relative to `root` when the file is inside it.
    pub path: String,
    pub root: Option<PathBuf>,
}

/// The completions computed for one request.
#[derive(Debug, Clone, Default)]
pub struct CompletionOutput {
    /// Distinct completions, best first; empty when nothing is worth showing.
    pub items: Vec<String>,
    /// What each candidate's stream delivered before post-processing (up to where it stopped
    /// reading), for `tandem complete --json`.
    pub raw: Vec<String>,
    /// Time spent waiting for the backend, and in total.
    pub backend_ms: f64,
    pub total_ms: f64,
}

/// The configuration layers as last received.
#[derive(Debug, Default)]
struct Layers {
    user: Option<Value>,
    workspace: HashMap<PathBuf, Value>,
    init: Option<Value>,
    client: Option<Value>,
}

pub struct Engine {
    index: Arc<EmbeddedIndex>,
    /// The workspace symbol index, for the definitions source.
    symbols: Arc<SymbolIndex>,
    layers: Mutex<Layers>,
    /// The last valid configuration per root (`None`: documents outside every root).
    configs: Mutex<HashMap<Option<PathBuf>, Arc<Config>>>,
    /// One backend (and so one pooled HTTP client) per distinct backend configuration.
    backends: Mutex<HashMap<String, Arc<dyn Backend>>>,
    /// Token counters by `backend.tokenizerPath` (`None`: the character heuristic).
    counters: Mutex<HashMap<Option<String>, CounterResult>>,
    /// Open and recently closed documents, where similar code is looked for.
    documents: Mutex<DocumentStore>,
}

/// How many closed documents stay as "recent" sources of similar code.
pub const RECENT_DOCUMENTS: usize = 20;

/// A document kept for the context sources (a snapshot: O(1), shares the text).
#[derive(Clone)]
struct StoredDocument {
    root: Option<PathBuf>,
    snapshot: Snapshot,
    open: bool,
    /// When it was last noted: newer documents are searched first.
    stamp: u64,
    /// Its syntax tree, kept current edit by edit while it is open (languages with a grammar).
    parsed: Option<Arc<Mutex<ParsedDocument>>>,
}

impl std::fmt::Debug for StoredDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDocument")
            .field("root", &self.root)
            .field("version", &self.snapshot.version)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct DocumentStore {
    docs: HashMap<String, StoredDocument>,
    next_stamp: u64,
}

/// Most documents that keep a syntax tree (a tree and its parser take about 30 times the
/// text); the least recently touched lose theirs, and get a fresh one at their next
/// completion.
const MAX_TREES: usize = 8;

impl DocumentStore {
    fn limit_trees(&mut self) {
        let mut with_trees: Vec<(u64, String)> = self
            .docs
            .iter()
            .filter(|(_, d)| d.parsed.is_some())
            .map(|(k, d)| (d.stamp, k.clone()))
            .collect();
        if with_trees.len() <= MAX_TREES {
            return;
        }
        with_trees.sort();
        let excess = with_trees.len() - MAX_TREES;
        for (_, key) in with_trees.into_iter().take(excess) {
            if let Some(doc) = self.docs.get_mut(&key) {
                doc.parsed = None;
            }
        }
    }
}

impl Engine {
    pub fn new(index_budget_bytes: u64) -> Self {
        let workspace = tandem_core::config::WorkspaceConfig::default();
        Self {
            index: Arc::new(EmbeddedIndex::new(index_budget_bytes)),
            symbols: Arc::new(SymbolIndex::new(
                workspace.symbol_budget_bytes as usize,
                None,
            )),
            layers: Mutex::new(Layers::default()),
            configs: Mutex::new(HashMap::new()),
            backends: Mutex::new(HashMap::new()),
            counters: Mutex::new(HashMap::new()),
            documents: Mutex::new(DocumentStore::default()),
        }
    }

    /// Notes the current text of an open document (`key`: its path relative to `root`), a
    /// source of similar code for completions under the same root. Cheap: the snapshot's
    /// rope shares the text.
    ///
    /// Parses it (once; edits then keep the tree current, see [`Engine::edit_document`]).
    pub fn note_document(&self, root: Option<&Path>, key: &str, snapshot: Snapshot) {
        let parsed = syntax_language(&snapshot.language_id, key)
            .map(|lang| Arc::new(Mutex::new(ParsedDocument::new(lang, &snapshot.rope))));
        let Ok(mut store) = self.documents.lock() else {
            return;
        };
        store.next_stamp += 1;
        let stamp = store.next_stamp;
        store.docs.insert(
            key.to_owned(),
            StoredDocument {
                root: root.map(Path::to_path_buf),
                snapshot,
                open: true,
                stamp,
                parsed,
            },
        );
        store.limit_trees();
    }

    /// Indexes the current text of the noted open document `key` in the symbol index (after
    /// edits; see `Session::refresh_symbols_later`). Parses: call off the async runtime.
    pub fn refresh_symbols(&self, key: &str) {
        let noted = match self.documents.lock() {
            Ok(store) => store
                .docs
                .get(key)
                .filter(|d| d.open)
                .and_then(|d| Some((d.root.clone()?, d.snapshot.rope.clone()))),
            Err(_) => None,
        };
        if let Some((root, rope)) = noted {
            self.symbols.upsert(&root, key, &rope.to_string());
        }
    }

    /// Applies a document's edits to its syntax tree (cheap: the tree is marked, not
    /// reparsed; the next completion reparses incrementally within its budget).
    pub fn edit_document(&self, key: &str, edits: &[Edit]) {
        let parsed = match self.documents.lock() {
            Ok(store) => store.docs.get(key).and_then(|d| d.parsed.clone()),
            Err(_) => None,
        };
        let Some(parsed) = parsed else { return };
        if let Ok(mut parsed) = parsed.lock() {
            for e in edits {
                parsed.edit(&e.before, &e.after, e.start, e.old_end, e.new_end);
            }
        };
    }

    /// The new text of a noted document (documents never noted, e.g. ones the workspace
    /// rules exclude, stay out).
    pub fn update_document(&self, key: &str, snapshot: Snapshot) {
        let Ok(mut store) = self.documents.lock() else {
            return;
        };
        store.next_stamp += 1;
        let stamp = store.next_stamp;
        if let Some(doc) = store.docs.get_mut(key) {
            doc.snapshot = snapshot;
            doc.open = true;
            doc.stamp = stamp;
        }
    }

    /// A document was closed: it stays as a recent one, up to [`RECENT_DOCUMENTS`] of them
    /// (the oldest are forgotten).
    pub fn close_document(&self, key: &str) {
        let Ok(mut store) = self.documents.lock() else {
            return;
        };
        if let Some(doc) = store.docs.get_mut(key) {
            doc.open = false;
            // Closed documents are only searched as text.
            doc.parsed = None;
        }
        let mut closed: Vec<(u64, String)> = store
            .docs
            .iter()
            .filter(|(_, d)| !d.open)
            .map(|(k, d)| (d.stamp, k.clone()))
            .collect();
        if closed.len() > RECENT_DOCUMENTS {
            closed.sort();
            let excess = closed.len() - RECENT_DOCUMENTS;
            for (_, k) in closed.into_iter().take(excess) {
                store.docs.remove(&k);
            }
        }
    }

    /// Forgets a document entirely.
    pub fn forget_document(&self, key: &str) {
        if let Ok(mut store) = self.documents.lock() {
            store.docs.remove(key);
        }
    }

    /// The syntax tree of the document `input` is on, when the store keeps one for exactly
    /// this snapshot and it can be brought up to date quickly.
    fn current_tree(&self, input: &CompletionInput) -> Option<tandem_syntax::tree_sitter::Tree> {
        let rope = &input.snapshot.rope;
        let parsed = self
            .documents
            .lock()
            .ok()?
            .docs
            .get(&input.path)
            .and_then(|d| {
                (d.snapshot.version == input.snapshot.version
                    && d.snapshot.rope.len_bytes() == rope.len_bytes())
                .then(|| d.parsed.clone())
                .flatten()
            })?;
        let mut parsed = parsed.lock().ok()?;
        if !parsed.reparse(rope, CHECK_REPARSE_BUDGET) {
            return None;
        }
        parsed.tree().cloned()
    }

    /// The context sources' snippets at `input`, fused and deduplicated, best first.
    fn snippets(&self, input: &CompletionInput, config: &Config) -> Vec<Snippet> {
        let context = &config.context;
        if context.sources.is_empty() || context.max_snippets == 0 {
            return Vec::new();
        }
        let rope = &input.snapshot.rope;
        // The lines the cursor window can take (the character caps bound the token budgets).
        let visible = CursorWindow::lines_at(rope, input.offset, context);
        let timeout = Duration::from_millis(context.source_timeout_ms);
        let mut lists = Vec::new();
        for source in &context.sources {
            if lists.iter().any(|(s, _)| s == source) {
                continue;
            }
            let deadline = Instant::now() + timeout;
            let found = match source {
                ContextSource::Definitions => self.definitions(input, config, visible, deadline),
                ContextSource::Similar => self.similar(input, config, visible, deadline),
            };
            lists.push((*source, found));
        }
        tandem_core::fusion::fuse(
            lists,
            &context.source_shares,
            tandem_core::fusion::Visible {
                path: &input.path,
                first_line: visible.0 as u32 + 1,
                last_line: visible.1 as u32 + 1,
            },
        )
    }

    /// Definitions of the identifiers used near the cursor, from the symbol index.
    fn definitions(
        &self,
        input: &CompletionInput,
        config: &Config,
        visible: (usize, usize),
        deadline: Instant,
    ) -> Vec<Snippet> {
        let Some(root) = input.root.as_deref() else {
            return Vec::new();
        };
        let Some(language) = syntax_language(&input.snapshot.language_id, &input.path) else {
            return Vec::new();
        };
        let rope = &input.snapshot.rope;
        let budget = deadline.saturating_duration_since(Instant::now());
        // The document's own tree when it is current, else a fresh parse within the budget.
        let stored = match self.documents.lock() {
            Ok(store) => store.docs.get(&input.path).and_then(|d| {
                (d.snapshot.version == input.snapshot.version
                    && d.snapshot.rope.len_bytes() == rope.len_bytes())
                .then(|| d.parsed.clone())
                .flatten()
            }),
            Err(_) => None,
        };
        let parsed = match stored {
            Some(parsed) => parsed,
            // No current tree (outside the store, a stale snapshot, or a tree dropped to bound
            // memory): parse this snapshot, unless it is too large to parse on the request
            // path. A stored document at this version keeps the new tree.
            None if rope.len_bytes() <= FRESH_PARSE_BYTES => {
                let parsed = Arc::new(Mutex::new(ParsedDocument::new(language, rope)));
                if let Ok(mut store) = self.documents.lock() {
                    if let Some(doc) = store.docs.get_mut(&input.path)
                        && doc.open
                        && doc.snapshot.version == input.snapshot.version
                    {
                        doc.parsed = Some(parsed.clone());
                    }
                    store.limit_trees();
                }
                parsed
            }
            None => return Vec::new(),
        };
        let Ok(mut parsed) = parsed.lock() else {
            return Vec::new();
        };
        if !parsed.reparse(rope, budget) {
            tracing::debug!(path = %input.path, "parse over budget; no definitions this time");
            return Vec::new();
        }
        let Some(tree) = parsed.tree() else {
            return Vec::new();
        };
        let source = rope.to_string();
        let cursor = tandem_core::context::clamp_cursor(rope, input.offset);
        let byte = rope.char_to_byte(cursor);
        let mut identifiers =
            tandem_syntax::identifiers_near(language, tree, source.as_bytes(), byte, LINES_ABOVE);
        let imports = match self.symbols.file(root, &input.path) {
            Some(file) => file.imports.clone(),
            None => tandem_syntax::imports_in(language, tree, source.as_bytes()),
        };
        let receiver =
            tandem_syntax::receiver_type(language, tree, source.as_bytes(), byte, &imports);
        drop(parsed);
        // The lookup gets the whole budget again: a fresh parse above (a document without a
        // current tree, bounded by FRESH_PARSE_BYTES) must not starve it.
        let deadline = deadline.max(Instant::now() + budget);
        let cursor_line = rope.char_to_line(cursor);
        let mut seen: HashSet<String> = identifiers.iter().cloned().collect();
        // Then the names the file imports, wherever they are (at the top of a long file, they
        // would never be reached among the window's words): what the code is about to use.
        // A whole-module import of a class (Java's `import a.b.Config;`) names its last segment.
        let imported = imports.iter().flat_map(|i| {
            let class = i
                .module
                .rsplit(['.', ':', '/'])
                .next()
                .filter(|last| i.names.is_empty() && last.starts_with(char::is_uppercase));
            i.names.iter().map(String::as_str).chain(class)
        });
        // At most half the lookups: a file importing hundreds of names leaves room for the
        // window's words.
        for name in imported.take(MAX_IDENTIFIERS / 2) {
            if !seen.contains(name) {
                seen.insert(name.to_owned());
                identifiers.push(name.to_owned());
            }
        }
        // Then the other words of the cursor window, nearest line first (what the code around
        // uses, whose definitions the model may need next).
        let above = (visible.0..=cursor_line).rev();
        let below = (cursor_line + 1)..=visible.1.min(rope.len_lines().saturating_sub(1));
        for line in above.chain(below) {
            if identifiers.len() >= MAX_IDENTIFIERS {
                break;
            }
            let text = rope.line(line).to_string();
            // Right to left on the cursor's line and above: nearest first.
            let mut words: Vec<&str> = tandem_core::similar::words(&text).collect();
            if line <= cursor_line {
                words.reverse();
            }
            for word in words {
                if !seen.contains(word) {
                    seen.insert(word.to_owned());
                    identifiers.push(word.to_owned());
                }
            }
        }
        identifiers.truncate(MAX_IDENTIFIERS);
        self.symbols.definition_snippets(&DefinitionQuery {
            root,
            path: &input.path,
            identifiers: &identifiers,
            imports: &imports,
            visible: (visible.0 as u32, visible.1 as u32),
            receiver: receiver.as_ref(),
            max_snippets: config.context.max_snippets,
            deadline,
        })
    }

    /// Snippets of code similar to the lines before the cursor, from the current document and
    /// the noted ones under the same root (most recently noted first).
    fn similar(
        &self,
        input: &CompletionInput,
        config: &Config,
        visible: (usize, usize),
        deadline: Instant,
    ) -> Vec<Snippet> {
        use tandem_core::similar::{Candidate, SimilarLimits, SimilarQuery, similar_snippets};
        let limits = SimilarLimits {
            max_snippets: config.context.max_snippets,
            deadline: Some(deadline),
            ..SimilarLimits::default()
        };
        let mut others: Vec<(String, StoredDocument)> = match self.documents.lock() {
            Ok(store) => store
                .docs
                .iter()
                .filter(|(k, d)| **k != input.path && d.root == input.root)
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        others.sort_by(|a, b| b.1.stamp.cmp(&a.1.stamp).then_with(|| a.0.cmp(&b.0)));
        let rope = &input.snapshot.rope;
        let cursor = tandem_core::context::clamp_cursor(rope, input.offset);
        let query = SimilarQuery {
            rope,
            cursor,
            path: &input.path,
            language: &input.snapshot.language_id,
            exclude_lines: visible,
        };
        let mut candidates = vec![Candidate {
            path: &input.path,
            language: &input.snapshot.language_id,
            rope,
        }];
        candidates.extend(others.iter().map(|(k, d)| Candidate {
            path: k,
            language: &d.snapshot.language_id,
            rope: &d.snapshot.rope,
        }));
        similar_snippets(&query, &candidates, &limits)
    }

    pub fn index(&self) -> &Arc<EmbeddedIndex> {
        &self.index
    }

    pub fn symbols(&self) -> &Arc<SymbolIndex> {
        &self.symbols
    }

    /// Sizes the embedded index and the symbol index (and the symbol cache's place) from
    /// `config.workspace`, as the server does at start-up.
    pub fn configure_indexes(&self, config: &Config) {
        let workspace = &config.workspace;
        self.index.set_budget(workspace.index_budget_bytes);
        self.symbols.configure(
            usize::try_from(workspace.symbol_budget_bytes).unwrap_or(usize::MAX),
            workspace
                .symbol_cache
                .then(tandem_index::cache::default_dir)
                .flatten(),
        );
    }

    /// Sets the user's config file layer. A layer that does not fit the schema on its own is
    /// rejected (the previous one stays) and its problems are returned, so one bad layer never
    /// blocks the others.
    pub fn set_user_layer(&self, value: Option<Value>) -> Vec<String> {
        self.set_layer(LayerSource::UserFile, value, |l| &mut l.user)
    }

    pub fn set_workspace_layer(&self, root: &Path, value: Option<Value>) -> Vec<String> {
        let root = root.to_path_buf();
        let Some(value) = value else {
            self.with_layers(|l| {
                l.workspace.remove(&root);
            });
            return Vec::new();
        };
        let (ok, messages) = check_layer(LayerSource::WorkspaceFile, &value);
        if ok {
            self.with_layers(|l| {
                l.workspace.insert(root, value);
            });
        }
        messages
    }

    pub fn set_init_layer(&self, value: Option<Value>) -> Vec<String> {
        self.set_layer(LayerSource::InitializationOptions, value, |l| &mut l.init)
    }

    pub fn set_client_layer(&self, value: Option<Value>) -> Vec<String> {
        self.set_layer(LayerSource::DidChangeConfiguration, value, |l| {
            &mut l.client
        })
    }

    fn set_layer(
        &self,
        source: LayerSource,
        value: Option<Value>,
        slot: impl FnOnce(&mut Layers) -> &mut Option<Value>,
    ) -> Vec<String> {
        let (ok, messages) = match &value {
            Some(v) => check_layer(source, v),
            None => (true, Vec::new()),
        };
        if ok {
            self.with_layers(|l| *slot(l) = value);
        }
        messages
    }

    fn with_layers(&self, f: impl FnOnce(&mut Layers)) {
        if let Ok(mut layers) = self.layers.lock() {
            f(&mut layers);
        }
    }

    /// Re-resolves the configuration for `root` (and for documents outside every root when
    /// `root` is `None`), keeping the last valid one on error. Returns messages for the user.
    pub fn reload(&self, root: Option<&Path>) -> Vec<String> {
        let layers: Vec<(LayerSource, Value)> = match self.layers.lock() {
            Ok(l) => {
                let mut v = Vec::new();
                if let Some(user) = &l.user {
                    v.push((LayerSource::UserFile, user.clone()));
                }
                if let Some(ws) = root.and_then(|r| l.workspace.get(r)) {
                    v.push((LayerSource::WorkspaceFile, ws.clone()));
                }
                if let Some(init) = &l.init {
                    v.push((LayerSource::InitializationOptions, init.clone()));
                }
                if let Some(client) = &l.client {
                    v.push((LayerSource::DidChangeConfiguration, client.clone()));
                }
                v
            }
            Err(_) => Vec::new(),
        };
        let resolved = resolve(&layers);
        if let Some(config) = resolved.config
            && let Ok(mut configs) = self.configs.lock()
        {
            configs.insert(root.map(Path::to_path_buf), Arc::new(config));
        }
        resolved.messages
    }

    /// Re-resolves every root's configuration.
    pub fn reload_all(&self, roots: &[PathBuf]) -> Vec<String> {
        let mut messages = self.reload(None);
        for root in roots {
            for m in self.reload(Some(root)) {
                if !messages.contains(&m) {
                    messages.push(m);
                }
            }
        }
        messages
    }

    /// The configuration in force for documents under `root`.
    pub fn config(&self, root: Option<&Path>) -> Arc<Config> {
        let key = root.map(Path::to_path_buf);
        self.configs
            .lock()
            .ok()
            .and_then(|c| c.get(&key).or_else(|| c.get(&None)).cloned())
            .unwrap_or_default()
    }

    /// Builds the backend and token counter of every configuration in force (documents outside
    /// every root, and each of `roots`), so that the first completion does not wait for them:
    /// a backend's HTTP client takes milliseconds (TLS roots), a tokenizer file can take far
    /// more. Errors are left for the first request to report.
    pub fn prepare(&self, roots: &[PathBuf]) {
        let configs = std::iter::once(None)
            .chain(roots.iter().map(|r| Some(r.as_path())))
            .map(|root| self.config(root));
        for config in configs {
            let _ = self.backend(&config);
            let _ = self.counter(&config);
        }
    }

    /// The backend for a configuration, built once and kept for its pooled connections.
    pub fn backend(&self, config: &Config) -> Result<Arc<dyn Backend>, BackendError> {
        self.backend_for(&config.backend)
    }

    fn backend_for(&self, backend: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
        let key = serde_json::to_string(backend).unwrap_or_default();
        // Built under the lock, so two first requests share one backend (and its breaker).
        let Ok(mut backends) = self.backends.lock() else {
            return tandem_models::build(backend, &self.index);
        };
        if let Some(b) = backends.get(&key) {
            return Ok(b.clone());
        }
        let built = tandem_models::build(backend, &self.index)?;
        backends.insert(key, built.clone());
        Ok(built)
    }

    /// The chat backend that serves code actions (`actions.backend`, else `backend` when it
    /// can chat), or why there is none, worded for the user.
    pub fn actions_backend(&self, config: &Config) -> Result<Arc<dyn Backend>, String> {
        let chosen = config.actions.chat_backend(&config.backend)?;
        self.backend_for(&chosen).map_err(|e| e.to_string())
    }

    /// Context for an action at `input`: the context engine's snippets (definitions of the
    /// identifiers near the cursor, similar code), fused as for completions.
    pub fn action_snippets(
        &self,
        input: &CompletionInput,
        config: &Config,
    ) -> Vec<tandem_core::Snippet> {
        self.snippets(input, config)
    }

    /// Asks `backend` for an action's reply and returns all of it. Dropping the future drops
    /// the stream, which cancels the request.
    pub async fn chat(
        &self,
        backend: &Arc<dyn Backend>,
        prompt: &tandem_core::actions::ActionPrompt,
        max_tokens: u32,
    ) -> Result<String, BackendError> {
        let request = tandem_models::ChatRequest {
            messages: vec![
                tandem_models::ChatMessage::system(prompt.system.clone()),
                tandem_models::ChatMessage::user(prompt.user.clone()),
            ],
            max_tokens,
            temperature: None,
            stop: Vec::new(),
        };
        let mut stream = backend.chat(request).await?;
        let mut reply = String::new();
        while let Some(chunk) = stream.next().await {
            reply.push_str(&chunk?.text);
        }
        Ok(reply)
    }

    /// The description and condition of the backend built for `config`, if it was built.
    pub fn backend_condition(&self, config: &Config) -> Option<(String, tandem_models::Condition)> {
        let key = serde_json::to_string(&config.backend).unwrap_or_default();
        let backend = self.backends.lock().ok()?.get(&key).cloned()?;
        Some((backend.describe(), backend.condition()))
    }

    /// The condition of the backend for `config`, if it was built.
    pub fn condition(&self, config: &Config) -> Option<tandem_models::Condition> {
        self.backend_condition(config).map(|(_, c)| c)
    }

    /// The token counter for a configuration: the tokenizer at `backend.tokenizerPath`
    /// (loaded once), else the character heuristic.
    pub fn counter(&self, config: &Config) -> Result<Arc<dyn TokenCounter>, BackendError> {
        let key = config.backend.tokenizer_path.clone();
        if let Some(c) = self.counters.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return c;
        }
        // A failure is kept too: the file is not read again on every keystroke.
        let counter = tandem_models::tokenizer::counter(key.as_deref());
        if let Ok(mut counters) = self.counters.lock() {
            counters.insert(key, counter.clone());
        }
        counter
    }

    /// The cursor window and the request that a completion at `input` sends, fitted into
    /// `backend.contextWindow` (see `tandem_core::context`).
    pub fn request(
        &self,
        input: &CompletionInput,
        config: &Config,
    ) -> Result<(CursorWindow, CompletionRequest), BackendError> {
        let counter = self.counter(config)?;
        // Validation already rejected a bad `backend.fim`; chat backends use no template, and
        // StarCoder's markers are a fair estimate of their overhead.
        let template = FimTemplate::resolve(
            config.backend.fim.as_deref(),
            config.backend.model.as_deref(),
        )
        .unwrap_or_else(|_| FimTemplate::starcoder());
        let budget = PromptBudget {
            config,
            template: &template,
            counter: counter.as_ref(),
        };
        Ok(budget.assemble(
            &input.snapshot.rope,
            input.offset,
            input.path.clone(),
            input.snapshot.language_id.clone(),
            self.snippets(input, config),
        ))
    }

    /// What would be sent for `input`, for `tandem context`.
    pub fn preview(
        &self,
        input: &CompletionInput,
    ) -> Result<(CompletionRequest, WirePreview), BackendError> {
        let config = self.config(input.root.as_deref());
        let backend = self.backend(&config)?;
        let (_, request) = self.request(input, &config)?;
        let preview = backend.preview(&request);
        Ok((request, preview))
    }

    /// Computes the completions at `input`. Dropping the future cancels the backend request.
    pub async fn complete(
        &self,
        input: &CompletionInput,
    ) -> Result<CompletionOutput, BackendError> {
        let started = Instant::now();
        let config = self.config(input.root.as_deref());
        let backend = self.backend(&config)?;
        let (window, request) = self.request(input, &config)?;
        let candidates = request
            .candidates
            .clamp(1, tandem_core::config::MAX_CANDIDATES) as usize;
        let max_tokens = request.max_tokens as usize;
        let mut stream = backend.stream(request).await?;
        let mut posts: Vec<PostProcessor> = (0..candidates)
            .map(|_| PostProcessor::new(&window))
            .collect();
        let mut stopped = vec![false; candidates];
        let mut raw = vec![String::new(); candidates];
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let i = chunk.candidate as usize;
            if i >= candidates || stopped[i] {
                continue;
            }
            raw[i].push_str(&chunk.text);
            if posts[i].push(&chunk.text) == Flow::Stop {
                stopped[i] = true;
                if stopped.iter().all(|s| *s) {
                    break; // dropping the stream closes the connection
                }
            }
        }
        drop(stream);
        let backend_ms = ms(started.elapsed());
        // A stream that ran to the token limit (as counted: a real tokenizer's count of the text
        // is within a token or two of the model's; the heuristic counts high) was cut short.
        let counter = self.counter(&config)?;
        for ((post, raw), stopped) in posts.iter_mut().zip(&raw).zip(&stopped) {
            if !stopped && counter.count(raw) + 2 >= max_tokens {
                post.cut_short();
            }
        }
        let mut check = syntax_language(&input.snapshot.language_id, &input.path).map(|language| {
            CompletionCheck::new(language, input, &window, self.current_tree(input))
        });
        let mut items: Vec<String> = Vec::new();
        for post in posts {
            let Some(text) = post.finish() else { continue };
            let text = match check.as_mut() {
                Some(check) => match check.parseable_part(&text) {
                    Some(kept) => kept,
                    None => {
                        tracing::debug!(completion = %text, "dropped a completion that breaks the parse");
                        continue;
                    }
                },
                None => text,
            };
            if items.contains(&text) {
                continue;
            }
            items.push(text);
        }
        Ok(CompletionOutput {
            items,
            raw,
            backend_ms,
            total_ms: ms(started.elapsed()),
        })
    }
}

/// How many lines above the cursor the definitions source takes its first identifiers from
/// (the syntax-aware part; the rest of the window follows).
const LINES_ABOVE: usize = 8;

/// Most identifiers the definitions source looks up per request.
const MAX_IDENTIFIERS: usize = 96;

/// Largest document parsed from scratch on the request path (documents kept current by
/// their edits need no such parse).
const FRESH_PARSE_BYTES: usize = 256 * 1024;

/// The grammar for a document: by its language id, else by its path's extension.
fn syntax_language(language_id: &str, path: &str) -> Option<tandem_syntax::Language> {
    tandem_syntax::Language::from_language_id(language_id)
        .or_else(|| tandem_syntax::Language::from_path(path))
}

/// Largest document the syntax check parses whole when it has no current tree for it; past
/// it, the check parses the cursor's neighbourhood only.
const WHOLE_CHECK_BYTES: usize = FRESH_PARSE_BYTES;

/// Time the syntax check may spend bringing an open document's tree up to date.
const CHECK_REPARSE_BUDGET: Duration = Duration::from_millis(50);

/// The completion syntax check at one cursor, on the whole document: from its tree when the
/// store has a current one (each check is then one incremental parse), else from a fresh
/// parse up to [`WHOLE_CHECK_BYTES`], else on 60 lines before and 30 after the cursor. A
/// window that ends inside a list, a string or a block recovers from errors differently with
/// and without the completion: it rejected the original text at about 2% of cursor positions
/// in real files, and accepted breaks that a parse of the whole file shows.
struct CompletionCheck {
    check: tandem_syntax::SyntaxCheck,
}

impl CompletionCheck {
    fn new(
        language: tandem_syntax::Language,
        input: &CompletionInput,
        window: &CursorWindow,
        tree: Option<tandem_syntax::tree_sitter::Tree>,
    ) -> Self {
        let rope = &input.snapshot.rope;
        let cursor = tandem_core::context::clamp_cursor(rope, input.offset);
        let halves = || {
            (
                rope.slice(..cursor).to_string(),
                rope.slice(cursor..).to_string(),
            )
        };
        let check = match tree {
            Some(tree) => {
                let (before, after) = halves();
                tandem_syntax::SyntaxCheck::with_tree(language, before, after, tree)
            }
            None if rope.len_bytes() <= WHOLE_CHECK_BYTES => {
                let (before, after) = halves();
                tandem_syntax::SyntaxCheck::new(language, before, after)
            }
            None => tandem_syntax::SyntaxCheck::new(
                language,
                tail_lines(&window.prefix, 60),
                head_lines(&window.suffix, 30),
            ),
        };
        Self { check }
    }

    fn breaks(&mut self, text: &str) -> bool {
        self.check.breaks(text)
    }

    /// What of `text` can be shown: all of it when it adds no syntax error, else its longest
    /// run of whole first lines that adds none — a model stopped by `maxTokens` in the middle
    /// of a line, or one that wandered off after good lines, still gives its good lines — else
    /// nothing.
    fn parseable_part(&mut self, text: &str) -> Option<String> {
        if !self.breaks(text) {
            return Some(text.to_owned());
        }
        let mut end = text.len();
        while let Some(nl) = text[..end].rfind('\n') {
            end = nl;
            let head = text[..end].trim_end();
            if head.trim().is_empty() {
                break;
            }
            if !self.breaks(head) {
                tracing::debug!(completion = %text, kept = %head, "cut a completion back to the lines that parse");
                return Some(head.to_owned());
            }
            end = head.len();
        }
        None
    }
}

/// The last `n` lines of `text` (the parse check needs the neighbourhood, not the file).
fn tail_lines(text: &str, n: usize) -> &str {
    let start = text
        .char_indices()
        .rev()
        .filter(|(_, c)| *c == '\n')
        .nth(n)
        .map_or(0, |(i, _)| i + 1);
    &text[start..]
}

fn head_lines(text: &str, n: usize) -> &str {
    let end = text
        .char_indices()
        .filter(|(_, c)| *c == '\n')
        .nth(n)
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whether a layer fits the schema on its own; its messages when it does not.
fn check_layer(source: LayerSource, value: &Value) -> (bool, Vec<String>) {
    let resolved = resolve(&[(source, value.clone())]);
    match resolved.config {
        Some(_) => (true, Vec::new()),
        None => (false, resolved.messages),
    }
}

/// Reads a TOML configuration file into a layer.
pub fn parse_toml_layer(path: &Path, text: &str) -> Result<Value, String> {
    toml::from_str::<Value>(text)
        .map_err(|e| format!("tandem: cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_builds_the_backend_of_every_configuration_in_force() {
        let engine = Engine::new(1 << 20);
        engine.set_init_layer(Some(serde_json::json!({
            "backend": { "kind": "openai", "url": "http://127.0.0.1:9", "model": "m" },
        })));
        let root = PathBuf::from("/ws");
        assert!(engine.reload_all(std::slice::from_ref(&root)).is_empty());
        let config = engine.config(Some(&root));
        assert!(
            engine.backend_condition(&config).is_none(),
            "nothing is built before"
        );
        engine.prepare(std::slice::from_ref(&root));
        let (describe, _) = engine.backend_condition(&config).expect("built by prepare");
        assert!(describe.contains("127.0.0.1:9"), "{describe}");
    }
}
