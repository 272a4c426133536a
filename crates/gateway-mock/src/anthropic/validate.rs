//! A request checked the way Anthropic checks it where a translation can
//! go wrong, with Anthropic's 400 (or 401) when it is off.

use super::*;

/// Top-level fields the Messages API takes.
const FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "output_format",
    "output_config",
    "context_management",
    "container",
    "mcp_servers",
    "speed",
    "cache_control",
    "inference_geo",
];
/// Why Anthropic would refuse the request, in its words (roughly).
pub(super) fn check(
    headers: &HeaderMap,
    req: &Value,
) -> Result<(), (StatusCode, &'static str, String)> {
    let invalid = |m: String| (StatusCode::BAD_REQUEST, "invalid_request_error", m);
    if headers.get("anthropic-version").is_none() {
        return Err(invalid("anthropic-version: header is required".into()));
    }
    let keyed = headers.get("x-api-key").is_some()
        || headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer "));
    if !keyed {
        return Err((
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required".into(),
        ));
    }
    let Some(obj) = req.as_object() else {
        return Err(invalid("request body must be a JSON object".into()));
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!("{k}: Extra inputs are not permitted")));
    }
    if !obj.get("model").is_some_and(Value::is_string) {
        return Err(invalid("model: Field required".into()));
    }
    match obj.get("max_tokens").and_then(Value::as_i64) {
        Some(n) if n >= 1 => {}
        Some(_) => {
            return Err(invalid(
                "max_tokens: must be greater than or equal to 1".into(),
            ));
        }
        None => return Err(invalid("max_tokens: Field required".into())),
    }
    if let Some(system) = obj.get("system") {
        match system {
            Value::String(_) => {}
            Value::Array(blocks) => {
                for (i, b) in blocks.iter().enumerate() {
                    check_text(b, &format!("system.{i}")).map_err(invalid)?;
                }
            }
            _ => {
                return Err(invalid(
                    "system: Input should be a valid string or list".into(),
                ));
            }
        }
    }
    let tools: Vec<&str> = match obj.get("tools") {
        None => vec![],
        Some(Value::Array(tools)) => {
            let mut names = vec![];
            for (i, t) in tools.iter().enumerate() {
                let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                let valid = !name.is_empty()
                    && name.len() <= 128
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    return Err(invalid(format!(
                        "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                    )));
                }
                let hosted = t
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k != "custom");
                if !hosted
                    && t.get("input_schema").and_then(|s| s.get("type")) != Some(&json!("object"))
                {
                    return Err(invalid(format!(
                        "tools.{i}.custom.input_schema.type: Input should be 'object'"
                    )));
                }
                names.push(name);
            }
            names
        }
        Some(_) => return Err(invalid("tools: Input should be a valid list".into())),
    };
    let Some(Value::Array(messages)) = obj.get("messages") else {
        return Err(invalid("messages: Field required".into()));
    };
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required".into()));
    }
    let mut previous_tool_uses: Vec<&str> = vec![];
    let mut tool_blocks = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "user" | "assistant" | "system") {
            return Err(invalid(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        match m.get("content") {
            Some(Value::String(s)) if s.is_empty() => {
                return Err(invalid(format!(
                    "messages.{i}: text content blocks must be non-empty"
                )));
            }
            Some(Value::Array(b)) if b.is_empty() => {
                return Err(invalid(format!(
                    "messages.{i}: all messages must have non-empty content"
                )));
            }
            Some(Value::String(_) | Value::Array(_)) => {}
            _ => return Err(invalid(format!("messages.{i}.content: Field required"))),
        }
        let mut uses: Vec<&str> = vec![];
        for (j, b) in m["content"].as_array().into_iter().flatten().enumerate() {
            let at = format!("messages.{i}.content.{j}");
            match b.get("type").and_then(Value::as_str).unwrap_or("") {
                "text" => check_text(b, &at).map_err(invalid)?,
                "image" | "document" => check_source(b, &at).map_err(invalid)?,
                "tool_use" if role == "assistant" => {
                    tool_blocks = true;
                    let id = b.get("id").and_then(Value::as_str).unwrap_or("");
                    if id.is_empty()
                        || !b.get("input").is_some_and(Value::is_object)
                        || !b.get("name").is_some_and(Value::is_string)
                    {
                        return Err(invalid(format!(
                            "{at}: tool_use needs an id, a name and an object input"
                        )));
                    }
                    uses.push(id);
                }
                "tool_result" if role == "user" => {
                    tool_blocks = true;
                    let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                    if !previous_tool_uses.contains(&id) {
                        return Err(invalid(format!(
                            "{at}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        )));
                    }
                }
                "thinking" if role == "assistant" => {
                    if !b.get("signature").is_some_and(Value::is_string) {
                        return Err(invalid(format!("{at}.signature: Field required")));
                    }
                }
                "redacted_thinking" if role == "assistant" => {}
                other => {
                    return Err(invalid(format!(
                        "{at}: unexpected content block type '{other}' in a {role} message"
                    )));
                }
            }
        }
        previous_tool_uses = uses;
    }
    if tool_blocks && tools.is_empty() {
        return Err(invalid(
            "Requests which include `tool_use` or `tool_result` blocks must define tools.".into(),
        ));
    }
    Ok(())
}

fn check_text(b: &Value, at: &str) -> Result<(), String> {
    if b.get("type").and_then(Value::as_str) != Some("text") {
        return Err(format!("{at}.type: Input should be 'text'"));
    }
    match b.get("text").and_then(Value::as_str) {
        Some("") => Err(format!("{at}: text content blocks must be non-empty")),
        Some(_) => Ok(()),
        None => Err(format!("{at}.text: Field required")),
    }
}

fn check_source(b: &Value, at: &str) -> Result<(), String> {
    let source = b.get("source");
    let ok = match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("base64") => {
            source
                .and_then(|s| s.get("media_type"))
                .is_some_and(Value::is_string)
                && source
                    .and_then(|s| s.get("data"))
                    .is_some_and(Value::is_string)
        }
        Some("url") => source
            .and_then(|s| s.get("url"))
            .and_then(Value::as_str)
            .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://")),
        Some("text" | "content" | "file") => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}.source: invalid source"))
    }
}
