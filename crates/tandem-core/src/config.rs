//! The configuration: its types (the single source of the JSON Schema), its layers and how
//! they merge.
//!
//! Layers, lowest precedence first: defaults, the user's config file, the workspace's
//! `tandem.toml`, `initializationOptions`, `workspace/didChangeConfiguration`. Every layer uses
//! the same camelCase keys. A workspace file arrives with code the user cloned, so keys that
//! decide where code and credentials go are dropped from it unless the user's own layers set
//! `trustWorkspaceConfig = true`.
//!
//! Resolution never fails: a layer that does not fit the schema yields messages naming the key,
//! and the caller keeps its last valid configuration.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Tandem's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    /// The model backend that serves completions.
    pub backend: BackendConfig,
    /// When and how completions are offered.
    pub completion: CompletionConfig,
    /// How much of the document around the cursor goes into the prompt.
    pub context: ContextConfig,
    /// Which workspace files are read, and how much memory their indexes may use.
    pub workspace: WorkspaceConfig,
    /// Code actions (document, test, fix, refactor, explain, your own) served by a chat model.
    pub actions: ActionsConfig,
    /// Let the workspace's `tandem.toml` set keys that decide where code and credentials go
    /// (`kind`, `url`, `apiKeyEnv`, `headers`, `caCertPath`, `requestBody`). Honoured only from
    /// the user's own config file, `initializationOptions` and `didChangeConfiguration`.
    pub trust_workspace_config: bool,
}

/// Which kind of model server the backend talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Built in: a statistical model of the workspace's own code. Needs no server or download.
    #[default]
    Embedded,
    /// An OpenAI-compatible `/completions` endpoint (vLLM, llama.cpp server, LM Studio, TGI).
    Openai,
    /// An OpenAI-compatible `/chat/completions` endpoint, for chat-only models.
    OpenaiChat,
    /// Ollama's native `/api/generate` (and `/api/chat`).
    Ollama,
    /// llama.cpp server's native `/infill`.
    Llamacpp,
    /// Text Generation Inference's `/generate_stream` (also Hugging Face inference endpoints).
    Tgi,
    /// Mistral's Codestral `/v1/fim/completions` (and `/v1/chat/completions`).
    Mistral,
    /// Anthropic's `/v1/messages`.
    Anthropic,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Embedded => "embedded",
            BackendKind::Openai => "openai",
            BackendKind::OpenaiChat => "openai-chat",
            BackendKind::Ollama => "ollama",
            BackendKind::Llamacpp => "llamacpp",
            BackendKind::Tgi => "tgi",
            BackendKind::Mistral => "mistral",
            BackendKind::Anthropic => "anthropic",
        }
    }

    /// The URL used when `backend.url` is not set: the engine's usual local port, or the hosted
    /// API's address. OpenAI-compatible kinds end in `/v1`; the others are the host root.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            BackendKind::Embedded => None,
            BackendKind::Openai | BackendKind::OpenaiChat => Some("http://127.0.0.1:8000/v1"),
            BackendKind::Ollama => Some("http://127.0.0.1:11434"),
            BackendKind::Llamacpp => Some("http://127.0.0.1:8080"),
            BackendKind::Tgi => Some("http://127.0.0.1:3000"),
            BackendKind::Mistral => Some("https://codestral.mistral.ai"),
            BackendKind::Anthropic => Some("https://api.anthropic.com"),
        }
    }

    /// Whether the kind can hold a chat (and so serve code actions).
    pub fn can_chat(self) -> bool {
        matches!(
            self,
            BackendKind::OpenaiChat
                | BackendKind::Ollama
                | BackendKind::Mistral
                | BackendKind::Anthropic
        )
    }
}

/// A model backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct BackendConfig {
    /// Which kind of server; `embedded` needs none.
    pub kind: BackendKind,
    /// Base URL as the engine's own clients take it: OpenAI-compatible kinds end in `/v1`,
    /// the others are the host root. Each kind has a default (docs/backends.md).
    pub url: Option<String>,
    /// The model name sent to the server.
    pub model: Option<String>,
    /// Fill-in-the-middle template: `auto` (the default: chosen from `model`), `starcoder`,
    /// `codellama`, `deepseek`, `qwen`, `codestral`, `codegemma`, or a custom template with
    /// `{prefix}` and `{suffix}` slots and an optional `{context}` slot for snippets.
    pub fim: Option<String>,
    /// Name of the environment variable that holds the API key (the key itself never goes in
    /// the configuration). Not needed for local servers.
    pub api_key_env: Option<String>,
    /// Extra HTTP headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// JSON object merged into every request body, for engine-specific options.
    pub request_body: Option<Value>,
    /// Extra root certificate (PEM) trusted besides the system's.
    pub ca_cert_path: Option<String>,
    /// Most tokens generated per completion.
    pub max_tokens: u32,
    /// Sampling temperature: 0 is greedy, higher is more varied.
    pub temperature: f32,
    /// Nucleus sampling: the probability mass sampled from.
    pub top_p: Option<f32>,
    /// Extra stop sequences, besides the template's own.
    pub stop: Vec<String>,
    /// Total time allowed for one completion, in milliseconds.
    pub timeout_ms: u64,
    /// Time allowed until the first generated text arrives, in milliseconds.
    pub first_token_timeout_ms: Option<u64>,
    /// The model's context window in tokens, shared by prefix, suffix and snippets.
    pub context_window: u32,
    /// A Hugging Face `tokenizer.json` for counting tokens exactly; without it, a character
    /// heuristic is used.
    pub tokenizer_path: Option<String>,
    /// Ollama: how long the model stays loaded after a request (`"5m"`, `"-1"`).
    pub keep_alive: Option<String>,
    /// Another backend used while this one is down (for example `{ kind = "embedded" }`).
    pub fallback: Option<Box<BackendConfig>>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            kind: BackendKind::Embedded,
            url: None,
            model: None,
            fim: None,
            api_key_env: None,
            headers: BTreeMap::new(),
            request_body: None,
            ca_cert_path: None,
            max_tokens: 128,
            temperature: 0.2,
            top_p: None,
            stop: Vec::new(),
            timeout_ms: 10_000,
            first_token_timeout_ms: None,
            context_window: 4096,
            tokenizer_path: None,
            keep_alive: None,
            fallback: None,
        }
    }
}

/// When completions are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// As the user types (after `debounceMs`), and when asked.
    #[default]
    Auto,
    /// Only when the user asks for a completion.
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct CompletionConfig {
    /// Offer completions at all.
    pub enabled: bool,
    /// `auto` completes as the user types; `manual` only when asked.
    pub trigger: Trigger,
    /// Wait this long after a keystroke before asking the model; explicit requests never wait.
    pub debounce_ms: u64,
    /// Per-language switch by LSP language id, e.g. `{ "markdown": false }`. Languages not
    /// listed are enabled.
    pub languages: BTreeMap<String, bool>,
    /// How many alternatives to ask for, where the backend can give several.
    pub candidates: u32,
}

impl Default for CompletionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trigger: Trigger::Auto,
            debounce_ms: 75,
            languages: BTreeMap::new(),
            candidates: 1,
        }
    }
}

impl CompletionConfig {
    pub fn language_enabled(&self, language_id: &str) -> bool {
        self.enabled && self.languages.get(language_id).copied().unwrap_or(true)
    }
}

/// How the prompt is fitted into the model's context window.
///
/// The window (`backend.contextWindow`) less `backend.maxTokens` and the template's markers is
/// split between the prefix, the suffix and the snippets by the shares (normalized by their
/// sum); what the suffix and snippets leave unused goes to the prefix. The character limits
/// are hard caps on top of the token budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ContextConfig {
    /// Most characters of text before the cursor sent to the model (a hard cap on top of the
    /// token budget).
    pub prefix_chars: usize,
    /// Most characters of text after the cursor sent to the model (a hard cap on top of the
    /// token budget).
    pub suffix_chars: usize,
    /// Share of the token budget for the text before the cursor.
    pub prefix_share: f32,
    /// Share of the token budget for the text after the cursor.
    pub suffix_share: f32,
    /// Share of the token budget for snippets from other files.
    pub snippet_share: f32,
    /// The context sources used, each given a share of the snippet budget: `definitions`
    /// (definitions of the identifiers used near the cursor, from the workspace symbol index)
    /// and `similar` (code similar to the lines before the cursor, from open and recently
    /// edited files). An empty list sends the current file only.
    pub sources: Vec<ContextSource>,
    /// Each source's share of the snippet budget, filled first by that source's best snippets;
    /// what a source leaves unused goes to the best remaining snippets of any source.
    pub source_shares: SourceShares,
    /// How long each source may search, in milliseconds, before it is skipped with what it
    /// has found (the completion never waits for a slow source).
    pub source_timeout_ms: u64,
    /// Most snippets per source per request.
    pub max_snippets: usize,
}

/// A context source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContextSource {
    /// Definitions of identifiers used near the cursor, resolved through the symbol index.
    Definitions,
    /// Windows of code similar to the lines before the cursor (Jaccard similarity).
    Similar,
}

/// The shares of the snippet budget per source (normalized by their sum).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceShares {
    /// Share for definitions.
    pub definitions: f32,
    /// Share for similar code.
    pub similar: f32,
}

impl Default for SourceShares {
    fn default() -> Self {
        Self {
            definitions: 0.75,
            similar: 0.25,
        }
    }
}

impl SourceShares {
    /// The share of `source`, normalized over `enabled` sources (0 when none has a share).
    pub fn normalized(&self, source: ContextSource, enabled: &[ContextSource]) -> f32 {
        let of = |s: ContextSource| {
            let v = match s {
                ContextSource::Definitions => self.definitions,
                ContextSource::Similar => self.similar,
            };
            if v.is_finite() { v.max(0.0) } else { 0.0 }
        };
        let sum: f32 = enabled.iter().map(|s| of(*s)).sum();
        if sum > 0.0 && enabled.contains(&source) {
            of(source) / sum
        } else {
            0.0
        }
    }
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            prefix_chars: 6000,
            suffix_chars: 2000,
            prefix_share: 0.45,
            suffix_share: 0.15,
            snippet_share: 0.40,
            sources: vec![ContextSource::Definitions, ContextSource::Similar],
            source_shares: SourceShares::default(),
            source_timeout_ms: 5,
            max_snippets: 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkspaceConfig {
    /// Files larger than this are never read.
    pub max_file_bytes: u64,
    /// Memory budget of the embedded model's index, in bytes of source text.
    pub index_budget_bytes: u64,
    /// Reading a workspace folder stops once this many bytes of source text were read from it.
    pub read_budget_bytes: u64,
    /// Memory budget of the symbol index (definitions with their signatures and first lines),
    /// in bytes. Past it, new files keep signatures only; past twice it, they are not indexed.
    pub symbol_budget_bytes: u64,
    /// Keep the symbol index on disk under the user's cache directory (`$TANDEM_CACHE_DIR`,
    /// else `$XDG_CACHE_HOME/tandem`, else `~/.cache/tandem`), so that a restart parses only
    /// the files that changed.
    pub symbol_cache: bool,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 1_000_000,
            index_budget_bytes: 64_000_000,
            read_budget_bytes: 512_000_000,
            symbol_budget_bytes: 150_000_000,
            symbol_cache: true,
        }
    }
}

/// Code actions: which chat model serves them, and the user's own actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ActionsConfig {
    /// Offer code actions at all.
    pub enabled: bool,
    /// The chat model for every action, of the same shape as `backend`. Unset: `backend` is
    /// used when its kind can chat (`openai-chat`, `ollama`, `mistral`, `anthropic`); otherwise
    /// the actions are listed as disabled.
    pub backend: Option<BackendConfig>,
    /// Most tokens a reply may take.
    pub max_tokens: u32,
    /// Your own actions, listed after Tandem's.
    pub custom: Vec<CustomAction>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: None,
            max_tokens: 2048,
            custom: Vec::new(),
        }
    }
}

/// A user-defined code action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomAction {
    /// The title shown in the editor's code action menu.
    pub title: String,
    /// The instruction sent to the model. Template variables: `{selection}`, `{code}`,
    /// `{context}`, `{diagnostics}`, `{language}`, `{path}`. The reply's code replaces the
    /// selection (or, without one, the definition at the cursor).
    pub prompt: String,
    /// LSP language ids the action is offered for; empty: every language.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Offer the action only on a selection (listed as disabled without one).
    #[serde(default)]
    pub needs_selection: bool,
}

/// The least time limit of an action's chat request when the completion backend serves it.
pub const ACTIONS_MIN_TIMEOUT_MS: u64 = 120_000;

impl ActionsConfig {
    /// The backend that serves actions, or why there is none. The completion backend, when it
    /// serves them, gets at least [`ACTIONS_MIN_TIMEOUT_MS`]: its own time limit is sized for
    /// a completion, not for a chat answer of a whole function or test file.
    pub fn chat_backend<'a>(
        &'a self,
        completion: &'a BackendConfig,
    ) -> Result<std::borrow::Cow<'a, BackendConfig>, String> {
        use std::borrow::Cow;
        match &self.backend {
            Some(b) if b.kind.can_chat() => Ok(Cow::Borrowed(b)),
            Some(b) => Err(format!(
                "`actions.backend.kind` is `{}`, which cannot chat; configure actions.backend \
                 with openai-chat, ollama, mistral or anthropic",
                b.kind.as_str()
            )),
            None if completion.kind.can_chat() => {
                Ok(if completion.timeout_ms >= ACTIONS_MIN_TIMEOUT_MS {
                    Cow::Borrowed(completion)
                } else {
                    Cow::Owned(BackendConfig {
                        timeout_ms: ACTIONS_MIN_TIMEOUT_MS,
                        ..completion.clone()
                    })
                })
            }
            None => Err(format!(
                "the `{}` backend cannot chat; configure actions.backend (openai-chat, ollama, \
                 mistral or anthropic)",
                completion.kind.as_str()
            )),
        }
    }
}

/// Where a layer of configuration came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LayerSource {
    UserFile,
    WorkspaceFile,
    InitializationOptions,
    DidChangeConfiguration,
}

impl LayerSource {
    pub fn describe(self) -> &'static str {
        match self {
            LayerSource::UserFile => "the user config file",
            LayerSource::WorkspaceFile => "the workspace's tandem.toml",
            LayerSource::InitializationOptions => "initializationOptions",
            LayerSource::DidChangeConfiguration => "workspace/didChangeConfiguration",
        }
    }
}

/// Most alternatives a completion may ask for.
pub const MAX_CANDIDATES: u32 = 8;

/// Keys a workspace file may not set unless trusted: they decide where code and keys go.
pub const UNTRUSTED_KEYS: &[&str] = &[
    "kind",
    "url",
    "apiKeyEnv",
    "headers",
    "caCertPath",
    "requestBody",
    "tokenizerPath",
    "trustWorkspaceConfig",
];

/// The outcome of merging the layers.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `None` when the merged layers do not fit the schema: keep the last valid configuration.
    pub config: Option<Config>,
    /// Problems a user should hear about, each naming the key and what was expected.
    pub messages: Vec<String>,
}

/// Merges `layers` (any order; sorted by precedence here) over the defaults.
pub fn resolve(layers: &[(LayerSource, Value)]) -> Resolved {
    let mut layers: Vec<&(LayerSource, Value)> = layers.iter().collect();
    layers.sort_by_key(|(source, _)| *source);
    let mut messages = Vec::new();

    let trusted = layers
        .iter()
        .filter(|(source, _)| *source != LayerSource::WorkspaceFile)
        .filter_map(|(_, v)| v.get("trustWorkspaceConfig"))
        .fold(false, |acc, v| v.as_bool().unwrap_or(acc));

    let mut merged = Value::Object(Map::new());
    for (source, layer) in layers {
        if !layer.is_object() {
            if !layer.is_null() {
                messages.push(format!(
                    "tandem: the configuration from {} must be an object; it was ignored",
                    source.describe()
                ));
            }
            continue;
        }
        let mut layer = layer.clone();
        if *source == LayerSource::WorkspaceFile {
            let mut dropped = Vec::new();
            strip_untrusted(&mut layer, "", trusted, &mut dropped);
            if !dropped.is_empty() {
                messages.push(format!(
                    "tandem: ignored {} from the workspace's tandem.toml: a cloned repository \
                     cannot choose where code or keys go. Set `trustWorkspaceConfig = true` in \
                     your own config to allow it.",
                    dropped.join(", ")
                ));
            }
        }
        merge(&mut merged, layer);
    }

    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let de = serde_ignored::Deserializer::new(merged, &mut on_unknown);
    let mut config = match serde_path_to_error::deserialize::<_, Config>(de) {
        Ok(config) => Some(config),
        Err(err) => {
            let path = err.path().to_string();
            messages.push(format!(
                "tandem: invalid configuration at `{path}`: {}; keeping the previous configuration",
                err.inner()
            ));
            None
        }
    };
    if !unknown.is_empty() {
        messages.push(format!(
            "tandem: unknown configuration keys ignored: {}",
            unknown.join(", ")
        ));
    }
    if let Some(valid) = &config {
        let problems = validate(valid);
        if !problems.is_empty() {
            messages.extend(problems);
            messages.push("tandem: keeping the previous configuration".to_owned());
            config = None;
        }
    }
    Resolved { config, messages }
}

fn validate(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let b = &config.backend;
    if b.kind != BackendKind::Embedded && b.url.as_deref().is_some_and(|u| !u.starts_with("http")) {
        problems.push(format!(
            "tandem: `backend.url` must start with http:// or https://, got `{}`",
            b.url.as_deref().unwrap_or_default()
        ));
    }
    if let Err(e) = crate::prompt::FimTemplate::resolve(b.fim.as_deref(), b.model.as_deref()) {
        problems.push(format!("tandem: {e}"));
    }
    if !(1..=MAX_CANDIDATES).contains(&config.completion.candidates) {
        problems.push(format!(
            "tandem: `completion.candidates` must be between 1 and {MAX_CANDIDATES}, got {}",
            config.completion.candidates
        ));
    }
    if b.max_tokens == 0 || b.max_tokens > 8192 {
        problems.push(format!(
            "tandem: `backend.maxTokens` must be between 1 and 8192, got {}",
            b.max_tokens
        ));
    }
    let c = &config.context;
    for (key, share) in [
        ("prefixShare", c.prefix_share),
        ("suffixShare", c.suffix_share),
        ("snippetShare", c.snippet_share),
        ("sourceShares.definitions", c.source_shares.definitions),
        ("sourceShares.similar", c.source_shares.similar),
    ] {
        if !(0.0..=1.0).contains(&share) {
            problems.push(format!(
                "tandem: `context.{key}` must be between 0 and 1, got {share}"
            ));
        }
    }
    if c.prefix_share + c.suffix_share + c.snippet_share <= 0.0 {
        problems.push(
            "tandem: `context.prefixShare`, `context.suffixShare` and `context.snippetShare` \
             cannot all be 0"
                .to_owned(),
        );
    }
    if let Some(body) = &b.request_body
        && !body.is_object()
    {
        problems.push("tandem: `backend.requestBody` must be a JSON object".to_owned());
    }
    let a = &config.actions;
    if a.max_tokens == 0 || a.max_tokens > 32_768 {
        problems.push(format!(
            "tandem: `actions.maxTokens` must be between 1 and 32768, got {}",
            a.max_tokens
        ));
    }
    if let Some(ab) = &a.backend {
        if ab.url.as_deref().is_some_and(|u| !u.starts_with("http")) {
            problems.push(format!(
                "tandem: `actions.backend.url` must start with http:// or https://, got `{}`",
                ab.url.as_deref().unwrap_or_default()
            ));
        }
        if let Some(body) = &ab.request_body
            && !body.is_object()
        {
            problems.push("tandem: `actions.backend.requestBody` must be a JSON object".to_owned());
        }
    }
    for (i, c) in a.custom.iter().enumerate() {
        if c.title.trim().is_empty() || c.prompt.trim().is_empty() {
            problems.push(format!(
                "tandem: `actions.custom[{i}]` needs a non-empty `title` and `prompt`"
            ));
        }
    }
    problems
}

fn strip_untrusted(value: &mut Value, path: &str, trusted: bool, dropped: &mut Vec<String>) {
    let Value::Object(map) = value else { return };
    if !trusted {
        map.retain(|key, _| {
            let keep = !UNTRUSTED_KEYS.contains(&key.as_str());
            if !keep {
                dropped.push(format!("`{path}{key}`"));
            }
            keep
        });
    } else {
        // Trust covers where code goes, never whether to trust.
        if map.remove("trustWorkspaceConfig").is_some() {
            dropped.push(format!("`{path}trustWorkspaceConfig`"));
        }
    }
    for (key, child) in map.iter_mut() {
        strip_untrusted(child, &format!("{path}{key}."), trusted, dropped);
    }
}

/// Deep merge: objects merge key by key, anything else in `over` replaces, `null` is unset.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        if !value.is_null() {
                            base.insert(key, value);
                        }
                    }
                }
            }
        }
        (slot, over) => *slot = over,
    }
}

/// The JSON Schema of [`Config`], as written to `docs/config.schema.json`.
pub fn json_schema() -> Value {
    let schema = schemars::schema_for!(Config);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn precedence_is_lowest_first_whatever_the_order_given() {
        let r = resolve(&[
            (
                LayerSource::DidChangeConfiguration,
                json!({"completion": {"debounceMs": 5}}),
            ),
            (
                LayerSource::UserFile,
                json!({"completion": {"debounceMs": 1, "candidates": 3}}),
            ),
            (
                LayerSource::InitializationOptions,
                json!({"completion": {"debounceMs": 4}}),
            ),
        ]);
        let c = r.config.expect("valid");
        assert_eq!(c.completion.debounce_ms, 5);
        assert_eq!(c.completion.candidates, 3);
        assert!(r.messages.is_empty(), "{:?}", r.messages);
    }

    #[test]
    fn actions_on_the_completion_backend_get_a_chat_time_limit() {
        let config = |layer: Value| {
            resolve(&[(LayerSource::UserFile, layer)])
                .config
                .expect("valid")
        };
        let timeout = |c: &Config| c.actions.chat_backend(&c.backend).map(|b| b.timeout_ms);
        let chat = json!({ "kind": "ollama", "url": "http://127.0.0.1:11434", "model": "m" });
        let c = config(json!({ "backend": chat }));
        assert_eq!(c.backend.timeout_ms, 10_000, "completions keep theirs");
        assert_eq!(timeout(&c), Ok(ACTIONS_MIN_TIMEOUT_MS));
        let mut patient = chat.clone();
        patient["timeoutMs"] = json!(300_000);
        assert_eq!(timeout(&config(json!({ "backend": patient }))), Ok(300_000));
        let mut own = chat.clone();
        own["timeoutMs"] = json!(30_000);
        let c = config(json!({ "backend": chat, "actions": { "backend": own } }));
        assert_eq!(
            timeout(&c),
            Ok(30_000),
            "an actions.backend is taken as written"
        );
    }

    #[test]
    fn workspace_file_cannot_redirect_code() {
        let r = resolve(&[(
            LayerSource::WorkspaceFile,
            json!({"backend": {"kind": "openai", "url": "http://evil.example/v1", "model": "m",
                   "headers": {"x": "y"}}, "trustWorkspaceConfig": true}),
        )]);
        let c = r.config.expect("valid");
        assert_eq!(c.backend.kind, BackendKind::Embedded);
        assert_eq!(c.backend.url, None);
        assert_eq!(c.backend.model.as_deref(), Some("m"));
        assert!(c.backend.headers.is_empty());
        assert!(r.messages[0].contains("`backend.url`"), "{:?}", r.messages);
        assert!(r.messages[0].contains("`trustWorkspaceConfig`"));
    }

    #[test]
    fn trusted_workspace_file_may_redirect() {
        let r = resolve(&[
            (LayerSource::UserFile, json!({"trustWorkspaceConfig": true})),
            (
                LayerSource::WorkspaceFile,
                json!({"backend": {"kind": "openai", "url": "http://h/v1"}}),
            ),
        ]);
        let c = r.config.expect("valid");
        assert_eq!(c.backend.kind, BackendKind::Openai);
        assert!(r.messages.is_empty(), "{:?}", r.messages);
    }

    #[test]
    fn type_errors_name_the_key_and_keep_nothing() {
        let r = resolve(&[(
            LayerSource::InitializationOptions,
            json!({"completion": {"debounceMs": "soon"}}),
        )]);
        assert!(r.config.is_none());
        assert!(
            r.messages[0].contains("`completion.debounceMs`"),
            "{:?}",
            r.messages
        );
    }

    #[test]
    fn unknown_keys_are_reported_but_the_rest_applies() {
        let r = resolve(&[(
            LayerSource::InitializationOptions,
            json!({"completion": {"debounceMS": 1, "candidates": 2}}),
        )]);
        assert_eq!(r.config.expect("valid").completion.candidates, 2);
        assert!(
            r.messages[0].contains("completion.debounceMS"),
            "{:?}",
            r.messages
        );
    }

    #[test]
    fn bad_values_are_named() {
        let r = resolve(&[(
            LayerSource::InitializationOptions,
            json!({"backend": {"kind": "openai", "fim": "gpt", "url": "localhost:8000"}}),
        )]);
        let all = r.messages.join("\n");
        assert!(all.contains("`backend.fim`"), "{all}");
        assert!(all.contains("`backend.url`"), "{all}");
        let r = resolve(&[(
            LayerSource::InitializationOptions,
            json!({"backend": {"fim": "<a>{prefix}<b>"}, "context": {"suffixShare": 1.5}}),
        )]);
        let all = r.messages.join("\n");
        assert!(r.config.is_none());
        assert!(all.contains("`backend.fim`"), "{all}");
        assert!(all.contains("`context.suffixShare`"), "{all}");
        for fim in [
            "auto",
            "Qwen",
            "codegemma",
            "<PRE>{prefix}<SUF>{suffix}<MID>",
        ] {
            let r = resolve(&[(
                LayerSource::InitializationOptions,
                json!({"backend": {"fim": fim}}),
            )]);
            assert!(r.config.is_some(), "{fim}: {:?}", r.messages);
        }
        let r = resolve(&[(
            LayerSource::InitializationOptions,
            json!({"backend": {"kind": "gpt"}}),
        )]);
        assert!(r.config.is_none());
        assert!(r.messages[0].contains("`backend.kind`"), "{:?}", r.messages);
    }
}
