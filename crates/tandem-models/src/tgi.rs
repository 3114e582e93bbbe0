//! The `tgi` backend: Text Generation Inference's `POST {url}/generate_stream`, also served by
//! Hugging Face inference endpoints (`backend.url` is the endpoint's URL, and the key goes in
//! the variable `backend.apiKeyEnv` names). Fill-in-the-middle goes through the prompt template
//! (StarCoder's by default); the answer streams as Server-Sent Events, one token each.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest, FimTemplate};

use crate::http::{self, Endpoint, Event, Framing, KeyHeader, Sampling, excerpt};
use crate::ollama::float;
use crate::{Backend, BackendError, Capabilities, Chunk, ChunkStream, WirePreview};

/// TGI's default `--max-stop-sequences`: a request with more stop sequences is rejected.
const MAX_STOP: usize = 4;

/// Builds the backend.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(TgiBackend::new(config)?))
}

pub struct TgiBackend {
    http: Endpoint,
    template: FimTemplate,
    sampling: Sampling,
}

impl TgiBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        let template = FimTemplate::resolve(config.fim.as_deref(), config.model.as_deref())
            .map_err(BackendError::Config)?;
        Ok(Self {
            http: Endpoint::new(config, "tgi", KeyHeader::Bearer)?,
            template,
            sampling: Sampling::new(config),
        })
    }

    /// The configured stop sequences first, then the template's, at most [`MAX_STOP`] (a server
    /// that allows more can take a longer list from `backend.requestBody.parameters.stop`).
    fn stops(&self, req: &CompletionRequest) -> Vec<String> {
        let mut stop: Vec<String> = Vec::new();
        let template = self.template.stop.iter().map(|s| s.to_string());
        for s in req.stop.iter().cloned().chain(template) {
            if !s.is_empty() && !stop.contains(&s) {
                stop.push(s);
            }
        }
        stop.truncate(MAX_STOP);
        stop
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        let mut parameters = json!({
            "max_new_tokens": req.max_tokens.min(self.sampling.max_tokens).max(1),
            "stop": self.stops(req),
            "return_full_text": false,
        });
        // TGI rejects a temperature of 0: greedy decoding is `do_sample: false`.
        if self.sampling.temperature > 0.0 {
            parameters["temperature"] = float(self.sampling.temperature);
        } else {
            parameters["do_sample"] = json!(false);
        }
        // TGI wants 0 < top_p < 1; 1 means no nucleus sampling anyway.
        if let Some(top_p) = self.sampling.top_p.filter(|p| *p > 0.0 && *p < 1.0) {
            parameters["top_p"] = float(top_p);
        }
        self.sampling.merge_extra(json!({
            "inputs": self.template.render(req),
            "parameters": parameters,
        }))
    }
}

impl Backend for TgiBackend {
    fn describe(&self) -> String {
        self.http.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: false,
            candidates: false,
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
        let stops = self.stops(&req);
        let request = self.http.post("/generate_stream", &self.body(&req));
        let errors = self.http.errors();
        async move {
            let response = http::send(request, &errors).await?;
            let backend = errors.backend.clone();
            Ok(http::event_stream(
                response,
                Framing::Sse,
                errors,
                move |data| parse_event(data, &backend, &stops),
            ))
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        self.http.health(
            self.http.get("/info"),
            |url, value, errors| match value["model_id"].as_str() {
                Some(model) => Ok(format!("{url} answers; model: {model}")),
                None => Err(errors.protocol(format!(
                    "no `model_id` in `/info`: `{}`",
                    excerpt(&value.to_string())
                ))),
            },
        )
    }
}

/// One event: `{"token": {"text": .., "special": ..}, "generated_text": null}`; the last has
/// `generated_text` set; `{"error": .., "error_type": ..}` is a failure. Special tokens are
/// skipped. The last token is kept unless it ends a stop sequence (TGI includes the stop
/// sequence in its output; the other backends do not).
fn parse_event(data: &str, backend: &str, stops: &[String]) -> Result<Event, BackendError> {
    let value: Value = serde_json::from_str(data).map_err(|e| BackendError::Protocol {
        backend: backend.to_owned(),
        detail: format!("bad event `{}`: {e}", excerpt(data)),
    })?;
    if let Some(error) = value.get("error") {
        let message = error
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        let kind = value
            .get("error_type")
            .and_then(Value::as_str)
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        return Err(BackendError::Protocol {
            backend: backend.to_owned(),
            detail: format!("the server reported: {}{kind}", excerpt(&message)),
        });
    }
    let Some(token) = value.get("token") else {
        return Err(BackendError::Protocol {
            backend: backend.to_owned(),
            detail: format!("no `token` in `{}`", excerpt(data)),
        });
    };
    let special = token
        .get("special")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let text = token
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !special && !t.is_empty());
    let last = value.get("generated_text").and_then(Value::as_str);
    let text = match last {
        Some(full) if stops.iter().any(|s| full.ends_with(s.as_str())) => None,
        _ => text,
    };
    match (text, last) {
        // The body ends right after the last event.
        (Some(text), _) => Ok(Event::Chunks(vec![Chunk {
            candidate: 0,
            text: text.to_owned(),
        }])),
        (None, Some(_)) => Ok(Event::Done),
        (None, None) => Ok(Event::Chunks(Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use tandem_core::{BackendKind, CompletionMode, Snippet, SnippetSource};

    use super::*;

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: "def add(a, b):\n    ".into(),
            suffix: "\n".into(),
            snippets: vec![Snippet {
                path: "util.py".into(),
                start_line: 1,
                end_line: 1,
                text: "ZERO = 0".into(),
                source: SnippetSource::Symbol,
                kind: None,
                score: 1.0,
                brief: None,
            }],
            path: "main.py".into(),
            language: "python".into(),
            mode: CompletionMode::MultiLine,
            stop: vec!["\ndef ".into()],
            max_tokens: 64,
            candidates: 1,
        }
    }

    trait ExpectError {
        fn expect_error(self) -> BackendError;
    }

    impl ExpectError for Result<Event, BackendError> {
        #[track_caller]
        fn expect_error(self) -> BackendError {
            match self {
                Err(err) => err,
                Ok(_) => panic!("expected an error"),
            }
        }
    }

    fn pretty(value: &Value) -> String {
        serde_json::to_string_pretty(value).unwrap_or_default()
    }

    #[test]
    fn body_is_a_starcoder_prompt_with_at_most_four_stops() {
        let config = BackendConfig {
            kind: BackendKind::Tgi,
            top_p: Some(0.9),
            ..BackendConfig::default()
        };
        let backend = TgiBackend::new(&config).expect("valid");
        expect![[r##"
            {
              "inputs": "<fim_prefix># Path: util.py\n# ZERO = 0\n\ndef add(a, b):\n    <fim_suffix>\n<fim_middle>",
              "parameters": {
                "max_new_tokens": 64,
                "return_full_text": false,
                "stop": [
                  "\ndef ",
                  "<|endoftext|>",
                  "<fim_prefix>",
                  "<fim_suffix>"
                ],
                "temperature": 0.2,
                "top_p": 0.9
              }
            }"##]]
        .assert_eq(&pretty(&backend.body(&request())));
        let preview = backend.preview(&request());
        assert_eq!(
            preview.prompt.as_deref(),
            preview.body.as_ref().and_then(|b| b["inputs"].as_str())
        );
    }

    #[test]
    fn zero_temperature_is_greedy_and_top_p_one_is_left_out() {
        let config = BackendConfig {
            kind: BackendKind::Tgi,
            fim: Some("codellama".into()),
            temperature: 0.0,
            top_p: Some(1.0),
            max_tokens: 16,
            request_body: Some(json!({"parameters": {"top_k": 10}})),
            ..BackendConfig::default()
        };
        let backend = TgiBackend::new(&config).expect("valid");
        let mut req = request();
        req.snippets.clear();
        expect![[r##"
            {
              "inputs": "<PRE> def add(a, b):\n     <SUF>\n <MID>",
              "parameters": {
                "do_sample": false,
                "max_new_tokens": 16,
                "return_full_text": false,
                "stop": [
                  "\ndef ",
                  "<EOT>",
                  "</s>"
                ],
                "top_k": 10
              }
            }"##]]
        .assert_eq(&pretty(&backend.body(&req)));
    }

    #[test]
    fn events_parse_into_text_done_and_errors() {
        let stops = vec!["\n\n".to_owned(), "<|endoftext|>".to_owned()];
        let parse = |d: &str| parse_event(d, "b", &stops);
        let one = |t: &str| {
            vec![Chunk {
                candidate: 0,
                text: t.into(),
            }]
        };
        assert!(matches!(
            parse(r#"{"index":1,"token":{"id":42,"text":"return","logprob":-0.1,"special":false},"generated_text":null,"details":null}"#),
            Ok(Event::Chunks(c)) if c == one("return")
        ));
        assert!(matches!(
            parse(r#"{"index":2,"token":{"id":0,"text":"<fim_prefix>","logprob":0.0,"special":true},"generated_text":null}"#),
            Ok(Event::Chunks(c)) if c.is_empty()
        ));
        // The end of generation: an end-of-text token, a stop sequence, the token limit.
        assert!(matches!(
            parse(
                r#"{"index":3,"token":{"id":0,"text":"<|endoftext|>","special":true},"generated_text":"return a + b"}"#
            ),
            Ok(Event::Done)
        ));
        assert!(matches!(
            parse(
                r#"{"index":3,"token":{"id":7,"text":"\n\n","special":false},"generated_text":"return a + b\n\n"}"#
            ),
            Ok(Event::Done)
        ));
        assert!(matches!(
            parse(r#"{"index":3,"token":{"id":7,"text":" b","special":false},"generated_text":"return a + b"}"#),
            Ok(Event::Chunks(c)) if c == one(" b")
        ));
        let err = parse(r#"{"error":"Request failed during generation: Server error: CUDA out of memory","error_type":"generation"}"#).expect_error();
        let text = err.to_string();
        assert!(
            text.contains("CUDA out of memory") && text.contains("(generation)"),
            "{text}"
        );
        let err = parse(r#"{"token":{"text":"#).expect_error();
        assert!(err.to_string().contains("bad event"), "{err}");
        let err = parse(r#"{"generated_text":"x"}"#).expect_error();
        assert!(err.to_string().contains("no `token`"), "{err}");
    }
}
