//! CRM deal updates: a signed webhook says a deal moved; cusp finds the owner in Slack
//! and sends them, in a direct message, questions fitted to the new stage. Both hooks end
//! here once verified and parsed: `on_crm_delivery` (`POST /hooks/deals`, with its
//! dedupe key) and `on_hubspot_events` (`POST /hooks/hubspot`, enriched from HubSpot).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::prompt_message::prompt_call;
use super::reflect::seed_from;
use super::why::{Reading, aimed_gaps};
use crate::engine::Stage;
use crate::hubspot::{HubSpotApiError, HubSpotClient, HubSpotEvent};
use crate::slack::ids::{ChannelId, TeamId, UserId};
use crate::state::TeamContext;
use crate::store::{
    Effects, NewObservation, NewOutboxMessage, NewPrompt, ObservationSource, StoreError,
};

/// A deal update as CRMs send it to `POST /hooks/deals`.
#[derive(Debug, Clone, PartialEq)]
pub struct DealUpdate {
    /// The Slack workspace the deal belongs to; required when cusp serves several.
    pub team_id: Option<String>,
    pub deal_id: String,
    pub account: String,
    pub stage: String,
    pub previous_stage: Option<String>,
    pub owner_slack_user_id: Option<String>,
    pub owner_email: Option<String>,
    pub note: Option<String>,
}

/// Longest accepted text field, so a hostile payload cannot make us store megabytes.
const MAX_FIELD_CHARS: usize = 10_000;

/// Parses and validates the JSON body; the error names the field at fault.
pub fn parse_deal_update(body: &[u8]) -> Result<DealUpdate, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("body must be a JSON object".into());
    };
    let owner = match object.get("owner") {
        Some(Value::Object(owner)) => owner,
        Some(_) => return Err("field `owner` must be an object".into()),
        None => return Err("missing field `owner`".into()),
    };
    let update = DealUpdate {
        team_id: optional(object, "team_id")?,
        deal_id: required(object, "deal_id")?,
        account: required(object, "account")?,
        stage: required(object, "stage")?,
        previous_stage: optional(object, "previous_stage")?,
        owner_slack_user_id: optional(owner, "slack_user_id").map_err(|e| format!("owner.{e}"))?,
        owner_email: optional(owner, "email").map_err(|e| format!("owner.{e}"))?,
        note: optional(object, "note")?,
    };
    for number in ["amount"] {
        if let Some(v) = object.get(number) {
            if !(v.is_number() || v.is_null()) {
                return Err(format!("field `{number}` must be a number"));
            }
        }
    }
    if let Some(date) = optional(object, "close_date")? {
        date.parse::<jiff::civil::Date>()
            .map_err(|_| "field `close_date` must be a date like 2026-12-31".to_owned())?;
    }
    if update.owner_slack_user_id.is_none() && update.owner_email.is_none() {
        return Err("field `owner` needs `slack_user_id` or `email`".into());
    }
    if let Some(id) = &update.owner_slack_user_id {
        UserId::parse(id).map_err(|e| format!("field `owner.slack_user_id`: {e}"))?;
    }
    if let Some(team) = &update.team_id {
        TeamId::parse(team).map_err(|e| format!("field `team_id`: {e}"))?;
    }
    Ok(update)
}

fn required(object: &Map<String, Value>, field: &str) -> Result<String, String> {
    optional(object, field)?.ok_or_else(|| format!("missing field `{field}`"))
}

fn optional(object: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_FIELD_CHARS => Err(format!(
            "field `{field}` is longer than {MAX_FIELD_CHARS} characters"
        )),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) if field == "deal_id" => Ok(Some(n.to_string())),
        Some(_) => Err(format!("field `{field}` must be a string")),
    }
}

/// The dedupe key of a delivery: its id when the CRM sends one (`X-Cusp-Delivery`),
/// otherwise [`fallback_delivery_key`].
pub fn delivery_key(
    delivery_id: Option<&str>,
    update: &DealUpdate,
    signed_at: jiff::Timestamp,
) -> String {
    match delivery_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => format!("delivery:{id}"),
        None => fallback_delivery_key(update, signed_at),
    }
}

/// The dedupe key of a delivery that carries no delivery id: deal, stage and the UTC day
/// the CRM signed it (`deal:D-42:closedwon:2026-11-20`). A CRM retrying later the same
/// day signs with a new timestamp, so the timestamp itself cannot be in the key; the
/// day can. The cost: a deal that really re-enters the same stage on the same UTC day
/// is prompted once, and a retry that crosses midnight UTC prompts twice. CRMs that can
/// should send `X-Cusp-Delivery`.
pub fn fallback_delivery_key(update: &DealUpdate, signed_at: jiff::Timestamp) -> String {
    let day = signed_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    format!(
        "deal:{}:{}:{day}",
        update.deal_id,
        update.stage.trim().to_lowercase()
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmOutcome {
    /// A DM with questions is in the outbox.
    Queued,
    /// This delivery was seen before.
    Duplicate,
    /// No Slack user matches the owner, or Slack says they cannot get a DM: logged,
    /// nothing sent.
    OwnerUnknown,
    /// The owner opted out: nothing sent, nothing logged.
    OwnerOptedOut,
    /// The owner muted cusp (`/cusp mute`) or this deal: the observation is logged, like
    /// a muted person's channel messages, but no DM is sent.
    OwnerMuted(MuteScope),
}

/// What the deal owner muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteScope {
    /// `/cusp mute`: every nudge.
    Everything,
    /// "Mute this deal for a week" on this account.
    ThisDeal,
}

impl CrmOutcome {
    /// The word webhook answers use for this outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            CrmOutcome::Queued => "queued",
            CrmOutcome::Duplicate => "duplicate",
            CrmOutcome::OwnerUnknown => "owner_unknown",
            CrmOutcome::OwnerOptedOut => "owner_opted_out",
            CrmOutcome::OwnerMuted(_) => "owner_muted",
        }
    }

    /// Whether a DM was (or, for a duplicate, had been) queued. The others are answered
    /// 202: accepted, deliberately nothing sent, and no reason for the CRM to retry.
    pub fn sends_a_message(self) -> bool {
        matches!(self, CrmOutcome::Queued | CrmOutcome::Duplicate)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Slack could not be asked right now; the CRM should retry (after `retry_after`,
    /// when Slack rate-limited the call).
    #[error("Slack call failed: {message}")]
    Slack {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    /// HubSpot could not tell us the deal's name or owner; HubSpot retries.
    #[error("could not read deal {deal_id} from HubSpot: {source}")]
    HubSpot {
        deal_id: i64,
        #[source]
        source: HubSpotApiError,
    },
}

impl CrmError {
    fn slack(err: &crate::slack::web_api::SlackApiError) -> CrmError {
        CrmError::Slack {
            message: err.to_string(),
            retry_after: err.retry_after(),
        }
    }
}

/// How a verified `POST /hooks/deals` request arrived.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-Cusp-Delivery`, if the CRM sent one. Not signed: anyone holding a captured
    /// request can put any id here.
    pub id: Option<&'a str>,
    pub signed_at: jiff::Timestamp,
    /// The HMAC the request was signed with.
    pub mac: &'a [u8],
}

impl Delivery<'_> {
    /// The dedupe key of this exact signed request: a replay, under whatever delivery id,
    /// carries the same signature. Hashed, so the database holds nothing that verifies.
    pub fn replay_key(&self) -> String {
        use sha2::Digest;
        format!("signature:{}", hex::encode(sha2::Sha256::digest(self.mac)))
    }
}

/// A delivery to `POST /hooks/deals`, verified and parsed: a replay of a request already
/// seen (the same signature) is a duplicate; otherwise dedupe it by its id or by deal,
/// stage and the day it was signed, then prompt the owner.
pub async fn on_crm_delivery(
    ctx: &TeamContext<'_>,
    update: &DealUpdate,
    delivery: &Delivery<'_>,
    now_ms: i64,
) -> Result<CrmOutcome, CrmError> {
    let team = ctx.team();
    let replay = delivery.replay_key();
    if !ctx.store.claim_crm_delivery(team, &replay, now_ms).await? {
        return Ok(CrmOutcome::Duplicate);
    }
    let key = delivery_key(delivery.id, update, delivery.signed_at);
    let result = on_deal_update(ctx, update, &key, now_ms).await;
    if matches!(
        result,
        Err(CrmError::Slack { .. }) | Err(CrmError::Store(_))
    ) {
        // As in `on_deal_update`: nothing was stored, so the same request may come again.
        ctx.store.release_crm_delivery(team, &replay).await?;
    }
    result
}

/// What became of a HubSpot delivery (a batch of events).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HubSpotOutcome {
    /// How many events ended each way, by [`CrmOutcome::as_str`] (`ignored` for events
    /// that are not deal-stage changes).
    pub counts: BTreeMap<&'static str, u32>,
    held_back: bool,
    sent: bool,
}

impl HubSpotOutcome {
    /// As on `/hooks/deals`: false only when deals were accepted but deliberately none
    /// was messaged.
    pub fn sends_a_message(&self) -> bool {
        self.sent || !self.held_back
    }
}

/// Each deal-stage change in a verified HubSpot delivery is looked up in HubSpot (deal
/// name, owner's email) and handled like a CRM deal update, deduplicated by HubSpot's
/// event id. Stops at the first failure, so HubSpot retries the batch; the events
/// already handled are duplicates then.
pub async fn on_hubspot_events(
    ctx: &TeamContext<'_>,
    client: &HubSpotClient,
    events: &[HubSpotEvent],
    now_ms: i64,
) -> Result<HubSpotOutcome, CrmError> {
    let mut outcome = HubSpotOutcome::default();
    for event in events {
        let Some(stage) = event.new_deal_stage() else {
            *outcome.counts.entry("ignored").or_default() += 1;
            continue;
        };
        let facts =
            client
                .deal_facts(event.object_id)
                .await
                .map_err(|source| CrmError::HubSpot {
                    deal_id: event.object_id,
                    source,
                })?;
        let update = DealUpdate {
            team_id: None,
            deal_id: event.object_id.to_string(),
            account: facts.name,
            stage: stage.to_owned(),
            previous_stage: None,
            owner_slack_user_id: None,
            owner_email: facts.owner_email,
            note: None,
        };
        let key = format!("hubspot:{}", event.event_id);
        let one = on_deal_update(ctx, &update, &key, now_ms).await?;
        *outcome.counts.entry(one.as_str()).or_default() += 1;
        outcome.held_back |= !one.sends_a_message();
        outcome.sent |= one.sends_a_message();
    }
    Ok(outcome)
}

pub async fn on_deal_update(
    ctx: &TeamContext<'_>,
    update: &DealUpdate,
    delivery_key: &str,
    now_ms: i64,
) -> Result<CrmOutcome, CrmError> {
    let team = ctx.workspace.identity.team_id.as_str();
    if !ctx
        .store
        .claim_crm_delivery(team, delivery_key, now_ms)
        .await?
    {
        return Ok(CrmOutcome::Duplicate);
    }
    let result = prompt_owner(ctx, update, delivery_key, now_ms).await;
    if matches!(
        result,
        Err(CrmError::Slack { .. }) | Err(CrmError::Store(_))
    ) {
        // Let the CRM's retry through: nothing was stored for this delivery.
        ctx.store.release_crm_delivery(team, delivery_key).await?;
    }
    result
}

async fn prompt_owner(
    ctx: &TeamContext<'_>,
    update: &DealUpdate,
    delivery_key: &str,
    now_ms: i64,
) -> Result<CrmOutcome, CrmError> {
    let team = ctx.workspace.identity.team_id.as_str();
    let owner = match (&update.owner_slack_user_id, &update.owner_email) {
        (Some(id), _) => id.clone(),
        (None, Some(email)) => match ctx.slack().lookup_user_by_email(email).await {
            Ok(Some(user)) => user.as_str().to_owned(),
            Ok(None) => {
                tracing::warn!(deal_id = %update.deal_id, "no Slack user for the deal owner's email");
                return Ok(CrmOutcome::OwnerUnknown);
            }
            Err(err) if err.is_retryable() => return Err(CrmError::slack(&err)),
            Err(err) => {
                tracing::warn!(deal_id = %update.deal_id, error = %err, "could not look up the deal owner");
                return Ok(CrmOutcome::OwnerUnknown);
            }
        },
        (None, None) => return Ok(CrmOutcome::OwnerUnknown),
    };
    let prefs = ctx.store.user_prefs(team, &owner).await?;
    if prefs.opted_out {
        tracing::info!(deal_id = %update.deal_id, "deal owner opted out of cusp: nothing sent or logged");
        return Ok(CrmOutcome::OwnerOptedOut);
    }
    // The DM is opened even for a muted owner: it checks that the owner can be reached at
    // all (an unknown owner is reported the same way, muted or not), and the muted
    // owner's observation then names the same channel an unmuted one's would.
    let channel = match open_dm(ctx, &owner).await? {
        DmChannel::Open(channel) => channel,
        DmChannel::Unreachable(code) => {
            tracing::warn!(deal_id = %update.deal_id, slack_error = %code, "Slack cannot DM the deal owner: nothing sent");
            return Ok(CrmOutcome::OwnerUnknown);
        }
    };
    let stage = Stage::parse(&update.stage);
    let analysis = ctx.engine.analyze(update.note.as_deref().unwrap_or(""));
    let thread_key = format!("crm:{delivery_key}");
    let observation = NewObservation {
        account: Some(update.account.clone()),
        ..super::observation(
            &analysis,
            ObservationSource::Crm,
            channel.as_str(),
            &owner,
            None,
            thread_key.clone(),
        )
    };
    // Deal mutes are keyed by the lower-cased account, as the prompt's `account` below.
    let deal_key = update.account.to_lowercase();
    let muted = if prefs.is_muted(now_ms) {
        Some(MuteScope::Everything)
    } else if ctx
        .store
        .deal_muted(team, &owner, &deal_key, now_ms)
        .await?
    {
        Some(MuteScope::ThisDeal)
    } else {
        None
    };
    if let Some(scope) = muted {
        // Like a muted person's channel messages: the themes still count, nobody is asked.
        tracing::info!(deal_id = %update.deal_id, ?scope, "deal owner muted cusp: observation logged, no DM");
        let effects = Effects {
            observation: Some(observation),
            ..Effects::default()
        };
        ctx.store.record_effects(team, &effects, now_ms).await?;
        return Ok(CrmOutcome::OwnerMuted(scope));
    }
    let mut analysis_for_questions = analysis.clone();
    analysis_for_questions.account = Some(update.account.clone());
    let seed = seed_from(&[team, &owner, delivery_key]);
    let note = update.note.as_deref().unwrap_or("");
    let questions = super::questions_for(
        ctx,
        team,
        &owner,
        note,
        &analysis_for_questions,
        stage,
        seed,
    )
    .await?;
    let stage_name = update.stage.replace('_', " ");
    let intro = format!(
        "{} just moved to *{stage_name}*. A question or two while it's fresh:",
        update.account
    );
    let reading = Reading::of(
        &analysis_for_questions,
        &aimed_gaps(&analysis_for_questions, stage, &questions),
    );
    let call = prompt_call(
        &channel,
        None,
        &intro,
        &questions,
        None,
        Some(&thread_key),
        Some(&reading),
    );
    let prompt_id = thread_key.clone();
    let effects = Effects {
        observation: Some(observation),
        prompt: Some(NewPrompt {
            channel_id: channel.as_str().to_owned(),
            thread_key: thread_key.clone(),
            user_id: owner.clone(),
            account: Some(deal_key),
            kind: "crm",
            question_ids: questions.iter().map(|q| q.id.clone()).collect(),
            stage: stage.map(|s| s.as_str().to_owned()),
            limits: None,
        }),
        outbox: vec![NewOutboxMessage::new(thread_key, call)],
    };
    ctx.store.record_effects(team, &effects, now_ms).await?;
    ctx.outbox_wake.notify_one();
    let themes: Vec<&str> = analysis.themes.iter().map(|hit| hit.theme.id()).collect();
    tracing::info!(
        deal_id = %update.deal_id,
        channel_id = %channel,
        prompt_id = %prompt_id,
        class = analysis.class.as_str(),
        themes = %themes.join(","),
        latency_ms = jiff::Timestamp::now().as_millisecond().saturating_sub(now_ms).max(0),
        "CRM prompt queued"
    );
    Ok(CrmOutcome::Queued)
}

enum DmChannel {
    Open(ChannelId),
    /// Slack will never open this DM (the Slack error code says why).
    Unreachable(String),
}

/// The DM channel with a person (`conversations.open`), so that the outbox can later
/// look for its own post there. A person Slack cannot DM (unknown, deactivated, hidden,
/// a bot) is `Unreachable`, not an error: a retry would fail the same way, so the CRM
/// must not be told to retry.
async fn open_dm(ctx: &TeamContext<'_>, user: &str) -> Result<DmChannel, CrmError> {
    match ctx.slack().open_dm(user).await {
        Ok(id) => Ok(DmChannel::Open(id)),
        Err(err) if err.is_unreachable_user() => Ok(DmChannel::Unreachable(
            err.code().unwrap_or_default().to_owned(),
        )),
        Err(err) => Err(CrmError::slack(&err)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_update_parses() {
        let body = br#"{"deal_id": 42, "account": "Acme", "stage": "proposal", "owner": {"email": "sam@acme.test"}, "amount": 12000, "close_date": "2026-12-31", "note": "CFO wants a business case"}"#;
        let update = parse_deal_update(body).unwrap();
        assert_eq!(update.deal_id, "42");
        assert_eq!(update.owner_email.as_deref(), Some("sam@acme.test"));
        assert_eq!(update.note.as_deref(), Some("CFO wants a business case"));
    }

    #[test]
    fn the_fallback_key_is_the_same_all_utc_day_and_changes_at_midnight() {
        let update = parse_deal_update(
            br#"{"deal_id": "D-42", "account": "Acme", "stage": "ClosedWon", "owner": {"email": "e"}}"#,
        )
        .unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let first = fallback_delivery_key(&update, at("2026-11-20T09:00:00Z"));
        assert_eq!(first, "deal:D-42:closedwon:2026-11-20");
        // A retry ten minutes (or hours) later the same UTC day is the same delivery.
        assert_eq!(
            fallback_delivery_key(&update, at("2026-11-20T09:10:00Z")),
            first
        );
        assert_eq!(
            fallback_delivery_key(&update, at("2026-11-20T23:59:59Z")),
            first
        );
        assert_ne!(
            fallback_delivery_key(&update, at("2026-11-21T00:00:00Z")),
            first
        );
    }

    #[test]
    fn a_delivery_id_wins_over_the_fallback_key() {
        let update = parse_deal_update(
            br#"{"deal_id": "D-42", "account": "Acme", "stage": "won", "owner": {"email": "e"}}"#,
        )
        .unwrap();
        let at = "2026-11-20T09:00:00Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!(delivery_key(Some(" d-1 "), &update, at), "delivery:d-1");
        for blank in [None, Some(""), Some("  ")] {
            assert_eq!(
                delivery_key(blank, &update, at),
                fallback_delivery_key(&update, at)
            );
        }
    }

    #[test]
    fn a_hubspot_batch_is_messaged_unless_every_deal_was_held_back() {
        let outcome = |held_back, sent| HubSpotOutcome {
            held_back,
            sent,
            ..HubSpotOutcome::default()
        };
        assert!(
            outcome(false, false).sends_a_message(),
            "only ignored events"
        );
        assert!(outcome(false, true).sends_a_message());
        assert!(outcome(true, true).sends_a_message());
        assert!(!outcome(true, false).sends_a_message());
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], &str); 8] = [
            (b"[]", "JSON object"),
            (b"{", "not JSON"),
            (br#"{"account":"A","stage":"s","owner":{"email":"e"}}"#, "`deal_id`"),
            (br#"{"deal_id":"1","stage":"s","owner":{"email":"e"}}"#, "`account`"),
            (br#"{"deal_id":"1","account":"A","stage":"s"}"#, "`owner`"),
            (br#"{"deal_id":"1","account":"A","stage":"s","owner":{}}"#, "`owner` needs"),
            (br#"{"deal_id":"1","account":"A","stage":7,"owner":{"email":"e"}}"#, "`stage` must be a string"),
            (br#"{"deal_id":"1","account":"A","stage":"s","owner":{"email":"e"},"close_date":"soon"}"#, "`close_date`"),
        ];
        for (body, expected) in cases {
            let err = parse_deal_update(body).unwrap_err();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
    }
}
