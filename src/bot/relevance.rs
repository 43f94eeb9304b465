//! Which Slack events cusp acts on, decided once, at the edge. An event that passes is
//! stored in the inbox under its [`EventKind`], with only the fields cusp reads; the inbox
//! worker dispatches on that kind and does not filter again.
//!
//! Pure: no IO, so every rule is tested here.

use crate::slack::ids::BotIdentity;
use crate::slack::payloads::{AppMentionEvent, EventEnvelope, InnerEvent, MessageEvent};

/// The inbox `kind` of rows stored before the edge kept the checked kind: the whole
/// envelope, to be parsed and filtered by the worker. Such rows are still read.
pub const LEGACY_KIND: &str = "event_callback";

/// What an inbox row holds, named in its `kind` column.
///
/// `app_uninstalled` and `tokens_revoked` are not inbox kinds: they are about the
/// installation itself, which may already be gone when a worker would run, so the edge
/// handles them before it resolves the workspace (`server::events::accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Message,
    AppMention,
}

impl EventKind {
    /// Every kind, for tests that check the names round-trip.
    pub const ALL: [EventKind; 2] = [EventKind::Message, EventKind::AppMention];

    /// The inbox `kind` column, and the `type` label of `cusp_events_received_total`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::AppMention => "app_mention",
        }
    }

    pub fn from_stored(kind: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// An event that passed [`classify`]: one the inbox worker handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedEvent {
    /// A person's new message that does not mention cusp.
    Message(MessageEvent),
    /// Someone other than cusp wrote `@cusp …`.
    AppMention(AppMentionEvent),
}

/// Why a stored inbox row could not be read back. Never quotes the payload (user text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredEventError {
    #[error("unknown inbox kind `{0}`")]
    UnknownKind(String),
    #[error("stored {kind} is not valid: {reason}")]
    Malformed { kind: &'static str, reason: String },
}

/// The one relevance filter. Kept: a person's new message (not ours, not another bot's,
/// not an edit, a deletion or a join; see `MessageEvent::is_person_new_message`) that
/// does not mention cusp, and a mention of cusp by anyone but cusp. A message that
/// mentions cusp is dropped because Slack also sends it as `app_mention`, which answers
/// it. Everything else (unknown types included) is `None`: acknowledged, never stored.
pub fn classify(identity: &BotIdentity, event: InnerEvent) -> Option<CheckedEvent> {
    match event {
        InnerEvent::Message(message)
            if is_from_a_person(identity, &message) && !mentions_cusp(identity, &message) =>
        {
            Some(CheckedEvent::Message(message))
        }
        InnerEvent::AppMention(mention) if mention.user != identity.user_id => {
            Some(CheckedEvent::AppMention(mention))
        }
        _ => None,
    }
}

fn is_from_a_person(identity: &BotIdentity, message: &MessageEvent) -> bool {
    message.is_person_new_message(Some(&identity.user_id), identity.bot_id.as_ref())
}

fn mentions_cusp(identity: &BotIdentity, message: &MessageEvent) -> bool {
    message
        .text
        .contains(&format!("<@{}>", identity.user_id.as_str()))
}

impl CheckedEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            CheckedEvent::Message(_) => EventKind::Message,
            CheckedEvent::AppMention(_) => EventKind::AppMention,
        }
    }

    /// `channel:root_ts` of the thread the event belongs to (its own ts when it starts
    /// one). The inbox hands out a thread's events in arrival order across replicas, so a
    /// reply is decided after its root.
    pub fn thread_key(&self) -> String {
        let (channel, ts, thread_ts) = match self {
            CheckedEvent::Message(m) => (&m.channel, &m.ts, &m.thread_ts),
            CheckedEvent::AppMention(m) => (&m.channel, &m.ts, &m.thread_ts),
        };
        format!("{channel}:{}", thread_ts.as_deref().unwrap_or(ts))
    }

    /// What handling this event must not overlap with: its channel (a thread reply is
    /// handled after its root, which it reads back, and a channel's messages in the order
    /// they came) and the person it is about (their daily nudge limit, cooldowns and
    /// recent questions are read, then added to). The inbox worker handles events that
    /// share neither side by side.
    pub fn serial_keys(&self) -> (&str, Option<&str>) {
        match self {
            CheckedEvent::Message(message) => (
                message.channel.as_str(),
                message.user.as_ref().map(|u| u.as_str()),
            ),
            CheckedEvent::AppMention(mention) => {
                (mention.channel.as_str(), Some(mention.user.as_str()))
            }
        }
    }

    /// The inbox payload: the inner event's fields that cusp reads, as JSON. Not the
    /// envelope, nor the blocks, attachments and file details Slack sends with a message.
    pub fn to_payload(&self) -> Result<String, serde_json::Error> {
        match self {
            CheckedEvent::Message(message) => serde_json::to_string(message),
            CheckedEvent::AppMention(mention) => serde_json::to_string(mention),
        }
    }

    /// Reads an inbox row back: a checked kind is parsed, not filtered again. A row
    /// stored before the edge kept the kind ([`LEGACY_KIND`], the whole envelope) is
    /// parsed and classified as the edge does now; `Ok(None)` when it is not relevant.
    pub fn from_inbox(
        identity: &BotIdentity,
        kind: &str,
        payload: &str,
    ) -> Result<Option<CheckedEvent>, StoredEventError> {
        if kind == LEGACY_KIND {
            return legacy(identity, payload);
        }
        let kind = EventKind::from_stored(kind)
            .ok_or_else(|| StoredEventError::UnknownKind(kind.chars().take(40).collect()))?;
        let malformed = |err: serde_json::Error| StoredEventError::Malformed {
            kind: kind.as_str(),
            reason: without_content(&err),
        };
        let event = match kind {
            EventKind::Message => {
                CheckedEvent::Message(serde_json::from_str(payload).map_err(malformed)?)
            }
            EventKind::AppMention => {
                CheckedEvent::AppMention(serde_json::from_str(payload).map_err(malformed)?)
            }
        };
        Ok(Some(event))
    }
}

/// Where and what kind of JSON error: serde_json's message can quote a value it did not
/// expect, which here is a person's words.
fn without_content(err: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        err.classify(),
        err.line(),
        err.column()
    )
}

fn legacy(identity: &BotIdentity, payload: &str) -> Result<Option<CheckedEvent>, StoredEventError> {
    let envelope =
        EventEnvelope::parse(payload.as_bytes()).map_err(|err| StoredEventError::Malformed {
            kind: LEGACY_KIND,
            reason: err.to_string(),
        })?;
    match envelope {
        EventEnvelope::EventCallback(callback) => Ok(classify(identity, callback.event)),
        _ => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::slack::ids::{BotId, TeamId, UserId};

    fn identity() -> BotIdentity {
        BotIdentity {
            team_id: TeamId::parse("T1").unwrap(),
            user_id: UserId::parse("U_CUSP").unwrap(),
            bot_id: Some(BotId::parse("B_CUSP").unwrap()),
        }
    }

    fn inner(value: serde_json::Value) -> InnerEvent {
        InnerEvent::from_value(&value).unwrap()
    }

    fn message(extra: serde_json::Value) -> InnerEvent {
        let mut event = json!({
            "type": "message", "channel": "C1", "user": "U_SELLER",
            "text": "Acme wants a pilot", "ts": "1.000",
        });
        if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
            event.extend(extra.clone());
        }
        inner(event)
    }

    fn mention(user: &str) -> InnerEvent {
        inner(json!({
            "type": "app_mention", "channel": "C1", "user": user,
            "text": "<@U_CUSP> Acme wants a pilot", "ts": "1.000",
        }))
    }

    #[test]
    fn a_persons_message_is_kept_as_a_message() {
        let checked = classify(&identity(), message(json!({}))).unwrap();
        assert_eq!(checked.kind(), EventKind::Message);
    }

    #[test]
    fn bots_edits_joins_and_our_own_posts_are_dropped() {
        for extra in [
            json!({"bot_id": "B_OTHER"}),
            json!({"bot_id": "B_CUSP"}),
            json!({"user": "U_CUSP"}),
            json!({"subtype": "message_changed", "hidden": true}),
            json!({"subtype": "channel_join"}),
        ] {
            assert_eq!(
                classify(&identity(), message(extra.clone())),
                None,
                "{extra}"
            );
        }
    }

    #[test]
    fn a_message_mentioning_cusp_is_left_to_the_app_mention() {
        let event = message(json!({"text": "<@U_CUSP> what do you think?"}));
        assert_eq!(classify(&identity(), event), None);
        let other = message(json!({"text": "<@U_OTHER> what do you think?"}));
        assert!(classify(&identity(), other).is_some());
    }

    #[test]
    fn a_mention_is_kept_unless_cusp_wrote_it() {
        let checked = classify(&identity(), mention("U_SELLER")).unwrap();
        assert_eq!(checked.kind(), EventKind::AppMention);
        assert_eq!(classify(&identity(), mention("U_CUSP")), None);
    }

    #[test]
    fn other_event_types_are_dropped() {
        let joined = inner(json!({"type": "member_joined_channel", "user": "U1"}));
        assert_eq!(classify(&identity(), joined), None);
    }

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_stored(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::from_stored(LEGACY_KIND), None);
    }

    #[test]
    fn a_checked_event_reads_back_from_its_payload_unchanged() {
        for event in [message(json!({"thread_ts": "0.500"})), mention("U_SELLER")] {
            let checked = classify(&identity(), event).unwrap();
            let payload = checked.to_payload().unwrap();
            let back = CheckedEvent::from_inbox(&identity(), checked.kind().as_str(), &payload);
            assert_eq!(back, Ok(Some(checked)));
        }
    }

    #[test]
    fn the_payload_keeps_only_the_fields_cusp_reads() {
        let event = message(json!({"blocks": [{"type": "rich_text"}], "client_msg_id": "x"}));
        let payload = classify(&identity(), event).unwrap().to_payload().unwrap();
        assert!(!payload.contains("blocks"), "{payload}");
        assert!(!payload.contains("client_msg_id"), "{payload}");
    }

    #[test]
    fn a_legacy_row_is_parsed_and_classified_like_a_new_event() {
        let envelope = |event: serde_json::Value| {
            json!({
                "type": "event_callback", "team_id": "T1", "event_id": "Ev1",
                "event_time": 1, "event": event,
            })
            .to_string()
        };
        let person = envelope(json!({
            "type": "message", "channel": "C1", "user": "U_SELLER", "text": "hi", "ts": "1.0",
        }));
        let read = CheckedEvent::from_inbox(&identity(), LEGACY_KIND, &person).unwrap();
        assert_eq!(read.map(|e| e.kind()), Some(EventKind::Message));
        let ours = envelope(json!({
            "type": "message", "channel": "C1", "user": "U_CUSP", "text": "hi", "ts": "1.0",
        }));
        assert_eq!(
            CheckedEvent::from_inbox(&identity(), LEGACY_KIND, &ours),
            Ok(None)
        );
    }

    #[test]
    fn an_unknown_kind_or_a_broken_payload_is_an_error_naming_it() {
        let err = CheckedEvent::from_inbox(&identity(), "reaction_added", "{}").unwrap_err();
        assert_eq!(err, StoredEventError::UnknownKind("reaction_added".into()));
        for broken in [
            r#"{"text": "secret words""#,
            r#"{"channel": "C1", "text": "x", "ts": "1", "hidden": "secret words"}"#,
        ] {
            let err = CheckedEvent::from_inbox(&identity(), "message", broken).unwrap_err();
            assert!(
                err.to_string().starts_with("stored message is not valid"),
                "{err}"
            );
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let err = CheckedEvent::from_inbox(&identity(), LEGACY_KIND, "not json").unwrap_err();
        assert!(matches!(err, StoredEventError::Malformed { .. }), "{err}");
    }
}
