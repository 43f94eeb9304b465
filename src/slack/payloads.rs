//! Serde types for what Slack sends us: slash commands, Events API envelopes and
//! interactivity payloads. Parsing only; what to *do* with them lives in `bot/`.
//!
//! Callers must verify the request signature on the raw bytes before calling any
//! `parse` here (see `slack::signature`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{BotId, ChannelId, EventId, TeamId, UserId};

/// Why a body could not be parsed. Reasons are short and never quote the body, which may
/// hold user text or a deprecated verification token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("form body is malformed: {0}")]
    Form(String),
    #[error("JSON body is malformed: {0}")]
    Json(String),
    #[error("form field `payload` is missing")]
    MissingPayload,
    #[error("form field `payload` is not JSON: {0}")]
    PayloadNotJson(String),
    #[error("payload has no string field `type`")]
    MissingType,
    #[error("unsupported interaction type `{0}`")]
    UnsupportedInteraction(String),
}

/// Longest `type` string we echo back in an error, so junk input can't bloat logs.
const MAX_ECHOED_TYPE_LEN: usize = 40;

fn echo_type(kind: &str) -> String {
    kind.chars().take(MAX_ECHOED_TYPE_LEN).collect()
}

fn json_error(err: &serde_json::Error) -> String {
    // serde_json's Display is short ("missing field `team_id` at line 1 column 20"); the
    // position is useful and contains no body content.
    err.to_string()
}

fn type_of(value: &Value) -> Result<&str, PayloadError> {
    value
        .get("type")
        .and_then(Value::as_str)
        .ok_or(PayloadError::MissingType)
}

/// A `response_url`. Whoever holds one can post into the conversation (up to 5 times in
/// 30 minutes), so `Debug` hides it to keep it out of logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ResponseUrl(String);

impl ResponseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseUrl([REDACTED])")
    }
}

// ---------------------------------------------------------------------------------------
// Slash commands
// ---------------------------------------------------------------------------------------

/// A slash-command invocation (SLACK.md §2.5). Names (`user_name`, `team_domain`) and the
/// deprecated `token` are deliberately not kept: we act on ids only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlashCommand {
    pub team_id: TeamId,
    pub channel_id: ChannelId,
    pub user_id: UserId,
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub response_url: ResponseUrl,
    pub trigger_id: String,
    #[serde(default)]
    pub enterprise_id: Option<String>,
    #[serde(default)]
    pub api_app_id: Option<String>,
    #[serde(default)]
    pub channel_name: Option<String>,
}

impl SlashCommand {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let cmd: SlashCommand =
            serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))?;
        Ok(cmd.without_empty_fields())
    }

    /// The same fields as a JSON object of strings, as Socket Mode's `slash_commands`
    /// envelope carries them.
    pub fn from_value(value: Value) -> Result<Self, PayloadError> {
        let cmd: SlashCommand =
            serde_json::from_value(value).map_err(|e| PayloadError::Json(json_error(&e)))?;
        Ok(cmd.without_empty_fields())
    }

    fn without_empty_fields(mut self) -> Self {
        // Slack sends `enterprise_id=` (empty) outside Enterprise Grid; that means "none".
        self.enterprise_id = self.enterprise_id.filter(|s| !s.is_empty());
        self.api_app_id = self.api_app_id.filter(|s| !s.is_empty());
        self.channel_name = self.channel_name.filter(|s| !s.is_empty());
        self
    }
}

/// True when the form body is Slack's `ssl_check=1` probe (SLACK.md §2.4). The caller
/// should answer 200 and dispatch nothing — in particular not look at a `payload` field.
pub fn is_ssl_check(body: &[u8]) -> bool {
    form::urlencoded_pairs(body).any(|(k, v)| k == "ssl_check" && v == "1")
}

mod form {
    /// Lenient pair iterator: malformed pairs are skipped rather than failing, because
    /// callers only probe for one field.
    pub fn urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .unwrap_or_default()
            .into_iter()
    }
}

// ---------------------------------------------------------------------------------------
// Events API
// ---------------------------------------------------------------------------------------

/// The outer JSON object Slack POSTs to the events URL (SLACK.md §2.4, §2.6).
#[derive(Debug, Clone, PartialEq)]
pub enum EventEnvelope {
    UrlVerification {
        challenge: String,
    },
    /// Boxed: it is much larger than the other variants.
    EventCallback(Box<EventCallback>),
    /// Slack dropped deliveries for this workspace (30,000 events/hour exceeded).
    AppRateLimited {
        team_id: Option<TeamId>,
        minute_rate_limited: Option<i64>,
    },
    /// An envelope type we don't know; ack it and move on rather than answer 400.
    Other {
        kind: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventCallback {
    pub team_id: TeamId,
    /// Set in an Enterprise Grid org.
    pub enterprise_id: Option<String>,
    pub api_app_id: Option<String>,
    /// The installation(s) the event is for (Slack sends one; see
    /// `apps.event.authorizations.list` for the rest).
    pub authorizations: Vec<Authorization>,
    /// Globally unique per event; the inbox dedupe key (Slack retries reuse it).
    pub event_id: EventId,
    /// Epoch seconds when the event was dispatched.
    pub event_time: i64,
    pub event: InnerEvent,
    /// The inner event exactly as received, for the fields of event types cusp does not
    /// model.
    pub raw_event: Value,
}

/// One entry of an event's `authorizations`: which installation may see it. For an
/// org-wide install `team_id` is absent and `is_enterprise_install` true.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Authorization {
    #[serde(default)]
    pub enterprise_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub is_enterprise_install: bool,
}

impl EventCallback {
    /// The installation this event is for: `(enterprise id, team id)` from its first
    /// authorization, falling back to the envelope's own fields. The team is the
    /// workspace whose data the event belongs to.
    pub fn installation(&self) -> (Option<&str>, &str) {
        let first = self.authorizations.first();
        let enterprise = first
            .and_then(|a| a.enterprise_id.as_deref())
            .or(self.enterprise_id.as_deref())
            .filter(|e| !e.is_empty());
        let team = first
            .and_then(|a| a.team_id.as_deref())
            .filter(|t| !t.is_empty())
            .unwrap_or(self.team_id.as_str());
        (enterprise, team)
    }
}

#[derive(Deserialize)]
struct RawCallback {
    team_id: TeamId,
    #[serde(default)]
    enterprise_id: Option<String>,
    #[serde(default)]
    api_app_id: Option<String>,
    #[serde(default)]
    authorizations: Vec<Authorization>,
    event_id: EventId,
    event_time: i64,
    event: Value,
}

#[derive(Deserialize)]
struct RawRateLimited {
    #[serde(default)]
    team_id: Option<TeamId>,
    #[serde(default)]
    minute_rate_limited: Option<i64>,
}

impl EventEnvelope {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| PayloadError::Json(json_error(&e)))?;
        Self::from_value(value)
    }

    /// Same as [`EventEnvelope::parse`] for an already-decoded body (e.g. from the inbox).
    pub fn from_value(value: Value) -> Result<Self, PayloadError> {
        // Dispatch on `type` by hand: serde's internally tagged enums can't keep an
        // unknown tag as data, and unknown envelopes must not fail.
        let kind = type_of(&value)?.to_owned();
        let json = |e: serde_json::Error| PayloadError::Json(json_error(&e));
        match kind.as_str() {
            "url_verification" => {
                #[derive(Deserialize)]
                struct Raw {
                    challenge: String,
                }
                let raw: Raw = serde_json::from_value(value).map_err(json)?;
                Ok(Self::UrlVerification {
                    challenge: raw.challenge,
                })
            }
            "event_callback" => {
                let raw: RawCallback = serde_json::from_value(value).map_err(json)?;
                let event = InnerEvent::from_value(&raw.event)?;
                Ok(Self::EventCallback(Box::new(EventCallback {
                    team_id: raw.team_id,
                    enterprise_id: raw.enterprise_id,
                    api_app_id: raw.api_app_id,
                    authorizations: raw.authorizations,
                    event_id: raw.event_id,
                    event_time: raw.event_time,
                    event,
                    raw_event: raw.event,
                })))
            }
            "app_rate_limited" => {
                let raw: RawRateLimited = serde_json::from_value(value).map_err(json)?;
                Ok(Self::AppRateLimited {
                    team_id: raw.team_id,
                    minute_rate_limited: raw.minute_rate_limited,
                })
            }
            _ => Ok(Self::Other {
                kind: echo_type(&kind),
            }),
        }
    }
}

/// The `event` object inside an `event_callback`.
#[derive(Debug, Clone, PartialEq)]
pub enum InnerEvent {
    Message(MessageEvent),
    AppMention(AppMentionEvent),
    /// Any other event type (`member_joined_channel`, `app_uninstalled`, …); the raw JSON
    /// stays available on [`EventCallback::raw_event`].
    Other {
        kind: String,
    },
}

impl InnerEvent {
    pub fn from_value(value: &Value) -> Result<Self, PayloadError> {
        let json = |e: serde_json::Error| PayloadError::Json(format!("event: {}", json_error(&e)));
        match type_of(value)? {
            "message" => Ok(Self::Message(
                MessageEvent::deserialize(value).map_err(json)?,
            )),
            "app_mention" => Ok(Self::AppMention(
                AppMentionEvent::deserialize(value).map_err(json)?,
            )),
            other => Ok(Self::Other {
                kind: echo_type(other),
            }),
        }
    }
}

/// A `message` event (any subtype). Edits and deletions carry the interesting data in
/// nested `message`/`previous_message` objects, which we don't model: cusp ignores them.
/// `Serialize` writes the modelled fields only, which is what the inbox keeps.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MessageEvent {
    pub channel: ChannelId,
    #[serde(default)]
    pub user: Option<UserId>,
    #[serde(default)]
    pub text: String,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub bot_id: Option<BotId>,
    #[serde(default)]
    pub hidden: Option<bool>,
    /// `channel`, `group`, `im` or `mpim`.
    #[serde(default)]
    pub channel_type: Option<String>,
}

impl MessageEvent {
    /// Whether this is something a person just wrote that cusp should consider
    /// (SLACK.md §2.7). Rules, in order:
    ///
    /// * `hidden: true` (edits, deletions, `message_replied`) → no.
    /// * any `bot_id` → no, even without a subtype: other bots and our own posts.
    /// * `user` missing, or equal to our own bot user → no.
    /// * no subtype → yes (this includes ordinary thread replies, which have `thread_ts`).
    /// * `thread_broadcast` → **yes**: a thread reply the author also sent to the channel.
    ///   Slack delivers it once, with this subtype instead of a plain event, so skipping
    ///   it would lose the person's words.
    /// * `file_share` → **yes only if it has non-blank text**: the text is the person's
    ///   comment on the upload; a bare upload has nothing to coach on.
    /// * every other subtype (joins, topic changes, `me_message`, `bot_message`, …) → no.
    pub fn is_person_new_message(
        &self,
        own_bot_user_id: Option<&UserId>,
        own_bot_id: Option<&BotId>,
    ) -> bool {
        // Our own posts are recognised by either id (Slack sets both on messages sent with
        // a bot token); checked separately from "any bot" so the rule survives if we ever
        // decide to listen to other bots.
        let is_own = self.bot_id.as_ref().is_some_and(|b| Some(b) == own_bot_id)
            || self
                .user
                .as_ref()
                .is_some_and(|u| Some(u) == own_bot_user_id);
        if is_own || self.bot_id.is_some() || self.hidden == Some(true) {
            return false;
        }
        if self.user.is_none() {
            return false;
        }
        match self.subtype.as_deref() {
            None | Some("thread_broadcast") => true,
            Some("file_share") => !self.text.trim().is_empty(),
            Some(_) => false,
        }
    }

    /// True for a reply inside a thread (not the thread's parent message).
    pub fn is_thread_reply(&self) -> bool {
        self.thread_ts
            .as_deref()
            .is_some_and(|parent| parent != self.ts)
    }
}

/// An `app_mention` event: someone wrote `@cusp …`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AppMentionEvent {
    pub channel: ChannelId,
    pub user: UserId,
    #[serde(default)]
    pub text: String,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Interactivity
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TeamRef {
    pub id: TeamId,
    /// Set in an Enterprise Grid org.
    #[serde(default)]
    pub enterprise_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserRef {
    pub id: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChannelRef {
    pub id: ChannelId,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageRef {
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
}

/// One element the user interacted with. Buttons carry `value`; checkboxes and selects
/// carry `selected_options`/`selected_option` (kept raw).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Action {
    pub action_id: String,
    #[serde(default)]
    pub block_id: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub selected_options: Option<Vec<Value>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockActions {
    pub team: TeamRef,
    pub user: UserRef,
    #[serde(default)]
    pub channel: Option<ChannelRef>,
    #[serde(default)]
    pub message: Option<MessageRef>,
    /// Where the clicked element lives (message, view, …); kept raw.
    #[serde(default)]
    pub container: Option<Value>,
    pub trigger_id: String,
    #[serde(default)]
    pub response_url: Option<ResponseUrl>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ViewState {
    /// `{ block_id: { action_id: { type, value | selected_options | … } } }`.
    #[serde(default)]
    pub values: Value,
}

impl ViewState {
    /// The typed text of a `plain_text_input`, if the field was filled in.
    pub fn text_value(&self, block_id: &str, action_id: &str) -> Option<&str> {
        self.values
            .get(block_id)?
            .get(action_id)?
            .get("value")?
            .as_str()
    }

    /// The `value` of the option chosen in a radio-button group or single select.
    pub fn selected_value(&self, block_id: &str, action_id: &str) -> Option<&str> {
        self.values
            .get(block_id)?
            .get(action_id)?
            .get("selected_option")?
            .get("value")?
            .as_str()
    }

    /// The `value`s of the options ticked in a checkboxes / multi-select element.
    pub fn selected_values(&self, block_id: &str, action_id: &str) -> Vec<&str> {
        self.values
            .get(block_id)
            .and_then(|b| b.get(action_id))
            .and_then(|a| a.get("selected_options"))
            .and_then(Value::as_array)
            .map(|opts| {
                opts.iter()
                    .filter_map(|o| o.get("value")?.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct View {
    pub id: String,
    #[serde(default)]
    pub callback_id: String,
    #[serde(default)]
    pub private_metadata: String,
    pub state: ViewState,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ViewSubmission {
    pub team: TeamRef,
    pub user: UserRef,
    pub view: View,
    #[serde(default)]
    pub trigger_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ViewClosed {
    pub team: TeamRef,
    pub user: UserRef,
    pub view: View,
    #[serde(default)]
    pub is_cleared: bool,
}

/// What the interactivity URL receives, as a JSON document in the form field `payload`.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractionPayload {
    BlockActions(BlockActions),
    ViewSubmission(ViewSubmission),
    ViewClosed(ViewClosed),
}

impl InteractionPayload {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let payload = form::urlencoded_pairs(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v)
            .ok_or(PayloadError::MissingPayload)?;
        let value: Value = serde_json::from_str(&payload)
            .map_err(|e| PayloadError::PayloadNotJson(json_error(&e)))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, PayloadError> {
        let kind = type_of(&value)?.to_owned();
        let json = |e: serde_json::Error| PayloadError::Json(json_error(&e));
        match kind.as_str() {
            "block_actions" => Ok(Self::BlockActions(
                serde_json::from_value(value).map_err(json)?,
            )),
            "view_submission" => Ok(Self::ViewSubmission(
                serde_json::from_value(value).map_err(json)?,
            )),
            "view_closed" => Ok(Self::ViewClosed(
                serde_json::from_value(value).map_err(json)?,
            )),
            other => Err(PayloadError::UnsupportedInteraction(echo_type(other))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/slack/",
                $name
            ))
        };
    }

    fn message(fixture: &str) -> MessageEvent {
        let EventEnvelope::EventCallback(cb) = EventEnvelope::parse(fixture.as_bytes()).unwrap()
        else {
            panic!("expected event_callback");
        };
        match cb.event {
            InnerEvent::Message(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn own() -> (UserId, BotId) {
        (
            UserId::parse("U_CUSP").unwrap(),
            BotId::parse("B_CUSP").unwrap(),
        )
    }

    #[test]
    fn slash_command_form_parses_ids_and_decodes_text() {
        let cmd = SlashCommand::parse(fixture!("slash_command.form").as_bytes()).unwrap();
        assert_eq!(cmd.team_id.as_str(), "T0123ABC");
        assert_eq!(cmd.channel_id.as_str(), "C024BE91L");
        assert_eq!(cmd.user_id.as_str(), "U2CERLKJA");
        assert_eq!(cmd.command, "/cusp");
        assert_eq!(cmd.text, "reflect on my last call & next steps");
        let url = cmd.response_url.as_str();
        assert!(url.starts_with("https://hooks.slack.com/commands/"));
        assert!(
            !format!("{cmd:?}").contains("hooks.slack.com"),
            "response_url is redacted"
        );
        assert_eq!(cmd.enterprise_id, None, "empty enterprise_id means none");
        assert_eq!(cmd.api_app_id.as_deref(), Some("A0CUSP123"));
        assert_eq!(cmd.channel_name.as_deref(), Some("deals"));
    }

    #[test]
    fn slash_command_without_text_defaults_to_empty() {
        let body =
            "team_id=T1&channel_id=C1&user_id=U1&command=%2Fcusp&response_url=x&trigger_id=y";
        assert_eq!(SlashCommand::parse(body.as_bytes()).unwrap().text, "");
    }

    #[test]
    fn slash_command_missing_field_is_named_without_echoing_the_body() {
        let body = "token=SECRETTOKEN&channel_id=C1&user_id=U1&command=%2Fcusp";
        let err = SlashCommand::parse(body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `team_id`"), "{err}");
        assert!(!err.contains("SECRETTOKEN"));
    }

    #[test]
    fn ssl_check_is_detected_only_when_set_to_one() {
        assert!(is_ssl_check(b"ssl_check=1&token=abc"));
        assert!(!is_ssl_check(b"ssl_check=0&token=abc"));
        assert!(!is_ssl_check(fixture!("slash_command.form").as_bytes()));
        assert!(!is_ssl_check(b"%%%not a form"));
    }

    #[test]
    fn url_verification_yields_the_challenge() {
        let env = EventEnvelope::parse(fixture!("url_verification.json").as_bytes()).unwrap();
        assert_eq!(
            env,
            EventEnvelope::UrlVerification {
                challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into()
            }
        );
    }

    #[test]
    fn channel_message_envelope_parses_dedupe_key_and_event() {
        let EventEnvelope::EventCallback(cb) =
            EventEnvelope::parse(fixture!("message_channels.json").as_bytes()).unwrap()
        else {
            panic!("expected event_callback");
        };
        assert_eq!(cb.team_id.as_str(), "T0123ABC");
        assert_eq!(cb.event_id.as_str(), "Ev0PV52K25");
        assert_eq!(cb.event_time, 1_700_000_123);
        assert_eq!(cb.api_app_id.as_deref(), Some("A0CUSP123"));
        assert_eq!(
            cb.raw_event["client_msg_id"],
            "5a1f0c3e-1b8e-4c9e-9d55-4f2f6e0a9b11"
        );
        let InnerEvent::Message(m) = cb.event else {
            panic!("expected message")
        };
        assert_eq!(m.user.as_ref().map(UserId::as_str), Some("U2CERLKJA"));
        assert_eq!(m.ts, "1700000123.000200");
        assert_eq!(m.channel_type.as_deref(), Some("channel"));
        let (u, b) = own();
        assert!(m.is_person_new_message(Some(&u), Some(&b)));
        assert!(!m.is_thread_reply());
    }

    #[test]
    fn bot_message_is_not_a_person_message() {
        let m = message(fixture!("message_bot.json"));
        let (u, b) = own();
        assert!(!m.is_person_new_message(Some(&u), Some(&b)));
        assert!(!m.is_person_new_message(None, None));
    }

    #[test]
    fn edited_message_is_hidden_and_ignored() {
        let m = message(fixture!("message_changed.json"));
        assert_eq!(m.subtype.as_deref(), Some("message_changed"));
        assert_eq!(m.hidden, Some(true));
        assert_eq!(m.user, None);
        assert!(!m.is_person_new_message(None, None));
    }

    #[test]
    fn thread_reply_is_a_person_message_in_a_thread() {
        let m = message(fixture!("message_thread_reply.json"));
        assert!(m.is_thread_reply());
        assert_eq!(m.thread_ts.as_deref(), Some("1700000123.000200"));
        let (u, b) = own();
        assert!(m.is_person_new_message(Some(&u), Some(&b)));
    }

    #[test]
    fn own_user_without_bot_id_is_ignored() {
        let mut m = message(fixture!("message_channels.json"));
        let (u, b) = own();
        m.user = Some(u.clone());
        assert!(!m.is_person_new_message(Some(&u), Some(&b)));
    }

    #[test]
    fn subtype_decisions_follow_the_documented_rules() {
        let mut m = message(fixture!("message_channels.json"));
        let (u, b) = own();
        m.subtype = Some("thread_broadcast".into());
        assert!(m.is_person_new_message(Some(&u), Some(&b)));
        m.subtype = Some("file_share".into());
        assert!(m.is_person_new_message(Some(&u), Some(&b)));
        m.text = "  ".into();
        assert!(!m.is_person_new_message(Some(&u), Some(&b)));
        for subtype in [
            "channel_join",
            "me_message",
            "channel_topic",
            "message_deleted",
        ] {
            m.subtype = Some(subtype.into());
            m.text = "hello".into();
            assert!(!m.is_person_new_message(Some(&u), Some(&b)), "{subtype}");
        }
    }

    #[test]
    fn app_mention_parses() {
        let env = EventEnvelope::parse(fixture!("app_mention.json").as_bytes()).unwrap();
        let EventEnvelope::EventCallback(cb) = env else {
            panic!("expected event_callback");
        };
        let InnerEvent::AppMention(m) = cb.event else {
            panic!("expected app_mention");
        };
        assert_eq!(m.user.as_str(), "U2CERLKJA");
        assert!(m.text.starts_with("<@U_CUSP>"));
        assert_eq!(m.thread_ts, None);
    }

    #[test]
    fn unknown_envelope_and_inner_types_do_not_fail() {
        let env = EventEnvelope::parse(br#"{"type":"brand_new_thing","x":1}"#).unwrap();
        assert_eq!(
            env,
            EventEnvelope::Other {
                kind: "brand_new_thing".into()
            }
        );
        let body = br#"{"type":"event_callback","team_id":"T1","event_id":"Ev1","event_time":1,
            "event":{"type":"member_joined_channel","user":"U1","channel":"C1"}}"#;
        let EventEnvelope::EventCallback(cb) = EventEnvelope::parse(body).unwrap() else {
            panic!("expected event_callback");
        };
        assert_eq!(
            cb.event,
            InnerEvent::Other {
                kind: "member_joined_channel".into()
            }
        );
    }

    #[test]
    fn app_rate_limited_parses() {
        let body = br#"{"token":"x","type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}"#;
        assert_eq!(
            EventEnvelope::parse(body).unwrap(),
            EventEnvelope::AppRateLimited {
                team_id: Some(TeamId::parse("T1").unwrap()),
                minute_rate_limited: Some(1_518_467_820)
            }
        );
    }

    #[test]
    fn malformed_envelopes_get_short_reasons() {
        assert!(matches!(
            EventEnvelope::parse(b"not json"),
            Err(PayloadError::Json(_))
        ));
        assert_eq!(EventEnvelope::parse(b"{}"), Err(PayloadError::MissingType));
        let err = EventEnvelope::parse(
            br#"{"type":"event_callback","event_id":"Ev1","event_time":1,"event":{}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing field `team_id`"), "{err}");
    }

    fn form_payload(json: &str) -> Vec<u8> {
        serde_urlencoded::to_string([("payload", json)])
            .unwrap()
            .into_bytes()
    }

    #[test]
    fn block_actions_payload_parses_button_click() {
        let body = form_payload(fixture!("block_actions.json"));
        let InteractionPayload::BlockActions(a) = InteractionPayload::parse(&body).unwrap() else {
            panic!("expected block_actions");
        };
        assert_eq!(a.team.id.as_str(), "T0123ABC");
        assert_eq!(a.user.id.as_str(), "U2CERLKJA");
        assert_eq!(a.channel.unwrap().id.as_str(), "C024BE91L");
        let msg = a.message.unwrap();
        assert_eq!(msg.ts, "1700000600.000700");
        assert_eq!(msg.thread_ts.as_deref(), Some("1700000123.000200"));
        assert_eq!(a.actions.len(), 1);
        assert_eq!(a.actions[0].action_id, "reflect_open");
        assert_eq!(a.actions[0].block_id.as_deref(), Some("reflect_prompt"));
        assert_eq!(a.actions[0].value.as_deref(), Some("msg:1700000123.000200"));
        assert_eq!(a.actions[0].kind.as_deref(), Some("button"));
        assert!(a.response_url.is_some());
    }

    #[test]
    fn view_submission_payload_exposes_state_values() {
        let body = form_payload(fixture!("view_submission.json"));
        let InteractionPayload::ViewSubmission(v) = InteractionPayload::parse(&body).unwrap()
        else {
            panic!("expected view_submission");
        };
        assert_eq!(v.view.callback_id, "reflection");
        assert_eq!(v.view.id, "V0CUSP0001");
        assert!(v.view.private_metadata.contains("C024BE91L"));
        assert_eq!(
            v.view.state.text_value("pain", "pain_input"),
            Some("Onboarding takes 6 weeks; they lose a quarter of revenue.")
        );
        assert_eq!(
            v.view.state.selected_values("moves", "moves_input"),
            ["impact", "next_step"]
        );
        assert_eq!(v.view.state.text_value("nope", "pain_input"), None);
        assert!(
            v.view
                .state
                .selected_values("pain", "pain_input")
                .is_empty()
        );
    }

    #[test]
    fn view_closed_parses() {
        let json = fixture!("view_submission.json").replacen("view_submission", "view_closed", 1);
        let parsed = InteractionPayload::parse(&form_payload(&json)).unwrap();
        assert!(matches!(
            parsed,
            InteractionPayload::ViewClosed(ViewClosed {
                is_cleared: false,
                ..
            })
        ));
    }

    #[test]
    fn interaction_errors_name_the_problem() {
        assert_eq!(
            InteractionPayload::parse(b"foo=bar"),
            Err(PayloadError::MissingPayload)
        );
        assert!(matches!(
            InteractionPayload::parse(b"payload=%7Bnope"),
            Err(PayloadError::PayloadNotJson(_))
        ));
        assert_eq!(
            InteractionPayload::parse(&form_payload(r#"{"type":"shortcut"}"#)),
            Err(PayloadError::UnsupportedInteraction("shortcut".into()))
        );
        let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(500));
        let Err(PayloadError::UnsupportedInteraction(kind)) =
            InteractionPayload::parse(&form_payload(&long))
        else {
            panic!("expected unsupported");
        };
        assert_eq!(kind.len(), MAX_ECHOED_TYPE_LEN);
    }
}
