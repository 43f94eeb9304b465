//! CRM deal updates: a signed webhook says a deal moved; cusp finds the owner in Slack
//! and sends them, in a direct message, questions fitted to the new stage.

use serde_json::{Map, Value, json};

use super::prompt_message::prompt_params;
use super::reflect::seed_from;
use crate::app::AppState;
use crate::engine::Stage;
use crate::slack::ids::UserId;
use crate::store::{
    Effects, NewObservation, NewOutboxMessage, NewPrompt, ObservationSource, StoreError,
};

/// A deal update as CRMs send it to `POST /hooks/deals`.
#[derive(Debug, Clone, PartialEq)]
pub struct DealUpdate {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrmOutcome {
    /// A DM with questions is in the outbox.
    Queued,
    /// This delivery was seen before.
    Duplicate,
    /// No Slack user matches the owner: logged, nothing sent.
    OwnerUnknown,
    /// The owner opted out: nothing sent, nothing logged.
    OwnerOptedOut,
}

#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Slack could not be asked right now; the CRM should retry.
    #[error("Slack call failed: {0}")]
    Slack(String),
}

pub async fn on_deal_update(
    state: &AppState,
    update: &DealUpdate,
    delivery_key: &str,
    now_ms: i64,
) -> Result<CrmOutcome, CrmError> {
    let team = state.identity.team_id.as_str();
    if !state
        .store
        .claim_crm_delivery(team, delivery_key, now_ms)
        .await?
    {
        return Ok(CrmOutcome::Duplicate);
    }
    let result = prompt_owner(state, update, delivery_key, now_ms).await;
    if matches!(result, Err(CrmError::Slack(_)) | Err(CrmError::Store(_))) {
        // Let the CRM's retry through: nothing was stored for this delivery.
        state.store.release_crm_delivery(team, delivery_key).await?;
    }
    result
}

async fn prompt_owner(
    state: &AppState,
    update: &DealUpdate,
    delivery_key: &str,
    now_ms: i64,
) -> Result<CrmOutcome, CrmError> {
    let team = state.identity.team_id.as_str();
    let owner = match (&update.owner_slack_user_id, &update.owner_email) {
        (Some(id), _) => id.clone(),
        (None, Some(email)) => match state.slack.lookup_user_by_email(email).await {
            Ok(Some(user)) => user.as_str().to_owned(),
            Ok(None) => {
                tracing::warn!(deal_id = %update.deal_id, "no Slack user for the deal owner's email");
                return Ok(CrmOutcome::OwnerUnknown);
            }
            Err(err) if err.is_retryable() => return Err(CrmError::Slack(err.to_string())),
            Err(err) => {
                tracing::warn!(deal_id = %update.deal_id, error = %err, "could not look up the deal owner");
                return Ok(CrmOutcome::OwnerUnknown);
            }
        },
        (None, None) => return Ok(CrmOutcome::OwnerUnknown),
    };
    if state.store.user_prefs(team, &owner).await?.opted_out {
        return Ok(CrmOutcome::OwnerOptedOut);
    }
    let channel = open_dm(state, &owner).await?;
    let stage = Stage::parse(&update.stage);
    let analysis = state.engine.analyze(update.note.as_deref().unwrap_or(""));
    let mut analysis_for_questions = analysis.clone();
    analysis_for_questions.account = Some(update.account.clone());
    let seed = seed_from(&[team, &owner, delivery_key]);
    let questions =
        super::questions_for(state, team, &owner, &analysis_for_questions, stage, seed).await?;
    let stage_name = update.stage.replace('_', " ");
    let intro = format!(
        "{} just moved to *{stage_name}*. A question or two while it's fresh:",
        update.account
    );
    let thread_key = format!("crm:{delivery_key}");
    let params = prompt_params(&channel, None, &intro, &questions, None, &thread_key);
    let effects = Effects {
        observation: Some(NewObservation {
            account: Some(update.account.clone()),
            ..super::observation(
                &analysis,
                ObservationSource::Crm,
                &channel,
                &owner,
                None,
                thread_key.clone(),
            )
        }),
        prompt: Some(NewPrompt {
            channel_id: channel.clone(),
            thread_key: thread_key.clone(),
            user_id: owner.clone(),
            account: Some(update.account.to_lowercase()),
            kind: "crm",
            question_ids: questions.iter().map(|q| q.id.clone()).collect(),
            stage: stage.map(|s| s.as_str().to_owned()),
        }),
        outbox: vec![NewOutboxMessage {
            idempotency_key: thread_key,
            method: "chat.postMessage".into(),
            params,
        }],
    };
    state.store.record_effects(team, &effects, now_ms).await?;
    state.outbox_wake.notify_one();
    Ok(CrmOutcome::Queued)
}

/// The DM channel with a person (`conversations.open`), so that the outbox can later
/// look for its own post there.
async fn open_dm(state: &AppState, user: &str) -> Result<String, CrmError> {
    let mut params = Map::new();
    params.insert("users".into(), json!(user));
    let response = state
        .slack
        .call("conversations.open", &params)
        .await
        .map_err(|e| CrmError::Slack(e.to_string()))?;
    response
        .get("channel")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CrmError::Slack("conversations.open returned no channel id".into()))
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
