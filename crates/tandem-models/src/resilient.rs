//! Resilience around a backend: retries before the first token, a first-token timeout, a
//! circuit breaker, and an optional fallback backend used while the main one is down.
//!
//! - Retries happen only before any text arrived, only for connection errors, 429 and 503
//!   (and 502/504 from a proxy), with jittered exponential backoff or the server's
//!   `Retry-After`, never longer than the request's own time limit allows.
//! - The breaker opens after [`OPEN_AFTER`] consecutive failures: for [`COOL_DOWN`] the main
//!   backend is not asked at all (the fallback answers, or the request fails at once), then one
//!   request probes it again.
//! - [`Condition`] says whether the backend is up or down, so the server can tell the user once
//!   when it goes down and once when it comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tandem_core::CompletionRequest;

use crate::{
    Backend, BackendError, Capabilities, ChatRequest, ChunkStream, Condition, WirePreview,
};

/// Consecutive failures that open the breaker.
pub const OPEN_AFTER: u32 = 3;
/// How long an open breaker keeps requests away from the main backend.
pub const COOL_DOWN: Duration = Duration::from_secs(30);
/// Retries after the first attempt, before the first token.
const RETRIES: u32 = 2;
const BASE_DELAY: Duration = Duration::from_millis(150);
const MAX_DELAY: Duration = Duration::from_secs(2);

pub struct Resilient {
    main: Arc<dyn Backend>,
    fallback: Option<Arc<dyn Backend>>,
    first_token_timeout: Option<Duration>,
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// After the cool-down, one request probes the main backend; the others keep away.
    probing: bool,
    condition: Condition,
}

/// Clears the probe flag however the probing request ends (answered, failed or dropped).
struct ProbeGuard(Option<Arc<Mutex<State>>>);

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if let Some(state) = &self.0
            && let Ok(mut s) = state.lock()
        {
            s.probing = false;
        }
    }
}

impl Resilient {
    pub fn new(
        main: Arc<dyn Backend>,
        fallback: Option<Arc<dyn Backend>>,
        first_token_timeout: Option<Duration>,
    ) -> Self {
        Self {
            main,
            fallback,
            first_token_timeout,
            state: Arc::new(Mutex::new(State {
                failures: 0,
                probing: false,
                open_until: None,
                condition: Condition::Up,
            })),
        }
    }
}

fn jitter(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let spread = h.finish() % 1000; // 0..1000 per mille
    let base = BASE_DELAY.saturating_mul(1 << attempt.min(4));
    (base / 2 + base.mul_f64(spread as f64 / 1000.0)).min(MAX_DELAY)
}

/// Waits for the first chunk so that failures before any text can be retried; gives back a
/// stream that starts with that chunk.
async fn first_chunk(
    mut stream: ChunkStream,
    timeout: Option<Duration>,
    backend: String,
) -> Result<ChunkStream, BackendError> {
    let first = match timeout {
        Some(limit) => match tokio::time::timeout(limit, stream.next()).await {
            Ok(first) => first,
            Err(_) => {
                return Err(BackendError::Timeout {
                    backend,
                    after_ms: limit.as_millis() as u64,
                });
            }
        },
        None => stream.next().await,
    };
    match first {
        None => Ok(Box::pin(futures::stream::empty())),
        Some(Err(e)) => Err(e),
        Some(Ok(chunk)) => Ok(Box::pin(
            futures::stream::once(async move { Ok(chunk) }).chain(stream),
        )),
    }
}

impl State {
    fn succeeded(&mut self) {
        self.failures = 0;
        self.open_until = None;
        self.condition = Condition::Up;
    }

    fn failed(&mut self, err: &BackendError) {
        self.failures += 1;
        if self.failures >= OPEN_AFTER {
            self.open_until = Some(Instant::now() + COOL_DOWN);
        }
        self.condition = Condition::Down(err.to_string());
    }
}

impl Resilient {
    /// Runs `call` (a completion or a chat) on the main backend with the retries, the
    /// first-token timeout and the breaker, and on the fallback when the main backend fails.
    fn run<F>(&self, call: F) -> BoxFuture<'static, Result<ChunkStream, BackendError>>
    where
        F: Fn(&dyn Backend) -> BoxFuture<'static, Result<ChunkStream, BackendError>>
            + Send
            + 'static,
    {
        let main = self.main.clone();
        let fallback = self.fallback.clone();
        let state = self.state.clone();
        let first_token_timeout = self.first_token_timeout;
        async move {
            // Closed: go. Open: keep away until the cool-down ends; then exactly one request
            // probes while the others still keep away.
            let (open, probe) = state
                .lock()
                .map(|mut s| match s.open_until {
                    None => (false, false),
                    Some(until) if Instant::now() < until => (true, false),
                    Some(_) if s.probing => (true, false),
                    Some(_) => {
                        s.probing = true;
                        (false, true)
                    }
                })
                .unwrap_or((false, false));
            let _probe = ProbeGuard(probe.then(|| state.clone()));
            let result = if open {
                let condition = state
                    .lock()
                    .map(|s| s.condition.clone())
                    .unwrap_or(Condition::Up);
                let message = match condition {
                    Condition::Down(m) => m,
                    Condition::Up => String::new(),
                };
                Err(BackendError::Config(format!(
                    "{} is down; not asking it again for a while ({message})",
                    main.describe()
                )))
            } else {
                let mut attempt = 0;
                loop {
                    let outcome = match call(&*main).await {
                        Ok(stream) => {
                            first_chunk(stream, first_token_timeout, main.describe()).await
                        }
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(stream) => {
                            if let Ok(mut s) = state.lock() {
                                s.succeeded();
                            }
                            break Ok(stream);
                        }
                        Err(e) if e.is_retryable() && attempt < RETRIES => {
                            let delay = e
                                .retry_after()
                                .map_or_else(|| jitter(attempt), |d| d.min(MAX_DELAY));
                            tracing::debug!(attempt, ?delay, "retrying: {e}");
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                        }
                        Err(e) => {
                            if !matches!(e, BackendError::Config(_))
                                && let Ok(mut s) = state.lock()
                            {
                                s.failed(&e);
                            }
                            break Err(e);
                        }
                    }
                }
            };
            match (result, fallback) {
                (Ok(stream), _) => Ok(stream),
                (Err(e), Some(fallback)) => {
                    tracing::info!("using the fallback backend {}: {e}", fallback.describe());
                    call(&*fallback).await
                }
                (Err(e), None) => Err(e),
            }
        }
        .boxed()
    }
}

impl Backend for Resilient {
    fn describe(&self) -> String {
        self.main.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.main.capabilities()
    }

    fn preview(&self, req: &CompletionRequest) -> WirePreview {
        self.main.preview(req)
    }

    fn condition(&self) -> Condition {
        self.state
            .lock()
            .map(|s| s.condition.clone())
            .unwrap_or(Condition::Up)
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        self.run(move |backend| backend.stream(req.clone()))
    }

    fn chat(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        self.run(move |backend| backend.chat(req.clone()))
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        self.main.health()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::Chunk;

    /// Fails with the scripted errors, then answers "ok".
    struct Scripted {
        errors: Mutex<Vec<BackendError>>,
        calls: AtomicU32,
    }

    impl Scripted {
        fn new(errors: Vec<BackendError>) -> Arc<Self> {
            Arc::new(Self {
                errors: Mutex::new(errors),
                calls: AtomicU32::new(0),
            })
        }
    }

    impl Backend for Scripted {
        fn describe(&self) -> String {
            "scripted".into()
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                fim: true,
                chat: false,
                candidates: false,
            }
        }
        fn preview(&self, _: &CompletionRequest) -> WirePreview {
            WirePreview {
                prompt: None,
                body: None,
            }
        }
        fn stream(
            &self,
            _: CompletionRequest,
        ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.errors.lock().expect("lock").pop();
            async move {
                match next {
                    Some(e) => Err(e),
                    None => Ok(Box::pin(futures::stream::iter([Ok(Chunk {
                        candidate: 0,
                        text: "ok".into(),
                    })])) as ChunkStream),
                }
            }
            .boxed()
        }
        /// The same script, answering "chat: ok".
        fn chat(&self, _: ChatRequest) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
            let stream = self.stream(request());
            async move {
                let text: Vec<_> = stream.await?.collect().await;
                let chunks = text.into_iter().map(|c| {
                    c.map(|c| Chunk {
                        candidate: 0,
                        text: format!("chat: {}", c.text),
                    })
                });
                Ok(Box::pin(futures::stream::iter(chunks.collect::<Vec<_>>())) as ChunkStream)
            }
            .boxed()
        }
        fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
            async { Ok(String::new()) }.boxed()
        }
    }

    /// Cannot chat (the trait's default); completions answer with `answer`'s stream.
    struct FimOnly {
        name: &'static str,
        answer: fn() -> ChunkStream,
    }

    impl FimOnly {
        fn new(name: &'static str, answer: fn() -> ChunkStream) -> Arc<Self> {
            Arc::new(Self { name, answer })
        }
    }

    impl Backend for FimOnly {
        fn describe(&self) -> String {
            self.name.into()
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                fim: true,
                chat: false,
                candidates: false,
            }
        }
        fn preview(&self, _: &CompletionRequest) -> WirePreview {
            WirePreview {
                prompt: None,
                body: None,
            }
        }
        fn stream(
            &self,
            _: CompletionRequest,
        ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
            futures::future::ready(Ok((self.answer)())).boxed()
        }
        fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
            async { Ok(String::new()) }.boxed()
        }
    }

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: String::new(),
            suffix: String::new(),
            snippets: vec![],
            path: "a.rs".into(),
            language: "rust".into(),
            mode: tandem_core::CompletionMode::SingleLine,
            stop: vec![],
            max_tokens: 8,
            candidates: 1,
        }
    }

    fn unreachable() -> BackendError {
        BackendError::Unreachable {
            backend: "scripted".into(),
            detail: "refused".into(),
        }
    }

    fn status(code: u16) -> BackendError {
        BackendError::Status {
            backend: "scripted".into(),
            status: code,
            body: String::new(),
            retry_after: Some(Duration::ZERO),
        }
    }

    async fn text(r: &Resilient) -> Result<String, BackendError> {
        let stream = r.stream(request()).await?;
        let chunks: Vec<_> = stream.collect().await;
        Ok(chunks
            .into_iter()
            .filter_map(Result::ok)
            .map(|c| c.text)
            .collect())
    }

    #[tokio::test(start_paused = true)]
    async fn retries_connection_errors_429_and_503_before_the_first_token() {
        let main = Scripted::new(vec![status(503), unreachable()]);
        let r = Resilient::new(main.clone(), None, None);
        assert_eq!(text(&r).await.expect("third attempt answers"), "ok");
        assert_eq!(main.calls.load(Ordering::SeqCst), 3);
        assert_eq!(r.condition(), Condition::Up);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_other_errors() {
        let main = Scripted::new(vec![status(401)]);
        let r = Resilient::new(main.clone(), None, None);
        assert!(text(&r).await.is_err());
        assert_eq!(main.calls.load(Ordering::SeqCst), 1);
        assert!(matches!(r.condition(), Condition::Down(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_then_probes_and_the_fallback_answers_meanwhile() {
        let errors = (0..OPEN_AFTER).map(|_| status(401)).collect();
        let main = Scripted::new(errors);
        let fallback = Scripted::new(vec![]);
        let r = Resilient::new(main.clone(), Some(fallback.clone()), None);
        for _ in 0..OPEN_AFTER {
            assert_eq!(text(&r).await.expect("fallback answers"), "ok");
        }
        assert_eq!(main.calls.load(Ordering::SeqCst), OPEN_AFTER);
        // Open: the main backend is not asked.
        assert_eq!(text(&r).await.expect("fallback answers"), "ok");
        assert_eq!(main.calls.load(Ordering::SeqCst), OPEN_AFTER);
        tokio::time::advance(COOL_DOWN + Duration::from_secs(1)).await;
        // Half-open: one probe, which succeeds; the backend is up again.
        assert_eq!(text(&r).await.expect("main answers"), "ok");
        assert_eq!(main.calls.load(Ordering::SeqCst), OPEN_AFTER + 1);
        assert_eq!(r.condition(), Condition::Up);
    }

    #[tokio::test(start_paused = true)]
    async fn first_token_timeout() {
        let silent = FimOnly::new("silent", || Box::pin(futures::stream::pending()));
        let r = Resilient::new(silent, None, Some(Duration::from_millis(500)));
        let err = text(&r).await.expect_err("times out");
        assert!(
            matches!(err, BackendError::Timeout { after_ms: 500, .. }),
            "{err:?}"
        );
    }

    async fn chat_text(r: &Resilient) -> Result<String, BackendError> {
        let req = ChatRequest {
            messages: vec![crate::ChatMessage::user("hi")],
            max_tokens: 8,
            temperature: None,
            stop: vec![],
        };
        let chunks: Vec<_> = r.chat(req).await?.collect().await;
        Ok(chunks
            .into_iter()
            .filter_map(Result::ok)
            .map(|c| c.text)
            .collect())
    }

    #[tokio::test(start_paused = true)]
    async fn chat_is_retried_and_shares_the_breaker() {
        let main = Scripted::new(vec![status(429), unreachable()]);
        let r = Resilient::new(main.clone(), None, None);
        assert_eq!(chat_text(&r).await.expect("third attempt"), "chat: ok");
        assert_eq!(main.calls.load(Ordering::SeqCst), 3);

        let errors = (0..OPEN_AFTER).map(|_| status(401)).collect();
        let main = Scripted::new(errors);
        let fallback = Scripted::new(vec![]);
        let r = Resilient::new(main.clone(), Some(fallback.clone()), None);
        for _ in 0..OPEN_AFTER {
            assert_eq!(chat_text(&r).await.expect("fallback"), "chat: ok");
        }
        assert!(matches!(r.condition(), Condition::Down(_)));
        // Open for completions too: the main backend is not asked.
        assert_eq!(text(&r).await.expect("fallback"), "ok");
        assert_eq!(main.calls.load(Ordering::SeqCst), OPEN_AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_main_backend_that_cannot_chat_is_not_down() {
        let fim_only = || FimOnly::new("fim-only", || Box::pin(futures::stream::empty()));
        let r = Resilient::new(fim_only(), None, None);
        for _ in 0..OPEN_AFTER + 1 {
            let err = chat_text(&r).await.expect_err("cannot chat");
            assert_eq!(
                err.to_string(),
                "fim-only cannot chat; configure a chat-capable backend (openai-chat, ollama, \
                 mistral, anthropic)"
            );
        }
        assert_eq!(r.condition(), Condition::Up);
        let fallback = Scripted::new(vec![]);
        let r = Resilient::new(fim_only(), Some(fallback), None);
        assert_eq!(chat_text(&r).await.expect("the fallback chats"), "chat: ok");
    }
}
