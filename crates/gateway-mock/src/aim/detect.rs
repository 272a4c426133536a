//! The detector (e-mail addresses) and the answers it leads to: block,
//! anonymize with numbered placeholders, monitor; Aim's and Cato's payloads.

use super::*;

#[derive(Serialize)]
pub(super) struct AnalyzeAnswer<'a> {
    pub(super) analysis_result: AnalysisResult<'a>,
    pub(super) required_action: RequiredAction<'a>,
    pub(super) redacted_chat: Option<RedactedChat<'a>>,
}

#[derive(Serialize)]
pub(super) struct AnalysisResult<'a> {
    pub(super) analysis_time_ms: u64,
    pub(super) policy_drill_down: PolicyDrillDown<'a>,
    pub(super) last_message_entities: [(); 0],
    pub(super) session_entities: [(); 0],
}

#[derive(Serialize)]
pub(super) struct PolicyDrillDown<'a> {
    #[serde(rename = "PII")]
    pub(super) pii: Detections<'a>,
}

#[derive(Serialize)]
pub(super) struct Detections<'a> {
    pub(super) detections: [Detection<'a>; 1],
}

#[derive(Serialize)]
pub(super) struct Detection<'a> {
    pub(super) message: &'a str,
}

#[derive(Serialize)]
pub(super) struct RequiredAction<'a> {
    pub(super) action_type: &'static str,
    pub(super) policy_name: &'static str,
    pub(super) detection_message: &'a str,
}

#[derive(Serialize)]
pub(super) struct RedactedChat<'a> {
    pub(super) all_redacted_messages: &'a [Scanned],
    pub(super) redacted_new_message: Option<&'a Scanned>,
}

/// One message as the detector sees it: Aim's `{role, content}`, or a Cato
/// message (any role, a null content, text in its tool calls too).
#[derive(Clone, Debug, Serialize)]
pub(super) struct Scanned {
    pub(super) role: String,
    pub(super) content: Option<String>,
    /// Text outside `content` (Cato's tool call arguments): scanned, never
    /// redacted (Cato redacts `content` only).
    #[serde(skip)]
    pub(super) extra: String,
}

impl From<AimMessage> for Scanned {
    fn from(m: AimMessage) -> Self {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        Scanned {
            role: role.to_owned(),
            content: Some(m.content),
            extra: String::new(),
        }
    }
}

/// Cato's payload: `{"messages": [...]}` of objects with a string role and a
/// string or null content, whatever else they carry. None when it is not.
pub(super) fn parse_cato(body: &[u8]) -> Option<Vec<Scanned>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let list = value.get("messages")?.as_array()?;
    list.iter()
        .map(|m| {
            let m = m.as_object()?;
            let role = m.get("role")?.as_str()?.to_owned();
            let content = match m.get("content") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return None,
            };
            let mut extra = String::new();
            for key in ["tool_calls", "function_call"] {
                if let Some(v) = m.get(key) {
                    collect_strings(v, &mut extra);
                }
            }
            Some(Scanned {
                role,
                content,
                extra,
            })
        })
        .collect()
}

pub(super) fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push('\n');
            out.push_str(s);
        }
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(o) => o.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

pub(super) fn detection_message(address: &str) -> String {
    format!("\"{address}\" detected as email")
}

/// Numbers distinct addresses `[EMAIL_1]`, `[EMAIL_2]`, ... in order of first
/// appearance.
#[derive(Default)]
pub(super) struct Redactor {
    pub(super) seen: Vec<String>,
}

impl Redactor {
    /// `text` with every address replaced, or `None` when it has none.
    pub(super) fn redact(&mut self, text: &str) -> Option<String> {
        let found = find_emails(text);
        if found.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for range in found {
            out.push_str(&text[last..range.start]);
            let address = &text[range.clone()];
            let n = match self.seen.iter().position(|s| s == address) {
                Some(i) => i + 1,
                None => {
                    self.seen.push(address.to_owned());
                    self.seen.len()
                }
            };
            out.push_str(&format!("[EMAIL_{n}]"));
            last = range.end;
        }
        out.push_str(&text[last..]);
        Some(out)
    }
}

/// The body of the 200 answer to a valid analyze call.
pub(super) fn answer(
    opts: &AimOptions,
    headers: &HeaderMap,
    mut messages: Vec<Scanned>,
) -> Vec<u8> {
    let mode = &opts.mode;
    match mode {
        AimMode::Raw(raw) => return to_json(raw),
        AimMode::Pass => return CLEAN_ANSWER.into(),
        _ => {}
    }
    let hook = headers
        .get("x-aim-litellm-hook")
        .or_else(|| headers.get("x-cato-litellm-hook"))
        .and_then(|h| h.to_str().ok());
    // Output checks look at the model's answer only; input checks at all.
    let scanned = match hook {
        Some("output") => messages.len().saturating_sub(1)..messages.len(),
        _ => 0..messages.len(),
    };
    let first = messages[scanned.clone()].iter().find_map(|m| {
        [m.content.as_deref().unwrap_or_default(), m.extra.as_str()]
            .into_iter()
            .find_map(|text| {
                find_emails(text)
                    .first()
                    .map(|r| text[r.clone()].to_owned())
            })
    });
    let Some(address) = first else {
        return CLEAN_ANSWER.into();
    };
    let message = detection_message(&address);
    let action_type = match mode {
        AimMode::Block => "block_action",
        AimMode::Monitor => "monitor_action",
        _ => "anonymize_action",
    };
    if *mode == AimMode::Anonymize {
        let mut redactor = Redactor::default();
        for m in &mut messages[scanned] {
            if let Some(redacted) = m.content.as_deref().and_then(|c| redactor.redact(c)) {
                m.content = Some(redacted);
            }
        }
    }
    let result = AnalyzeAnswer {
        analysis_result: AnalysisResult {
            analysis_time_ms: 1,
            policy_drill_down: PolicyDrillDown {
                pii: Detections {
                    detections: [Detection { message: &message }],
                },
            },
            last_message_entities: [],
            session_entities: [],
        },
        required_action: RequiredAction {
            action_type,
            policy_name: "PII",
            detection_message: &message,
        },
        redacted_chat: (*mode == AimMode::Anonymize).then(|| RedactedChat {
            all_redacted_messages: &messages,
            redacted_new_message: messages.last(),
        }),
    };
    to_json(&result)
}
