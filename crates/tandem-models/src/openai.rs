//! The `openai` backend: an OpenAI-compatible `POST {url}/completions` endpoint, as served by
//! vLLM, llama.cpp's server, LM Studio and TGI. Fill-in-the-middle goes through the prompt
//! template; the answer streams as Server-Sent Events.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest, FimTemplate};
use tokio::time::Instant;

use crate::http::{self, Endpoint, Event, Framing, KeyHeader, Sampling, excerpt};
use crate::{Backend, BackendError, Capabilities, Chunk, ChunkStream, WirePreview};

/// How long the model list may take when it is asked for the template.
const LIST_TIMEOUT: Duration = Duration::from_secs(2);
/// When to ask again after the list could not be read because the server was not reachable
/// (it may be starting), and after any other failure.
const RETRY_UNREACHABLE: Duration = Duration::from_secs(10);
const RETRY_FAILED: Duration = Duration::from_secs(300);

pub struct OpenAiBackend {
    inner: Arc<Inner>,
}

struct Inner {
    http: Endpoint,
    model: Option<String>,
    /// The template `backend.fim` and `backend.model` give (StarCoder's when they name none).
    template: FimTemplate,
    /// Set when that template is only a fallback: `fim` is unset or `auto` and no `model` is
    /// configured. The server's model list is then asked which model it serves.
    detect: Option<Detect>,
    sampling: Sampling,
}

/// The template from the server's model list: asked once, at the first completion.
struct Detect {
    state: Mutex<DetectState>,
}

struct DetectState {
    step: Step,
    /// The chosen template has been logged at info level (later retries log at debug).
    told: bool,
}

enum Step {
    /// To ask at the first completion after this instant (`None`: at the next one).
    Due(Option<Instant>),
    /// Being asked; completions wait for the answer.
    Asking(Shared<BoxFuture<'static, ()>>),
    /// The list was read: the template of the family it names, or `None` if it names none
    /// (the fallback stays, for the backend's lifetime).
    Read(Option<FimTemplate>),
}

impl OpenAiBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        let template = FimTemplate::resolve(config.fim.as_deref(), config.model.as_deref())
            .map_err(BackendError::Config)?;
        let auto = config
            .fim
            .as_deref()
            .map(str::trim)
            .is_none_or(|f| f.is_empty() || f.eq_ignore_ascii_case("auto"));
        // Without a `model` (llama.cpp's server needs none) the template falls back to
        // StarCoder's; the server's model list tells which model it serves.
        let unnamed = config.model.as_deref().is_none_or(|m| m.trim().is_empty());
        let detect = (auto && unnamed).then(|| Detect {
            state: Mutex::new(DetectState {
                step: Step::Due(None),
                told: false,
            }),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                http: Endpoint::new(config, "openai", KeyHeader::Bearer)?,
                model: config.model.clone(),
                template,
                detect,
                sampling: Sampling::new(config),
            }),
        })
    }
}

impl Inner {
    /// The template to use now: the one the model list named, else the configured one.
    fn template(&self) -> FimTemplate {
        match &self.detect {
            Some(d) => match &d.lock().step {
                Step::Read(Some(t)) => t.clone(),
                _ => self.template.clone(),
            },
            None => self.template.clone(),
        }
    }

    /// The template for a completion: asks the model list first when that is due, and waits
    /// for an answer being asked.
    async fn template_for_completion(self: Arc<Self>) -> FimTemplate {
        let Some(detect) = &self.detect else {
            return self.template.clone();
        };
        let wait = {
            let mut state = detect.lock();
            match &state.step {
                Step::Read(_) => None,
                Step::Due(Some(at)) if Instant::now() < *at => None,
                Step::Asking(wait) => Some(wait.clone()),
                Step::Due(_) => {
                    // Spawned, so that a completion cancelled meanwhile does not cancel it.
                    let task = tokio::spawn(self.clone().ask_model_list());
                    let wait = task.map(|_| ()).boxed().shared();
                    state.step = Step::Asking(wait.clone());
                    Some(wait)
                }
            }
        };
        if let Some(wait) = wait {
            wait.await;
            let mut state = detect.lock();
            if matches!(state.step, Step::Asking(_)) {
                // The task ended without a word (it panicked): try again later.
                state.step = Step::Due(Some(Instant::now() + RETRY_FAILED));
            }
        }
        self.template()
    }

    /// Asks `GET {url}/models` and records the template it names (or when to ask again).
    async fn ask_model_list(self: Arc<Self>) {
        let mut errors = self.http.errors();
        let timeout = LIST_TIMEOUT.min(Duration::from_millis(errors.timeout_ms.max(1)));
        errors.timeout_ms = timeout.as_millis() as u64;
        let request = self.http.get("/models").timeout(timeout);
        let answer = async {
            let response = http::send(request, &errors).await?;
            let text = response.text().await.map_err(|e| errors.map(&e))?;
            serde_json::from_str::<Value>(&text).map_err(|e| {
                errors.protocol(format!(
                    "the model list `{}` is not JSON: {e}",
                    excerpt(&text)
                ))
            })
        }
        .await;
        let Some(detect) = &self.detect else { return };
        let mut state = detect.lock();
        let fallback = &self.template.name;
        let (step, message) = match answer {
            Ok(value) => {
                let ids = listed_models(&value);
                match pick_template(&ids, self.model.as_deref()) {
                    Some((template, id)) => {
                        let message = format!(
                            "fim template `{}` from the server's model list (`{id}`)",
                            template.name
                        );
                        (Step::Read(Some(template)), message)
                    }
                    None => {
                        let why = if ids.is_empty() {
                            "the server's model list names no model".to_owned()
                        } else {
                            format!(
                                "the server's model list (`{}`) names no known model family",
                                ids.join("`, `")
                            )
                        };
                        let message = format!(
                            "fim template `{fallback}`: {why}; set `backend.fim` to choose"
                        );
                        (Step::Read(None), message)
                    }
                }
            }
            Err(e) => {
                let retry = match e {
                    BackendError::Unreachable { .. } => RETRY_UNREACHABLE,
                    _ => RETRY_FAILED,
                };
                let message = format!(
                    "fim template `{fallback}`: the server's model list could not be read \
                     (asking again in {}s; set `backend.fim` to choose): {e}",
                    retry.as_secs()
                );
                (Step::Due(Some(Instant::now() + retry)), message)
            }
        };
        if state.told {
            tracing::debug!("{message}");
        } else {
            tracing::info!("{message}");
        }
        state.told = true;
        state.step = step;
    }

    fn body(&self, req: &CompletionRequest, template: &FimTemplate) -> Value {
        let mut stop: Vec<String> = template.stop.iter().map(|s| (*s).to_owned()).collect();
        for s in &req.stop {
            if !stop.contains(s) {
                stop.push(s.clone());
            }
        }
        let mut body = json!({
            "prompt": template.render(req),
            "max_tokens": req.max_tokens.min(self.sampling.max_tokens).max(1),
            "temperature": self.sampling.temperature,
            "stop": stop,
            "stream": true,
        });
        if let Some(model) = &self.model {
            body["model"] = json!(model);
        }
        if let Some(top_p) = self.sampling.top_p {
            body["top_p"] = json!(top_p);
        }
        if req.candidates > 1 {
            body["n"] = json!(req.candidates);
        }
        self.sampling.merge_extra(body)
    }
}

impl Detect {
    fn lock(&self) -> MutexGuard<'_, DetectState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The model names a `GET {url}/models` answer lists, in order, each once: OpenAI's
/// `data[].id`, and the `models[].name` / `models[].model` of llama.cpp's older answer.
pub(crate) fn listed_models(value: &Value) -> Vec<&str> {
    let data = value["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str());
    let models = value["models"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| [m["name"].as_str(), m["model"].as_str()])
        .flatten();
    let mut ids: Vec<&str> = Vec::new();
    for id in data.chain(models) {
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// The template for the listed models `ids`, with the model it came from: the first listed
/// model of a known family. `None` when none is, or when the configured `model` (which names no
/// family) is listed: the server serves that one.
fn pick_template<'a>(ids: &[&'a str], model: Option<&str>) -> Option<(FimTemplate, &'a str)> {
    if model.is_some_and(|m| ids.contains(&m)) {
        return None;
    }
    ids.iter()
        .find_map(|id| FimTemplate::detect(id).map(|t| (t, *id)))
}

impl Backend for OpenAiBackend {
    fn describe(&self) -> String {
        self.inner.http.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: false,
            candidates: true,
        }
    }

    fn preview(&self, req: &CompletionRequest) -> WirePreview {
        let template = self.inner.template();
        WirePreview {
            prompt: Some(template.render(req)),
            body: Some(self.inner.body(req, &template)),
        }
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let inner = self.inner.clone();
        async move {
            let template = inner.clone().template_for_completion().await;
            let request = inner
                .http
                .post("/completions", &inner.body(&req, &template));
            let errors = inner.http.errors();
            drop(inner);
            let response = http::send(request, &errors).await?;
            if http::is_json(&response) {
                // The server ignored `stream: true` and answered in one piece.
                let value: Value = response.json().await.map_err(|e| errors.map(&e))?;
                let chunks = parse_event(&value, &errors.backend)?;
                let stream = futures::stream::iter(chunks.into_iter().map(Ok));
                return Ok(strip_special(Box::pin(stream), &template));
            }
            let backend = errors.backend.clone();
            let events = http::event_stream(response, Framing::Sse, errors.clone(), move |data| {
                if data.trim() == "[DONE]" {
                    return Ok(Event::Done);
                }
                let value: Value =
                    serde_json::from_str(data).map_err(|e| BackendError::Protocol {
                        backend: backend.clone(),
                        detail: format!("bad event `{}`: {e}", excerpt(data)),
                    })?;
                parse_event(&value, &backend).map(Event::Chunks)
            });
            Ok(strip_special(events, &template))
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        let model = self.inner.model.clone();
        let http = &self.inner.http;
        http.health(http.get("/models"), move |url, value, _| {
            Ok(models_line(url, value, model.as_deref()))
        })
    }
}

/// "URL answers; models: a, b" from an OpenAI-style model list, warning when `model` is absent.
pub(crate) fn models_line(url: &str, value: &Value, model: Option<&str>) -> String {
    let ids = listed_models(value);
    let mut line = format!(
        "{url} answers; models: {}",
        if ids.is_empty() {
            "none listed".to_owned()
        } else {
            ids.join(", ")
        }
    );
    if let Some(model) = model
        && !ids.is_empty()
        && !ids.contains(&model)
    {
        line.push_str(&format!(
            "; warning: `backend.model` `{model}` is not among them"
        ));
    }
    line
}

/// `stream` with the template's special tokens removed, per candidate: a server that does not
/// honour the stop sequences (or streams a marker the template does not stop on) must not put
/// `<|endoftext|>` and what follows it into the editor. A token split across chunks is held
/// back until it is decided; a candidate ends at its first special token.
fn strip_special(stream: ChunkStream, template: &FimTemplate) -> ChunkStream {
    use futures::StreamExt;
    use std::collections::HashMap;

    struct State {
        inner: ChunkStream,
        template: FimTemplate,
        filters: HashMap<u32, tandem_core::prompt::SpecialFilter>,
        /// Set once the inner stream is over: the held-back text is flushed from here.
        flushing: Option<std::vec::IntoIter<Chunk>>,
    }

    let state = State {
        inner: stream,
        template: template.clone(),
        filters: HashMap::new(),
        flushing: None,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(rest) = &mut st.flushing {
                return rest.next().map(|chunk| (Ok(chunk), st));
            }
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    let template = &st.template;
                    let filter = st
                        .filters
                        .entry(chunk.candidate)
                        .or_insert_with(|| template.special_filter());
                    let text = filter.push(&chunk.text);
                    if !text.is_empty() {
                        let chunk = Chunk {
                            candidate: chunk.candidate,
                            text,
                        };
                        return Some((Ok(chunk), st));
                    }
                }
                Some(Err(e)) => return Some((Err(e), st)),
                None => {
                    let mut held: Vec<Chunk> = st
                        .filters
                        .iter_mut()
                        .map(|(&candidate, f)| Chunk {
                            candidate,
                            text: f.finish(),
                        })
                        .filter(|c| !c.text.is_empty())
                        .collect();
                    held.sort_by_key(|c| c.candidate);
                    st.flushing = Some(held.into_iter());
                }
            }
        }
    }))
}

/// The text pieces of one completion event (streamed or not).
fn parse_event(value: &Value, backend: &str) -> Result<Vec<Chunk>, BackendError> {
    if let Some(error) = value.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        return Err(BackendError::Protocol {
            backend: backend.to_owned(),
            detail: format!("the server reported: {}", excerpt(&message)),
        });
    }
    let Some(choices) = value.get("choices").and_then(Value::as_array) else {
        return Err(BackendError::Protocol {
            backend: backend.to_owned(),
            detail: format!("no `choices` in `{}`", excerpt(&value.to_string())),
        });
    };
    Ok(choices
        .iter()
        .enumerate()
        .filter_map(|(i, choice)| {
            let text = choice.get("text").and_then(Value::as_str)?;
            let candidate = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64);
            (!text.is_empty()).then(|| Chunk {
                candidate: u32::try_from(candidate).unwrap_or(0),
                text: text.to_owned(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_into_chunks_per_candidate() {
        let v = json!({"choices": [{"text": "a", "index": 1}, {"text": "", "index": 0}]});
        assert_eq!(
            parse_event(&v, "b").expect("ok"),
            vec![Chunk {
                candidate: 1,
                text: "a".into()
            }]
        );
        let err = parse_event(&json!({"error": {"message": "model not loaded"}}), "b")
            .expect_err("error");
        assert!(err.to_string().contains("model not loaded"));
    }

    #[test]
    fn body_has_template_stops_and_merged_extras() {
        let config = BackendConfig {
            kind: tandem_core::BackendKind::Openai,
            model: Some("m".into()),
            stop: vec!["\n\n".into()],
            request_body: Some(json!({"top_k": 5, "temperature": 0.0})),
            ..BackendConfig::default()
        };
        let backend = OpenAiBackend::new(&config).expect("valid");
        let req = CompletionRequest {
            prefix: "a".into(),
            suffix: "b".into(),
            snippets: vec![],
            path: "x.rs".into(),
            language: "rust".into(),
            mode: tandem_core::CompletionMode::SingleLine,
            stop: vec!["\n\n".into()],
            max_tokens: 16,
            candidates: 2,
        };
        let body = backend.inner.body(&req, &backend.inner.template);
        assert_eq!(body["prompt"], "<fim_prefix>a<fim_suffix>b<fim_middle>");
        assert_eq!(body["model"], "m");
        assert_eq!(body["n"], 2);
        assert_eq!(body["top_k"], 5);
        assert_eq!(body["temperature"], 0.0);
        assert_eq!(body["max_tokens"], 16);
        assert!(
            body["stop"]
                .as_array()
                .expect("array")
                .contains(&json!("\n\n"))
        );
    }

    #[test]
    fn template_follows_the_model_and_custom_strings_work() {
        let config = BackendConfig {
            kind: tandem_core::BackendKind::Openai,
            model: Some("Qwen/Qwen2.5-Coder-1.5B".into()),
            ..BackendConfig::default()
        };
        let backend = OpenAiBackend::new(&config).expect("valid");
        assert_eq!(backend.inner.template.name, "qwen");
        assert!(backend.inner.detect.is_none(), "the model names the family");
        let config = BackendConfig {
            fim: Some("<PRE>{prefix}<SUF>{suffix}<MID>".into()),
            ..config
        };
        let backend = OpenAiBackend::new(&config).expect("valid");
        assert_eq!(backend.inner.template.name, "custom");
        assert!(backend.inner.detect.is_none(), "`fim` is explicit");
        let config = BackendConfig {
            fim: Some("nonesuch".into()),
            ..config
        };
        let err = OpenAiBackend::new(&config).err().expect("error");
        assert!(err.to_string().contains("`backend.fim`"), "{err}");
    }

    #[test]
    fn the_model_list_is_asked_only_when_fim_is_auto_and_no_model_is_configured() {
        let asks = |fim: Option<&str>, model: Option<&str>| {
            let config = BackendConfig {
                kind: tandem_core::BackendKind::Openai,
                fim: fim.map(Into::into),
                model: model.map(Into::into),
                ..BackendConfig::default()
            };
            OpenAiBackend::new(&config)
                .expect("valid")
                .inner
                .detect
                .is_some()
        };
        assert!(asks(None, None));
        assert!(asks(Some("auto"), None));
        assert!(asks(Some(" AUTO "), Some(" ")));
        assert!(asks(Some(""), None));
        // A configured model is what the server is asked for: its name decides.
        assert!(!asks(None, Some("m")));
        assert!(!asks(None, Some("bigcode/starcoder2-3b")));
        assert!(!asks(Some("auto"), Some("qwen2.5-coder:1.5b")));
        assert!(!asks(Some("starcoder"), None));
        assert!(!asks(Some("<p>{prefix}<s>{suffix}<m>"), None));
    }

    #[test]
    fn model_lists_in_both_shapes_are_read() {
        // llama.cpp's `llama-server` today: both shapes at once, naming the same file.
        let both = json!({
            "models": [{ "name": "qwen2.5-coder-0.5b-instruct-q5_0.gguf",
                         "model": "qwen2.5-coder-0.5b-instruct-q5_0.gguf",
                         "type": "model", "capabilities": ["completion"] }],
            "object": "list",
            "data": [{ "id": "qwen2.5-coder-0.5b-instruct-q5_0.gguf", "object": "model",
                       "created": 1_700_000_000, "owned_by": "llamacpp",
                       "meta": { "n_ctx_train": 32768 } }],
        });
        assert_eq!(
            listed_models(&both),
            vec!["qwen2.5-coder-0.5b-instruct-q5_0.gguf"]
        );
        // OpenAI's shape alone (vLLM, LM Studio, llama-cpp-python).
        let data = json!({"object": "list", "data": [{"id": "a"}, {"id": "b"}, {"object": "x"}]});
        assert_eq!(listed_models(&data), vec!["a", "b"]);
        // The older shape alone.
        let old =
            json!({"models": [{"name": "n.gguf", "model": "/models/n.gguf"}, {"model": "m"}]});
        assert_eq!(listed_models(&old), vec!["n.gguf", "/models/n.gguf", "m"]);
        assert!(listed_models(&json!({"error": "nope"})).is_empty());
        assert!(listed_models(&json!([1, 2])).is_empty());
    }

    #[test]
    fn the_template_is_picked_from_the_listed_models() {
        let pick = |ids: &[&str], model: Option<&str>| {
            pick_template(ids, model).map(|(t, id)| (t.name.into_owned(), id.to_owned()))
        };
        let qwen = "qwen2.5-coder-0.5b-instruct-q5_0.gguf";
        assert_eq!(pick(&[qwen], None), Some(("qwen".into(), qwen.into())));
        assert_eq!(
            pick(&["all-minilm", "deepseek-coder-v2:16b", qwen], Some("m")),
            Some(("deepseek".into(), "deepseek-coder-v2:16b".into())),
            "the first model of a known family"
        );
        assert_eq!(pick(&["tiny.gguf"], None), None);
        assert_eq!(pick(&[], None), None);
        assert_eq!(
            pick(&["local", qwen], Some("local")),
            None,
            "the configured model is listed: the server serves that one"
        );
    }

    #[test]
    fn preview_uses_the_detected_template_once_known() {
        let backend = OpenAiBackend::new(&BackendConfig {
            kind: tandem_core::BackendKind::Openai,
            ..BackendConfig::default()
        })
        .expect("valid");
        let req = CompletionRequest {
            prefix: "a".into(),
            suffix: "b".into(),
            snippets: vec![],
            path: "x.rs".into(),
            language: "rust".into(),
            mode: tandem_core::CompletionMode::SingleLine,
            stop: vec![],
            max_tokens: 16,
            candidates: 1,
        };
        let prompt = |b: &OpenAiBackend| b.preview(&req).prompt.expect("a prompt");
        assert_eq!(prompt(&backend), "<fim_prefix>a<fim_suffix>b<fim_middle>");
        let detect = backend.inner.detect.as_ref().expect("asks the list");
        detect.lock().step = Step::Read(FimTemplate::by_name("qwen"));
        assert_eq!(
            prompt(&backend),
            "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"
        );
        let body = backend.preview(&req).body.expect("a body");
        assert!(
            body["stop"]
                .as_array()
                .expect("stops")
                .contains(&json!("<|im_end|>")),
            "the stops follow the template: {body}"
        );
    }

    #[tokio::test]
    async fn leaked_special_tokens_are_stripped_across_chunks() {
        use futures::StreamExt;
        let template = FimTemplate::by_name("starcoder").expect("known");
        let chunk = |candidate, text: &str| {
            Ok(Chunk {
                candidate,
                text: text.into(),
            })
        };
        let inner = futures::stream::iter(vec![
            chunk(0, "x = 1<|end"),
            chunk(1, "y <"),
            chunk(0, "oftext|>garbage"),
            chunk(1, " 2"),
            chunk(0, "more garbage"),
            chunk(1, " <fim"),
        ]);
        let out: Vec<Chunk> = strip_special(Box::pin(inner), &template)
            .map(|c| c.expect("ok"))
            .collect()
            .await;
        let text = |candidate| {
            out.iter()
                .filter(|c| c.candidate == candidate)
                .map(|c| c.text.as_str())
                .collect::<String>()
        };
        assert_eq!(text(0), "x = 1");
        assert_eq!(text(1), "y < 2 <fim");
    }

    #[test]
    fn missing_key_variable_is_a_clear_error() {
        let config = BackendConfig {
            kind: tandem_core::BackendKind::Openai,
            api_key_env: Some("TANDEM_TEST_SURELY_UNSET_VAR".into()),
            ..BackendConfig::default()
        };
        let err = OpenAiBackend::new(&config).err().expect("error");
        assert!(err.to_string().contains("TANDEM_TEST_SURELY_UNSET_VAR"));
    }
}
