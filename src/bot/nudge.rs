//! A person's message in a channel: log the deal update, then either a threaded nudge
//! (one to three questions aimed at the gap), a quiet reaction (already customer-centric),
//! or nothing — within the team's cooldowns and everyone's mutes and opt-outs.

use super::prompt_message::{prompt_call, why_line};
use super::reflect::seed_from;
use super::why::{Reading, aimed_gaps};
use crate::engine::{Analysis, Class};
use crate::slack::calls::SlackCall;
use crate::slack::payloads::MessageEvent;
use crate::state::TeamContext;
use crate::store::{
    Effects, NewOutboxMessage, NewPrompt, NudgeLimits, NudgeSubject, ObservationSource, StoreError,
};

/// What cusp does with a deal update, before cooldowns and mutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    Nudge,
    React,
}

/// Seller-centric or balanced updates, and updates that never mention the customer's
/// outcome or people, get questions; customer-centric ones get a reaction.
pub fn response_for(analysis: &Analysis) -> Response {
    match analysis.class {
        Class::SellerCentric | Class::Balanced => Response::Nudge,
        _ if analysis.lacks_outcome_and_people() => Response::Nudge,
        _ => Response::React,
    }
}

/// The root ts of the thread a message belongs to (its own ts when it starts one).
pub fn thread_root(event: &MessageEvent) -> &str {
    event.thread_ts.as_deref().unwrap_or(&event.ts)
}

/// How a channel message's observation is keyed, so thread replies can find their root.
fn message_dedupe_key(channel: &str, ts: &str) -> String {
    format!("message:{channel}:{ts}")
}

/// `event` passed `relevance::classify`: a person's new message that does not mention
/// cusp (those are answered as mentions).
pub async fn on_message(
    ctx: &TeamContext<'_>,
    event: &MessageEvent,
    now_ms: i64,
) -> Result<Effects, StoreError> {
    let team = ctx.workspace.identity.team_id.as_str();
    let Some(user) = event.user.as_ref().map(|u| u.as_str()) else {
        return Ok(Effects::default());
    };
    let channel = event.channel.as_str();
    let mut analysis = ctx.engine.analyze(&event.text);
    // A reply in the thread of a logged deal update is an update of that deal, even when
    // it does not read like one alone ("they asked for 20% off") or names no account. A
    // reply that shows no theme at all ("thanks!", "on it") is conversation, not an update.
    let replied_to = event.thread_ts.as_deref().filter(|root| *root != event.ts);
    let root_key = replied_to
        .filter(|_| !analysis.themes.is_empty())
        .map(|root| message_dedupe_key(channel, root));
    // Nothing to store whatever the database holds: no read at all.
    if !analysis.is_deal_update && root_key.is_none() {
        return Ok(Effects::default());
    }
    // The person's opt-out and mute, the team's settings, the channel's switch and the
    // root's account in one round trip (the engine's analysis needs none of them).
    let found = ctx
        .store
        .message_context(team, user, channel, root_key.as_deref())
        .await?;
    let prefs = &found.prefs;
    if prefs.opted_out {
        return Ok(Effects::default());
    }
    if let Some(account) = found.root_account {
        analysis.is_deal_update = true;
        if analysis.account.is_none() {
            analysis.account = account;
        }
    }
    if !analysis.is_deal_update {
        return Ok(Effects::default());
    }
    let mut effects = Effects {
        observation: Some(super::observation(
            &analysis,
            ObservationSource::Message,
            channel,
            user,
            Some(&event.ts),
            message_dedupe_key(channel, &event.ts),
        )),
        ..Effects::default()
    };
    let settings = &found.settings;
    if found.channel_off {
        return Ok(effects);
    }
    let root = thread_root(event);
    let thread_key = format!("{channel}:{root}");
    let subject = NudgeSubject {
        user_id: user,
        channel_id: channel,
        account: analysis.account.as_deref(),
        thread_key: &thread_key,
        account_cooldown_ms: settings.account_cooldown_hours.saturating_mul(3_600_000),
    };
    match response_for(&analysis) {
        Response::React => {
            effects.outbox.push(NewOutboxMessage::new(
                format!("reaction:{channel}:{}", event.ts),
                SlackCall::AddReaction {
                    channel: event.channel.clone(),
                    timestamp: event.ts.clone(),
                    name: settings.reaction.clone(),
                },
            ));
        }
        Response::Nudge => {
            if prefs.is_muted(now_ms) {
                tracing::debug!("nudge held back: muted");
                return Ok(effects);
            }
            // Only a nudge needs the person's recent nudges, the thread's and the deal's.
            let history = ctx.store.nudge_history(team, &subject, now_ms).await?;
            let blocked = history.thread_already_prompted
                || history.deal_muted
                || history.nudges_last_day >= settings.daily_nudge_limit
                || (analysis.account.is_some() && history.account_nudges_in_cooldown > 0);
            if blocked {
                tracing::debug!(?history, "nudge held back");
                return Ok(effects);
            }
            let seed = seed_from(&[team, user, &event.ts]);
            let questions =
                super::questions_for(ctx, team, user, &event.text, &analysis, None, seed).await?;
            if questions.is_empty() {
                return Ok(effects);
            }
            let intro = match &analysis.account {
                Some(account) => format!("A question or two on the {account} update:"),
                None => "A question or two on this update:".to_owned(),
            };
            let reading = Reading::of(&analysis, &aimed_gaps(&analysis, None, &questions));
            let call = prompt_call(
                &event.channel,
                Some(root),
                &intro,
                &questions,
                Some(why_line(&analysis)),
                Some(&thread_key),
                Some(&reading),
            );
            effects.prompt = Some(NewPrompt {
                channel_id: channel.to_owned(),
                thread_key: thread_key.clone(),
                user_id: user.to_owned(),
                account: analysis.account.as_ref().map(|a| a.to_lowercase()),
                kind: "nudge",
                question_ids: questions.iter().map(|q| q.id.clone()).collect(),
                stage: None,
                // Checked again when stored: another replica may nudge them meanwhile.
                limits: Some(NudgeLimits {
                    daily: settings.daily_nudge_limit,
                    account_cooldown_ms: subject.account_cooldown_ms,
                }),
            });
            effects
                .outbox
                .push(NewOutboxMessage::new(format!("nudge:{thread_key}"), call));
        }
    }
    Ok(effects)
}
