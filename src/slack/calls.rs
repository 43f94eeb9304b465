//! Outbound Slack calls as typed values.
//!
//! `bot/` decides *what* to say and builds a [`SlackCall`]; the outbox stores it as JSON
//! ([`SlackCall::to_stored`]) and the worker hands it back to [`SlackClient::send`], which
//! turns it into the Web API method and form parameters. Method names, Slack message
//! metadata, DM resolution and history reads all live here, so nothing above `slack/`
//! writes Slack's wire format, and a stored call is never edited on its way out.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ids::{ChannelId, UserId};
use super::web_api::{SlackApiError, SlackClient};

/// Slack message metadata event type that carries the outbox's idempotency key.
pub const METADATA_EVENT_TYPE: &str = "cusp_outbox";
/// Messages scanned when looking for an earlier attempt's post.
const RECONCILE_SCAN_LIMIT: u32 = 200;
/// Slack errors that mean the call's effect is already there.
const ALREADY_DONE: &[&str] = &["already_reacted"];

/// A message's content, wherever it is posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Plain fallback text, shown in notifications and where blocks cannot be.
    pub text: String,
    /// Block Kit, built with `slack::blocks` (which enforces Slack's limits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Value>,
    /// Link previews: `Some(false)` turns them off; `None` leaves Slack's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfurl_links: Option<bool>,
    /// Media previews, as `unfurl_links`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfurl_media: Option<bool>,
}

impl Message {
    /// Text only, Slack's preview defaults.
    pub fn text(text: impl Into<String>) -> Message {
        Message {
            text: text.into(),
            blocks: Vec::new(),
            unfurl_links: None,
            unfurl_media: None,
        }
    }

    /// `text` as the fallback for `blocks`.
    pub fn blocks(text: impl Into<String>, blocks: Vec<Value>) -> Message {
        Message {
            blocks,
            ..Message::text(text)
        }
    }

    /// No previews of links in the message.
    pub fn without_link_previews(self) -> Message {
        Message {
            unfurl_links: Some(false),
            ..self
        }
    }

    /// No previews of links or media.
    pub fn without_previews(self) -> Message {
        Message {
            unfurl_links: Some(false),
            unfurl_media: Some(false),
            ..self
        }
    }

    fn write(&self, params: &mut Map<String, Value>) {
        params.insert("text".into(), json!(self.text));
        if !self.blocks.is_empty() {
            params.insert("blocks".into(), Value::Array(self.blocks.clone()));
        }
        if let Some(unfurl) = self.unfurl_links {
            params.insert("unfurl_links".into(), json!(unfurl));
        }
        if let Some(unfurl) = self.unfurl_media {
            params.insert("unfurl_media".into(), json!(unfurl));
        }
    }
}

/// One Web API call cusp makes. Serialised with a `call` tag; that tag is also how a row
/// written by this version is told apart from an older row's bare parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum SlackCall {
    /// `chat.postMessage` into a channel, or a thread when `thread_ts` is set.
    PostMessage {
        channel: ChannelId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_ts: Option<String>,
        #[serde(flatten)]
        message: Message,
    },
    /// `chat.postMessage` into a person's DM with the bot. Slack takes the user id as the
    /// channel of a post, so sending needs no lookup; reading the DM back (reconciliation)
    /// opens it with `conversations.open`, because history methods refuse user ids.
    PostDirect {
        user: UserId,
        #[serde(flatten)]
        message: Message,
    },
    /// `chat.postEphemeral`: a note only `user` sees, in `channel`.
    PostEphemeral {
        channel: ChannelId,
        user: UserId,
        text: String,
    },
    /// `reactions.add` on the message `timestamp` of `channel`; `name` without colons.
    AddReaction {
        channel: ChannelId,
        timestamp: String,
        name: String,
    },
    /// `chat.update` of one of the bot's messages.
    UpdateMessage {
        channel: ChannelId,
        ts: String,
        #[serde(flatten)]
        message: Message,
    },
    /// `views.open`: a modal, built with `slack::blocks::modal`. A trigger id expires
    /// three seconds after the click, so this one is sent directly, not through the outbox.
    OpenView { trigger_id: String, view: Value },
}

/// What a sent call gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The posted message's `ts` (`message_ts` for an ephemeral note), when there is one.
    pub ts: Option<String>,
}

/// A stored call that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredCallError {
    #[error("stored call is not valid JSON for `{method}`: {reason}")]
    Invalid { method: String, reason: String },
    #[error("stored call uses `{0}`, which this version does not send")]
    UnknownMethod(String),
}

impl SlackCall {
    /// The Web API method; Slack's rate limits are per method, and so are cusp's holds.
    pub fn method(&self) -> &'static str {
        match self {
            SlackCall::PostMessage { .. } | SlackCall::PostDirect { .. } => "chat.postMessage",
            SlackCall::PostEphemeral { .. } => "chat.postEphemeral",
            SlackCall::AddReaction { .. } => "reactions.add",
            SlackCall::UpdateMessage { .. } => "chat.update",
            SlackCall::OpenView { .. } => "views.open",
        }
    }

    /// Where the call lands (a user id for a DM), for logs; a view has no channel.
    pub fn destination(&self) -> Option<&str> {
        match self {
            SlackCall::PostMessage { channel, .. }
            | SlackCall::PostEphemeral { channel, .. }
            | SlackCall::AddReaction { channel, .. }
            | SlackCall::UpdateMessage { channel, .. } => Some(channel.as_str()),
            SlackCall::PostDirect { user, .. } => Some(user.as_str()),
            SlackCall::OpenView { .. } => None,
        }
    }

    /// The JSON the outbox keeps.
    pub fn to_stored(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads a stored call back: this version's tagged JSON, or the bare parameters an
    /// older version stored beside the method name (rows pending across an upgrade).
    pub fn from_stored(method: &str, payload: &str) -> Result<SlackCall, StoredCallError> {
        let invalid = |reason: String| StoredCallError::Invalid {
            method: method.to_owned(),
            reason,
        };
        let value: Value = serde_json::from_str(payload).map_err(|e| invalid(e.to_string()))?;
        if value.get("call").is_some() {
            return serde_json::from_value(value).map_err(|e| invalid(e.to_string()));
        }
        super::legacy_calls::from_params(method, value)
    }

    /// The form parameters of this call, with `key` in the metadata of a post.
    fn params(&self, key: Option<&str>) -> Map<String, Value> {
        let mut params = Map::new();
        let mut put = |name: &str, value: &str| {
            params.insert(name.into(), json!(value));
        };
        match self {
            SlackCall::PostMessage {
                channel, thread_ts, ..
            } => {
                put("channel", channel.as_str());
                if let Some(ts) = thread_ts {
                    put("thread_ts", ts);
                }
            }
            SlackCall::PostDirect { user, .. } => put("channel", user.as_str()),
            SlackCall::PostEphemeral {
                channel,
                user,
                text,
            } => {
                put("channel", channel.as_str());
                put("user", user.as_str());
                put("text", text);
            }
            SlackCall::AddReaction {
                channel,
                timestamp,
                name,
            } => {
                put("channel", channel.as_str());
                put("timestamp", timestamp);
                put("name", name);
            }
            SlackCall::UpdateMessage { channel, ts, .. } => {
                put("channel", channel.as_str());
                put("ts", ts);
            }
            SlackCall::OpenView { trigger_id, view } => {
                put("trigger_id", trigger_id);
                params.insert("view".into(), view.clone());
            }
        }
        match self {
            SlackCall::PostMessage { message, .. } | SlackCall::PostDirect { message, .. } => {
                message.write(&mut params);
                if let Some(key) = key {
                    params.insert("metadata".into(), metadata(key));
                }
            }
            SlackCall::UpdateMessage { message, .. } => message.write(&mut params),
            _ => {}
        }
        params
    }
}

/// Slack message metadata carrying an idempotency key.
fn metadata(key: &str) -> Value {
    json!({ "event_type": METADATA_EVENT_TYPE, "event_payload": { "key": key } })
}

/// A message read from a channel or thread history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryMessage {
    pub ts: String,
    /// The author; absent for some bot and system messages.
    pub user: Option<String>,
    pub text: Option<String>,
    /// Slack message metadata, as posted.
    pub metadata: Option<Value>,
}

impl HistoryMessage {
    /// `None` for an entry without a `ts`, which no message lacks.
    pub(super) fn from_value(value: &Value) -> Option<HistoryMessage> {
        let string = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(HistoryMessage {
            ts: string("ts")?,
            user: string("user"),
            text: string("text"),
            metadata: value.get("metadata").cloned(),
        })
    }

    /// The outbox idempotency key in this message's metadata, if cusp posted it.
    pub fn outbox_key(&self) -> Option<&str> {
        let metadata = self.metadata.as_ref()?;
        (metadata.get("event_type")?.as_str()? == METADATA_EVENT_TYPE)
            .then(|| metadata.get("event_payload")?.get("key")?.as_str())
            .flatten()
    }
}

impl SlackClient {
    /// Makes `call`. A post carries `idempotency_key` in its metadata, so that
    /// [`SlackClient::find_post`] can tell later whether it landed. A reaction that is
    /// already there counts as sent.
    pub async fn send(
        &self,
        call: &SlackCall,
        idempotency_key: &str,
    ) -> Result<Sent, SlackApiError> {
        match self
            .call(call.method(), &call.params(Some(idempotency_key)))
            .await
        {
            Ok(response) => Ok(Sent {
                ts: response
                    .get("ts")
                    .or_else(|| response.get("message_ts"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            Err(err) if err.code().is_some_and(|code| ALREADY_DONE.contains(&code)) => {
                Ok(Sent { ts: None })
            }
            Err(err) => Err(err),
        }
    }

    /// Opens a modal for the click that gave `trigger_id`.
    pub async fn open_view(&self, trigger_id: &str, view: Value) -> Result<(), SlackApiError> {
        let call = SlackCall::OpenView {
            trigger_id: trigger_id.to_owned(),
            view,
        };
        self.call(call.method(), &call.params(None)).await.map(drop)
    }

    /// The `ts` of a message that an earlier attempt at `call` posted with
    /// `idempotency_key`, looking at what was posted since `since_ms` (Unix ms). Only
    /// posts can be found; for any other call the answer is `None`.
    pub async fn find_post(
        &self,
        call: &SlackCall,
        idempotency_key: &str,
        since_ms: i64,
    ) -> Result<Option<String>, SlackApiError> {
        let dm;
        let (channel, thread_ts) = match call {
            SlackCall::PostMessage {
                channel, thread_ts, ..
            } => (channel.as_str(), thread_ts.as_deref()),
            SlackCall::PostDirect { user, .. } => {
                dm = self.open_dm(user.as_str()).await?;
                (dm.as_str(), None)
            }
            _ => return Ok(None),
        };
        // One second of slack for clock differences between us and Slack.
        let oldest_ms = since_ms.saturating_sub(1000).max(0);
        let oldest = format!("{}.{:06}", oldest_ms / 1000, (oldest_ms % 1000) * 1000);
        let messages = self
            .recent_messages(channel, thread_ts, &oldest, RECONCILE_SCAN_LIMIT)
            .await?;
        Ok(messages
            .into_iter()
            .find(|m| m.outbox_key() == Some(idempotency_key))
            .map(|m| m.ts))
    }

    /// The first message of the thread `thread_ts` in `channel`, if Slack still has it.
    pub async fn thread_parent(
        &self,
        channel: &str,
        thread_ts: &str,
    ) -> Result<Option<HistoryMessage>, SlackApiError> {
        let messages = self
            .recent_messages(channel, Some(thread_ts), thread_ts, 1)
            .await?;
        Ok(messages.into_iter().find(|m| m.ts == thread_ts))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn channel(id: &str) -> ChannelId {
        ChannelId::parse(id).unwrap()
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn post() -> SlackCall {
        SlackCall::PostMessage {
            channel: channel("C1"),
            thread_ts: Some("1.2".into()),
            message: Message::blocks("hi", vec![json!({"type": "divider"})])
                .without_link_previews(),
        }
    }

    #[test]
    fn a_stored_call_reads_back_unchanged() {
        let calls = [
            post(),
            SlackCall::PostDirect {
                user: user("U1"),
                message: Message::text("yours").without_previews(),
            },
            SlackCall::PostEphemeral {
                channel: channel("C1"),
                user: user("U1"),
                text: "only you".into(),
            },
            SlackCall::AddReaction {
                channel: channel("C1"),
                timestamp: "1.2".into(),
                name: "eyes".into(),
            },
            SlackCall::UpdateMessage {
                channel: channel("C1"),
                ts: "1.2".into(),
                message: Message::text("final"),
            },
            SlackCall::OpenView {
                trigger_id: "t".into(),
                view: json!({"type": "modal"}),
            },
        ];
        for call in calls {
            let stored = call.to_stored().unwrap();
            assert_eq!(
                SlackCall::from_stored(call.method(), &stored).unwrap(),
                call,
                "{stored}"
            );
        }
    }

    #[test]
    fn a_post_carries_its_key_in_metadata_and_nothing_else_does() {
        let params = post().params(Some("nudge:C1:1.2"));
        assert_eq!(params["channel"], "C1");
        assert_eq!(params["thread_ts"], "1.2");
        assert_eq!(params["text"], "hi");
        assert_eq!(params["unfurl_links"], false);
        assert!(!params.contains_key("unfurl_media"));
        assert_eq!(params["metadata"]["event_type"], METADATA_EVENT_TYPE);
        assert_eq!(params["metadata"]["event_payload"]["key"], "nudge:C1:1.2");
        let reaction = SlackCall::AddReaction {
            channel: channel("C1"),
            timestamp: "1.2".into(),
            name: "eyes".into(),
        };
        assert!(!reaction.params(Some("k")).contains_key("metadata"));
    }

    #[test]
    fn a_direct_post_is_addressed_to_the_user_id() {
        let call = SlackCall::PostDirect {
            user: user("U1"),
            message: Message::text("yours"),
        };
        assert_eq!(call.method(), "chat.postMessage");
        assert_eq!(call.params(None)["channel"], "U1");
        assert_eq!(call.destination(), Some("U1"));
    }

    #[test]
    fn a_stored_call_that_is_not_json_is_an_error_not_a_panic() {
        assert!(SlackCall::from_stored("chat.postMessage", "{not json").is_err());
        assert!(SlackCall::from_stored("chat.postMessage", r#"{"call": "teleport"}"#).is_err());
    }

    #[test]
    fn only_cusps_own_metadata_names_a_key() {
        let message = |metadata: Value| HistoryMessage {
            ts: "1.2".into(),
            user: None,
            text: None,
            metadata: Some(metadata),
        };
        assert_eq!(message(metadata("k1")).outbox_key(), Some("k1"));
        let other = json!({ "event_type": "other_app", "event_payload": { "key": "k1" } });
        assert_eq!(message(other).outbox_key(), None);
    }
}
