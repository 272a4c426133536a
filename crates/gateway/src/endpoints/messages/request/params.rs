//! The top-level fields the chat body maps besides the messages:
//! `metadata`, `tools`, `tool_choice`, `thinking`, `output_format` and
//! `output_config`, checked as Anthropic checks them.

use super::*;

/// The top-level keys the gateway reads; a key that folds onto one of them
/// but is spelled otherwise is refused.
pub(super) const TOP_KEYS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "output_format",
    "output_config",
    "guardrails",
];

/// An object's fields (already walked by [`message::check`]), two
/// spellings of one key refused.
fn object<'a>(raw: &'a RawValue, path: &str) -> Result<Vec<(Cow<'a, str>, &'a RawValue)>, Error> {
    if !raw.get().starts_with('{') {
        return Err(wrong_type(path, "a valid dictionary"));
    }
    let Fields(fields, repeated) =
        serde_json::from_str(raw.get()).map_err(|e| invalid(format!("{path}: {e}"), path))?;
    if let Some(key) = repeated {
        return Err(invalid(format!("{path}: duplicate key '{key}'"), path));
    }
    Ok(fields)
}

fn field<'a>(fields: &[(Cow<'a, str>, &'a RawValue)], name: &str) -> Option<&'a RawValue> {
    fields
        .iter()
        .find(|(k, _)| &**k == name)
        .map(|(_, v)| *v)
        .filter(|v| v.get() != "null")
}

fn string<'a>(raw: &'a RawValue, path: &str) -> Result<Cow<'a, str>, Error> {
    match serde_json::from_str::<Str>(raw.get()) {
        Ok(Str(s)) => Ok(s),
        Err(_) => Err(wrong_type(path, "a valid string")),
    }
}

pub(super) fn decode_metadata<'a>(raw: &'a RawValue, p: &mut Params<'a>) -> Result<(), Error> {
    let fields = object(raw, "metadata")?;
    if let Some(raw) = field(&fields, "user_id") {
        p.user = Some(string(raw, "metadata.user_id")?);
        p.user_id_raw = Some(raw);
    }
    p.metadata_guardrails = field(&fields, "guardrails");
    p.metadata_extra = fields.iter().any(|(k, _)| &**k != "user_id");
    Ok(())
}

pub(super) fn decode_tools<'a>(raw: &'a RawValue, p: &mut Params<'a>) -> Result<(), Error> {
    let list = serde_json::from_str::<Vec<&RawValue>>(raw.get())
        .map_err(|_| wrong_type("tools", "a valid list"))?;
    p.tools.reserve(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        let path = format!("tools.{i}");
        let fields = object(raw, &path)?;
        let name = match field(&fields, "name") {
            Some(n) => Some(string(n, &format!("{path}.name"))?),
            None => None,
        };
        let kind = match field(&fields, "type") {
            Some(t) => Some(string(t, &format!("{path}.type"))?),
            None => None,
        };
        let schema = field(&fields, "input_schema");
        let web_search = match kind.as_deref() {
            Some(k) => k.starts_with("web_search"),
            None => name.as_deref() == Some("web_search") && schema.is_none(),
        };
        if web_search {
            p.web_search = true;
            continue;
        }
        if kind.as_deref().is_some_and(|k| k != "custom") {
            // Anthropic's own tools (bash, text editor, computer use, code
            // execution, ...) have no OpenAI form: not offered there.
            continue;
        }
        let Some(name) = name else {
            return Err(missing(&format!("{path}.name")));
        };
        if let Some(s) = schema
            && !s.get().starts_with('{')
        {
            return Err(wrong_type(
                &format!("{path}.input_schema"),
                "a valid dictionary",
            ));
        }
        let description = field(&fields, "description");
        if let Some(d) = description {
            string(d, &format!("{path}.description"))?;
        }
        let strict = match field(&fields, "strict") {
            Some(s) => Some(
                serde_json::from_str::<bool>(s.get())
                    .map_err(|_| wrong_type(&format!("{path}.strict"), "a valid boolean"))?,
            ),
            None => None,
        };
        p.tools.push(Tool {
            name,
            description,
            parameters: schema,
            strict,
        });
    }
    Ok(())
}

pub(super) fn decode_tool_choice<'a>(raw: &'a RawValue, p: &mut Params<'a>) -> Result<(), Error> {
    let fields = object(raw, "tool_choice")?;
    let Some(kind) = field(&fields, "type") else {
        return Err(missing("tool_choice.type"));
    };
    p.tool_choice = Some(match &*string(kind, "tool_choice.type")? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Any,
        "none" => ToolChoice::None,
        "tool" => match field(&fields, "name") {
            Some(n) => ToolChoice::Tool(string(n, "tool_choice.name")?),
            None => return Err(missing("tool_choice.name")),
        },
        _ => {
            return Err(invalid(
                "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
                "tool_choice.type",
            ));
        }
    });
    if let Some(d) = field(&fields, "disable_parallel_tool_use") {
        p.no_parallel = serde_json::from_str::<bool>(d.get())
            .map_err(|_| wrong_type("tool_choice.disable_parallel_tool_use", "a valid boolean"))?;
    }
    Ok(())
}

/// `thinking` as LiteLLM maps it for a model that is not Claude:
/// `reasoning_effort` by budget (under 1024 minimal, then low, medium from
/// 2048, high from 4096), `none` when disabled, `output_config.effort`
/// (else `medium`) when adaptive.
pub(super) fn decode_thinking<'a>(
    raw: &'a RawValue,
    config: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, Error> {
    let fields = object(raw, "thinking")?;
    let Some(kind) = field(&fields, "type") else {
        return Err(missing("thinking.type"));
    };
    Ok(Some(match &*string(kind, "thinking.type")? {
        "disabled" => Cow::Borrowed("none"),
        "enabled" => {
            let Some(budget) = field(&fields, "budget_tokens") else {
                return Err(missing("thinking.budget_tokens"));
            };
            let budget = serde_json::from_str::<u64>(budget.get())
                .map_err(|_| wrong_type("thinking.budget_tokens", "a valid integer"))?;
            Cow::Borrowed(match budget {
                4096.. => "high",
                2048.. => "medium",
                1024.. => "low",
                _ => "minimal",
            })
        }
        "adaptive" => {
            let effort = match config {
                Some(c) => field(&object(c, "output_config")?, "effort")
                    .map(|e| string(e, "output_config.effort"))
                    .transpose()?,
                None => None,
            };
            effort.unwrap_or(Cow::Borrowed("medium"))
        }
        _ => {
            return Err(invalid(
                "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'",
                "thinking.type",
            ));
        }
    }))
}

/// A JSON schema asked for in `output_format` (or `output_config.format`).
pub(super) fn output_schema<'a>(
    format: Option<&'a RawValue>,
    config: Option<&'a RawValue>,
) -> Result<Option<&'a RawValue>, Error> {
    let (format, path) = match (format, config) {
        (Some(f), _) => (f, "output_format"),
        (None, Some(c)) => match field(&object(c, "output_config")?, "format") {
            Some(f) => (f, "output_config.format"),
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let fields = object(format, path)?;
    let is_schema = match field(&fields, "type") {
        Some(t) => string(t, path)? == "json_schema",
        None => false,
    };
    Ok(field(&fields, "schema").filter(|s| is_schema && s.get().starts_with('{')))
}
