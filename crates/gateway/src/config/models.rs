//! Model names as LiteLLM reads them: the provider and kind of model it
//! infers for a bare name (`gpt-4o`, `dall-e-3`), wildcard patterns
//! (`model_name: "openai/*"`) and how one matches a requested name, and how
//! a virtual key's `models` match a name.
//!
//! Wildcards follow LiteLLM's router (`PatternMatchRouter`): a pattern's `*`
//! matches any run of characters (greedily, never a newline), the match is
//! anchored at the start of the name only, and the most specific pattern
//! (the longest once written as LiteLLM's regex) is tried first. When no
//! pattern matches a bare name, `<inferred provider>/<name>` is tried, so
//! `openai/*` also serves `gpt-4o`.

use std::collections::HashSet;

/// Longest model name matched against wildcard patterns: a requested name
/// is client input, and matching costs time in its length.
pub const MAX_WILDCARD_NAME: usize = 512;

/// What a deployment's model does, by LiteLLM's `model_info.mode`. The
/// gateway serves chat completions only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Chat,
    /// Another mode: `image_generation`, `embedding`, `audio_speech`, ...
    Other(String),
}

/// LiteLLM's modes other than chat, and how they read in a sentence.
const MODES: &[(&str, &str)] = &[
    ("completion", "a text completion model"),
    ("embedding", "an embedding model"),
    ("image_generation", "an image generation model"),
    ("image_edit", "an image editing model"),
    ("audio_transcription", "an audio transcription model"),
    ("audio_speech", "a text-to-speech model"),
    ("moderation", "a moderation model"),
    ("moderations", "a moderation model"),
    ("rerank", "a rerank model"),
    ("responses", "a Responses API model"),
    ("realtime", "a realtime audio model"),
    ("video_generation", "a video generation model"),
    ("ocr", "an OCR model"),
    ("search", "a search model"),
    ("batch", "a batch model"),
    ("vector_store", "a vector store"),
    ("decisions", "a decisions model"),
    ("evaluation", "an evaluation model"),
];

impl ModelKind {
    /// The kind for a `model_info.mode`; `None` for a mode LiteLLM does not have.
    pub fn from_mode(mode: &str) -> Option<ModelKind> {
        if mode == "chat" {
            return Some(ModelKind::Chat);
        }
        MODES
            .iter()
            .any(|(m, _)| *m == mode)
            .then(|| ModelKind::Other(mode.to_owned()))
    }

    pub fn is_chat(&self) -> bool {
        *self == ModelKind::Chat
    }

    /// "an image generation model".
    pub fn describe(&self) -> String {
        match self {
            ModelKind::Chat => "a chat model".to_owned(),
            ModelKind::Other(mode) => MODES
                .iter()
                .find(|(m, _)| m == mode)
                .map_or_else(|| format!("a {mode} model"), |(_, d)| (*d).to_owned()),
        }
    }

    pub fn mode(&self) -> &str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Other(m) => m,
        }
    }
}

/// The provider LiteLLM infers for a bare model name (one without a
/// `provider/` prefix), as its `get_llm_provider` does for the names in its
/// model list: OpenAI's families, and Anthropic's `claude-*` (the provider
/// arrives later: until then such a deployment is refused as unsupported,
/// and a wildcard never resolves to it).
pub fn infer_provider(name: &str) -> Option<&'static str> {
    if name == "*" {
        // LiteLLM reads a bare `*` as OpenAI's.
        return Some("openai");
    }
    if name.contains('/') {
        return None;
    }
    const OPENAI: &[&str] = &[
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "ft:gpt-",
        "ft:o4",
        "dall-e-",
        "text-embedding-",
        "whisper-",
        "tts-",
        "omni-moderation",
        "text-moderation",
        "sora-",
        "davinci-002",
        "babbage-002",
    ];
    if OPENAI.iter().any(|p| name.starts_with(p)) {
        return Some("openai");
    }
    if name.starts_with("claude-") {
        return Some("anthropic");
    }
    None
}

/// The kind of one of OpenAI's models, from its name (`dall-e-3` draws,
/// `whisper-1` transcribes). Used for OpenAI and Azure OpenAI deployments
/// without a `model_info.mode`.
pub fn openai_kind(name: &str) -> ModelKind {
    let other = |m: &str| ModelKind::Other(m.to_owned());
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if starts(&["dall-e", "gpt-image", "chatgpt-image"]) {
        other("image_generation")
    } else if starts(&["text-embedding"]) {
        other("embedding")
    } else if starts(&["whisper"]) || name.contains("-transcribe") {
        other("audio_transcription")
    } else if starts(&["tts-"]) || name.contains("-tts") {
        other("audio_speech")
    } else if starts(&["omni-moderation", "text-moderation"]) {
        other("moderation")
    } else if starts(&["sora-"]) {
        other("video_generation")
    } else if starts(&["gpt-realtime"]) || name.contains("-realtime") {
        other("realtime")
    } else if starts(&["davinci-002", "babbage-002", "gpt-3.5-turbo-instruct"]) {
        other("completion")
    } else {
        ModelKind::Chat
    }
}

/// A `model_name` with `*`s in it.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    /// The literal text around the `*`s (one more than there are `*`s).
    parts: Vec<String>,
    /// LiteLLM's order: the length of the pattern written as a regex, then
    /// how many regex operators that has; larger first.
    specificity: (usize, usize),
}

/// What a pattern matched: the text of each `*`, and the whole name it was
/// matched against (`openai/gpt-4o` when `gpt-4o` matched as `openai/*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captures {
    pub groups: Vec<String>,
    pub input: String,
}

impl Pattern {
    /// `None` when `text` has no `*`.
    pub fn new(text: &str) -> Option<Pattern> {
        if !text.contains('*') {
            return None;
        }
        let parts: Vec<String> = text.split('*').map(str::to_owned).collect();
        Some(Pattern {
            text: text.to_owned(),
            parts,
            specificity: regex_specificity(text),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of each `*` when `name` matches (LiteLLM's `re.match` of
    /// the pattern with each `*` as a greedy `(.*)`).
    pub fn matches(&self, name: &str) -> Option<Vec<String>> {
        let rest = name.strip_prefix(self.parts[0].as_str())?;
        let start = name.len() - rest.len();
        let mut groups = Vec::with_capacity(self.parts.len() - 1);
        let mut failed = HashSet::new();
        self.match_from(1, name, start, &mut groups, &mut failed)
            .then_some(groups)
    }

    /// Match `*` number `part - 1` and everything after it from `pos`,
    /// preferring the longest text for each `*` in turn, as a backtracking
    /// regex does. `failed` remembers states known not to match, which
    /// bounds the work by parts × length².
    fn match_from(
        &self,
        part: usize,
        name: &str,
        pos: usize,
        groups: &mut Vec<String>,
        failed: &mut HashSet<(usize, usize)>,
    ) -> bool {
        if part == self.parts.len() {
            return true;
        }
        if failed.contains(&(part, pos)) {
            return false;
        }
        let literal = self.parts[part].as_str();
        // `.` matches anything but a newline.
        let end = name[pos..].find('\n').map_or(name.len(), |i| pos + i);
        for j in (pos..=end).rev().filter(|j| name.is_char_boundary(*j)) {
            if !name[j..].starts_with(literal) {
                continue;
            }
            groups.push(name[pos..j].to_owned());
            if self.match_from(part + 1, name, j + literal.len(), groups, failed) {
                return true;
            }
            groups.pop();
        }
        failed.insert((part, pos));
        false
    }
}

/// LiteLLM's `calculate_pattern_specificity` of `re.escape(pattern)` with
/// each `\*` replaced by `(.*)`.
fn regex_specificity(pattern: &str) -> (usize, usize) {
    const ESCAPED: &str = "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c";
    const OPERATORS: &str = "*+?\\^$|()";
    let mut regex = String::with_capacity(pattern.len() * 2);
    for c in pattern.chars() {
        if c == '*' {
            regex.push_str("(.*)");
        } else {
            if ESCAPED.contains(c) {
                regex.push('\\');
            }
            regex.push(c);
        }
    }
    let complexity = regex.chars().filter(|c| OPERATORS.contains(*c)).count();
    (regex.chars().count(), complexity)
}

/// Sort patterns as LiteLLM tries them: most specific first, and in file
/// order among equals.
pub fn sort_by_specificity<T>(patterns: &mut [(Pattern, T)]) {
    patterns.sort_by_key(|p| std::cmp::Reverse(p.0.specificity));
}

/// The first of `patterns` (already sorted) that serves `name`: `name`
/// itself, else `<inferred provider>/<name>` for a bare name.
pub fn route<'p, T>(patterns: &'p [(Pattern, T)], name: &str) -> Option<(&'p T, Captures)> {
    if patterns.is_empty() || name.len() > MAX_WILDCARD_NAME {
        return None;
    }
    let first = |input: &str| {
        patterns.iter().find_map(|(p, t)| {
            p.matches(input).map(|groups| {
                (
                    t,
                    Captures {
                        groups,
                        input: input.to_owned(),
                    },
                )
            })
        })
    };
    first(name).or_else(|| {
        let provider = infer_provider(name).filter(|_| name != "*")?;
        first(&format!("{provider}/{name}"))
    })
}

/// The upstream model name for a wildcard match: each `*` of `template`
/// (the deployment's model, after its `provider/`) replaced by the text its
/// pattern's `*` matched, in order. When the pattern has more `*`s than the
/// template, the whole matched name is sent, less the provider's prefix
/// (LiteLLM's `set_deployment_model_name`).
pub fn upstream_name(template: &str, provider: &str, caps: &Captures) -> String {
    let stars = template.matches('*').count();
    if stars == 0 {
        return template.to_owned();
    }
    if caps.groups.len() > stars {
        let prefix = format!("{provider}/");
        return caps
            .input
            .strip_prefix(&prefix)
            .unwrap_or(&caps.input)
            .to_owned();
    }
    let mut out = String::with_capacity(template.len() + caps.input.len());
    for (i, piece) in template.split('*').enumerate() {
        if i > 0 {
            match caps.groups.get(i - 1) {
                Some(g) => out.push_str(g),
                None => out.push('*'),
            }
        }
        out.push_str(piece);
    }
    out
}

/// Whether a virtual key's `models` (non-empty) let it use `name`: an exact
/// entry, or an entry with `*`s that matches the whole name (`openai/*`,
/// `gpt-4o*`), also as `<inferred provider>/<name>` for a bare name, so that
/// `openai/*` covers `gpt-4o` (LiteLLM's `_model_matches_any_wildcard_pattern_in_list`).
pub fn key_allows(models: &[String], name: &str) -> bool {
    if models.iter().any(|m| m == name) {
        return true;
    }
    let mut patterns = models.iter().filter(|m| m.contains('*')).peekable();
    if patterns.peek().is_none() || name.len() > MAX_WILDCARD_NAME {
        return false;
    }
    let inferred = infer_provider(name)
        .filter(|_| name != "*")
        .map(|p| format!("{p}/{name}"));
    patterns.any(|m| glob_full(m, name) || inferred.as_deref().is_some_and(|n| glob_full(m, n)))
}

/// `pattern` (with `*`s) matches all of `name`.
fn glob_full(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some(mut rest) = name.strip_prefix(parts[0]) else {
        return false;
    };
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate().skip(1) {
        if i == last {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(p: &str, name: &str) -> Option<Vec<String>> {
        Pattern::new(p).unwrap().matches(name)
    }

    #[test]
    fn patterns_match_like_litellms_regex() {
        assert_eq!(caps("*", "gpt-4o").unwrap(), ["gpt-4o"]);
        assert_eq!(caps("openai/*", "openai/gpt-4o").unwrap(), ["gpt-4o"]);
        assert_eq!(caps("openai/*", "gpt-4o"), None);
        // Anchored at the start only: trailing text is allowed.
        assert_eq!(caps("gpt-*-mini", "gpt-4o-mini-2024").unwrap(), ["4o"]);
        // Greedy.
        assert_eq!(caps("a*b*", "axbyb").unwrap(), ["xby", ""]);
        assert_eq!(
            caps("x/*::static::*", "x/foo::static::bar").unwrap(),
            ["foo", "bar"]
        );
        // No newline inside a `*`.
        assert_eq!(caps("*", "a\nb").unwrap(), ["a"]);
        assert_eq!(caps("*b", "a\nb"), None);
        // A long name with many stars finishes quickly.
        let name = "a".repeat(MAX_WILDCARD_NAME);
        assert_eq!(caps("*a*a*a*a*a*a*b", &name), None);
    }

    #[test]
    fn routing_prefers_specific_patterns_and_infers_providers() {
        let mut patterns: Vec<(Pattern, &str)> = ["*", "openai/*", "openai/gpt-4*"]
            .iter()
            .map(|p| (Pattern::new(p).unwrap(), *p))
            .collect();
        sort_by_specificity(&mut patterns);
        let order: Vec<&str> = patterns.iter().map(|(_, t)| *t).collect();
        assert_eq!(order, ["openai/gpt-4*", "openai/*", "*"]);
        let (t, c) = route(&patterns, "openai/gpt-4o").unwrap();
        assert_eq!(
            (*t, c.groups.as_slice()),
            ("openai/gpt-4*", &["o".to_owned()][..])
        );
        let (t, _) = route(&patterns, "mistral-large").unwrap();
        assert_eq!(*t, "*");
        let only_openai: Vec<(Pattern, ())> = vec![(Pattern::new("openai/*").unwrap(), ())];
        let (_, c) = route(&only_openai, "gpt-4o").unwrap();
        assert_eq!(c.input, "openai/gpt-4o");
        assert_eq!(upstream_name("*", "openai", &c), "gpt-4o");
        assert!(route(&only_openai, "mistral-large").is_none());
        assert!(route(&only_openai, &"gpt-".repeat(200)).is_none());
    }

    #[test]
    fn upstream_names() {
        let c = |groups: &[&str], input: &str| Captures {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            input: input.to_owned(),
        };
        assert_eq!(
            upstream_name("*", "openai", &c(&["gpt-4o"], "gpt-4o")),
            "gpt-4o"
        );
        assert_eq!(upstream_name("gpt-4o", "openai", &c(&["x"], "x")), "gpt-4o");
        assert_eq!(
            upstream_name("fo::*::static::*", "openai", &c(&["a", "b"], "x")),
            "fo::a::static::b"
        );
        assert_eq!(
            upstream_name("*", "openai", &c(&["a", "b"], "openai/a/b")),
            "a/b"
        );
        assert_eq!(upstream_name("*-*", "openai", &c(&["a"], "a")), "a-*");
    }

    #[test]
    fn key_model_lists() {
        let models = |m: &[&str]| m.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(key_allows(&models(&["gpt-4o"]), "gpt-4o"));
        assert!(!key_allows(&models(&["gpt-4o"]), "gpt-4o-mini"));
        assert!(key_allows(&models(&["gpt-4o*"]), "gpt-4o-mini"));
        assert!(key_allows(&models(&["openai/*"]), "openai/o3"));
        assert!(key_allows(&models(&["openai/*"]), "gpt-4o"));
        assert!(!key_allows(&models(&["openai/*"]), "mistral-large"));
        assert!(!key_allows(&models(&["openai/*"]), "openaix/gpt-4o"));
        assert!(!key_allows(&models(&["gpt-4o*"]), "xgpt-4o"));
        assert!(key_allows(&models(&["a*b*c"]), "aXbYc"));
        assert!(!key_allows(&models(&["a*b*c"]), "aXbYcd"));
    }

    #[test]
    fn kinds() {
        assert_eq!(openai_kind("dall-e-3").mode(), "image_generation");
        assert_eq!(openai_kind("text-embedding-ada-002").mode(), "embedding");
        assert_eq!(openai_kind("whisper-1").mode(), "audio_transcription");
        assert_eq!(openai_kind("gpt-4o-mini-tts").mode(), "audio_speech");
        assert!(openai_kind("gpt-4o-mini").is_chat());
        assert_eq!(infer_provider("dall-e-3"), Some("openai"));
        assert_eq!(infer_provider("claude-3-5-sonnet"), Some("anthropic"));
        assert_eq!(infer_provider("llama-3"), None);
        assert_eq!(
            ModelKind::from_mode("image_generation").unwrap().describe(),
            "an image generation model"
        );
        assert!(ModelKind::from_mode("chatt").is_none());
    }
}
