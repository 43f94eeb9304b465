//! `/cusp mute|unmute|optout|optin|channel|settings`: each person's and each channel's
//! say over cusp. All stored per team; they survive restarts.

use super::commands::{Command, MuteFor, SettingChange};
use super::prompt_message::{
    ACTION_FORGET_CANCEL, ACTION_FORGET_CONFIRM, ACTION_OPTOUT_CANCEL, ACTION_OPTOUT_CONFIRM,
};
use super::reflect::EphemeralReply;
use crate::slack::blocks::{self, ButtonStyle};
use crate::store::{MUTED_FOREVER, Store, StoreError};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Who ran the command, and where.
pub struct Invoker<'a> {
    pub team_id: &'a str,
    pub channel_id: &'a str,
    pub user_id: &'a str,
}

pub async fn on_command(
    store: &Store,
    who: &Invoker<'_>,
    command: &Command,
    now_ms: i64,
) -> Result<Option<EphemeralReply>, StoreError> {
    let reply = match command {
        Command::Mute(duration) => {
            let (until, said) = match duration {
                MuteFor::Day => (now_ms + DAY_MS, "for a day"),
                MuteFor::Week => (now_ms + 7 * DAY_MS, "for a week"),
                MuteFor::Forever => (MUTED_FOREVER, "until you `/cusp unmute`"),
            };
            store
                .set_muted_until(who.team_id, who.user_id, Some(until), now_ms)
                .await?;
            format!(
                "Muted {said}: no nudges for you. Your updates still count toward the team's themes."
            )
        }
        Command::Unmute => {
            store
                .set_muted_until(who.team_id, who.user_id, None, now_ms)
                .await?;
            "Unmuted. I'll chime in on your deal updates again, sparingly.".to_owned()
        }
        Command::Optout => return Ok(Some(optout_confirmation(who.user_id))),
        Command::ForgetMe => return Ok(Some(forget_confirmation(who.user_id))),
        Command::Optin => {
            store.opt_in(who.team_id, who.user_id, now_ms).await?;
            "Welcome back: I'll read your deal updates again from now on.".to_owned()
        }
        Command::Channel(on) => {
            store
                .set_channel_nudges_off(who.team_id, who.channel_id, !on, who.user_id, now_ms)
                .await?;
            tracing::info!(
                channel_id = who.channel_id,
                user_id = who.user_id,
                nudges_on = on,
                "channel nudges changed"
            );
            if *on {
                "Nudges are back on in this channel. `/cusp channel off` turns them off again."
                    .to_owned()
            } else {
                "Nudges are off in this channel; updates here still count toward the team's themes. \
                 `/cusp channel on` turns them back on."
                    .to_owned()
            }
        }
        Command::Settings(change) => settings(store, who, change, now_ms).await?,
        Command::Reflections => reflections(store, who).await?,
        _ => return Ok(None),
    };
    Ok(Some(EphemeralReply::plain(reply)))
}

async fn settings(
    store: &Store,
    who: &Invoker<'_>,
    change: &SettingChange,
    now_ms: i64,
) -> Result<String, StoreError> {
    let mut settings = store.team_settings(who.team_id).await?;
    match change {
        SettingChange::Show => {}
        SettingChange::CooldownHours(hours) => settings.account_cooldown_hours = *hours,
        SettingChange::DailyLimit(limit) => settings.daily_nudge_limit = *limit,
        SettingChange::Reaction(name) => settings.reaction = name.clone(),
    }
    if *change != SettingChange::Show {
        store
            .set_team_settings(who.team_id, &settings, now_ms)
            .await?;
        tracing::info!(user_id = who.user_id, ?change, "team settings changed");
    }
    Ok(format!(
        "Team settings: at most one nudge per person and account every {} h, at most {} nudges per person a day, \
         reaction :{}: on customer-centric updates.",
        settings.account_cooldown_hours, settings.daily_nudge_limit, settings.reaction
    ))
}

/// A person's own reflections, newest first; nobody else can list them.
async fn reflections(store: &Store, who: &Invoker<'_>) -> Result<String, StoreError> {
    const SHOWN: usize = 5;
    let saved = store.reflections_of(who.team_id, who.user_id).await?;
    if saved.is_empty() {
        return Ok("You have no saved reflections yet. Click *Reflect* under one of my questions to write one.".into());
    }
    let mut text = format!("Your last {} reflection(s):\n", saved.len().min(SHOWN));
    for (answers, shared) in saved.iter().take(SHOWN) {
        let parsed: Vec<serde_json::Value> = serde_json::from_str(answers).unwrap_or_default();
        let lines: Vec<String> = parsed
            .iter()
            .filter_map(|a| a.get("answer").and_then(|v| v.as_str()))
            .map(|a| format!("> {}", blocks::escape_mrkdwn(&blocks::truncate(a, 300))))
            .collect();
        let sharing = if *shared {
            " _(shared with the team digest)_"
        } else {
            ""
        };
        text.push_str(&format!("{}{sharing}\n", lines.join("\n")));
    }
    Ok(text)
}

fn forget_confirmation(user_id: &str) -> EphemeralReply {
    let text = "This deletes everything I hold about you in this workspace: the themes I logged \
                from your deal updates, the nudges I sent you and your answers to them, your saved \
                reflections, your deal mutes and your settings (mute, digest DM, spotlight). \
                Team settings you changed stay but no longer name you. You are not opted out: I'll \
                read your deal updates again afterwards (`/cusp optout` stops that). Continue?";
    EphemeralReply {
        text: text.to_owned(),
        blocks: vec![
            blocks::section(text),
            blocks::actions(
                "cusp_forget",
                vec![
                    blocks::button(
                        "Yes, delete my data",
                        ACTION_FORGET_CONFIRM,
                        user_id,
                        Some(ButtonStyle::Danger),
                    ),
                    blocks::button("Cancel", ACTION_FORGET_CANCEL, user_id, None),
                ],
            ),
        ],
    }
}

/// What `/cusp forget me` tells the person once their data is gone.
pub fn forgotten_summary(c: &crate::store::ForgetCounts) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut text = format!(
        "Done. I deleted {}, {} (with your answers to them), {}, {} and {}",
        plural(c.observations, "logged deal update", "logged deal updates"),
        plural(c.prompts, "nudge", "nudges"),
        plural(c.reflections, "saved reflection", "saved reflections"),
        plural(c.corrections, "correction", "corrections"),
        plural(c.deal_mutes, "deal mute", "deal mutes"),
    );
    text.push_str(if c.preferences > 0 {
        ", and your settings (mute, digest DM, spotlight)."
    } else {
        "; you had no personal settings."
    });
    if c.anonymised_settings > 0 {
        text.push_str(&format!(
            " {} you changed no longer name{} you.",
            plural(c.anonymised_settings, "team setting", "team settings"),
            if c.anonymised_settings == 1 { "s" } else { "" }
        ));
    }
    text.push_str(" You're not opted out: `/cusp optout` stops me reading your messages.");
    text
}

fn optout_confirmation(user_id: &str) -> EphemeralReply {
    let text = "Opting out means I stop reading your messages and delete everything I logged about you \
                (themes, nudges, reflections). Your teammates' data stays. Continue?";
    EphemeralReply {
        text: text.to_owned(),
        blocks: vec![
            blocks::section(text),
            blocks::actions(
                "cusp_optout",
                vec![
                    blocks::button(
                        "Yes, opt me out and delete my data",
                        ACTION_OPTOUT_CONFIRM,
                        user_id,
                        Some(ButtonStyle::Danger),
                    ),
                    blocks::button("Cancel", ACTION_OPTOUT_CANCEL, user_id, None),
                ],
            ),
        ],
    }
}
