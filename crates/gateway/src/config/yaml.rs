//! YAML as LiteLLM reads it. LiteLLM loads its config with PyYAML's
//! `safe_load`, which speaks YAML 1.1: `80_000` and `0x1F` are integers,
//! `yes`/`off` are booleans, `1.5` is a float but `1e5` is text, a duplicate
//! key keeps its last value, and `<<: *anchor` merges a mapping. A YAML 1.2
//! reader gets several of those wrong, so the events of a YAML parser
//! (`saphyr-parser`) are turned into a [`Value`] here with PyYAML's rules.
//!
//! Differences from PyYAML, all on the safe side: a duplicate key is reported
//! (PyYAML is silent), a document that expands to more than [`MAX_NODES`]
//! nodes through aliases is refused, and a timestamp stays text.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_yaml::{Mapping, Number, Value};

/// Nodes a document may expand to, aliases included: a few aliases of
/// aliases would otherwise build a value of billions of nodes.
pub const MAX_NODES: usize = 1_000_000;
/// Deepest nesting accepted: the values built here are dropped and walked
/// recursively, and no config needs more than a handful of levels.
pub const MAX_DEPTH: usize = 100;

/// A parsed document, and the keys that appeared twice in one mapping.
#[derive(Debug)]
pub struct Parsed {
    pub value: Value,
    /// `(path, line)` of each repeated key; its last value was kept.
    pub duplicates: Vec<(String, usize)>,
}

/// Parse one YAML document with PyYAML's `safe_load` rules. An empty
/// document is `Null`.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| e.to_string())?;
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(format!(
                        "expected a single document in the stream, but found another document at line {}",
                        span.start.line()
                    ));
                }
            }
            Event::Alias(id) => {
                let (value, size) =
                    b.anchors.get(&id).cloned().ok_or_else(|| {
                        format!("unknown or recursive alias at line {}", line(span))
                    })?;
                b.count(size)?;
                b.add(value, 0, span)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.count(1)?;
                let merge_key = style == ScalarStyle::Plain && tag.is_none() && text == "<<";
                if merge_key && b.expects_key() {
                    b.merge_key();
                } else {
                    let value = scalar(&text, style, tag.as_deref())
                        .map_err(|e| format!("{e} at line {}", line(span)))?;
                    b.add(value, anchor, span)?;
                }
            }
            Event::SequenceStart(anchor, tag) => {
                collection_tag(tag.as_deref(), "seq")
                    .map_err(|e| format!("{e} at line {}", line(span)))?;
                b.count(1)?;
                b.deeper(span)?;
                let path = b.child_path();
                b.stack.push(Frame {
                    anchor,
                    path,
                    start: b.nodes,
                    kind: Kind::Seq(vec![]),
                });
            }
            Event::MappingStart(anchor, tag) => {
                collection_tag(tag.as_deref(), "map")
                    .map_err(|e| format!("{e} at line {}", line(span)))?;
                b.count(1)?;
                b.deeper(span)?;
                let path = b.child_path();
                b.stack.push(Frame {
                    anchor,
                    path,
                    start: b.nodes,
                    kind: Kind::Map(MapFrame::default()),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = b.stack.pop().ok_or("unbalanced YAML events")?;
                let size = b.nodes - frame.start + 1;
                let value = match frame.kind {
                    Kind::Seq(items) => Value::Sequence(items),
                    Kind::Map(m) => m.finish(),
                };
                if frame.anchor != 0 {
                    // The anchor keeps a copy: count it too.
                    b.count(size)?;
                    b.anchors.insert(frame.anchor, (value.clone(), size));
                }
                b.add(value, 0, span)?;
            }
        }
    }
    Ok(Parsed {
        value: b.root.unwrap_or(Value::Null),
        duplicates: b.duplicates,
    })
}

fn line(span: Span) -> usize {
    span.start.line()
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    /// Each anchor's value and its size in nodes.
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    duplicates: Vec<(String, usize)>,
}

struct Frame {
    anchor: usize,
    /// The path of this collection, e.g. `model_list[0].litellm_params`.
    path: String,
    /// `nodes` when the collection started, for its size.
    start: usize,
    kind: Kind,
}

enum Kind {
    Seq(Vec<Value>),
    Map(MapFrame),
}

#[derive(Default)]
struct MapFrame {
    own: Mapping,
    /// Pairs brought in by `<<` keys, in the order PyYAML applies them (a
    /// later pair wins).
    merged: Vec<(Value, Value)>,
    key: Option<Key>,
}

enum Key {
    /// A key and the line it is on.
    Normal(Value, usize),
    Merge,
}

impl MapFrame {
    /// The mapping: merged pairs first, then the mapping's own keys, which
    /// win over merged ones (PyYAML's `flatten_mapping`).
    fn finish(self) -> Value {
        if self.merged.is_empty() {
            return Value::Mapping(self.own);
        }
        let mut out = Mapping::new();
        for (k, v) in self.merged {
            out.insert(k, v);
        }
        for (k, v) in self.own {
            out.insert(k, v);
        }
        Value::Mapping(out)
    }
}

impl Builder {
    fn deeper(&self, span: Span) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!(
                "nested deeper than {MAX_DEPTH} levels at line {}",
                line(span)
            ));
        }
        Ok(())
    }

    fn count(&mut self, n: usize) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(format!(
                "the document expands to more than {MAX_NODES} nodes (through aliases?)"
            ));
        }
        Ok(())
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame { kind: Kind::Map(m), .. }) if m.key.is_none())
    }

    fn merge_key(&mut self) {
        if let Some(Frame {
            kind: Kind::Map(m), ..
        }) = self.stack.last_mut()
        {
            m.key = Some(Key::Merge);
        }
    }

    /// The path of the value about to be added.
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(f) => match &f.kind {
                Kind::Seq(items) => format!("{}[{}]", f.path, items.len()),
                Kind::Map(m) => match &m.key {
                    Some(Key::Normal(k, _)) => join(&f.path, &key_text(k)),
                    Some(Key::Merge) => join(&f.path, "<<"),
                    None => f.path.clone(),
                },
            },
        }
    }

    /// Add a finished value to the collection being built (or make it the root).
    fn add(&mut self, value: Value, anchor: usize, span: Span) -> Result<(), String> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), 1));
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        match &mut frame.kind {
            Kind::Seq(items) => items.push(value),
            Kind::Map(m) => match m.key.take() {
                None => {
                    if matches!(value, Value::Sequence(_) | Value::Mapping(_)) {
                        return Err(format!(
                            "{}: found an unhashable key (a list or mapping) at line {}",
                            display_path(&frame.path),
                            line(span)
                        ));
                    }
                    m.key = Some(Key::Normal(value, line(span)));
                }
                Some(Key::Merge) => match value {
                    Value::Mapping(map) => m.merged.extend(map),
                    Value::Sequence(items) => {
                        let mut maps = Vec::with_capacity(items.len());
                        for item in items {
                            match item {
                                Value::Mapping(map) => maps.push(map),
                                _ => return Err(merge_error(&frame.path, span)),
                            }
                        }
                        // In `<<: [*a, *b]` the earlier mapping wins.
                        for map in maps.into_iter().rev() {
                            m.merged.extend(map);
                        }
                    }
                    _ => return Err(merge_error(&frame.path, span)),
                },
                Some(Key::Normal(key, key_line)) => {
                    if m.own.contains_key(&key) {
                        self.duplicates
                            .push((join(&frame.path, &key_text(&key)), key_line));
                    }
                    m.own.insert(key, value);
                }
            },
        }
        Ok(())
    }
}

fn merge_error(path: &str, span: Span) -> String {
    format!(
        "{}: expected a mapping or a list of mappings for merging (<<) at line {}",
        display_path(path),
        line(span)
    )
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(top level)" } else { path }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        _ => "?".to_owned(),
    }
}

/// `!!seq` / `!!map` (or no tag) on a collection; any other tag is what
/// PyYAML's safe loader refuses.
fn collection_tag(tag: Option<&Tag>, expected: &str) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) if t.is_yaml_core_schema() && t.suffix == expected => Ok(()),
        Some(t) if t.handle == "!" && t.suffix.is_empty() => Ok(()),
        Some(t) => Err(format!(
            "could not determine a constructor for the tag '{t}'"
        )),
    }
}

/// One scalar: quoted and block scalars are text; a plain one is resolved
/// as PyYAML does; an explicit core tag (`!!int "8"`) forces its type.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let Some(tag) = tag else {
        return if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Ok(Value::String(text.to_owned()))
        };
    };
    if tag.handle == "!" && tag.suffix.is_empty() {
        return Ok(Value::String(text.to_owned()));
    }
    if !tag.is_yaml_core_schema() {
        return Err(format!(
            "could not determine a constructor for the tag '{tag}'"
        ));
    }
    let bad = || format!("'{text}' is not a valid !!{}", tag.suffix);
    match tag.suffix.as_str() {
        "str" | "binary" | "timestamp" => Ok(Value::String(text.to_owned())),
        "null" => Ok(Value::Null),
        "bool" => boolean(&text.to_ascii_lowercase())
            .map(Value::Bool)
            .ok_or_else(bad),
        "int" => int(text).ok_or_else(bad),
        "float" => float(text).ok_or_else(bad),
        other => Err(format!(
            "could not determine a constructor for the tag 'tag:yaml.org,2002:{other}'"
        )),
    }
}

/// PyYAML's implicit resolvers for a plain scalar (YAML 1.1).
pub fn resolve_plain(s: &str) -> Result<Value, String> {
    if matches!(s, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    if let Some(b) = bool_word(s) {
        return Ok(Value::Bool(b));
    }
    if is_int(s) {
        return int(s).ok_or_else(|| format!("'{s}' looks like an integer but is not one"));
    }
    if is_float(s)
        && let Some(v) = float(s)
    {
        return Ok(v);
    }
    Ok(Value::String(s.to_owned()))
}

fn bool_word(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// `!!bool` accepts the same words in any case.
fn boolean(lower: &str) -> Option<bool> {
    match lower {
        "yes" | "true" | "on" => Some(true),
        "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

fn strip_sign(s: &str) -> &str {
    s.strip_prefix(['-', '+']).unwrap_or(s)
}

/// Length of the prefix of `s` whose bytes satisfy `f`.
fn run(s: &str, f: impl Fn(u8) -> bool) -> usize {
    s.bytes().take_while(|b| f(*b)).count()
}

/// `(:[0-5]?[0-9])+` from the start of `s`: the length matched, 0 if none.
fn sexagesimal_tail(s: &str) -> usize {
    let b = s.as_bytes();
    let mut at = 0;
    loop {
        if b.get(at) != Some(&b':') {
            return at;
        }
        let d1 = b.get(at + 1).copied();
        let d2 = b.get(at + 2).copied();
        match (d1, d2) {
            (Some(b'0'..=b'5'), Some(b'0'..=b'9')) => at += 3,
            (Some(b'0'..=b'9'), _) => at += 2,
            _ => return at,
        }
    }
}

/// PyYAML's int resolver:
/// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
fn is_int(s: &str) -> bool {
    let s = strip_sign(s);
    if let Some(rest) = s.strip_prefix("0b") {
        return !rest.is_empty() && run(rest, |b| matches!(b, b'0' | b'1' | b'_')) == rest.len();
    }
    if let Some(rest) = s.strip_prefix("0x") {
        return !rest.is_empty() && run(rest, |b| b.is_ascii_hexdigit() || b == b'_') == rest.len();
    }
    if s == "0" {
        return true;
    }
    if let Some(rest) = s.strip_prefix('0') {
        return !rest.is_empty() && run(rest, |b| matches!(b, b'0'..=b'7' | b'_')) == rest.len();
    }
    if !s.starts_with(|c: char| matches!(c, '1'..='9')) {
        return false;
    }
    let digits = run(s, |b| b.is_ascii_digit() || b == b'_');
    let rest = &s[digits..];
    rest.is_empty() || (sexagesimal_tail(rest) == rest.len())
}

/// PyYAML's float resolver (a dot is required; an exponent needs a sign).
fn is_float(s: &str) -> bool {
    let unsigned = strip_sign(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let exponent_ok = |rest: &str| -> bool {
        if rest.is_empty() {
            return true;
        }
        let Some(rest) = rest.strip_prefix(['e', 'E']) else {
            return false;
        };
        let Some(rest) = rest.strip_prefix(['-', '+']) else {
            return false;
        };
        !rest.is_empty() && run(rest, |b| b.is_ascii_digit()) == rest.len()
    };
    // `.5`, `.5e+3`: a leading dot, no sign.
    if let Some(rest) = s.strip_prefix('.') {
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return false;
        }
        let n = run(rest, |b| b.is_ascii_digit() || b == b'_');
        return exponent_ok(&rest[n..]);
    }
    let s = unsigned;
    if !s.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let n = run(s, |b| b.is_ascii_digit() || b == b'_');
    let mut rest = &s[n..];
    let sexagesimal = sexagesimal_tail(rest);
    if sexagesimal > 0 {
        rest = &rest[sexagesimal..];
        let Some(frac) = rest.strip_prefix('.') else {
            return false;
        };
        return run(frac, |b| b.is_ascii_digit() || b == b'_') == frac.len();
    }
    let Some(frac) = rest.strip_prefix('.') else {
        return false;
    };
    let n = run(frac, |b| b.is_ascii_digit() || b == b'_');
    exponent_ok(&frac[n..])
}

/// PyYAML's `construct_yaml_int`. Python's integers are unbounded: one
/// past 64 bits becomes the nearest float. `None` for digits that are not
/// digits (`0x_`), which PyYAML refuses too.
fn int(text: &str) -> Option<Value> {
    let v: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, v) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v.as_str()),
    };
    let magnitude: f64;
    let exact: Option<u128>;
    if v == "0" {
        (exact, magnitude) = (Some(0), 0.0);
    } else if let Some(d) = v.strip_prefix("0b") {
        (exact, magnitude) = radix(d, 2)?;
    } else if let Some(d) = v.strip_prefix("0x") {
        (exact, magnitude) = radix(d, 16)?;
    } else if v.starts_with('0') {
        (exact, magnitude) = radix(v, 8)?;
    } else if v.contains(':') {
        let mut total: f64 = 0.0;
        let mut whole: Option<u128> = Some(0);
        for part in v.split(':') {
            let (e, m) = radix(part, 10)?;
            total = total * 60.0 + m;
            whole = whole
                .and_then(|w| w.checked_mul(60))
                .and_then(|w| w.checked_add(e?));
        }
        (exact, magnitude) = (whole, total);
    } else {
        (exact, magnitude) = radix(v, 10)?;
    }
    let number = match exact {
        Some(e) if negative => i64::try_from(e)
            .ok()
            .map(|i| Number::from(-i))
            .or_else(|| (e == 1 << 63).then(|| Number::from(i64::MIN))),
        Some(e) => u64::try_from(e).ok().map(Number::from),
        None => None,
    };
    Some(Value::Number(number.unwrap_or_else(|| {
        Number::from(if negative { -magnitude } else { magnitude })
    })))
}

/// Digits in `base`: the exact value when it fits 128 bits, and a float.
fn radix(digits: &str, base: u32) -> Option<(Option<u128>, f64)> {
    if digits.is_empty() {
        return None;
    }
    let mut exact: Option<u128> = Some(0);
    let mut approx = 0.0;
    for c in digits.chars() {
        let d = c.to_digit(base)?;
        exact = exact
            .and_then(|e| e.checked_mul(u128::from(base)))
            .and_then(|e| e.checked_add(u128::from(d)));
        approx = approx * f64::from(base) + f64::from(d);
    }
    Some((exact, approx))
}

/// PyYAML's `construct_yaml_float`.
fn float(text: &str) -> Option<Value> {
    let v: String = text
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    let (sign, v) = match v.as_bytes().first() {
        Some(b'-') => (-1.0, &v[1..]),
        Some(b'+') => (1.0, &v[1..]),
        _ => (1.0, v.as_str()),
    };
    let magnitude = if v == ".inf" {
        f64::INFINITY
    } else if v == ".nan" {
        f64::NAN
    } else if v.contains(':') {
        let mut total = 0.0;
        for part in v.split(':') {
            total = total * 60.0 + part.parse::<f64>().ok()?;
        }
        total
    } else {
        v.parse::<f64>().ok()?
    };
    Some(Value::Number(Number::from(sign * magnitude)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{e}")).value
    }

    fn get<'v>(v: &'v Value, key: &str) -> &'v Value {
        v.get(key).unwrap_or_else(|| panic!("no {key} in {v:?}"))
    }

    #[test]
    fn yaml_1_1_scalars_as_pyyaml_reads_them() {
        let v = value(
            "a: 80_000\nb: 0x1F\nc: 010\nd: 1:30\ne: 1_000.5\nf: 1e5\ng: 1.0e+3\nh: yes\ni: off\nj: ~\nk: '80_000'\nl: 08\nm: .5\nn: -.inf\no: 0b101\np: +12\nq: 1.\nr: 2001-12-14\ns:\nt: \"yes\"\nu: 9223372036854775808\n",
        );
        assert_eq!(get(&v, "a").as_u64(), Some(80_000));
        assert_eq!(get(&v, "b").as_u64(), Some(31));
        assert_eq!(get(&v, "c").as_u64(), Some(8));
        assert_eq!(get(&v, "d").as_u64(), Some(90));
        assert_eq!(get(&v, "e").as_f64(), Some(1000.5));
        assert_eq!(get(&v, "f").as_str(), Some("1e5"));
        assert_eq!(get(&v, "g").as_f64(), Some(1000.0));
        assert_eq!(get(&v, "h").as_bool(), Some(true));
        assert_eq!(get(&v, "i").as_bool(), Some(false));
        assert!(get(&v, "j").is_null());
        assert_eq!(get(&v, "k").as_str(), Some("80_000"));
        assert_eq!(get(&v, "l").as_str(), Some("08"));
        assert_eq!(get(&v, "m").as_f64(), Some(0.5));
        assert_eq!(get(&v, "n").as_f64(), Some(f64::NEG_INFINITY));
        assert_eq!(get(&v, "o").as_u64(), Some(5));
        assert_eq!(get(&v, "p").as_u64(), Some(12));
        assert_eq!(get(&v, "q").as_f64(), Some(1.0));
        assert_eq!(get(&v, "r").as_str(), Some("2001-12-14"));
        assert!(get(&v, "s").is_null());
        assert_eq!(get(&v, "t").as_str(), Some("yes"));
        assert_eq!(get(&v, "u").as_u64(), Some(9223372036854775808));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_and_are_reported() {
        let p = parse("a:\n  b: 1\n  c: 2\n  b: 3\nx: [1]\nx: [2]\n").unwrap();
        assert_eq!(get(get(&p.value, "a"), "b").as_u64(), Some(3));
        assert_eq!(get(&p.value, "x")[0].as_u64(), Some(2));
        assert_eq!(
            p.duplicates,
            vec![("a.b".to_owned(), 4), ("x".to_owned(), 6)]
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = value(
            "base: &b {api_key: k, rpm: 1}\nother: &o {rpm: 2, tpm: 3}\nm:\n  - litellm_params:\n      <<: *b\n      model: openai/x\n  - litellm_params:\n      <<: [*b, *o]\n      api_key: own\nlist: [*b]\n",
        );
        let m = get(&v, "m");
        let first = get(&m[0], "litellm_params");
        assert_eq!(get(first, "api_key").as_str(), Some("k"));
        assert_eq!(get(first, "model").as_str(), Some("openai/x"));
        assert!(first.get("<<").is_none());
        let second = get(&m[1], "litellm_params");
        // The earlier mapping of a merge list wins; own keys win over both.
        assert_eq!(get(second, "rpm").as_u64(), Some(1));
        assert_eq!(get(second, "tpm").as_u64(), Some(3));
        assert_eq!(get(second, "api_key").as_str(), Some("own"));
        assert_eq!(get(&get(&v, "list")[0], "rpm").as_u64(), Some(1));
        // A quoted "<<" is an ordinary key.
        assert_eq!(get(&value("'<<': 1\n"), "<<").as_u64(), Some(1));
    }

    #[test]
    fn what_pyyaml_refuses_is_refused() {
        for bad in [
            "a: !ENV x\n",
            "a: !!python/object:os.system x\n",
            "a: 1\n---\nb: 2\n",
            "? [1, 2]\n: x\n",
            "a: *nope\n",
            "a: &x [*x]\n",
            "a:\n  <<: 5\n",
            "a: !!int abc\n",
            "a: [1,\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(value("").is_null());
        assert_eq!(
            value("a: !!str 80\n").get("a").and_then(Value::as_str),
            Some("80")
        );
        assert_eq!(
            value("a: !!float '1'\n").get("a").and_then(Value::as_f64),
            Some(1.0)
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // The parser has its own limit; ours is lower.
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).is_err());
        let deep = format!("a: {}{}\n", "[".repeat(150), "]".repeat(150));
        let e = parse(&deep).unwrap_err();
        assert!(e.contains("nested deeper than 100"), "{e}");
        let fine = format!("a: {}{}\n", "[".repeat(50), "]".repeat(50));
        assert!(parse(&fine).is_ok());
    }
}
