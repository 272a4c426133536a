//! Who is calling: the master key, a virtual key from the config, or nobody
//! when no key is configured.
//!
//! Keys are accepted in the four headers LiteLLM reads. Every configured key
//! is compared in constant time, and the loop never stops early, so timing
//! tells nothing about which key (or how much of one) matched.

use std::sync::Arc;

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::{Config, VirtualKey};
use crate::error::Error;
use crate::limits::KeyLimiter;

/// The authenticated caller, carried with the request.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No key is configured: every request is accepted.
    Open,
    Master,
    Virtual(Arc<KeyEntry>),
}

/// A virtual key and its live limit counters.
#[derive(Debug)]
pub struct KeyEntry {
    pub cfg: Arc<VirtualKey>,
    pub limiter: Arc<KeyLimiter>,
}

impl Caller {
    /// The alias forwarded to guardrail vendors; never the key itself.
    pub fn alias(&self) -> Option<&str> {
        match self {
            Caller::Virtual(k) => k.cfg.alias.as_deref(),
            _ => None,
        }
    }

    /// Whether the caller may use the model `model` (the name asked for,
    /// also when a wildcard group serves it): a virtual key's `models` list
    /// names or `*` patterns (`config::models::key_allows`).
    pub fn may_use(&self, model: &str) -> bool {
        match self {
            Caller::Virtual(k) => {
                k.cfg.models.is_empty() || crate::config::models::key_allows(&k.cfg.models, model)
            }
            _ => true,
        }
    }

    pub fn virtual_key(&self) -> Option<&VirtualKey> {
        match self {
            Caller::Virtual(k) => Some(&k.cfg),
            _ => None,
        }
    }

    pub fn key_entry(&self) -> Option<&Arc<KeyEntry>> {
        match self {
            Caller::Virtual(k) => Some(k),
            _ => None,
        }
    }
}

/// The configured keys.
#[derive(Debug)]
pub struct Keys {
    master: Option<Vec<u8>>,
    virtual_keys: Vec<Arc<KeyEntry>>,
}

const NO_KEY: &str = "Authentication Error, No api key passed in.";
const MALFORMED: &str =
    "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.";
const INVALID: &str = "Authentication Error, Invalid proxy server token passed.";
const BLOCKED: &str = "Authentication Error, this key is blocked.";

impl Keys {
    pub fn new(config: &Config) -> Self {
        Keys {
            master: config
                .master_key
                .as_ref()
                .map(|k| k.expose().as_bytes().to_vec()),
            virtual_keys: config
                .virtual_keys
                .iter()
                .map(|k| {
                    Arc::new(KeyEntry {
                        cfg: k.clone(),
                        limiter: Arc::default(),
                    })
                })
                .collect(),
        }
    }

    pub fn required(&self) -> bool {
        self.master.is_some() || !self.virtual_keys.is_empty()
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Error> {
        if !self.required() {
            return Ok(Caller::Open);
        }
        let presented = presented_key(headers)?;
        let presented = presented.as_bytes();
        let mut master = subtle::Choice::from(0);
        if let Some(m) = &self.master {
            master = m.as_slice().ct_eq(presented);
        }
        let mut found: Option<&Arc<KeyEntry>> = None;
        for k in &self.virtual_keys {
            let eq = k.cfg.key.expose().as_bytes().ct_eq(presented);
            if bool::from(eq) {
                found = Some(k);
            }
        }
        if bool::from(master) {
            return Ok(Caller::Master);
        }
        match found {
            Some(k) if k.cfg.blocked => Err(Error::Unauthorized(BLOCKED)),
            Some(k) => Ok(Caller::Virtual(k.clone())),
            None => Err(Error::Unauthorized(INVALID)),
        }
    }
}

/// The key from `x-litellm-api-key`, `Authorization: Bearer`, `API-Key` or
/// `x-api-key`, in that order.
fn presented_key(headers: &HeaderMap) -> Result<&str, Error> {
    let text = |name: &str| -> Result<Option<&str>, Error> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.trim()))
                .map_err(|_| Error::Unauthorized(MALFORMED)),
        }
    };
    if let Some(k) = text("x-litellm-api-key")? {
        return non_empty(strip_bearer(k).unwrap_or(k));
    }
    if let Some(auth) = text("authorization")? {
        return match strip_bearer(auth) {
            Some(k) => non_empty(k),
            None => Err(Error::Unauthorized(MALFORMED)),
        };
    }
    for name in ["api-key", "x-api-key"] {
        if let Some(k) = text(name)? {
            return non_empty(k);
        }
    }
    Err(Error::Unauthorized(NO_KEY))
}

fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

fn non_empty(key: &str) -> Result<&str, Error> {
    if key.is_empty() {
        Err(Error::Unauthorized(NO_KEY))
    } else {
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn header_forms() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            presented_key(&h),
            Err(Error::Unauthorized(NO_KEY))
        ));
        h.insert("authorization", HeaderValue::from_static("Bearer sk-1"));
        assert_eq!(presented_key(&h).unwrap(), "sk-1");
        h.insert("authorization", HeaderValue::from_static("sk-1"));
        assert!(matches!(
            presented_key(&h),
            Err(Error::Unauthorized(MALFORMED))
        ));
        h.insert("x-litellm-api-key", HeaderValue::from_static("sk-2"));
        assert_eq!(presented_key(&h).unwrap(), "sk-2");
        let mut h = HeaderMap::new();
        h.insert("api-key", HeaderValue::from_static("sk-3"));
        assert_eq!(presented_key(&h).unwrap(), "sk-3");
    }
}
