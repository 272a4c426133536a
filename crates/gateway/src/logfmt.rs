//! The field formatter of the human-readable log format.
//!
//! tracing-subscriber's fmt layer formats a span's fields when the span is
//! created and again at each `record`, whether or not anything is ever
//! logged inside it, so with the per-request spans this runs on every request
//! at the default level. [`PlainFields`] writes the same text as the default
//! formatter without colours (`name=value`, strings quoted and escaped as
//! Rust's `Debug` does, the message bare), without routing each field
//! through the styling wrappers.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

pub struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    /// The separator and `name=`; false for a field not to write.
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name.starts_with("log.") || self.result.is_err() {
            return false;
        }
        if !std::mem::replace(&mut self.first, false) {
            self.result = self.writer.write_char(' ');
        }
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = self
                .result
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='));
        }
        self.result.is_ok()
    }

    fn plain(&mut self, field: &Field, value: impl fmt::Display) {
        if self.start(field) {
            self.result = write!(self.writer, "{value}");
        }
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.plain(field, value);
        } else if self.start(field) {
            self.result = write!(self.writer, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.start(field) {
            self.result = write!(self.writer, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What the gateway's spans and events look like, logged through `sub`.
    fn sample(sub: impl tracing::Subscriber + Send + Sync) {
        tracing::subscriber::with_default(sub, || {
            let request = tracing::info_span!(
                "request",
                call_id = "0b6f-\"quoted\"\n",
                model = tracing::field::Empty,
                stream = tracing::field::Empty,
                status = tracing::field::Empty,
            );
            request.record("model", "gpt-4o");
            request.record("stream", true);
            let _r = request.enter();
            let upstream = tracing::info_span!("upstream", deployment = %"d1", attempt = 2u32);
            let _u = upstream.enter();
            request.record("status", 200u16);
            tracing::warn!(model = %"m", took_ms = 1.5, delta = -3i64, error = ?Some("x"), "upstream body failed: {}", 42);
            tracing::warn!("bare");
        });
    }

    #[test]
    fn the_same_text_as_the_default_formatter_without_colours() {
        let ours = Buffer::default();
        let theirs = Buffer::default();
        let builder = || {
            tracing_subscriber::fmt()
                .with_ansi(false)
                .without_time()
                .with_max_level(tracing::Level::INFO)
        };
        let w = ours.clone();
        sample(
            builder()
                .fmt_fields(PlainFields)
                .with_writer(move || w.clone())
                .finish(),
        );
        let w = theirs.clone();
        sample(builder().with_writer(move || w.clone()).finish());
        let ours = String::from_utf8(ours.0.lock().unwrap().clone()).unwrap();
        let theirs = String::from_utf8(theirs.0.lock().unwrap().clone()).unwrap();
        assert!(ours.contains("attempt=2"), "{ours}");
        assert!(ours.contains("status=200"), "{ours}");
        assert_eq!(ours, theirs);
    }
}
