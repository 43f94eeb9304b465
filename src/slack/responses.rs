//! Bodies cusp answers Slack's own requests with (a slash command's reply, a modal
//! submission's `response_action`), so that `bot/` chooses the words and `slack/` the
//! shape. The same bodies ride on Socket Mode acks.

use serde_json::{Value, json};

/// A slash command's answer that only the person who typed it sees.
pub fn ephemeral(text: &str, blocks: &[Value]) -> Value {
    json!({ "response_type": "ephemeral", "text": text, "blocks": blocks })
}

/// Keeps a submitted modal open with `message` under the input block `block_id`.
pub fn view_error(block_id: &str, message: &str) -> Value {
    json!({ "response_action": "errors", "errors": { block_id: message } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_shape_slack_documents() {
        let answer = ephemeral("hi", &[json!({"type": "divider"})]);
        assert_eq!(answer["response_type"], "ephemeral");
        assert_eq!(answer["text"], "hi");
        assert_eq!(answer["blocks"][0]["type"], "divider");
        let error = view_error("q0", "Write something");
        assert_eq!(error["response_action"], "errors");
        assert_eq!(error["errors"]["q0"], "Write something");
    }
}
