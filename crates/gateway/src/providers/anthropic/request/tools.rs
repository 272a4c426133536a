//! Tools and `tool_choice`: OpenAI and Anthropic-shaped tools and their
//! `input_schema`, `tool_choice` with `parallel_tool_calls`, and tool names
//! rewritten to Anthropic's alphabet.

use super::*;

impl<'a> Builder<'a> {
    pub(super) fn tools(&mut self, list: Vec<InTool<'a>>) -> Result<(), Error> {
        let mut tools = self.tools.take().unwrap_or_default();
        tools.reserve(list.len());
        for t in list {
            if let Some(schema) = t.input_schema {
                let Some(name) = t.name else {
                    return Err(Error::invalid("a tool needs a name", Some("tools")));
                };
                tools.push(Tool::Native {
                    name,
                    description: t.description.filter(|d| d.get() != "null"),
                    input_schema: schema,
                    kind: t.kind,
                    cache_control: t.cache_control.filter(|c| c.get() != "null"),
                });
                continue;
            }
            let kind = t.kind.as_deref().unwrap_or("");
            if kind != "function" && kind != "custom" {
                return Err(bad_request(format_args!("Unsupported tool type: {kind}")));
            }
            let Some(f) = t.function else {
                return Err(Error::invalid(
                    "a function tool needs a 'function'",
                    Some("tools"),
                ));
            };
            let Some(name) = f.name else {
                return Err(Error::invalid("a tool needs a name", Some("tools")));
            };
            let cache_control = t
                .cache_control
                .filter(|c| c.get() != "null")
                .or(f.cache_control.filter(|c| is_object(c)));
            tools.push(Tool::Custom {
                name,
                input_schema: input_schema(f.parameters)?,
                kind: "custom",
                description: f.description.filter(|d| d.get() != "null"),
                cache_control,
            });
        }
        self.tools = Some(tools);
        Ok(())
    }

    pub(super) fn tool_choice(&mut self) -> Result<(), Error> {
        let choice = match self.param("tool_choice") {
            Some(v) => Some(value(v, "tool_choice")?),
            None => None,
        };
        let parallel = self
            .param("parallel_tool_calls")
            .and_then(|v| serde_json::from_str::<bool>(v.get()).ok());
        let mut mapped: Option<Map<String, Value>> = match &choice {
            Some(Value::String(s)) => match s.as_str() {
                "auto" => Some(kind_only("auto")),
                "required" => Some(kind_only("any")),
                "none" => Some(kind_only("none")),
                _ => None,
            },
            Some(Value::Object(o)) if o.contains_key("type") && !o.contains_key("function") => {
                match o.get("type").and_then(Value::as_str) {
                    Some("auto") => Some(kind_only("auto")),
                    Some("required" | "any") => Some(kind_only("any")),
                    Some("none") => Some(kind_only("none")),
                    _ => None,
                }
            }
            Some(Value::Object(o)) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .filter(|n| !n.is_null())
                .map(|name| {
                    let mut m = kind_only("tool");
                    m.insert("name".into(), name.clone());
                    m
                }),
            _ => None,
        };
        if let Some(parallel) = parallel {
            let none = matches!(&choice, Some(Value::String(s)) if s == "none");
            if !none {
                let m = mapped.get_or_insert_with(|| kind_only("auto"));
                m.insert("disable_parallel_tool_use".into(), Value::Bool(!parallel));
            }
        }
        let Some(mut m) = mapped else {
            return Ok(());
        };
        let forced = matches!(m.get("type").and_then(Value::as_str), Some("any" | "tool"));
        if forced && !self.caps.forced_tool() {
            if !self.options.drop_params {
                return Err(unsupported(format_args!(
                    "{} does not support forced tool use (tool_choice='required' or a named tool). Use tool_choice='auto' and tell the model in the prompt when to call the tool, or set `litellm.drop_params = True` to downgrade to 'auto' automatically.",
                    self.model
                )));
            }
            let disable = m.remove("disable_parallel_tool_use");
            m = kind_only("auto");
            if let Some(d) = disable {
                m.insert("disable_parallel_tool_use".into(), d);
            }
        }
        self.set("tool_choice", Out::Value(Value::Object(m)));
        Ok(())
    }

    /// Anthropic takes tool names matching `^[a-zA-Z0-9_-]{1,128}$`: rename
    /// the others (a suffix when two collide), remember how.
    pub(super) fn sanitize_tool_names(&mut self) {
        let Some(tools) = &mut self.tools else {
            return;
        };
        let names: Vec<String> = tools
            .iter()
            .filter_map(|t| match t {
                Tool::Custom { name, .. } if !name.is_empty() => Some(name.to_string()),
                _ => None,
            })
            .collect();
        let mut used: Vec<String> = names
            .iter()
            .filter(|n| sanitize_name(n) == **n)
            .cloned()
            .collect();
        let mut forward: Vec<(String, String)> = vec![];
        for original in &names {
            let candidate = sanitize_name(original);
            if candidate == *original || forward.iter().any(|(o, _)| o == original) {
                continue;
            }
            let mut unique = candidate.clone();
            let mut n = 1;
            while used.contains(&unique) {
                n += 1;
                let suffix = format!("_{n}");
                let head: String = candidate
                    .chars()
                    .take(TOOL_NAME_MAX - suffix.len())
                    .collect();
                unique = format!("{head}{suffix}");
            }
            used.push(unique.clone());
            forward.push((original.clone(), unique));
        }
        if forward.is_empty() {
            return;
        }
        for t in tools.iter_mut() {
            if let Tool::Custom { name, .. } = t
                && let Some((_, sent)) = forward.iter().find(|(o, _)| *o == **name)
            {
                *name = Cow::Owned(sent.clone());
            }
        }
        if let Some((_, Out::Value(Value::Object(choice)))) =
            self.out.iter_mut().find(|(k, _)| *k == "tool_choice")
            && choice.get("type").and_then(Value::as_str) == Some("tool")
            && let Some(Value::String(name)) = choice.get_mut("name")
            && let Some((_, sent)) = forward.iter().find(|(o, _)| o == name)
        {
            *name = sent.clone();
        }
        self.forward = forward;
    }
}

fn kind_only(kind: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(kind.into()));
    m
}

/// A tool name in Anthropic's alphabet, at most 128 characters.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(TOOL_NAME_MAX)
        .collect()
}

/// The keys of a tool's `input_schema` Anthropic takes.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "properties",
    "additionalProperties",
    "required",
    "$defs",
    "strict",
];

/// LiteLLM's `sanitize_input_schema_for_anthropic`: an object schema with
/// `properties`, only the keys Anthropic takes, legacy `definitions` moved
/// to `$defs` (with their references).
fn input_schema(parameters: Option<Schema<'_>>) -> Result<InputSchema<'_>, Error> {
    let entries = parameters.map(|p| p.0).unwrap_or_default();
    if entries.iter().any(|(k, _)| k == "definitions") {
        // Rare: rebuilt as a value, references rewritten.
        let mut m = Map::new();
        for (k, v) in &entries {
            m.insert(k.to_string(), value(v, "tools")?);
        }
        return Ok(InputSchema::Value(legacy_schema(m)));
    }
    let has_type = entries.iter().any(|(k, _)| k == "type");
    let has_properties = entries.iter().any(|(k, _)| k == "properties");
    let kept: Vec<_> = entries
        .into_iter()
        .filter(|(k, _)| SCHEMA_KEYS.contains(&&**k))
        .collect();
    Ok(InputSchema::Entries(kept, !has_type, !has_properties))
}

fn legacy_schema(mut m: Map<String, Value>) -> Value {
    if m.get("type").and_then(Value::as_str) != Some("object") {
        m.insert("type".into(), "object".into());
    }
    if !m.contains_key("properties") {
        m.insert("properties".into(), Value::Object(Map::new()));
    }
    if let Some(Value::Object(defs)) = m.remove("definitions") {
        let target = m
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(t) = target {
            for (k, v) in defs {
                t.entry(k).or_insert(v);
            }
        }
        rewrite_refs(&mut m);
    }
    m.retain(|k, _| SCHEMA_KEYS.contains(&k.as_str()));
    Value::Object(m)
}

fn rewrite_refs(m: &mut Map<String, Value>) {
    for (k, v) in m.iter_mut() {
        match v {
            Value::String(s) if k == "$ref" && s.starts_with("#/definitions/") => {
                *s = s.replacen("#/definitions/", "#/$defs/", 1);
            }
            Value::Object(inner) => rewrite_refs(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        rewrite_refs(inner);
                    }
                }
            }
            _ => {}
        }
    }
}
