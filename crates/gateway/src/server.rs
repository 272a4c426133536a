//! The HTTP server: shared state, routes, the layer stack, and the accept
//! loop with graceful shutdown.
//!
//! Layers, outermost first:
//! 1. `call_context`: picks the call id (the client's `x-litellm-call-id` or
//!    a new UUIDv4), starts the clock, and puts `x-litellm-call-id` and
//!    `x-litellm-overhead-duration-ms` on every response, errors included;
//! 2. `CatchPanicLayer`: a panic in a handler becomes a 500 envelope with no
//!    detail, never a dropped connection;
//! 3. the routes; anything else is a 404 envelope.
//!
//! `POST /v1/chat/completions` (and `/chat/completions`), the hot route,
//! bypasses the router and gets the same treatment from [`Dispatch`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::Keys;
use crate::body::budget::Budget;
use crate::config::{Config, ServerSettings};
use crate::error::Error;
use crate::guardrails::Guardrails;
use crate::limits::GlobalLimit;
use crate::metrics::Metrics;
use crate::router::Router as ModelRouter;

pub const CALL_ID_HEADER: HeaderName = HeaderName::from_static("x-litellm-call-id");
pub const OVERHEAD_HEADER: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");

/// Everything a request needs, shared by all of them.
pub struct AppState {
    pub keys: Keys,
    pub router: ModelRouter,
    pub guardrails: Guardrails,
    /// Pooled HTTP clients for upstream and guardrail calls, one per worker.
    pub http: Arc<crate::outbound::Clients>,
    pub metrics: Arc<Metrics>,
    pub settings: ServerSettings,
    /// `global_max_parallel_requests`.
    pub global: GlobalLimit,
    /// Set once shutdown begins: readiness answers 503.
    pub draining: AtomicBool,
}

impl AppState {
    /// The state for `workers` worker threads (1 for a single runtime).
    pub fn new(config: Config, workers: usize) -> Result<Arc<Self>, String> {
        crate::install_crypto();
        let http = Arc::new(crate::outbound::Clients::new(&config, workers)?);
        let metrics = Arc::new(Metrics::default());
        let budget = Budget::new(
            config.server.response_budget,
            config.server.max_response_bytes,
        );
        let guardrails = Guardrails::new(&config.guardrails, &http, &metrics, &budget)?;
        let keys = Keys::new(&config);
        let secrets = Arc::new(config.secrets());
        let Config {
            deployments,
            router,
            server,
            ..
        } = config;
        Ok(Arc::new(AppState {
            keys,
            router: ModelRouter::new(&deployments, router, metrics.clone(), secrets, budget),
            guardrails,
            http,
            metrics,
            global: GlobalLimit::new(server.max_parallel_requests),
            settings: server,
            draining: AtomicBool::new(false),
        }))
    }
}

/// Per-request facts set by the outermost layer.
#[derive(Clone, Debug)]
pub struct CallContext {
    pub call_id: HeaderValue,
    pub started: Instant,
}

/// A random (version 4) UUID for a call id. Drawn from a per-thread
/// generator rather than the kernel's: a call id must be unique, not secret,
/// and `getrandom` was the one syscall per request that was not I/O.
pub fn new_call_id() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

/// A duration as milliseconds with three decimals (`12.345`).
pub fn millis(d: Duration) -> HeaderValue {
    // Formatted by hand into a stack buffer: this runs on every response.
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let (whole, frac) = (micros / 1000, micros % 1000);
    let mut buf = [0u8; 24];
    let mut at = buf.len();
    for digit in [frac % 10, frac / 10 % 10, frac / 100] {
        at -= 1;
        buf[at] = b'0' + digit as u8;
    }
    at -= 1;
    buf[at] = b'.';
    let mut n = whole;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&buf[at..]).unwrap_or(HeaderValue::from_static("0"))
}

async fn call_context(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let call_id = call_id_for(req.headers());
    req.extensions_mut().insert(CallContext {
        call_id: call_id.clone(),
        started,
    });
    crate::spin::activity();
    let mut response = next.run(req).await;
    crate::spin::activity();
    stamp(&mut response, call_id, started);
    response
}

/// The client's `x-litellm-call-id` if it is usable, else a new UUIDv4.
fn call_id_for(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&CALL_ID_HEADER)
        .filter(|v| !v.is_empty() && v.len() <= 256 && v.to_str().is_ok())
        .cloned()
        .unwrap_or_else(|| {
            let mut buf = uuid::Uuid::encode_buffer();
            let id = new_call_id().hyphenated().encode_lower(&mut buf);
            HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("unknown"))
        })
}

/// The headers every response carries: the call id, and the overhead unless
/// the handler measured it more precisely.
fn stamp(response: &mut Response, call_id: HeaderValue, started: Instant) {
    let h = response.headers_mut();
    h.insert(CALL_ID_HEADER, call_id);
    if !h.contains_key(&OVERHEAD_HEADER) {
        h.insert(OVERHEAD_HEADER, millis(started.elapsed()));
    }
}

/// The service of every connection: chat completions go straight to
/// [`crate::proxy::respond`], everything else through the axum [`router`].
///
/// The hot route skips the router's per-request machinery (the route lookup,
/// the middleware's boxed `Next`, extractors that clone the header map and
/// look the context up in the extensions, tower's `Oneshot` and response
/// mapping) and gets the same treatment as the router's layers give: the
/// call id, the overhead header, activity for the busy-poll window, and a
/// 500 envelope if the handler panics.
#[derive(Clone)]
struct Dispatch {
    state: Arc<AppState>,
    app: Router,
}

type DispatchFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = DispatchFuture;

    fn call(&self, req: hyper::Request<Incoming>) -> DispatchFuture {
        let chat = req.method() == Method::POST
            && matches!(
                req.uri().path(),
                "/v1/chat/completions" | "/chat/completions"
            );
        if chat {
            let state = self.state.clone();
            Box::pin(async move { Ok(chat_completion(&state, req).await) })
        } else {
            Box::pin(self.app.clone().oneshot(req))
        }
    }
}

async fn chat_completion(state: &AppState, req: hyper::Request<Incoming>) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let call_id = call_id_for(&parts.headers);
    let ctx = CallContext {
        call_id: call_id.clone(),
        started,
    };
    let answer = crate::proxy::respond(state, &ctx, &parts.headers, Body::new(body));
    guarded(answer, call_id, started).await
}

/// What the router's layers do for a handler: activity for the busy-poll
/// window, a 500 envelope if it panics, and the [`stamp`].
async fn guarded(
    answer: impl Future<Output = Response>,
    call_id: HeaderValue,
    started: Instant,
) -> Response {
    crate::spin::activity();
    let answer = AssertUnwindSafe(answer).catch_unwind().await;
    crate::spin::activity();
    let mut response = answer.unwrap_or_else(panic_response);
    stamp(&mut response, call_id, started);
    response
}

/// The application: routes and layers (see the module doc for the order).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(crate::proxy::chat_completions))
        .route("/chat/completions", post(crate::proxy::chat_completions))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/health/liveliness", get(liveness))
        .route("/health/liveness", get(liveness))
        .route("/health/readiness", get(readiness))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(call_context))
}

/// A panic in a handler: a 500 envelope with no detail; the connection lives.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Error::Internal("handler panicked".into()).into_response()
}

async fn not_found(req: Request) -> Response {
    Error::NotFound(req.uri().path().to_owned()).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    Error::MethodNotAllowed(req.method().to_string(), req.uri().path().to_owned()).into_response()
}

async fn liveness() -> Response {
    json_response(StatusCode::OK, json!("I'm alive!"))
}

async fn readiness(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::Relaxed) {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "draining", "version": crate::VERSION}),
        )
    } else {
        json_response(
            StatusCode::OK,
            json!({"status": "healthy", "version": crate::VERSION}),
        )
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /v1/models`: the groups the caller's key may use, OpenAI's list format.
async fn models(
    State(state): State<Arc<AppState>>,
    Extension(_ctx): Extension<CallContext>,
    headers: HeaderMap,
) -> Response {
    let caller = match state.keys.authenticate(&headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let data: Vec<_> = state
        .router
        .groups()
        .iter()
        .filter(|g| caller.may_use(&g.name))
        .map(|g| json!({"id": g.name, "object": "model", "created": 1677610602, "owned_by": "openai"}))
        .collect();
    json_response(StatusCode::OK, json!({"object": "list", "data": data}))
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
        .into_response()
}

/// Accept connections until `shutdown` resolves, then drain: stop
/// accepting, answer readiness with 503, and give in-flight requests and
/// streams up to the grace period to finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let service = Dispatch {
        app: router(state.clone()),
        state: state.clone(),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.settings.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    // One permit per open connection: at the cap, new connections wait in
    // the kernel's backlog instead of taking memory and tasks here.
    let connections = Arc::new(Semaphore::new(state.settings.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = http.serve_connection(TokioIo::new(stream), service.clone());
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.draining.store(true, Ordering::Relaxed);
    let grace = state.settings.shutdown_grace;
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "shutting down: draining in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained; bye"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing the remaining connections"),
    }
    Ok(())
}

/// A gateway running on a background task (tests, the benchmark, the
/// quickstart).
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl Running {
    /// Bind `addr` (port 0 for any) and serve `config` on it.
    pub async fn start(config: Config, addr: &str) -> Result<Running, String> {
        let state = AppState::new(config, 1)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Ok(Running {
            addr,
            state,
            stop: Some(stop),
            task,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Begin a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shut down gracefully and wait until done.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANIC_ENVELOPE: &[u8] =
        br#"{"error":{"message":"Internal server error","type":"internal_error","param":null,"code":"500"}}"#;

    #[test]
    fn millis_has_three_decimals() {
        let ms = |micros: u64| millis(Duration::from_micros(micros));
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(7), "0.007");
        assert_eq!(ms(1_234), "1.234");
        assert_eq!(ms(12_030), "12.030");
        assert_eq!(ms(987_654_321), "987654.321");
        assert_eq!(ms(u64::MAX), "18446744073709551.615");
        assert_eq!(millis(Duration::MAX), "18446744073709551.615");
    }

    #[test]
    fn new_call_ids_are_uuids() {
        let id = call_id_for(&HeaderMap::new());
        let id = id.to_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        assert_eq!(id, id.to_lowercase());
        assert_ne!(
            call_id_for(&HeaderMap::new()),
            call_id_for(&HeaderMap::new())
        );
    }

    #[tokio::test]
    async fn a_panic_becomes_a_500_envelope() {
        use tower::ServiceExt;
        let app = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if std::hint::black_box(true) {
                        panic!("secret detail");
                    }
                }),
            )
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(middleware::from_fn(call_context));
        let response = app
            .oneshot(
                Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key(&CALL_ID_HEADER));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], PANIC_ENVELOPE);
    }

    #[tokio::test]
    async fn the_chat_route_outside_the_router_gets_the_same_treatment() {
        let call_id = HeaderValue::from_static("call-1");
        let boom = async {
            if std::hint::black_box(true) {
                panic!("secret detail");
            }
            StatusCode::OK.into_response()
        };
        let response = guarded(boom, call_id.clone(), Instant::now()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[&CALL_ID_HEADER], call_id);
        assert!(response.headers().contains_key(&OVERHEAD_HEADER));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], PANIC_ENVELOPE);

        let fine = async { StatusCode::OK.into_response() };
        let response = guarded(fine, call_id, Instant::now()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[&CALL_ID_HEADER], "call-1");
    }
}
