//! `/cusp digest …`: parse the text (pure, every error carries an example of the right
//! form) and act on it.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

use crate::bot::digest::{self, DigestSettings, Schedule};
use crate::bot::reflect::EphemeralReply;
use crate::slack::blocks::escape_mrkdwn;
use crate::slack::ids::ChannelId;
use crate::slack::payloads::SlashCommand;
use crate::state::TeamContext;

pub const SETUP_EXAMPLE: &str = "/cusp digest setup #deals monday 09:00 Europe/Berlin";

/// What `/cusp digest …` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum DigestCommand {
    /// `/cusp digest`: the digest so far, only to the asker.
    Preview,
    Setup {
        channel: ChannelId,
        weekday: Weekday,
        hour: i8,
        minute: i8,
        time_zone: String,
    },
    Off,
    /// `me on|off`: the personal DM.
    Me(bool),
    /// `spotlight on|off`: may the person's updates be linked in the spotlight?
    Spotlight(bool),
    Help,
}

/// Usage of every form, shown by `/cusp digest help` and with errors.
pub fn usage() -> String {
    format!(
        "• `/cusp digest` — the digest so far this week (only you see it)\n\
         • `{SETUP_EXAMPLE}` — post the team digest to #deals every Monday at 09:00 Berlin time \
         (weekday, time and time zone are optional: Monday 09:00 UTC)\n\
         • `/cusp digest off` — stop the weekly post\n\
         • `/cusp digest me on` / `me off` — your own mix and trend by DM each week\n\
         • `/cusp digest spotlight off` / `spotlight on` — keep your updates out of (or back in) the spotlight"
    )
}

fn err(problem: impl Into<String>, example: &str) -> String {
    format!("{} For example: `{example}`", problem.into())
}

/// `<#C123ABC|deals>`, `<#C123ABC>` or a bare `C123ABC`.
pub fn parse_channel(token: &str) -> Option<ChannelId> {
    let id = match token.strip_prefix("<#") {
        Some(rest) => {
            let inner = rest.strip_suffix('>')?;
            inner.split('|').next()?
        }
        None => token,
    };
    let looks_like_channel = id.len() >= 2
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && matches!(id.chars().next(), Some('C' | 'G' | 'D'));
    if !looks_like_channel {
        return None;
    }
    ChannelId::parse(id).ok()
}

pub fn parse_weekday(token: &str) -> Option<Weekday> {
    let t = token.to_ascii_lowercase();
    let days = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    days.into_iter()
        .find(|(name, _)| t == *name || (t.len() == 3 && name.starts_with(t.as_str())))
        .map(|(_, d)| d)
}

/// `HH:MM` or `H:MM`, 24-hour.
pub fn parse_time(token: &str) -> Option<(i8, i8)> {
    let (h, m) = token.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h, m))
}

/// Parses the text after `/cusp digest`.
pub fn parse(text: &str) -> Result<DigestCommand, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return Ok(DigestCommand::Preview);
    };
    match first.to_ascii_lowercase().as_str() {
        "preview" if rest.is_empty() => Ok(DigestCommand::Preview),
        "help" => Ok(DigestCommand::Help),
        "off" | "stop" if rest.is_empty() => Ok(DigestCommand::Off),
        "me" => on_off(rest)
            .map(DigestCommand::Me)
            .ok_or_else(|| err("Say `on` or `off` after `me`.", "/cusp digest me on")),
        "spotlight" => on_off(rest).map(DigestCommand::Spotlight).ok_or_else(|| {
            err(
                "Say `on` or `off` after `spotlight`.",
                "/cusp digest spotlight off",
            )
        }),
        "setup" | "set" => parse_setup(rest),
        other => Err(err(
            format!("I don't know `/cusp digest {}`.", escape_mrkdwn(other)),
            SETUP_EXAMPLE,
        )),
    }
}

fn on_off(rest: &[&str]) -> Option<bool> {
    match rest {
        [w] => match w.to_ascii_lowercase().as_str() {
            "on" | "yes" => Some(true),
            "off" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn parse_setup(rest: &[&str]) -> Result<DigestCommand, String> {
    let Some((channel, rest)) = rest.split_first() else {
        return Err(err(
            "Name the channel to post the digest in.",
            SETUP_EXAMPLE,
        ));
    };
    let channel = parse_channel(channel).ok_or_else(|| {
        let problem = if channel.starts_with('#') {
            // Slack sends `<#C…|name>` only when the command escapes channels.
            format!(
                "I got the name `{}` but not the channel's id. Pick the channel from Slack's `#` suggestions; if it still arrives as plain text, turn on \"Escape channels, users, and links\" for `/cusp` in the app settings.",
                escape_mrkdwn(channel)
            )
        } else {
            format!(
                "`{}` isn't a channel; pick one with `#`.",
                escape_mrkdwn(channel)
            )
        };
        err(problem, SETUP_EXAMPLE)
    })?;
    let mut rest = rest.iter().peekable();
    let mut weekday = Weekday::Monday;
    let (mut hour, mut minute) = (9, 0);
    let mut time_zone = "UTC".to_owned();
    if let Some(w) = rest.peek() {
        if let Some(d) = parse_weekday(w) {
            weekday = d;
            rest.next();
        } else if !w.contains(':') && !w.contains('/') && !w.eq_ignore_ascii_case("utc") {
            return Err(err(
                format!(
                    "`{}` isn't a weekday; use a name like `monday` or `mon`.",
                    escape_mrkdwn(w)
                ),
                SETUP_EXAMPLE,
            ));
        }
    }
    if let Some(t) = rest.peek() {
        if t.contains(':') || t.starts_with(|c: char| c.is_ascii_digit()) {
            (hour, minute) = parse_time(t).ok_or_else(|| {
                err(
                    format!("`{}` isn't a time; use 24-hour HH:MM.", escape_mrkdwn(t)),
                    SETUP_EXAMPLE,
                )
            })?;
            rest.next();
        }
    }
    if let Some(z) = rest.next() {
        let tz = TimeZone::get(z).map_err(|_| {
            err(
                format!("`{}` isn't a time zone I know; use an IANA name like `Europe/Berlin` or `America/New_York`.", escape_mrkdwn(z)),
                SETUP_EXAMPLE,
            )
        })?;
        time_zone = tz.iana_name().unwrap_or(z).to_owned();
    }
    if let Some(extra) = rest.next() {
        return Err(err(
            format!("I didn't expect `{}` there.", escape_mrkdwn(extra)),
            SETUP_EXAMPLE,
        ));
    }
    Ok(DigestCommand::Setup {
        channel,
        weekday,
        hour,
        minute,
        time_zone,
    })
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// Handles `/cusp digest …`; always answers ephemerally. Store failures are logged and
/// answered with an apology rather than an HTTP error.
pub async fn on_command(
    ctx: &TeamContext<'_>,
    command: &SlashCommand,
    rest: &str,
    now: Timestamp,
) -> EphemeralReply {
    let team = command.team_id.as_str();
    let user = command.user_id.as_str();
    let parsed = match parse(rest) {
        Ok(p) => p,
        Err(message) => return EphemeralReply::plain(message),
    };
    let now_ms = now.as_millisecond();
    let result: Result<EphemeralReply, digest::DigestError> = async {
        Ok(match parsed {
            DigestCommand::Help => EphemeralReply::plain(usage()),
            DigestCommand::Preview => {
                let d = digest::preview(ctx.store, ctx.engine, team, None, now).await?;
                let settings = digest::load_settings(ctx.store, team).await?;
                let mut blocks = d.blocks;
                if !settings.enabled {
                    blocks.insert(
                        1,
                        crate::slack::blocks::context(&[&format!(
                            "The weekly post is off. Turn it on with `{SETUP_EXAMPLE}`."
                        )]),
                    );
                }
                EphemeralReply {
                    text: d.fallback,
                    blocks: crate::slack::blocks::message_blocks(blocks),
                }
            }
            DigestCommand::Setup { channel, weekday, hour, minute, time_zone } => {
                let minute_of_day = i64::from(hour) * 60 + i64::from(minute);
                ctx
                    .store
                    .save_digest_settings(
                        team,
                        channel.as_str(),
                        i64::from(weekday.to_monday_one_offset()),
                        minute_of_day,
                        &time_zone,
                        user,
                        now_ms,
                    )
                    .await?;
                let settings = digest::load_settings(ctx.store, team).await?;
                EphemeralReply::plain(setup_confirmation(&settings, channel.as_str(), now))
            }
            DigestCommand::Off => {
                let was_on = ctx.store.disable_digest(team, user, now_ms).await?;
                EphemeralReply::plain(if was_on {
                    format!("The weekly digest is off. Turn it back on with `{SETUP_EXAMPLE}`.")
                } else {
                    "The weekly digest was already off.".to_owned()
                })
            }
            DigestCommand::Me(on) => {
                ctx.store.set_digest_preference(team, user, Some(on), None, now_ms).await?;
                EphemeralReply::plain(if on {
                    "You'll get your own mix and 8-week trend by DM with each weekly digest. Only you see it. \
                     `/cusp digest me off` stops it."
                        .to_owned()
                } else {
                    "No more personal digest DMs. `/cusp digest me on` brings them back.".to_owned()
                })
            }
            DigestCommand::Spotlight(on) => {
                ctx.store.set_digest_preference(team, user, None, Some(on), now_ms).await?;
                EphemeralReply::plain(if on {
                    "Your most customer-centric updates may be linked in the digest's spotlight again.".to_owned()
                } else {
                    "Your updates won't be linked in the digest's spotlight. (They still count in the team figures, \
                     which never name anyone.)"
                        .to_owned()
                })
            }
        })
    }
    .await;
    match result {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, "digest command failed");
            EphemeralReply::plain(
                "Sorry, I couldn't do that just now. Please try again in a minute.".to_owned(),
            )
        }
    }
}

/// "Every Monday at 09:00 (Europe/Berlin) in <#C1>; next on Mon 30 Nov, 09:00 CET."
pub fn setup_confirmation(settings: &DigestSettings, channel: &str, now: Timestamp) -> String {
    let s: &Schedule = &settings.schedule;
    let next = s
        .next_run_after(now)
        .map(|(_, at)| {
            format!(
                " The next one comes {}.",
                at.to_zoned(s.time_zone.clone())
                    .strftime("%a %-d %b at %H:%M %Z")
            )
        })
        .unwrap_or_default();
    format!(
        "The team digest will be posted in <#{channel}> every {} at {:02}:{:02} ({}), covering the week before \
         (Monday to Sunday).{next} If I'm not in that channel yet, invite me with `/invite @cusp`.",
        weekday_name(s.weekday),
        s.hour,
        s.minute,
        escape_mrkdwn(&settings.time_zone_name),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn setup(text: &str) -> DigestCommand {
        parse(text).unwrap()
    }

    #[test]
    fn setup_accepts_escaped_and_raw_channels_and_all_parts() {
        for channel in ["<#C123ABC|deals>", "<#C123ABC>", "C123ABC"] {
            assert_eq!(
                setup(&format!("setup {channel} monday 09:00 Europe/Berlin")),
                DigestCommand::Setup {
                    channel: ChannelId::parse("C123ABC").unwrap(),
                    weekday: Weekday::Monday,
                    hour: 9,
                    minute: 0,
                    time_zone: "Europe/Berlin".into(),
                }
            );
        }
        assert_eq!(
            setup("setup <#C1|x> FRI 7:30 America/New_York"),
            DigestCommand::Setup {
                channel: ChannelId::parse("C1").unwrap(),
                weekday: Weekday::Friday,
                hour: 7,
                minute: 30,
                time_zone: "America/New_York".into(),
            }
        );
    }

    #[test]
    fn setup_defaults_to_monday_nine_utc() {
        assert_eq!(
            setup("setup <#C1>"),
            DigestCommand::Setup {
                channel: ChannelId::parse("C1").unwrap(),
                weekday: Weekday::Monday,
                hour: 9,
                minute: 0,
                time_zone: "UTC".into(),
            }
        );
        assert!(matches!(
            setup("setup C1 10:15"),
            DigestCommand::Setup {
                hour: 10,
                minute: 15,
                ..
            }
        ));
        assert!(matches!(
            setup("setup C1 tue"),
            DigestCommand::Setup {
                weekday: Weekday::Tuesday,
                ..
            }
        ));
    }

    #[test]
    fn a_plain_channel_name_explains_how_to_send_the_id() {
        let message = parse("setup #deals monday 09:00 UTC").unwrap_err();
        assert!(message.contains("not the channel's id"), "{message}");
        assert!(message.contains("Escape channels"), "{message}");
    }

    #[test]
    fn every_error_shows_an_example() {
        for bad in [
            "setup",
            "setup deals monday 09:00 UTC",
            "setup <@U123> monday",
            "setup C1 someday 09:00",
            "setup C1 monday 25:00",
            "setup C1 monday 9am",
            "setup C1 monday 09:00 Mars/Olympus",
            "setup C1 monday 09:00 UTC extra",
            "me maybe",
            "spotlight",
            "frobnicate",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("For example: `/cusp digest"), "{bad}: {e}");
        }
    }

    #[test]
    fn other_forms() {
        assert_eq!(setup(""), DigestCommand::Preview);
        assert_eq!(setup("preview"), DigestCommand::Preview);
        assert_eq!(setup("OFF"), DigestCommand::Off);
        assert_eq!(setup("me on"), DigestCommand::Me(true));
        assert_eq!(setup("me Off"), DigestCommand::Me(false));
        assert_eq!(setup("spotlight off"), DigestCommand::Spotlight(false));
        assert_eq!(setup("help"), DigestCommand::Help);
    }

    #[test]
    fn time_parsing_is_strict() {
        assert_eq!(parse_time("09:00"), Some((9, 0)));
        assert_eq!(parse_time("23:59"), Some((23, 59)));
        for bad in ["24:00", "09:60", "9", "09:0", "-1:00", "123:00"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn confirmation_names_the_next_local_run() {
        let settings = DigestSettings {
            channel_id: Some("C1".into()),
            enabled: true,
            schedule: Schedule {
                weekday: Weekday::Monday,
                hour: 9,
                minute: 0,
                time_zone: TimeZone::get("Europe/Berlin").unwrap(),
            },
            time_zone_name: "Europe/Berlin".into(),
            since: Timestamp::UNIX_EPOCH,
        };
        let text = setup_confirmation(&settings, "C1", "2026-11-25T12:00:00Z".parse().unwrap());
        assert!(
            text.contains("every Monday at 09:00 (Europe/Berlin)"),
            "{text}"
        );
        assert!(text.contains("Mon 30 Nov at 09:00 CET"), "{text}");
    }
}
