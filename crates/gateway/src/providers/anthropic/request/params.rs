//! The parameters: sampling, `stop`, `max_tokens`, `user`,
//! `response_format` (native `output_format` with its schema filter, or the
//! forced `json_tool_call` tool), reasoning and thinking, web search,
//! `service_tier`, `context_management`, `speed`.

use super::*;

impl<'a> Builder<'a> {
    /// The parameters, in LiteLLM's order.
    pub(super) fn params(&mut self) -> Result<(), Error> {
        let model = self.model.clone();
        let drop = self.options.drop_params;
        for name in ["temperature", "top_p", "top_k"] {
            if let Some(v) = self.param(name) {
                self.sampling(name, v)?;
            }
        }
        if let Some(v) = self.param("stream") {
            self.stream = v.get() == "true";
            if self.stream {
                self.set("stream", Out::Value(Value::Bool(true)));
            }
        }
        if let Some(v) = self.param("stream_options") {
            #[derive(Deserialize)]
            struct StreamOptions {
                #[serde(default)]
                include_usage: Option<bool>,
            }
            self.context.include_usage = serde_json::from_str::<StreamOptions>(v.get())
                .ok()
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
        }
        if let Some(v) = self.param("stop") {
            self.stop(v)?;
        }
        // max_completion_tokens comes later in LiteLLM's loop, so it wins.
        for name in ["max_tokens", "max_completion_tokens"] {
            if let Some(v) = self.param(name) {
                let n = max_tokens(v, name)?;
                self.set("max_tokens", Out::Value(n));
            }
        }
        if let Some(v) = self.param("user") {
            // Anthropic refuses e-mails and phone numbers as a user id.
            if let Ok(user) = serde_json::from_str::<Str>(v.get())
                && valid_user_id(&user.0)
            {
                let mut m = Map::new();
                m.insert("user_id".into(), Value::String(user.0.into_owned()));
                self.set("metadata", Out::Value(Value::Object(m)));
            }
        }
        let thinking_enabled = self.thinking_enabled();
        if let Some(v) = self.param("response_format") {
            self.response_format(v, thinking_enabled)?;
        }
        if let Some(list) = self.tools_in.take() {
            self.tools(list)?;
        }
        if self.param("tool_choice").is_some() || self.param("parallel_tool_calls").is_some() {
            self.tool_choice()?;
        }
        // Of a client's extra headers only anthropic-beta is taken: the
        // others could replace the deployment's credential.
        if let Some(v) = self.param("extra_headers")
            && let Ok(headers) = serde_json::from_str::<Map<String, Value>>(v.get())
        {
            for (k, v) in headers {
                if k.eq_ignore_ascii_case("anthropic-beta")
                    && let Value::String(s) = v
                {
                    self.client_betas.push(s);
                }
            }
        }
        if let Some(v) = self.param("reasoning_effort") {
            self.reasoning_effort(v)?;
        }
        if let Some(v) = self.param("thinking") {
            self.thinking_param(v)?;
        }
        if let Some(v) = self.param("web_search_options") {
            self.web_search(v)?;
        }
        if let Some(v) = self.param("service_tier") {
            let tier = string(v, "service_tier")?;
            let mapped = match &*tier {
                "auto" => Some("auto"),
                "default" | "standard_only" => Some("standard_only"),
                _ => None,
            };
            match mapped {
                Some(t) => self.set("service_tier", Out::Value(Value::String(t.into()))),
                None if drop => {}
                None => {
                    return Err(unsupported(format_args!(
                        "{model} does not support service_tier='{tier}'. Anthropic accepts 'auto', 'standard_only', or OpenAI's 'default' (sent as 'standard_only'). To drop unsupported params, set `litellm.drop_params = True`."
                    )));
                }
            }
        }
        if let Some(v) = self.param("context_management") {
            self.context_management(v)?;
        }
        if let Some(v) = self.param("speed") {
            if supports_speed(&model) {
                if v.get() == "\"fast\"" {
                    self.beta(FAST_MODE_BETA);
                }
                self.set("speed", Out::Raw(v));
            } else if !drop {
                let speed = v.get().replace('"', "'");
                return Err(unsupported(format_args!(
                    "{model} does not support speed={speed}. To drop unsupported params, set `litellm.drop_params = True`."
                )));
            }
        }
        if let Some(v) = self.param("cache_control")
            && is_object(v)
        {
            self.set("cache_control", Out::Raw(v));
        }
        // Thinking tokens: with a budget and no max_tokens, room for both.
        let client_max =
            self.param("max_tokens").is_some() || self.param("max_completion_tokens").is_some();
        if !client_max
            && let Some(budget) = self
                .thinking
                .as_ref()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("enabled"))
                .and_then(|t| t.get("budget_tokens"))
                .and_then(Value::as_u64)
        {
            self.set(
                "max_tokens",
                Out::Value(Value::from(budget + THINKING_HEADROOM)),
            );
        }
        Ok(())
    }

    fn thinking_enabled(&self) -> bool {
        // LiteLLM's is_thinking_enabled on the request's parameters.
        self.param("reasoning_effort").is_some()
            || self.param("thinking").is_some_and(|t| {
                t.get() == "true"
                    || serde_json::from_str::<Value>(t.get())
                        .ok()
                        .and_then(|v| {
                            v.get("type")
                                .and_then(Value::as_str)
                                .map(|s| s == "enabled")
                        })
                        .unwrap_or(false)
            })
    }

    fn sampling(&mut self, name: &'static str, v: &'a RawValue) -> Result<(), Error> {
        let is_one =
            name == "temperature" && serde_json::from_str::<f64>(v.get()).is_ok_and(|t| t == 1.0);
        if self.caps.sampling() || is_one {
            self.set(name, Out::Raw(v));
            return Ok(());
        }
        if self.options.drop_params {
            return Ok(());
        }
        let hint = if name == "temperature" {
            "Only temperature=1 is supported. "
        } else {
            ""
        };
        Err(unsupported(format_args!(
            "{} does not support {name}={}. {hint}To drop unsupported params, set `litellm.drop_params = True`.",
            self.model,
            v.get()
        )))
    }

    fn stop(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let list: Vec<String> = if v.get().starts_with('"') {
            vec![string(v, "stop")?.into_owned()]
        } else {
            serde_json::from_str(v.get()).map_err(|_| {
                Error::invalid("'stop' must be a string or a list of strings", Some("stop"))
            })?
        };
        // Anthropic refuses whitespace-only stop sequences; LiteLLM drops
        // them only when told to drop what does not fit.
        let list: Vec<Value> = list
            .into_iter()
            .filter(|s| !(self.options.drop_params && is_space(s)))
            .map(Value::String)
            .collect();
        if !list.is_empty() {
            self.set("stop_sequences", Out::Value(Value::Array(list)));
        }
        Ok(())
    }

    fn response_format(&mut self, v: &'a RawValue, thinking_enabled: bool) -> Result<(), Error> {
        let format = value(v, "response_format")?;
        let Some(obj) = format.as_object() else {
            return Ok(());
        };
        let schema = match (obj.get("response_schema"), obj.get("json_schema")) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(js)) => js.get("schema").cloned(),
            (None, None) => None,
        };
        if self.caps.native_json() {
            if let Some(schema) = schema {
                let mut out = Map::new();
                out.insert("type".into(), "json_schema".into());
                out.insert("schema".into(), filter_output_schema(&schema));
                self.set("output_format", Out::Value(Value::Object(out)));
                self.beta(STRUCTURED_OUTPUTS_BETA);
            }
            return Ok(());
        }
        if obj.get("type").and_then(Value::as_str) == Some("text") {
            return Ok(());
        }
        let Some(schema) = schema else {
            return Ok(());
        };
        let mut input = Map::new();
        input.insert("type".into(), "object".into());
        if let Value::Object(s) = schema {
            input.extend(s);
        }
        self.tools.get_or_insert_with(Vec::new).push(Tool::Json {
            name: JSON_TOOL_NAME,
            input_schema: Value::Object(input),
        });
        if !thinking_enabled && self.caps.forced_tool() {
            let mut choice = Map::new();
            choice.insert("name".into(), JSON_TOOL_NAME.into());
            choice.insert("type".into(), "tool".into());
            self.set("tool_choice", Out::Value(Value::Object(choice)));
        }
        self.context.json_tool = true;
        Ok(())
    }

    fn reasoning_effort(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let value = value(v, "reasoning_effort")?;
        let effort = match &value {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("effort") {
                Some(Value::String(s)) => s.clone(),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        if effort == "none" {
            self.thinking = None;
            self.output_config = None;
            return Ok(());
        }
        let budget = match effort.as_str() {
            "low" => 1024,
            "medium" => 2048,
            "high" => 4096,
            "xhigh" => 8192,
            "max" => 16384,
            "minimal" => MIN_THINKING_BUDGET,
            _ => {
                return Err(bad_request(format_args!(
                    "Unmapped reasoning effort: '{effort}'. Must be one of: 'minimal', 'low', 'medium', 'high', 'xhigh', 'max', 'none'."
                )));
            }
        };
        if self.caps.adaptive() {
            self.thinking = Some(serde_json::json!({"type": "adaptive", "display": "summarized"}));
            let level = if effort == "minimal" {
                "low"
            } else {
                effort.as_str()
            };
            let mut oc = Map::new();
            oc.insert("effort".into(), Value::String(level.into()));
            self.output_config = Some(oc);
        } else {
            self.thinking = Some(serde_json::json!({"type": "enabled", "budget_tokens": budget}));
        }
        Ok(())
    }

    fn thinking_param(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let thinking = value(v, "thinking")?;
        let kind = thinking
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if kind.as_deref() == Some("adaptive") && !self.caps.adaptive() {
            // Claude Code sends adaptive thinking to every model; older ones
            // get the legacy medium budget, within max_tokens.
            let max = self
                .param("max_completion_tokens")
                .or(self.param("max_tokens"))
                .and_then(|m| serde_json::from_str::<u64>(m.get()).ok());
            let budget = 2048;
            self.thinking = match max {
                Some(max) if max <= MIN_THINKING_BUDGET => None,
                Some(max) if budget >= max => {
                    Some(serde_json::json!({"type": "enabled", "budget_tokens": max - 1}))
                }
                _ => Some(serde_json::json!({"type": "enabled", "budget_tokens": budget})),
            };
            return Ok(());
        }
        if kind.as_deref() == Some("enabled")
            && self.caps.adaptive()
            && !self.caps.legacy_thinking()
        {
            // Models past 4.6 take an effort, not a budget.
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let effort = if budget >= 8192 && self.caps.xhigh() {
                "xhigh"
            } else if budget >= 4096 {
                "high"
            } else if budget >= 2048 {
                "medium"
            } else {
                "low"
            };
            let mut t = Map::new();
            t.insert("type".into(), "adaptive".into());
            if let Some(display) = thinking
                .get("display")
                .filter(|d| matches!(d.as_str(), Some("summarized" | "omitted")))
            {
                t.insert("display".into(), display.clone());
            }
            self.thinking = Some(Value::Object(t));
            let mut oc = self.output_config.take().unwrap_or_default();
            oc.entry("effort")
                .or_insert_with(|| Value::String(effort.into()));
            self.output_config = Some(oc);
            return Ok(());
        }
        if kind.as_deref() == Some("disabled") && self.caps.always_thinking() {
            self.thinking = None;
            return Ok(());
        }
        if thinking.get("display").and_then(Value::as_str) == Some("updates")
            && matches!(kind.as_deref(), Some("adaptive" | "enabled"))
        {
            self.beta(THINKING_DISPLAY_BETA);
        }
        self.thinking = Some(thinking);
        Ok(())
    }

    fn web_search(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let options = value(v, "web_search_options")?;
        let mut tool = Map::new();
        tool.insert("type".into(), "web_search_20250305".into());
        tool.insert("name".into(), "web_search".into());
        if let Some(approx) = options
            .get("user_location")
            .and_then(|l| l.get("approximate"))
            .and_then(Value::as_object)
        {
            let mut loc = Map::new();
            loc.insert("type".into(), "approximate".into());
            for key in ["city", "country", "region", "timezone"] {
                if let Some(v) = approx.get(key) {
                    loc.insert(key.into(), v.clone());
                }
            }
            tool.insert("user_location".into(), Value::Object(loc));
        }
        let max_uses = match options.get("search_context_size").and_then(Value::as_str) {
            Some("low") => Some(1),
            Some("medium") => Some(5),
            Some("high") => Some(10),
            _ => None,
        };
        if let Some(n) = max_uses {
            tool.insert("max_uses".into(), Value::from(n));
        }
        self.tools
            .get_or_insert_with(Vec::new)
            .push(Tool::Value(Value::Object(tool)));
        Ok(())
    }

    fn context_management(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let cm = value(v, "context_management")?;
        let mapped = match cm {
            Value::Object(o) if o.contains_key("edits") => Some(Value::Object(o)),
            Value::Array(entries) => {
                let edits: Vec<Value> = entries
                    .into_iter()
                    .filter_map(|e| {
                        let e = e.as_object()?;
                        if e.get("type").and_then(Value::as_str) != Some("compaction") {
                            return None;
                        }
                        let mut edit = Map::new();
                        edit.insert("type".into(), "compact_20260112".into());
                        if let Some(t) = e.get("compact_threshold").and_then(Value::as_f64) {
                            edit.insert(
                                "trigger".into(),
                                serde_json::json!({"type": "input_tokens", "value": t as i64}),
                            );
                        }
                        for (k, v) in e {
                            if k != "type" && k != "compact_threshold" {
                                edit.insert(k.clone(), v.clone());
                            }
                        }
                        Some(Value::Object(edit))
                    })
                    .collect();
                (!edits.is_empty()).then(|| serde_json::json!({ "edits": edits }))
            }
            _ => None,
        };
        let Some(mapped) = mapped else {
            return Ok(());
        };
        let edits = mapped.get("edits").and_then(Value::as_array);
        for edit in edits.into_iter().flatten() {
            match edit.get("type").and_then(Value::as_str) {
                Some("compact_20260112" | "compaction") => self.beta(COMPACT_BETA),
                _ => self.beta(CONTEXT_MANAGEMENT_BETA),
            }
        }
        self.set("context_management", Out::Value(mapped));
        Ok(())
    }
}

/// `max_tokens`: an integer as sent, a float rounded (half to even, as
/// Python), at least 1.
fn max_tokens(v: &RawValue, name: &str) -> Result<Value, Error> {
    let n: serde_json::Number = serde_json::from_str(v.get())
        .map_err(|_| Error::invalid(format!("'{name}' must be a number"), Some(name)))?;
    if n.is_i64() || n.is_u64() {
        return Ok(Value::Number(n));
    }
    let f = n.as_f64().unwrap_or(1.0);
    let rounded = f.round_ties_even();
    Ok(Value::from((rounded as i64).max(1)))
}

/// Python's `str.isspace()`.
fn is_space(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_whitespace)
}

/// Constraints Anthropic's structured outputs cannot enforce, and how
/// LiteLLM notes them in the description instead.
const CONSTRAINTS: &[(&str, &str)] = &[
    ("minItems", "minimum number of items: "),
    ("maxItems", "maximum number of items: "),
    ("uniqueItems", "all array items must be unique"),
    ("contains", "array must contain an item matching: "),
    ("minContains", "minimum number of matching items: "),
    ("maxContains", "maximum number of matching items: "),
    ("prefixItems", "leading items must match, in order: "),
    ("minimum", "minimum value: "),
    ("maximum", "maximum value: "),
    ("exclusiveMinimum", "exclusive minimum value: "),
    ("exclusiveMaximum", "exclusive maximum value: "),
    ("multipleOf", "must be a multiple of "),
    ("minLength", "minimum length: "),
    ("maxLength", "maximum length: "),
    ("minProperties", "minimum number of properties: "),
    ("maxProperties", "maximum number of properties: "),
    (
        "patternProperties",
        "properties whose names match each pattern must satisfy: ",
    ),
    ("propertyNames", "property names must satisfy: "),
    ("dependentRequired", "dependent required properties: "),
    ("dependentSchemas", "dependent schemas: "),
    (
        "unevaluatedProperties",
        "unevaluated properties must satisfy: ",
    ),
    ("if", "conditional (if): "),
    ("then", "conditional (then): "),
    ("else", "conditional (else): "),
    ("not", "must not match: "),
];

/// LiteLLM's `filter_anthropic_output_schema` (see the parent module for
/// what is left out).
fn filter_output_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let enforced_min_items = map
        .get("minItems")
        .and_then(Value::as_u64)
        .is_some_and(|n| n <= 1);
    let unsupported = |k: &str| {
        CONSTRAINTS.iter().any(|(c, _)| *c == k) && !(k == "minItems" && enforced_min_items)
    };
    let mut notes: Vec<String> = vec![];
    for (field, label) in CONSTRAINTS {
        let Some(v) = map.get(*field) else {
            continue;
        };
        if !unsupported(field) || *v == Value::Bool(false) {
            continue;
        }
        // A label with no `{}` (uniqueItems) takes no value.
        let value = if label.ends_with(": ") || label.ends_with("of ") {
            python_str(v)
        } else {
            String::new()
        };
        notes.push(format!("{label}{value}"));
    }
    let mut out = Map::new();
    if !notes.is_empty() {
        let note = format!("Note: {}.", notes.join(", "));
        let description = match map.get("description").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => format!("{d} {note}"),
            _ => note,
        };
        out.insert("description".into(), Value::String(description));
    }
    for (k, v) in map {
        if unsupported(k) || (k == "description" && out.contains_key("description")) {
            continue;
        }
        match (k.as_str(), v) {
            ("properties" | "$defs" | "definitions", Value::Object(inner)) => {
                let filtered = inner
                    .iter()
                    .map(|(n, s)| (n.clone(), filter_output_schema(s)))
                    .collect();
                out.insert(k.clone(), Value::Object(filtered));
            }
            ("items", Value::Object(_)) => {
                out.insert(k.clone(), filter_output_schema(v));
            }
            ("anyOf" | "oneOf", Value::Array(items)) => {
                let entry = out.entry("anyOf").or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(list) = entry {
                    list.extend(items.iter().map(filter_output_schema));
                }
            }
            ("allOf", Value::Array(items)) => {
                out.insert(
                    k.clone(),
                    Value::Array(items.iter().map(filter_output_schema).collect()),
                );
            }
            ("$ref", Value::String(r))
                if r.starts_with("/$defs/") || r.starts_with("/definitions/") =>
            {
                out.insert(k.clone(), Value::String(format!("#{r}")));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let is_object = match out.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => false,
    };
    if is_object {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Python's `str()` of a JSON value, as LiteLLM formats a constraint.
fn python_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => super::super::python_json(v),
    }
}
