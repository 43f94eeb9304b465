//! The threaded message a nudge, mention reply or CRM prompt posts: questions plus the
//! buttons people answer with. Pure; the callers enqueue it.

use serde_json::Value;

use super::why::{Reading, why_value};
use crate::engine::{Analysis, Question};
use crate::slack::blocks::{self, ButtonStyle};
use crate::slack::calls::{Message, SlackCall};
use crate::slack::ids::{ChannelId, UserId};

pub const ACTION_REFLECT: &str = "cusp_reflect";
pub const ACTION_HELPFUL: &str = "cusp_helpful";
pub const ACTION_NOT_NOW: &str = "cusp_not_now";
pub const ACTION_MUTE_DEAL: &str = "cusp_mute_deal";
pub const ACTION_WHY: &str = "cusp_why";
pub const ACTION_NOT_QUITE_RIGHT: &str = "cusp_not_quite_right";
pub const ACTION_OPTOUT_CONFIRM: &str = "cusp_optout_confirm";
pub const ACTION_OPTOUT_CANCEL: &str = "cusp_optout_cancel";
pub const ACTION_FORGET_CONFIRM: &str = "cusp_forget_confirm";
pub const ACTION_FORGET_CANCEL: &str = "cusp_forget_cancel";

/// The buttons under every prompt; their value is the prompt's thread key. With cusp's
/// `reading` of the message, "Why?" (its value: the reading with the words that showed
/// it) and "Not quite right" (the thread key and the reading's labels) follow. Six
/// buttons, well within Slack's 25 per actions block.
pub fn prompt_buttons(thread_key: &str, reading: Option<&Reading>) -> Value {
    let mut buttons = vec![
        blocks::button(
            "Reflect",
            ACTION_REFLECT,
            thread_key,
            Some(ButtonStyle::Primary),
        ),
        blocks::button("Helpful", ACTION_HELPFUL, thread_key, None),
        blocks::button("Not now", ACTION_NOT_NOW, thread_key, None),
        blocks::button(
            "Mute this deal for a week",
            ACTION_MUTE_DEAL,
            thread_key,
            None,
        ),
    ];
    if let Some(reading) = reading {
        buttons.push(blocks::button(
            "Why?",
            ACTION_WHY,
            &why_value(reading),
            None,
        ));
        if let Some(value) = super::corrections::correction_value(thread_key, reading) {
            buttons.push(blocks::button(
                "Not quite right",
                ACTION_NOT_QUITE_RIGHT,
                &value,
                None,
            ));
        }
    }
    blocks::actions("cusp_prompt", buttons)
}

/// The post of a prompt in `channel`, threaded under `thread_ts`.
/// The buttons carry the prompt row's `thread_key`; without a prompt row (`None`) there is
/// nothing for them to act on, so there are none. `reading` adds "Why?" and "Not quite
/// right".
pub fn prompt_call(
    channel: &ChannelId,
    thread_ts: Option<&str>,
    intro: &str,
    questions: &[Question],
    why: Option<String>,
    buttons_for: Option<&str>,
    reading: Option<&Reading>,
) -> SlackCall {
    let list: Vec<String> = questions
        .iter()
        .map(|q| format!("• {}", blocks::escape_mrkdwn(&q.text)))
        .collect();
    let mut out = vec![blocks::section(&format!(
        "{}\n{}",
        blocks::escape_mrkdwn(intro),
        list.join("\n")
    ))];
    if let Some(why) = why {
        out.push(blocks::context(&[why.as_str()]));
    }
    if let Some(thread_key) = buttons_for {
        out.push(prompt_buttons(thread_key, reading));
    }
    let fallback = match questions.first() {
        Some(q) => format!("{intro} {}", q.text),
        None => intro.to_owned(),
    };
    SlackCall::PostMessage {
        channel: channel.clone(),
        thread_ts: thread_ts.map(str::to_owned),
        message: Message::blocks(fallback, blocks::message_blocks(out)).without_link_previews(),
    }
}

/// "Noticed: closing push · not yet: their outcome, their people" — why cusp asked.
pub fn why_line(analysis: &Analysis) -> String {
    let noticed: Vec<String> = analysis
        .themes
        .iter()
        .map(|t| t.theme.id().replace('_', " "))
        .collect();
    let mut line = if noticed.is_empty() {
        "_Noticed: a deal update_".to_owned()
    } else {
        format!("_Noticed: {}_", noticed.join(", "))
    };
    if analysis.lacks_outcome_and_people() {
        line.push_str(" _· not yet mentioned: their outcome or their people_");
    }
    line
}

/// A note only `user` sees, in `channel`.
pub fn ephemeral_call(channel: &ChannelId, user: &UserId, text: &str) -> SlackCall {
    SlackCall::PostEphemeral {
        channel: channel.clone(),
        user: user.clone(),
        text: text.to_owned(),
    }
}
