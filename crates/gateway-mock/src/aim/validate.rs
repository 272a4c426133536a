//! What Aim checks before it reads a call: the bearer token, and the body
//! as FastAPI (pydantic 2) validates it, with its 422 detail.

use super::*;

/// Aim's answers to a missing or wrong bearer token.
pub(super) fn check_auth(headers: &HeaderMap, api_key: &str) -> Result<(), &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(r#"{"detail":"Authorization header is required"}"#);
    };
    let token = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    });
    match token {
        Some(token) if token == api_key => Ok(()),
        _ => Err(r#"{"detail":"Invalid API token"}"#),
    }
}

/// The only body shape Aim accepts.
#[derive(Deserialize)]
pub(super) struct AnalyzeRequest {
    pub(super) messages: Vec<AimMessage>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub(super) struct AimMessage {
    pub(super) role: Role,
    pub(super) content: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Role {
    System,
    User,
    Assistant,
}

/// One entry of FastAPI's 422 `detail`.
#[derive(Serialize)]
pub(super) struct ValidationError {
    pub(super) loc: Vec<Loc>,
    pub(super) msg: &'static str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Loc {
    Key(&'static str),
    Index(usize),
}

/// Parses an analyze body, or lists every problem the way FastAPI (pydantic
/// 2) does.
pub(super) fn parse_analyze(body: &[u8]) -> Result<Vec<AimMessage>, Vec<ValidationError>> {
    if let Ok(req) = serde_json::from_slice::<AnalyzeRequest>(body) {
        return Ok(req.messages);
    }
    // The slow path only runs for bad bodies: find out what is wrong.
    let err = |loc: Vec<Loc>, msg, kind| ValidationError { loc, msg, kind };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![err(
            vec![Loc::Key("body")],
            "Field required",
            "missing",
        )]);
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let at = byte_offset(body, e.line(), e.column());
            return Err(vec![err(
                vec![Loc::Key("body"), Loc::Index(at)],
                "JSON decode error",
                "json_invalid",
            )]);
        }
    };
    let not_object = "Input should be a valid dictionary or object to extract fields from";
    let Some(obj) = value.as_object() else {
        return Err(vec![err(
            vec![Loc::Key("body")],
            not_object,
            "model_attributes_type",
        )]);
    };
    let Some(messages) = obj.get("messages") else {
        return Err(vec![err(
            vec![Loc::Key("body"), Loc::Key("messages")],
            "Field required",
            "missing",
        )]);
    };
    let Some(messages) = messages.as_array() else {
        return Err(vec![err(
            vec![Loc::Key("body"), Loc::Key("messages")],
            "Input should be a valid list",
            "list_type",
        )]);
    };
    let mut errors = Vec::new();
    let loc = |i: usize, field: Option<&'static str>| {
        let mut loc = vec![Loc::Key("body"), Loc::Key("messages"), Loc::Index(i)];
        loc.extend(field.map(Loc::Key));
        loc
    };
    for (i, m) in messages.iter().enumerate() {
        let Some(m) = m.as_object() else {
            errors.push(err(loc(i, None), not_object, "model_attributes_type"));
            continue;
        };
        match m.get("role") {
            None => errors.push(err(loc(i, Some("role")), "Field required", "missing")),
            Some(Value::String(r)) if matches!(r.as_str(), "system" | "user" | "assistant") => {}
            Some(_) => errors.push(err(
                loc(i, Some("role")),
                "Input should be 'system', 'user' or 'assistant'",
                "literal_error",
            )),
        }
        match m.get("content") {
            None => errors.push(err(loc(i, Some("content")), "Field required", "missing")),
            Some(Value::String(_)) => {}
            Some(_) => errors.push(err(
                loc(i, Some("content")),
                "Input should be a valid string",
                "string_type",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Valid after all (a duplicate key, say, which serde rejects and pydantic
    // takes the last of).
    serde_json::from_value::<AnalyzeRequest>(value)
        .map(|r| r.messages)
        .map_err(|_| {
            vec![err(
                vec![Loc::Key("body")],
                not_object,
                "model_attributes_type",
            )]
        })
}

/// The byte offset of a 1-based line and column, as pydantic reports it.
pub(super) fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(body.len())
}
