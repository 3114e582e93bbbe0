//! The `openai` backend: an OpenAI-compatible `POST {url}/completions` endpoint, as served by
//! vLLM, llama.cpp's server, LM Studio and TGI. Fill-in-the-middle goes through the prompt
//! template; the answer streams as Server-Sent Events.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest, FimTemplate};

use crate::http::{self, Endpoint, Event, Framing, KeyHeader, Sampling, excerpt};
use crate::{Backend, BackendError, Capabilities, Chunk, ChunkStream, WirePreview};

pub struct OpenAiBackend {
    http: Endpoint,
    model: Option<String>,
    template: FimTemplate,
    sampling: Sampling,
}

impl OpenAiBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        let template = FimTemplate::resolve(config.fim.as_deref(), config.model.as_deref())
            .map_err(BackendError::Config)?;
        Ok(Self {
            http: Endpoint::new(config, "openai", KeyHeader::Bearer)?,
            model: config.model.clone(),
            template,
            sampling: Sampling::new(config),
        })
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        let mut stop: Vec<String> = self.template.stop.iter().map(|s| (*s).to_owned()).collect();
        for s in &req.stop {
            if !stop.contains(s) {
                stop.push(s.clone());
            }
        }
        let mut body = json!({
            "prompt": self.template.render(req),
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

impl Backend for OpenAiBackend {
    fn describe(&self) -> String {
        self.http.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: false,
            candidates: true,
        }
    }

    fn preview(&self, req: &CompletionRequest) -> WirePreview {
        WirePreview {
            prompt: Some(self.template.render(req)),
            body: Some(self.body(req)),
        }
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.http.post("/completions", &self.body(&req));
        let errors = self.http.errors();
        let template = self.template.clone();
        async move {
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
        let model = self.model.clone();
        self.http
            .health(self.http.get("/models"), move |url, value, _| {
                Ok(models_line(url, value, model.as_deref()))
            })
    }
}

/// "URL answers; models: a, b" from an OpenAI-style model list, warning when `model` is absent.
pub(crate) fn models_line(url: &str, value: &Value, model: Option<&str>) -> String {
    let ids: Vec<&str> = value["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
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
        let body = backend.body(&req);
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
        assert_eq!(backend.template.name, "qwen");
        let config = BackendConfig {
            fim: Some("<PRE>{prefix}<SUF>{suffix}<MID>".into()),
            ..config
        };
        let backend = OpenAiBackend::new(&config).expect("valid");
        assert_eq!(backend.template.name, "custom");
        let config = BackendConfig {
            fim: Some("nonesuch".into()),
            ..config
        };
        let err = OpenAiBackend::new(&config).err().expect("error");
        assert!(err.to_string().contains("`backend.fim`"), "{err}");
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
