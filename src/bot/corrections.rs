//! "Not quite right": the person a nudge was for says how cusp misread their message. A
//! modal shows cusp's reading (deal update or not, the themes) with inputs to correct it;
//! the submission stores a correction row — labels only, plus the message text only when
//! the person ticks the box and pastes the text they choose to share.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::interactions::{InteractionError, InteractionReply, find_prompt, open_modal};
use super::why::{Reading, class_of, theme, theme_label};
use crate::engine::Theme;
use crate::slack::blocks::{self, MAX_BUTTON_VALUE_CHARS};
use crate::slack::payloads::{BlockActions, ViewSubmission};
use crate::slack::responses;
use crate::state::TeamContext;
use crate::store::{NewCorrection, Prompt, ReadingLabels};

pub const CORRECTION_CALLBACK: &str = "cusp_correction";
const DEAL_BLOCK: &str = "deal";
const WRONG_BLOCK: &str = "wrong";
const MISSED_BLOCK: &str = "missed";
const SHARE_BLOCK: &str = "share";
const TEXT_BLOCK: &str = "text";
const YES: &str = "yes";
const NO: &str = "no";
const SHARE_VALUE: &str = "share";

/// What a correction is about: the prompt (by thread key) and cusp's reading of it. It
/// travels in the button's value and the modal's `private_metadata`, so no reading needs
/// to be stored before anyone asks to correct it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub thread_key: String,
    pub deal_update: bool,
    pub themes: Vec<Theme>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetWire {
    p: String,
    d: bool,
    t: Vec<String>,
}

/// The "Not quite right" button's value, or `None` when it would not fit Slack's limit
/// (then the button is left out rather than sent broken).
pub fn correction_value(thread_key: &str, reading: &Reading) -> Option<String> {
    let wire = TargetWire {
        p: thread_key.to_owned(),
        d: reading.deal_update,
        t: reading
            .themes
            .iter()
            .map(|n| n.theme.id().to_owned())
            .collect(),
    };
    let value = serde_json::to_string(&wire).ok()?;
    (value.chars().count() <= MAX_BUTTON_VALUE_CHARS).then_some(value)
}

/// Reads a target back from a button value or modal metadata; malformed is an error.
pub fn parse_target(value: &str) -> Result<Target, String> {
    let wire: TargetWire = serde_json::from_str(value)
        .map_err(|e| format!("malformed \"Not quite right\" value: {e}"))?;
    if wire.p.is_empty() {
        return Err("\"Not quite right\" value names no prompt".into());
    }
    let themes = wire
        .t
        .iter()
        .map(|id| theme(id))
        .collect::<Result<_, _>>()?;
    Ok(Target {
        thread_key: wire.p,
        deal_update: wire.d,
        themes,
    })
}

fn metadata(target: &Target) -> String {
    let wire = TargetWire {
        p: target.thread_key.clone(),
        d: target.deal_update,
        t: target.themes.iter().map(|t| t.id().to_owned()).collect(),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

/// The "Not quite right" click: only the person the nudge was for gets the modal; for
/// anyone else this is `None` (the caller thanks them and explains).
pub async fn on_click(
    ctx: &TeamContext<'_>,
    payload: &BlockActions,
    value: &str,
    now_ms: i64,
) -> Result<Option<InteractionReply>, InteractionError> {
    let target = parse_target(value).map_err(InteractionError::BadRequest)?;
    let prompt = find_prompt(ctx, payload.team.id.as_str(), &target.thread_key).await?;
    if prompt.user_id != payload.user.id.as_str() {
        return Ok(None);
    }
    let view = correction_modal(&target);
    Ok(Some(
        open_modal(ctx, payload, view, "Not quite right", now_ms).await?,
    ))
}

fn reading_line(deal_update: bool, themes: &[Theme]) -> String {
    let deal = if deal_update {
        "a deal update"
    } else {
        "not a deal update"
    };
    if themes.is_empty() {
        format!("*What I read:* {deal}, with no CUSP theme.")
    } else {
        let names: Vec<&str> = themes.iter().map(|t| theme_label(*t)).collect();
        format!("*What I read:* {deal}, showing: {}.", names.join(" · "))
    }
}

pub fn correction_modal(target: &Target) -> Value {
    let mut out = vec![
        blocks::section(&reading_line(target.deal_update, &target.themes)),
        blocks::radio_buttons(
            DEAL_BLOCK,
            DEAL_BLOCK,
            "Is this a deal update?",
            &[
                ("Yes, it is about a deal", YES),
                ("No, not a deal update", NO),
            ],
            Some(if target.deal_update { YES } else { NO }),
        ),
    ];
    let detected: Vec<(&str, &str)> = target
        .themes
        .iter()
        .map(|t| (theme_label(*t), t.id()))
        .collect();
    let others: Vec<(&str, &str)> = Theme::ALL
        .iter()
        .filter(|t| !target.themes.contains(t))
        .map(|t| (theme_label(*t), t.id()))
        .collect();
    const WRONG_LABEL: &str = "Themes I read that aren't in your message";
    if detected.len() > blocks::MAX_CHECKBOX_OPTIONS {
        out.push(blocks::multi_select(
            WRONG_BLOCK,
            WRONG_BLOCK,
            WRONG_LABEL,
            "Choose themes",
            &detected,
            true,
        ));
    } else if !detected.is_empty() {
        out.push(blocks::checkboxes(
            WRONG_BLOCK,
            WRONG_BLOCK,
            WRONG_LABEL,
            &detected,
            true,
        ));
    }
    if !others.is_empty() {
        out.push(blocks::multi_select(
            MISSED_BLOCK,
            MISSED_BLOCK,
            "Themes your message shows that I missed",
            "Choose themes",
            &others,
            true,
        ));
    }
    out.push(blocks::checkboxes(
        SHARE_BLOCK,
        SHARE_BLOCK,
        "Your words",
        &[(
            "Include my message text so my team can measure cusp on it",
            SHARE_VALUE,
        )],
        true,
    ));
    out.push(blocks::optional_text_input(
        TEXT_BLOCK,
        TEXT_BLOCK,
        "Message text to share",
        "Paste or edit the text you are willing to share. Stored only if you tick the box above.",
    ));
    out.push(blocks::context(&[
        "Without the box ticked I keep only your labels, never your words. Your team sees corrections as a count in the weekly digest.",
    ]));
    blocks::modal(
        CORRECTION_CALLBACK,
        "Not quite right",
        "Send",
        "Cancel",
        out,
        &metadata(target),
    )
}

fn errors(block: &str, message: &str) -> InteractionReply {
    InteractionReply::Json(responses::view_error(block, message))
}

/// The modal's submission: validated, then stored once per prompt.
pub async fn on_submission(
    ctx: &TeamContext<'_>,
    submission: &ViewSubmission,
    now_ms: i64,
) -> Result<InteractionReply, InteractionError> {
    let target =
        parse_target(&submission.view.private_metadata).map_err(InteractionError::BadRequest)?;
    let team = submission.team.id.as_str();
    let user = submission.user.id.as_str();
    let prompt: Prompt = find_prompt(ctx, team, &target.thread_key).await?;
    if prompt.user_id != user {
        return Ok(errors(
            DEAL_BLOCK,
            "Only the person these questions were for can correct how I read their message.",
        ));
    }
    if ctx.store.user_prefs(team, user).await?.opted_out {
        return Ok(errors(
            DEAL_BLOCK,
            "You have opted out of cusp, so I keep nothing from you. `/cusp optin` to send corrections again.",
        ));
    }
    let values = &submission.view.state;
    let deal_update = match values.selected_value(DEAL_BLOCK, DEAL_BLOCK) {
        Some(YES) => true,
        Some(NO) => false,
        None => target.deal_update,
        Some(other) => {
            return Err(InteractionError::BadRequest(format!(
                "unknown deal answer `{}`",
                blocks::truncate(other, 40)
            )));
        }
    };
    let parse = |ids: Vec<&str>| -> Result<Vec<Theme>, InteractionError> {
        ids.into_iter()
            .map(|id| theme(id).map_err(InteractionError::BadRequest))
            .collect()
    };
    let wrong = parse(values.selected_values(WRONG_BLOCK, WRONG_BLOCK))?;
    let missed = parse(values.selected_values(MISSED_BLOCK, MISSED_BLOCK))?;
    let corrected: Vec<Theme> = Theme::ALL
        .into_iter()
        .filter(|t| (target.themes.contains(t) && !wrong.contains(t)) || missed.contains(t))
        .collect();
    let mut engine_themes = target.themes.clone();
    engine_themes.sort();
    if deal_update == target.deal_update && corrected == engine_themes {
        return Ok(errors(
            DEAL_BLOCK,
            "Nothing changed yet: say whether it's a deal update, or mark themes I got wrong or missed. Or press Cancel.",
        ));
    }
    let share = values
        .selected_values(SHARE_BLOCK, SHARE_BLOCK)
        .contains(&SHARE_VALUE);
    let text = values
        .text_value(TEXT_BLOCK, TEXT_BLOCK)
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let text = match (share, text) {
        (true, Some(text)) => Some(blocks::truncate(text, blocks::MAX_TEXT_INPUT_CHARS)),
        (false, None) => None,
        (true, None) => {
            return Ok(errors(
                TEXT_BLOCK,
                "Paste the message text you want to share, or untick the box.",
            ));
        }
        (false, Some(_)) => {
            return Ok(errors(
                SHARE_BLOCK,
                "Tick this box to share the text below, or clear the text.",
            ));
        }
    };
    let ids =
        |themes: &[Theme]| -> Vec<String> { themes.iter().map(|t| t.id().to_owned()).collect() };
    let correction = NewCorrection {
        prompt_id: prompt.id,
        user_id: user.to_owned(),
        engine: ReadingLabels {
            deal_update: target.deal_update,
            themes: ids(&engine_themes),
        },
        corrected: ReadingLabels {
            deal_update,
            themes: ids(&corrected),
        },
        class: class_of(&corrected).as_str().to_owned(),
        text,
    };
    let fresh = ctx
        .store
        .record_correction(team, &correction, now_ms)
        .await?;
    if fresh {
        crate::telemetry::metrics::correction_recorded();
    }
    tracing::info!(
        prompt_id = prompt.id,
        fresh,
        with_text = correction.text.is_some(),
        "correction stored"
    );
    Ok(InteractionReply::Ack)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bot::why::Noticed;

    fn reading(themes: &[Theme]) -> Reading {
        Reading {
            deal_update: true,
            themes: themes
                .iter()
                .map(|t| Noticed {
                    theme: *t,
                    words: vec!["w".into()],
                })
                .collect(),
            aimed_at: vec![Theme::CustomerOutcome],
        }
    }

    #[test]
    fn the_target_round_trips_and_bad_values_are_errors() {
        let r = reading(&[Theme::ClosingPush, Theme::QuotaPressure]);
        let value = correction_value("C1:170.1", &r).unwrap();
        let t = parse_target(&value).unwrap();
        assert_eq!(t.thread_key, "C1:170.1");
        assert_eq!(t.themes, vec![Theme::ClosingPush, Theme::QuotaPressure]);
        assert!(t.deal_update);
        for bad in [
            "",
            "x",
            r#"{"p":"","d":true,"t":[]}"#,
            r#"{"p":"k","d":true,"t":["nope"]}"#,
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert!(correction_value(&"k".repeat(2100), &r).is_none());
    }

    #[test]
    fn the_modal_offers_detected_themes_as_wrong_and_the_others_as_missed() {
        let t = Target {
            thread_key: "C1:1".into(),
            deal_update: false,
            themes: vec![Theme::ClosingPush],
        };
        let m = correction_modal(&t);
        let blocks = m["blocks"].as_array().unwrap();
        let by_id = |id: &str| blocks.iter().find(|b| b["block_id"] == id).unwrap().clone();
        assert_eq!(by_id(DEAL_BLOCK)["element"]["initial_option"]["value"], NO);
        assert_eq!(
            by_id(WRONG_BLOCK)["element"]["options"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            by_id(MISSED_BLOCK)["element"]["options"]
                .as_array()
                .unwrap()
                .len(),
            Theme::ALL.len() - 1
        );
        assert_eq!(
            parse_target(m["private_metadata"].as_str().unwrap()).unwrap(),
            t
        );
        let everything = Target {
            themes: Theme::ALL.to_vec(),
            ..t
        };
        let m = correction_modal(&everything);
        let text = m.to_string();
        assert!(!text.contains("\"missed\""), "nothing left to miss");
        assert!(
            text.contains("multi_static_select"),
            "13 detected themes need a menu"
        );
    }
}
