//! The message decoder's unit tests.

use super::*;
use crate::wire::completion::decode_completion;
use crate::wire::json::{MAX_DEPTH, check};

fn msg(json: &str) -> serde_json::Result<ChatMessage<'_>> {
    let raw: &RawValue = serde_json::from_str(json).unwrap();
    decode_message(raw, 1)
}

fn texts(json: &str) -> Vec<String> {
    msg(json).unwrap().texts().map(str::to_owned).collect()
}

#[test]
fn reads_every_text_field_in_order() {
    assert_eq!(
        texts(
            r#"{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"input_text","text":"b"},{"text":"c"},"d",{"type":"refusal","refusal":"e"},{"type":"image_url","image_url":{"url":"x"}},{"type":"weird","text":"f"}],"refusal":"g","tool_calls":[{"id":"1","type":"function","function":{"name":"n","arguments":"h"}},{"type":"custom","custom":{"name":"c","input":"i"}}],"function_call":{"name":"f","arguments":"j"},"reasoning_content":"k"}"#
        ),
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
    );
}

#[test]
fn escaped_keys_and_values_are_decoded() {
    let m = msg(r#"{"r\u006fle":"us\u0065r","con\u0074ent":"h\u0069"}"#).unwrap();
    assert_eq!(m.role.as_deref(), Some("user"));
    assert_eq!(m.texts().collect::<Vec<_>>(), ["hi"]);
}

#[test]
fn invalid_unicode_anywhere_is_an_error() {
    for bad in [
        r#"{"role":"user","content":"\ud800"}"#,
        r#"{"role":"user","content":[{"type":"image_url","image_url":{"url":"\ud800"}}]}"#,
        r#"{"role":"user","content":"x","name":"\udc00"}"#,
        r#"{"role":"user","content":"x","\ud800":1}"#,
    ] {
        assert!(msg(bad).is_err(), "{bad}");
    }
    assert!(msg(r#"{"role":"user","content":"\ud83d\ude00"}"#).is_ok());
}

#[test]
fn nesting_is_bounded() {
    let nested = |n: usize| {
        format!(
            r#"{{"role":"user","content":[{{"type":"image_url","image_url":{}1{}}}]}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    // The message is level 1 here; its list 2, the part 3, then n levels.
    assert!(msg(&nested(MAX_DEPTH - 3)).is_ok());
    let err = msg(&nested(MAX_DEPTH - 2)).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
    assert!(msg(&nested(100_000)).is_err());
}

#[test]
fn duplicate_read_keys_are_errors() {
    for bad in [
        r#"{"role":"user","content":"a","content":"b"}"#,
        r#"{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}"#,
        r#"{"role":"user","tool_calls":[{"function":{"arguments":"a","arguments":"b"}}]}"#,
    ] {
        assert!(
            msg(bad).unwrap_err().to_string().contains("duplicate key"),
            "{bad}"
        );
    }
}

#[test]
fn keys_are_read_as_a_case_insensitive_decoder_reads_them() {
    let m = msg(r#"{"ROLE":"user","Content":"a"}"#).unwrap();
    assert_eq!(m.texts().collect::<Vec<_>>(), ["a"]);
    for bad in [
        r#"{"role":"user","content":"a","Content":"b"}"#,
        r#"{"role":"user","content":"a","refusal":"b","REFU\u017fAL":"c"}"#,
        r#"{"role":"user","content":[{"type":"text","text":"a","TEXT":"b"}]}"#,
    ] {
        assert!(
            msg(bad).unwrap_err().to_string().contains("duplicate key"),
            "{bad}"
        );
    }
}

#[test]
fn unreadable_shapes_are_recorded() {
    for (json, what) in [
        (
            r#"{"role":"user","content":[{"type":"mystery"}]}"#,
            "mystery",
        ),
        (
            r#"{"role":"user","content":[{"type":"text","text":{"v":"x"}}]}"#,
            "no string text",
        ),
        (r#"{"role":"user","content":[5]}"#, "not an object"),
        (r#"{"role":"user","content":[{"image_url":{}}]}"#, "neither"),
        (
            r#"{"role":"user","tool_calls":[{"function":{"arguments":{"a":1}}}]}"#,
            "not a string",
        ),
        (r#"{"role":"user","tool_calls":"x"}"#, "not a list"),
        (r#"{"role":"user","refusal":1}"#, "'refusal'"),
        (
            r#"{"role":"user","content":[{"type":"image_url","text":1}]}"#,
            "'image_url'",
        ),
    ] {
        let m = msg(json).unwrap();
        assert!(
            m.unread.iter().any(|u| u.contains(what)),
            "{json}: {:?}",
            m.unread
        );
    }
    let m = msg(r#"{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}},{"type":"input_audio","input_audio":{}}]}"#).unwrap();
    assert!(m.unread.is_empty());
    assert_eq!(
        m.opaque_parts().collect::<Vec<_>>(),
        ["image_url", "input_audio"]
    );
}

#[test]
fn completions() {
    let body = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"a"}],"refusal":"b","reasoning_content":"c"},"logprobs":null},{"message":{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f","arguments":"d"}}]},"logprobs":{"content":[]}}],"usage":{}}"#;
    let choices = decode_completion(body).unwrap().unwrap();
    let texts: Vec<Vec<&str>> = choices
        .iter()
        .map(|c| c.message.as_ref().unwrap().texts().collect())
        .collect();
    assert_eq!(texts, [vec!["a", "b", "c"], vec!["d"]]);
    assert_eq!(
        choices.iter().map(|c| c.logprobs).collect::<Vec<_>>(),
        [false, true]
    );
    assert!(
        decode_completion(br#"{"choices":[{"text":"legacy"}]}"#)
            .unwrap()
            .unwrap()[0]
            .message
            .is_none()
    );
    assert!(decode_completion(br#"{"object":"x"}"#).unwrap().is_none());
    assert!(decode_completion(br#"[]"#).is_err());
    assert!(decode_completion(br#"{"choices":[],"x":"\ud800"}"#).is_err());
    assert!(
        decode_completion(br#"{"choices":[{"message":{"content":"a","content":"b"}}]}"#).is_err()
    );
}

#[test]
fn whole_documents_are_checked() {
    assert!(check(r#"{"a":[1,{"b":"c"}]}"#, 0).is_ok());
    assert!(check(r#"{"a":"\ud800"}"#, 0).is_err());
    assert!(
        check(
            &format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)),
            0
        )
        .is_ok()
    );
    assert!(
        check(
            &format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1)),
            0
        )
        .is_err()
    );
}
