//! Outbox rows written before calls were typed: a method name and its bare parameters
//! (`{"channel": …, "text": …}`). Rows still pending (or in doubt) when cusp is upgraded
//! are read into a [`SlackCall`] here, so they are delivered like new ones.
//!
//! Those versions wrote three methods. A post addressed to a user id (`U…`, or `W…` on
//! Enterprise Grid) was a personal DM: the only place cusp still reads a DM from an id's
//! first letter is this conversion of rows that said no more than that.

use serde::Deserialize;
use serde_json::Value;

use super::calls::{Message, SlackCall, StoredCallError};
use super::ids::{ChannelId, UserId};

#[derive(Deserialize)]
struct OldPost {
    channel: String,
    #[serde(default)]
    thread_ts: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    blocks: Vec<Value>,
    #[serde(default)]
    unfurl_links: Option<bool>,
    #[serde(default)]
    unfurl_media: Option<bool>,
}

#[derive(Deserialize)]
struct OldEphemeral {
    channel: ChannelId,
    user: UserId,
    text: String,
}

#[derive(Deserialize)]
struct OldReaction {
    channel: ChannelId,
    timestamp: String,
    name: String,
}

/// `params` as an older version stored them for `method`.
pub(super) fn from_params(method: &str, params: Value) -> Result<SlackCall, StoredCallError> {
    let invalid = |e: serde_json::Error| StoredCallError::Invalid {
        method: method.to_owned(),
        reason: e.to_string(),
    };
    match method {
        "chat.postMessage" => {
            let old: OldPost = serde_json::from_value(params).map_err(invalid)?;
            let message = Message {
                text: old.text,
                blocks: old.blocks,
                unfurl_links: old.unfurl_links,
                unfurl_media: old.unfurl_media,
            };
            let addressed_to_person = old.thread_ts.is_none()
                && (old.channel.starts_with('U') || old.channel.starts_with('W'));
            let bad_id = |e: crate::slack::ids::IdError| StoredCallError::Invalid {
                method: method.to_owned(),
                reason: e.to_string(),
            };
            Ok(if addressed_to_person {
                SlackCall::PostDirect {
                    user: UserId::parse(&old.channel).map_err(bad_id)?,
                    message,
                }
            } else {
                SlackCall::PostMessage {
                    channel: ChannelId::parse(&old.channel).map_err(bad_id)?,
                    thread_ts: old.thread_ts,
                    message,
                }
            })
        }
        "chat.postEphemeral" => {
            let old: OldEphemeral = serde_json::from_value(params).map_err(invalid)?;
            Ok(SlackCall::PostEphemeral {
                channel: old.channel,
                user: old.user,
                text: old.text,
            })
        }
        "reactions.add" => {
            let old: OldReaction = serde_json::from_value(params).map_err(invalid)?;
            Ok(SlackCall::AddReaction {
                channel: old.channel,
                timestamp: old.timestamp,
                name: old.name,
            })
        }
        other => Err(StoredCallError::UnknownMethod(other.to_owned())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(method: &str, params: Value) -> SlackCall {
        SlackCall::from_stored(method, &params.to_string()).unwrap()
    }

    #[test]
    fn an_old_threaded_prompt_becomes_a_post_with_the_same_content() {
        let call = read(
            "chat.postMessage",
            json!({"channel": "C1", "thread_ts": "1.2", "text": "hi",
                   "blocks": [{"type": "divider"}], "unfurl_links": false}),
        );
        assert_eq!(
            call,
            SlackCall::PostMessage {
                channel: ChannelId::parse("C1").unwrap(),
                thread_ts: Some("1.2".into()),
                message: Message::blocks("hi", vec![json!({"type": "divider"})])
                    .without_link_previews(),
            }
        );
    }

    #[test]
    fn an_old_post_to_a_user_id_becomes_a_direct_message() {
        for user in ["U1", "W1"] {
            let call = read(
                "chat.postMessage",
                json!({"channel": user, "text": "yours"}),
            );
            assert!(matches!(call, SlackCall::PostDirect { .. }), "{call:?}");
        }
        let dm_channel = read("chat.postMessage", json!({"channel": "D1", "text": "x"}));
        assert!(matches!(dm_channel, SlackCall::PostMessage { .. }));
    }

    #[test]
    fn old_reactions_and_ephemeral_notes_are_read() {
        assert_eq!(
            read(
                "reactions.add",
                json!({"channel": "C1", "timestamp": "1.2", "name": "eyes"})
            ),
            SlackCall::AddReaction {
                channel: ChannelId::parse("C1").unwrap(),
                timestamp: "1.2".into(),
                name: "eyes".into()
            }
        );
        assert!(matches!(
            read(
                "chat.postEphemeral",
                json!({"channel": "C1", "user": "U1", "text": "x"})
            ),
            SlackCall::PostEphemeral { .. }
        ));
    }

    #[test]
    fn an_unknown_method_or_a_missing_field_is_an_error() {
        assert!(matches!(
            SlackCall::from_stored("chat.teleport", "{}"),
            Err(StoredCallError::UnknownMethod(_))
        ));
        assert!(SlackCall::from_stored("reactions.add", r#"{"channel": "C1"}"#).is_err());
    }
}
