//! What the gateway knows of each Claude model: LiteLLM's cost-map entries
//! ([`ModelInfo`]: default `max_tokens`, capability flags), the alias
//! lookup, and what the request translation asks of a model ([`Caps`]).

/// What LiteLLM's cost map says of one Claude model (`anthropic` provider
/// entries of `model_prices_and_context_window_backup.json` in 1.108.7).
#[derive(Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: &'static str,
    /// `max_output_tokens`: the default `max_tokens`.
    pub max_output_tokens: u64,
    flags: u16,
}

const NATIVE_JSON: u16 = 1;
const REASONING: u16 = 1 << 1;
const ADAPTIVE: u16 = 1 << 2;
const OUTPUT_CONFIG: u16 = 1 << 3;
const MID_SYSTEM: u16 = 1 << 4;
const NO_SAMPLING: u16 = 1 << 5;
const NO_FORCED_TOOL: u16 = 1 << 6;
const ALWAYS_THINKING: u16 = 1 << 7;
const XHIGH: u16 = 1 << 8;
const MAX_EFFORT: u16 = 1 << 9;
const LEGACY_THINKING: u16 = 1 << 10;
const SPEED: u16 = 1 << 11;

const fn m(name: &'static str, max_output_tokens: u64, flags: u16) -> ModelInfo {
    ModelInfo {
        name,
        max_output_tokens,
        flags,
    }
}

/// The cost map's `anthropic` entries, as of LiteLLM 1.108.7.
static MODELS: &[ModelInfo] = &[
    m("claude-haiku-4-5-20251001", 64000, NATIVE_JSON | REASONING),
    m("claude-haiku-4-5", 64000, NATIVE_JSON | REASONING),
    m("claude-sonnet-4-5", 64000, NATIVE_JSON | REASONING),
    m("claude-sonnet-4-5-20250929", 64000, NATIVE_JSON | REASONING),
    m(
        "claude-sonnet-5",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | XHIGH
            | MAX_EFFORT,
    ),
    m(
        "claude-sonnet-5-5",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | NO_FORCED_TOOL
            | ALWAYS_THINKING
            | XHIGH
            | MAX_EFFORT,
    ),
    m(
        "claude-sonnet-4-6",
        128000,
        NATIVE_JSON | REASONING | ADAPTIVE | OUTPUT_CONFIG | MAX_EFFORT | LEGACY_THINKING,
    ),
    m(
        "claude-opus-4-5-20251101",
        64000,
        NATIVE_JSON | REASONING | OUTPUT_CONFIG,
    ),
    m(
        "claude-opus-4-5",
        64000,
        NATIVE_JSON | REASONING | OUTPUT_CONFIG,
    ),
    m(
        "claude-opus-4-6",
        128000,
        NATIVE_JSON | REASONING | ADAPTIVE | OUTPUT_CONFIG | MAX_EFFORT | LEGACY_THINKING | SPEED,
    ),
    m(
        "claude-opus-4-6-20260205",
        128000,
        NATIVE_JSON | REASONING | ADAPTIVE | OUTPUT_CONFIG | MAX_EFFORT | LEGACY_THINKING | SPEED,
    ),
    m(
        "claude-opus-4-7",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | NO_SAMPLING
            | XHIGH
            | MAX_EFFORT
            | SPEED,
    ),
    m(
        "claude-opus-4-7-20260416",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | NO_SAMPLING
            | XHIGH
            | MAX_EFFORT
            | SPEED,
    ),
    m(
        "claude-fable-5",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | ALWAYS_THINKING
            | XHIGH
            | MAX_EFFORT,
    ),
    m(
        "claude-fable-5-1",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | NO_FORCED_TOOL
            | ALWAYS_THINKING
            | XHIGH
            | MAX_EFFORT,
    ),
    m(
        "claude-opus-5-5",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | NO_FORCED_TOOL
            | ALWAYS_THINKING
            | XHIGH
            | MAX_EFFORT
            | SPEED,
    ),
    m(
        "claude-opus-5",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | XHIGH
            | MAX_EFFORT
            | SPEED,
    ),
    m(
        "claude-opus-4-8",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | XHIGH
            | MAX_EFFORT
            | SPEED,
    ),
    m(
        "claude-mythos-5",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | ALWAYS_THINKING
            | XHIGH
            | MAX_EFFORT,
    ),
    m(
        "claude-mythos-5-1",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | NO_FORCED_TOOL
            | ALWAYS_THINKING
            | XHIGH
            | MAX_EFFORT,
    ),
    m(
        "claude-mythos-preview",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | NO_SAMPLING
            | ALWAYS_THINKING
            | XHIGH
            | MAX_EFFORT,
    ),
    m(
        "claude-haiku-5-5",
        128000,
        NATIVE_JSON
            | REASONING
            | ADAPTIVE
            | OUTPUT_CONFIG
            | MID_SYSTEM
            | NO_SAMPLING
            | XHIGH
            | MAX_EFFORT,
    ),
];

/// `max_tokens` when the client sets none and the model is not in the table
/// (LiteLLM's `DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS`).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

impl ModelInfo {
    /// The exact entry, as LiteLLM's `get_max_tokens` looks it up.
    pub fn exact(model: &str) -> Option<&'static ModelInfo> {
        MODELS.iter().find(|m| m.name == model)
    }

    /// The entry for `model` or one of its aliases, as LiteLLM's capability
    /// lookup finds it: the name, without an `@version` suffix, without a
    /// dated `-YYYYMMDD` suffix, with a dotted version (`4.6`) hyphenated.
    pub fn find(model: &str) -> Option<&'static ModelInfo> {
        if let Some(m) = Self::exact(model) {
            return Some(m);
        }
        let base = match model.rfind('@') {
            Some(at) if at > 0 => &model[..at],
            _ => model,
        };
        let undated = strip_date(base);
        let hyphenated = hyphenate_versions(base);
        [base, undated, &hyphenated]
            .into_iter()
            .find_map(Self::exact)
    }

    fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// `model` without a trailing `-YYYYMMDD`.
fn strip_date(model: &str) -> &str {
    let b = model.as_bytes();
    if b.len() > 9 && b[b.len() - 9] == b'-' && b[b.len() - 8..].iter().all(u8::is_ascii_digit) {
        &model[..model.len() - 9]
    } else {
        model
    }
}

/// `4.6` → `4-6` wherever a dot sits between two digits.
fn hyphenate_versions(model: &str) -> String {
    let b = model.as_bytes();
    model
        .char_indices()
        .map(|(i, c)| {
            let between_digits = c == '.'
                && i > 0
                && b[i - 1].is_ascii_digit()
                && b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if between_digits { '-' } else { c }
        })
        .collect()
}

/// What the translation asks of a model. Unknown models get LiteLLM's
/// fallbacks where it has one (sampling parameters by name) and otherwise
/// the permissive answer, so that Anthropic, not the gateway, decides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    info: Option<&'static ModelInfo>,
    /// No `temperature` (other than 1), `top_p` or `top_k`.
    no_sampling: bool,
}

impl Caps {
    pub(crate) fn of(model: &str) -> Caps {
        let info = ModelInfo::find(model);
        let no_sampling = match info {
            Some(i) => i.has(NO_SAMPLING),
            None => {
                let lower = model.to_ascii_lowercase();
                [
                    "fable", "opus-4-7", "opus_4_7", "opus-4.7", "opus_4.7", "opus-4-8",
                    "opus_4_8", "opus-4.8", "opus_4.8",
                ]
                .iter()
                .any(|v| lower.contains(v))
            }
        };
        Caps { info, no_sampling }
    }

    fn flag(&self, flag: u16) -> bool {
        self.info.is_some_and(|i| i.has(flag))
    }

    /// `thinking` and `reasoning_effort` are accepted parameters.
    pub(crate) fn reasoning(&self, model: &str) -> bool {
        self.info.is_none() || self.flag(REASONING) || model.contains("claude-3-7-sonnet")
    }
    pub(crate) fn native_json(&self) -> bool {
        self.flag(NATIVE_JSON)
    }
    pub(crate) fn adaptive(&self) -> bool {
        self.flag(ADAPTIVE)
    }
    pub(crate) fn mid_system(&self) -> bool {
        self.flag(MID_SYSTEM)
    }
    pub(crate) fn sampling(&self) -> bool {
        !self.no_sampling
    }
    pub(crate) fn forced_tool(&self) -> bool {
        !self.flag(NO_FORCED_TOOL)
    }
    pub(crate) fn always_thinking(&self) -> bool {
        self.flag(ALWAYS_THINKING)
    }
    pub(crate) fn legacy_thinking(&self) -> bool {
        self.flag(LEGACY_THINKING)
    }
    pub(crate) fn xhigh(&self) -> bool {
        self.flag(XHIGH)
    }
    pub(crate) fn max_effort(&self) -> bool {
        self.flag(MAX_EFFORT)
    }
}

/// `speed` is sent only to models whose exact entry allows it.
pub(crate) fn supports_speed(model: &str) -> bool {
    ModelInfo::exact(model).is_some_and(|m| m.has(SPEED))
}
