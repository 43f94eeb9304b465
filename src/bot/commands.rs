//! `/cusp` text → `Command` (pure), plus the help text. The match in `help_text` and
//! `Command::parse` are exhaustive so the two cannot drift apart.

/// Subcommands users can type after `/cusp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Help,
    Reflect,
    Digest,
}

impl Verb {
    pub const ALL: [Verb; 3] = [Verb::Help, Verb::Reflect, Verb::Digest];

    pub fn name(self) -> &'static str {
        match self {
            Verb::Help => "help",
            Verb::Reflect => "reflect",
            Verb::Digest => "digest",
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    /// `/cusp reflect` with the update to reflect on (may be empty: then we ask for it).
    Reflect(String),
    /// `/cusp digest …` with the rest of the text (parsed by `bot::digest_settings`).
    Digest(String),
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
            _ => Command::Unknown {
                given: word.to_owned(),
                suggestion: closest_verb(&lowered),
            },
        }
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
    fn help_lists_every_verb() {
        let help = help_text();
        for verb in Verb::ALL {
            assert!(help.contains(&format!("/cusp {}", verb.name())), "{help}");
        }
    }
}
