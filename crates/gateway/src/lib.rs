//! gateway: an OpenAI- and Anthropic-compatible LLM gateway that runs security guardrails
//! (Aim Security, Cato Networks) before, during and after the model call,
//! driven by a LiteLLM `config.yaml`. The contracts the code cites are in
//! the repository's `docs/spec/` (`gateway.md`, `aim.md`, `anthropic.md`).
//!
//! # Layers
//!
//! Each module imports only modules of its own layer or below
//! (`scripts/check-layers.py` fails the tests on an import cycle):
//!
//! ```text
//!  cli                      flags, logging, config load; starts the runtime
//!  ├─ runtime               multi-thread or per-core event loops, signals, busy polling
//!  └─ server                one entry point: route → the layer every endpoint gets
//!      └─ endpoints         one module per route family (chat, messages, models,
//!          │                health); chat and messages compose the phases of
//!          │                endpoints::pipeline
//!          └─ state         AppState: everything a request needs, shared
//!              ├─ guardrails   selection, the pre/during/post pipeline, what a
//!              │               guardrail reads (inspect), Aim, Cato, the stream relay
//!              └─ router       groups, strategies, retries, fallbacks, cooldowns
//!                  └─ providers   one module per upstream API behind one trait
//!                                 (request, answer, stream, errors), and send()
//!  auth, limits               keys; per-key and global limits (with their windows)
//!  outbound                   hyper-util's client: pools, proxies, TLS, the websocket
//!  leaves: config, wire, body, sse, error, context, metrics, logfmt
//!          (wire: the OpenAI chat format decoded once; body: bounded reads and
//!          the memory budget; context: the call id and the clock)
//! ```
//!
//! # The request path (`POST /v1/chat/completions`, `POST /v1/messages`)
//!
//! [`server`] routes the request and stamps every answer with the call id
//! and the overhead; [`endpoints::chat`] runs the phases of
//! [`endpoints::pipeline`] (`/v1/messages` runs the same phases on the chat
//! translation of its body, see [`endpoints::messages`]):
//!
//! ```text
//! admit (auth, global and key permits)
//!  → read (bounded body, one decode of every byte: wire::ChatRequest)
//!  → resolve (the model group; the key must be allowed it)
//!  → select guardrails → what they read (guardrails::Conversation) → pre_call
//!  → call: router.send (retries, fallbacks the key may use, providers::send)
//!          ∥ during_call ∥ the post_call guardrails' websockets (checked streams)
//!  → answer (post_call checks of every choice) | relay (the stream, below)
//!  → respond (x-litellm-* headers, metrics)
//! ```
//!
//! # The stream stages
//!
//! An upstream stream flows through stages, each bounded in time and memory:
//!
//! ```text
//! provider's map_stream (the OpenAI chunk format; Anthropic's events
//!                        translated)
//!  → meter (idle timeout, usage read or stripped, time to first token; it
//!           holds the request's permits until the stream ends)
//!  → nothing inspects it: passthrough (bytes untouched, an error becomes one
//!    SSE frame)
//!    | a post_call guardrail checks it: sse::Parser (events bounded) → one
//!      relay stage per guardrail (guardrails::stream: chunks to Aim's
//!      websocket, only verified ones on) → frames
//!  → on /v1/messages: Messages events (or, from an Anthropic deployment
//!    with no post_call guardrail, its own events relayed and metered)
//!  → coalesce (what arrived together goes out in one write)
//! ```

pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod context;
pub mod endpoints;
pub mod error;
pub mod guardrails;
pub mod limits;
pub mod logfmt;
pub mod metrics;
pub mod outbound;
pub mod providers;
pub mod router;
pub mod runtime;
pub mod server;
pub mod sse;
pub mod state;
pub mod wire;

pub use outbound::install_crypto;

/// The gateway's version, sent to Aim as `x-aim-litellm-version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
