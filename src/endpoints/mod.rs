//! The routes a client calls, one module per family.
//!
//! For now only the pure translation layer of `/v1/messages` lives here; the
//! route itself is wired in when the tree is split into layers (issue 14),
//! and chat moves in then from `proxy`.

pub mod messages;
