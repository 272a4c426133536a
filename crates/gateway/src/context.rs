//! What one request carries from the moment it arrives: its call id (the
//! client's `x-litellm-call-id` or a new UUIDv4) and its start time, and the
//! headers every response gets from them.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

pub const CALL_ID_HEADER: HeaderName = HeaderName::from_static("x-litellm-call-id");
pub const OVERHEAD_HEADER: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");

/// Per-request facts set as the request arrives.
#[derive(Clone, Debug)]
pub struct CallContext {
    pub call_id: HeaderValue,
    pub started: Instant,
}

impl CallContext {
    /// The context of a request with these headers, starting now.
    pub fn new(headers: &HeaderMap) -> Self {
        CallContext {
            call_id: call_id_for(headers),
            started: Instant::now(),
        }
    }

    /// The headers every response carries: the call id, and the overhead
    /// unless the handler measured it more precisely.
    pub fn stamp(&self, response: &mut Response) {
        let h = response.headers_mut();
        h.insert(CALL_ID_HEADER, self.call_id.clone());
        if !h.contains_key(&OVERHEAD_HEADER) {
            h.insert(OVERHEAD_HEADER, millis(self.started.elapsed()));
        }
    }
}

/// A random (version 4) UUID for a call id. Drawn from a per-thread
/// generator rather than the kernel's: a call id must be unique, not secret,
/// and `getrandom` was the one syscall per request that was not I/O.
pub fn new_call_id() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

/// The client's `x-litellm-call-id` if it is usable, else a new UUIDv4.
pub fn call_id_for(headers: &HeaderMap) -> HeaderValue {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
