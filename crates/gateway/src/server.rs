//! The HTTP server: one entry point, one layer stack, the accept loop and
//! graceful shutdown.
//!
//! Every request goes through `Dispatch`, which routes it ([`route`]) to
//! its endpoint and gives every endpoint the same layer, outermost first:
//! 1. the call context: the call id (the client's `x-litellm-call-id` or a
//!    new UUIDv4) and the clock, and on the response `x-litellm-call-id` and
//!    `x-litellm-overhead-duration-ms`, errors included;
//! 2. activity for the busy-poll window ([`crate::runtime`]);
//! 3. a panic in an endpoint becomes a 500 envelope with no detail, never a
//!    dropped connection;
//! 4. the endpoint; an unknown path is a 404 envelope, a known one with
//!    another method a 405.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::context::CallContext;
use crate::endpoints::pipeline::{self, Api};
use crate::endpoints::{health, messages, models};
use crate::error::Error;
use crate::runtime::{self, Incoming};
use crate::state::AppState;

/// The routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`, `POST /chat/completions`.
    Chat,
    /// `POST /v1/messages`, `POST /messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `GET /v1/models`, `GET /models`.
    Models,
    /// `GET /health/liveliness`, `GET /health/liveness`.
    Liveness,
    /// `GET /health/readiness`.
    Readiness,
    /// `GET /metrics`.
    Metrics,
}

/// The route of a request: 404 for an unknown path, 405 for another method
/// (a `GET` route also answers `HEAD`).
pub fn route(method: &Method, path: &str) -> Result<Route, Error> {
    let (route, allowed) = match path {
        "/v1/chat/completions" | "/chat/completions" => (Route::Chat, Method::POST),
        "/v1/messages" | "/messages" => (Route::Messages, Method::POST),
        "/v1/messages/count_tokens" | "/messages/count_tokens" => {
            (Route::CountTokens, Method::POST)
        }
        "/v1/models" | "/models" => (Route::Models, Method::GET),
        "/health/liveliness" | "/health/liveness" => (Route::Liveness, Method::GET),
        "/health/readiness" => (Route::Readiness, Method::GET),
        "/metrics" => (Route::Metrics, Method::GET),
        _ => return Err(Error::NotFound(path.to_owned())),
    };
    if *method == allowed || (allowed == Method::GET && *method == Method::HEAD) {
        Ok(route)
    } else {
        Err(Error::MethodNotAllowed(method.to_string(), path.to_owned()))
    }
}

/// The service of every connection.
#[derive(Clone)]
struct Dispatch {
    state: Arc<AppState>,
}

type DispatchFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = DispatchFuture;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> DispatchFuture {
        let state = self.state.clone();
        Box::pin(async move { Ok(handle(&state, req).await) })
    }
}

/// One request through the layer stack (see the module doc).
async fn handle(state: &AppState, req: hyper::Request<hyper::body::Incoming>) -> Response {
    let (parts, body) = req.into_parts();
    let ctx = CallContext::new(&parts.headers);
    let answer = async {
        match route(&parts.method, parts.uri.path()) {
            Ok(Route::Chat) => {
                pipeline::respond(state, &ctx, &parts.headers, Body::new(body), Api::Chat).await
            }
            Ok(Route::Messages) => {
                let body = Body::new(body);
                pipeline::respond(state, &ctx, &parts.headers, body, Api::Messages).await
            }
            Ok(Route::CountTokens) => {
                messages::count_tokens(state, &ctx, &parts.headers, Body::new(body)).await
            }
            Ok(Route::Models) => models::list(state, &parts.headers),
            Ok(Route::Liveness) => health::liveness(),
            Ok(Route::Readiness) => health::readiness(state),
            Ok(Route::Metrics) => health::metrics(state),
            Err(e) => e.into_response(),
        }
    };
    guarded(answer, &ctx).await
}

/// The layer every endpoint gets: activity for the busy-poll window, a 500
/// envelope if it panics, and the context's stamp.
async fn guarded(answer: impl Future<Output = Response>, ctx: &CallContext) -> Response {
    crate::runtime::activity();
    let answer = AssertUnwindSafe(answer).catch_unwind().await;
    crate::runtime::activity();
    let mut response = answer.unwrap_or_else(panic_response);
    ctx.stamp(&mut response);
    response
}

/// A panic in an endpoint: a 500 envelope with no detail; the connection
/// lives.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Error::Internal("handler panicked".into()).into_response()
}

/// Serve the connections of `incoming` on this event loop until it ends
/// (the acceptor stopped: shutdown), then drain: readiness answers 503, and
/// in-flight requests and streams get up to the grace period to finish.
pub async fn serve(mut incoming: Incoming, state: Arc<AppState>) -> io::Result<()> {
    let service = Dispatch {
        state: state.clone(),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.settings.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    while let Some((stream, permit)) = incoming.next().await {
        let conn = http.serve_connection(TokioIo::new(stream), service.clone());
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
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
        let stopped = async {
            let _ = stopped.await;
        };
        let (acceptor, incoming) =
            runtime::spread(listener, state.settings.max_connections, 1, stopped);
        tokio::spawn(acceptor);
        let Some(incoming) = incoming.into_iter().next() else {
            return Err("no event loop to serve on".into());
        };
        let task = tokio::spawn(serve(incoming, state.clone()));
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
    use crate::context::{CALL_ID_HEADER, OVERHEAD_HEADER};
    use axum::http::{HeaderMap, HeaderValue, StatusCode};

    const PANIC_ENVELOPE: &[u8] =
        br#"{"error":{"message":"Internal server error","type":"internal_error","param":null,"code":"500"}}"#;

    #[tokio::test]
    async fn a_panic_becomes_a_500_envelope() {
        let mut headers = HeaderMap::new();
        headers.insert(CALL_ID_HEADER, HeaderValue::from_static("call-1"));
        let ctx = CallContext::new(&headers);
        let boom = async {
            if std::hint::black_box(true) {
                panic!("secret detail");
            }
            StatusCode::OK.into_response()
        };
        let response = guarded(boom, &ctx).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[&CALL_ID_HEADER], "call-1");
        assert!(response.headers().contains_key(&OVERHEAD_HEADER));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], PANIC_ENVELOPE);

        let fine = async { StatusCode::OK.into_response() };
        let response = guarded(fine, &ctx).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[&CALL_ID_HEADER], "call-1");
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(&Method::POST, "/v1/chat/completions").unwrap(),
            Route::Chat
        );
        assert_eq!(
            route(&Method::HEAD, "/health/liveliness").unwrap(),
            Route::Liveness
        );
        assert!(matches!(
            route(&Method::GET, "/v1/chat/completions"),
            Err(Error::MethodNotAllowed(..))
        ));
        assert!(matches!(
            route(&Method::GET, "/nope"),
            Err(Error::NotFound(_))
        ));
    }
}
