//! The anthropic provider module's unit tests.

use super::*;

#[test]
fn model_lookup() {
    assert_eq!(
        ModelInfo::exact("claude-sonnet-4-5-20250929").map(|m| m.max_output_tokens),
        Some(64000)
    );
    assert_eq!(ModelInfo::exact("claude-mock-unknown"), None);
    // Aliases resolve for capabilities, not for max_tokens.
    assert_eq!(
        ModelInfo::find("claude-sonnet-4-6-20260301").map(|m| m.name),
        Some("claude-sonnet-4-6")
    );
    assert_eq!(
        ModelInfo::find("claude-opus-4.7").map(|m| m.name),
        Some("claude-opus-4-7")
    );
    assert_eq!(
        ModelInfo::find("claude-opus-4-6@v2").map(|m| m.name),
        Some("claude-opus-4-6")
    );
    assert!(ModelInfo::exact("claude-sonnet-4-6-20260301").is_none());
    assert!(!Caps::of("claude-opus-4-8").sampling());
    assert!(!Caps::of("my-fable-finetune").sampling());
    assert!(Caps::of("claude-mock-unknown").sampling());
    assert!(Caps::of("claude-mock-unknown").reasoning("claude-mock-unknown"));
    assert!(!Caps::of("claude-fable-5-1").forced_tool());
}
