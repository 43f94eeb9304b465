//! `@cusp <text>`: a threaded reply with the analysis and questions for that text.
//! `@cusp` alone inside a thread reflects on the thread's first message.

use super::DispatchError;
use super::prompt_message::prompt_call;
use super::reflect::seed_from;
use super::why::{Reading, aimed_gaps};
use crate::engine::Analysis;
use crate::slack::blocks;
use crate::slack::calls::{Message, SlackCall};
use crate::slack::ids::ChannelId;
use crate::slack::payloads::AppMentionEvent;
use crate::state::TeamContext;
use crate::store::{Effects, NewOutboxMessage, NewPrompt, ObservationSource};

pub const MENTION_HINT: &str = "Mention me with a deal update (`@cusp Acme wants a pilot before their board meets`) \
     or mention me inside a deal thread, and I'll reflect on it with you.";

/// The text addressed to cusp, without the leading mention(s) of cusp itself.
pub fn strip_own_mention(text: &str, own_user_id: &str) -> String {
    text.replace(&format!("<@{own_user_id}>"), " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn on_mention(
    ctx: &TeamContext<'_>,
    event: &AppMentionEvent,
) -> Result<Effects, DispatchError> {
    let team = ctx.workspace.identity.team_id.as_str();
    let channel = event.channel.as_str();
    let asker = event.user.as_str();
    let reply_root = event.thread_ts.as_deref().unwrap_or(&event.ts).to_owned();
    let own_text = strip_own_mention(&event.text, ctx.workspace.identity.user_id.as_str());

    // What to reflect on, whose message it is and its ts.
    let (text, author, ts) = if !own_text.is_empty() {
        (own_text, asker.to_owned(), event.ts.clone())
    } else if let Some(thread_ts) = event.thread_ts.as_deref() {
        match thread_parent(ctx, channel, thread_ts).await? {
            Some((text, author)) => (text, author, thread_ts.to_owned()),
            None => return Ok(hint(&event.channel, &reply_root, &event.ts)),
        }
    } else {
        return Ok(hint(&event.channel, &reply_root, &event.ts));
    };

    let author_prefs = ctx.store.user_prefs(team, &author).await?;
    if author_prefs.opted_out && author != asker {
        // Someone else's words, and that person opted out: leave them alone.
        return Ok(Effects::default());
    }
    // An opted-out person who asks still gets an answer, but nothing about them is kept:
    // no observation, no prompt row (so no buttons that would need one).
    let asker_opted_out = if author == asker {
        author_prefs.opted_out
    } else {
        ctx.store.user_prefs(team, asker).await?.opted_out
    };
    let analysis = ctx.engine.analyze(&text);
    let seed = seed_from(&[team, asker, &event.ts]);
    let questions = super::questions_for(ctx, team, asker, &text, &analysis, None, seed).await?;
    let thread_key = format!("mention:{channel}:{}", event.ts);
    let reading = Reading::of(&analysis, &aimed_gaps(&analysis, None, &questions));
    let call = prompt_call(
        &event.channel,
        Some(&reply_root),
        &intro(&analysis),
        &questions,
        Some(explanation(&analysis)),
        (!asker_opted_out).then_some(thread_key.as_str()),
        Some(&reading),
    );
    // Only deal updates are observations (the digest counts them as such).
    let observation = (analysis.is_deal_update && !author_prefs.opted_out).then(|| {
        super::observation(
            &analysis,
            ObservationSource::Mention,
            channel,
            &author,
            Some(&ts),
            format!("mention:{channel}:{}", event.ts),
        )
    });
    Ok(Effects {
        observation,
        prompt: (!asker_opted_out).then(|| NewPrompt {
            channel_id: channel.to_owned(),
            thread_key: thread_key.clone(),
            user_id: asker.to_owned(),
            account: analysis.account.as_ref().map(|a| a.to_lowercase()),
            kind: "mention",
            question_ids: questions.iter().map(|q| q.id.clone()).collect(),
            stage: None,
            // A person who asked is answered; limits are for unasked nudges.
            limits: None,
        }),
        outbox: vec![NewOutboxMessage::new(
            format!("mention:{channel}:{}", event.ts),
            call,
        )],
    })
}

fn intro(analysis: &Analysis) -> String {
    let what = if analysis.themes.is_empty() {
        "I didn't spot any CUSP themes here.".to_owned()
    } else {
        let themes: Vec<String> = analysis
            .themes
            .iter()
            .map(|t| t.theme.id().replace('_', " "))
            .collect();
        format!("I noticed: {}.", themes.join(", "))
    };
    format!("{what} A few questions to consider:")
}

/// Each theme with the words that showed it.
fn explanation(analysis: &Analysis) -> String {
    let parts: Vec<String> = analysis
        .themes
        .iter()
        .filter_map(|hit| {
            let first = hit.evidence.first()?;
            Some(format!(
                "{} ← “{}”",
                hit.theme.id().replace('_', " "),
                blocks::escape_mrkdwn(&first.text)
            ))
        })
        .collect();
    if parts.is_empty() {
        format!(
            "_{} · customer-centric share {:.0}%_",
            analysis.class.as_str().replace('_', "-"),
            analysis.score * 100.0
        )
    } else {
        format!("_{}_", parts.join(" · "))
    }
}

fn hint(channel: &ChannelId, reply_root: &str, ts: &str) -> Effects {
    let call = SlackCall::PostMessage {
        channel: channel.clone(),
        thread_ts: Some(reply_root.to_owned()),
        message: Message::text(MENTION_HINT),
    };
    Effects {
        outbox: vec![NewOutboxMessage::new(
            format!("mention-hint:{channel}:{ts}"),
            call,
        )],
        ..Effects::default()
    }
}

/// The first message of a thread: its text and author.
async fn thread_parent(
    ctx: &TeamContext<'_>,
    channel: &str,
    thread_ts: &str,
) -> Result<Option<(String, String)>, DispatchError> {
    let parent = ctx.slack().thread_parent(channel, thread_ts).await?;
    Ok(parent.and_then(|m| Some((m.text?, m.user?))))
}
