//! What the mock reads of a chat request, and the 400 it answers to one it
//! cannot read.

use super::*;

#[derive(Deserialize)]
pub(super) struct ChatRequest {
    pub(super) model: String,
    pub(super) messages: Vec<Message>,
    #[serde(default)]
    pub(super) stream: Option<bool>,
    #[serde(default)]
    pub(super) n: Option<usize>,
    #[serde(default)]
    pub(super) stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
pub(super) struct StreamOptions {
    #[serde(default)]
    pub(super) include_usage: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct Message {
    #[serde(default)]
    pub(super) content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Content {
    Text(String),
    Parts(Vec<Part>),
    /// Anything else (a number, an object): no text.
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
pub(super) struct Part {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
}

impl Message {
    /// The text of the message: string content, or text parts joined by
    /// `"\n"`; images and other parts are skipped.
    pub(super) fn text(&self) -> Cow<'_, str> {
        match &self.content {
            Some(Content::Text(t)) => Cow::Borrowed(t),
            Some(Content::Parts(parts)) => {
                let mut texts = parts
                    .iter()
                    .filter(|p| p.kind.as_deref().is_none_or(|k| k == "text"))
                    .filter_map(|p| p.text.as_deref());
                match (texts.next(), texts.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(one), None) => Cow::Borrowed(one),
                    (Some(a), Some(b)) => {
                        let mut s = format!("{a}\n{b}");
                        for t in texts {
                            s.push('\n');
                            s.push_str(t);
                        }
                        Cow::Owned(s)
                    }
                }
            }
            Some(Content::Other(_)) | None => Cow::Borrowed(""),
        }
    }
}

/// Why a body is not a chat request, in OpenAI's words where it has some.
pub(super) fn invalid_request_message(body: &[u8], err: &serde_json::Error) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Err(_) => "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)".to_owned(),
        Ok(v) if !v.is_object() => "Invalid request body: expected a JSON object.".to_owned(),
        Ok(v) if v.get("model").is_none() => "you must provide a model parameter".to_owned(),
        Ok(v) if v.get("messages").is_none() => {
            "Missing required parameter: 'messages'.".to_owned()
        }
        Ok(_) => format!("Invalid request: {err}"),
    }
}

pub(super) fn openai_error(message: &str, code: Option<&str>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        param: Option<&'static str>,
        code: Option<&'a str>,
    }
    to_json(&Body {
        error: Inner {
            message,
            kind: "invalid_request_error",
            param: None,
            code,
        },
    })
}
