//! `/cusp` text → `Command` (pure), plus the help text. The match in `help_text` and
//! `Command::parse` are exhaustive so the two cannot drift apart.

/// Subcommands users can type after `/cusp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Help,
    Reflect,
    Mute,
    Unmute,
    Optout,
    Optin,
    Channel,
    Settings,
    Reflections,
    Digest,
    Forget,
}

impl Verb {
    pub const ALL: [Verb; 11] = [
        Verb::Help,
        Verb::Reflect,
        Verb::Mute,
        Verb::Unmute,
        Verb::Optout,
        Verb::Optin,
        Verb::Channel,
        Verb::Settings,
        Verb::Reflections,
        Verb::Digest,
        Verb::Forget,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verb::Help => "help",
            Verb::Reflect => "reflect",
            Verb::Mute => "mute",
            Verb::Unmute => "unmute",
            Verb::Optout => "optout",
            Verb::Optin => "optin",
            Verb::Channel => "channel",
            Verb::Settings => "settings",
            Verb::Reflections => "reflections",
            Verb::Digest => "digest",
            Verb::Forget => "forget",
        }
    }

    fn usage(self) -> &'static str {
        match self {
            Verb::Help => "`/cusp help` — this message",
            Verb::Reflect => {
                "`/cusp reflect <deal update>` — see the themes in an update and a few questions to consider (only you see it)"
            }
            Verb::Digest => {
                "`/cusp digest` — the team digest so far; `/cusp digest setup #channel monday 09:00 Europe/Berlin` posts it weekly; `/cusp digest help` for more"
            }
            Verb::Mute => {
                "`/cusp mute [1d|1w|forever]` — no nudges for you for a day, a week (default) or until you unmute"
            }
            Verb::Unmute => "`/cusp unmute` — nudges again",
            Verb::Optout => {
                "`/cusp optout` — cusp stops reading your messages and deletes what it logged about you"
            }
            Verb::Optin => "`/cusp optin` — undo an opt-out",
            Verb::Forget => {
                "`/cusp forget me` — delete everything cusp holds about you (asks first; you are not opted out)"
            }
            Verb::Channel => "`/cusp channel off|on` — no nudges in this channel / nudges again",
            Verb::Reflections => "`/cusp reflections` — your saved reflections (only you see them)",
            Verb::Settings => {
                "`/cusp settings [cooldown <hours>|daily <n>|reaction <emoji>]` — the team's nudge limits and reaction"
            }
        }
    }
}

/// How long `/cusp mute` lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteFor {
    Day,
    Week,
    Forever,
}

/// A team setting changed with `/cusp settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingChange {
    Show,
    CooldownHours(i64),
    DailyLimit(i64),
    Reaction(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    /// `/cusp reflect` with the update to reflect on (may be empty: then we ask for it).
    Reflect(String),
    /// `/cusp digest …` with the rest of the text (parsed by `bot::digest::settings`).
    Digest(String),
    Mute(MuteFor),
    Unmute,
    Optout,
    Optin,
    /// `/cusp forget me`: delete the caller's data after a confirmation.
    ForgetMe,
    /// `true` = nudges on in this channel.
    Channel(bool),
    Settings(SettingChange),
    Reflections,
    /// A known verb with arguments that don't fit; the message shows the right form.
    Invalid {
        verb: Verb,
        message: String,
    },
    Unknown {
        given: String,
        suggestion: Option<Verb>,
    },
}

impl Command {
    pub fn parse(text: &str) -> Command {
        let text = text.trim();
        let (word, rest) = match text.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (text, ""),
        };
        let lowered = word.to_lowercase();
        match lowered.as_str() {
            "" | "help" | "-h" | "--help" | "?" => Command::Help,
            "reflect" => Command::Reflect(rest.to_owned()),
            "digest" => Command::Digest(rest.to_owned()),
            "mute" => match rest.to_lowercase().as_str() {
                "" | "1w" | "week" | "7d" => Command::Mute(MuteFor::Week),
                "1d" | "day" | "24h" => Command::Mute(MuteFor::Day),
                "forever" | "always" => Command::Mute(MuteFor::Forever),
                _ => invalid(
                    Verb::Mute,
                    "Try `/cusp mute 1d`, `/cusp mute 1w` or `/cusp mute forever`.",
                ),
            },
            "unmute" => Command::Unmute,
            "optout" | "opt-out" => Command::Optout,
            "optin" | "opt-in" => Command::Optin,
            "forget" => match rest.to_lowercase().as_str() {
                "me" => Command::ForgetMe,
                _ => invalid(
                    Verb::Forget,
                    "Type `/cusp forget me` to delete what cusp holds about you (you'll be asked to confirm). It only ever forgets the person who asks.",
                ),
            },
            "channel" => match rest.to_lowercase().as_str() {
                "off" => Command::Channel(false),
                "on" => Command::Channel(true),
                _ => invalid(
                    Verb::Channel,
                    "Try `/cusp channel off` or `/cusp channel on`.",
                ),
            },
            "settings" | "config" => parse_settings(rest),
            "reflections" => Command::Reflections,
            _ => Command::Unknown {
                given: word.to_owned(),
                suggestion: closest_verb(&lowered),
            },
        }
    }
}

fn invalid(verb: Verb, message: &str) -> Command {
    Command::Invalid {
        verb,
        message: message.to_owned(),
    }
}

fn parse_settings(rest: &str) -> Command {
    const EXAMPLE: &str = "Try `/cusp settings cooldown 24`, `/cusp settings daily 3` or `/cusp settings reaction seedling`.";
    let mut words = rest.split_whitespace();
    let (Some(key), value, None) = (words.next(), words.next(), words.next()) else {
        return if rest.is_empty() {
            Command::Settings(SettingChange::Show)
        } else {
            invalid(Verb::Settings, EXAMPLE)
        };
    };
    let number = |range: std::ops::RangeInclusive<i64>| {
        value
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|n| range.contains(n))
    };
    match (key.to_lowercase().as_str(), value) {
        ("cooldown", _) => number(1..=24 * 30).map_or_else(
            || invalid(Verb::Settings, "The cooldown is a number of hours from 1 to 720, e.g. `/cusp settings cooldown 24`."),
            |n| Command::Settings(SettingChange::CooldownHours(n)),
        ),
        ("daily", _) => number(0..=50).map_or_else(
            || invalid(Verb::Settings, "The daily limit is a number from 0 to 50, e.g. `/cusp settings daily 3`."),
            |n| Command::Settings(SettingChange::DailyLimit(n)),
        ),
        ("reaction", Some(emoji)) => {
            let name = emoji.trim_matches(':');
            let valid = !name.is_empty()
                && name.len() <= 100
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'));
            if valid {
                Command::Settings(SettingChange::Reaction(name.to_owned()))
            } else {
                invalid(Verb::Settings, "The reaction is an emoji name, e.g. `/cusp settings reaction seedling`.")
            }
        }
        _ => invalid(Verb::Settings, EXAMPLE),
    }
}

/// The verb within edit distance 2 of what was typed, if any.
fn closest_verb(word: &str) -> Option<Verb> {
    Verb::ALL
        .into_iter()
        .map(|verb| (edit_distance(word, verb.name()), verb))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, verb)| verb)
}

/// Levenshtein distance over chars; inputs are single words, so O(n·m) is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub fn help_text() -> String {
    let mut text = String::from(
        "*cusp* is a peer coach for deal conversations: it notices deal talk and asks a question or two \
         that turn attention back to the customer's world.\n",
    );
    for verb in Verb::ALL {
        text.push_str("• ");
        text.push_str(verb.usage());
        text.push('\n');
    }
    text
}

pub fn unknown_text(given: &str, suggestion: Option<Verb>) -> String {
    let given = crate::slack::blocks::escape_mrkdwn(given);
    let hint = match suggestion {
        Some(verb) => format!("Did you mean `/cusp {}`?\n\n", verb.name()),
        None => String::new(),
    };
    format!("I don't know `{given}`. {hint}{}", help_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slack_manifest_hints_every_subcommand() {
        let manifest = include_str!("../../deploy/slack-app-manifest.yaml");
        let hint = manifest
            .lines()
            .find_map(|line| line.trim().strip_prefix("usage_hint:"))
            .unwrap_or_default();
        assert!(
            !hint.is_empty(),
            "deploy/slack-app-manifest.yaml has no usage_hint"
        );
        for verb in Verb::ALL {
            let listed = hint
                .trim_matches(|c: char| c == '"' || c.is_whitespace())
                .split('|')
                .any(|part| part.split_whitespace().next() == Some(verb.name()));
            assert!(listed, "usage_hint {hint} should list `{}`", verb.name());
        }
    }

    #[test]
    fn empty_text_and_help_show_help() {
        assert_eq!(Command::parse(""), Command::Help);
        assert_eq!(Command::parse("  HELP "), Command::Help);
    }

    #[test]
    fn reflect_keeps_the_update_text() {
        assert_eq!(
            Command::parse("reflect  Acme wants a pilot\nnext week"),
            Command::Reflect("Acme wants a pilot\nnext week".into())
        );
        assert_eq!(Command::parse("Reflect"), Command::Reflect(String::new()));
    }

    #[test]
    fn unknown_subcommand_suggests_the_closest_one() {
        assert_eq!(
            Command::parse("reflcet Acme"),
            Command::Unknown {
                given: "reflcet".into(),
                suggestion: Some(Verb::Reflect)
            }
        );
        assert_eq!(
            Command::parse("zzzzzz"),
            Command::Unknown {
                given: "zzzzzz".into(),
                suggestion: None
            }
        );
        let text = unknown_text("reflcet", Some(Verb::Reflect));
        assert!(text.contains("Did you mean `/cusp reflect`?"), "{text}");
    }

    #[test]
    fn mute_channel_and_settings_parse_their_arguments() {
        assert_eq!(Command::parse("mute"), Command::Mute(MuteFor::Week));
        assert_eq!(Command::parse("mute 1d"), Command::Mute(MuteFor::Day));
        assert_eq!(
            Command::parse("mute FOREVER"),
            Command::Mute(MuteFor::Forever)
        );
        assert!(matches!(
            Command::parse("mute 3 fortnights"),
            Command::Invalid {
                verb: Verb::Mute,
                ..
            }
        ));
        assert_eq!(Command::parse("channel off"), Command::Channel(false));
        assert_eq!(Command::parse("channel on"), Command::Channel(true));
        assert!(matches!(
            Command::parse("channel maybe"),
            Command::Invalid {
                verb: Verb::Channel,
                ..
            }
        ));
        assert_eq!(
            Command::parse("settings"),
            Command::Settings(SettingChange::Show)
        );
        assert_eq!(
            Command::parse("settings cooldown 48"),
            Command::Settings(SettingChange::CooldownHours(48))
        );
        assert_eq!(
            Command::parse("settings daily 0"),
            Command::Settings(SettingChange::DailyLimit(0))
        );
        assert_eq!(
            Command::parse("settings reaction :herb:"),
            Command::Settings(SettingChange::Reaction("herb".into()))
        );
        for bad in [
            "settings cooldown -1",
            "settings daily lots",
            "settings reaction <script>",
            "settings volume 11",
        ] {
            let Command::Invalid { message, .. } = Command::parse(bad) else {
                panic!("{bad}")
            };
            assert!(message.contains("/cusp settings"), "{message}");
        }
        assert_eq!(Command::parse("optout"), Command::Optout);
        assert_eq!(Command::parse("forget me"), Command::ForgetMe);
        assert_eq!(Command::parse("Forget ME"), Command::ForgetMe);
        assert!(matches!(
            Command::parse("forget <@U123>"),
            Command::Invalid {
                verb: Verb::Forget,
                ..
            }
        ));
        assert_eq!(Command::parse("opt-in"), Command::Optin);
    }

    #[test]
    fn help_lists_every_verb() {
        let help = help_text();
        for verb in Verb::ALL {
            assert!(help.contains(&format!("/cusp {}", verb.name())), "{help}");
        }
    }
}
