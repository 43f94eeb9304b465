//! Newtypes for the Slack identifiers cusp stores and compares.
//!
//! Slack documents ids as opaque strings. Real ones are short ASCII tokens such as
//! `T0123ABC`, `C024BE91L`, `U2CERLKJA`, `B01`, `Ev0PV52K25`, so `parse` only rejects what
//! can never be an id (empty, too long, spaces or punctuation). It does not check the
//! leading letter: Slack has changed prefixes before (`W` users on Enterprise Grid, `G`
//! channels), and rejecting a valid event would drop a user's message.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Upper bound on an id's length. Slack ids are ~9–12 characters; 64 leaves room for
/// future formats while keeping junk (whole bodies, tokens) out of our tables.
pub const MAX_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {MAX_ID_LEN} characters")]
    TooLong { kind: &'static str },
    #[error("{kind} contains a character Slack ids never use")]
    InvalidChar { kind: &'static str },
}

fn validate(kind: &'static str, raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if raw.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { kind });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if !raw.chars().all(allowed) {
        // The offending value is not echoed: it may be attacker-controlled input.
        return Err(IdError::InvalidChar { kind });
    }
    Ok(())
}

macro_rules! slack_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts anything shaped like a Slack id (see the module docs).
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                validate($kind, raw)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(raw: String) -> Result<Self, IdError> {
                validate($kind, &raw)?;
                Ok(Self(raw))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slack_id!(
    /// A workspace, e.g. `T0123ABC` (enterprise ids `E…` fit here too).
    TeamId,
    "team id"
);
slack_id!(
    /// A conversation: public `C…`, private `G…`/`C…`, DM `D…`.
    ChannelId,
    "channel id"
);
slack_id!(
    /// A person or bot user, e.g. `U2CERLKJA` or `W…` on Enterprise Grid.
    UserId,
    "user id"
);
slack_id!(
    /// A bot integration (`B…`), distinct from the bot's user id.
    BotId,
    "bot id"
);
slack_id!(
    /// The globally unique id of one Events API delivery; our dedupe key.
    EventId,
    "event id"
);

/// Who cusp is in one workspace: the team, its bot user (`auth.test`'s `user_id`, or the
/// installation's `bot_user_id`) and bot id. Messages cusp posts carry these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    pub team_id: TeamId,
    pub user_id: UserId,
    pub bot_id: Option<BotId>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_slack_ids() {
        for raw in ["T0123ABC", "C024BE91L", "U2CERLKJA", "W012A3CDE", "B_CUSP"] {
            assert_eq!(UserId::parse(raw).unwrap().as_str(), raw);
        }
        assert_eq!(
            EventId::parse("Ev0PV52K25").unwrap().to_string(),
            "Ev0PV52K25"
        );
    }

    #[test]
    fn rejects_empty_long_and_odd_ids() {
        assert_eq!(TeamId::parse(""), Err(IdError::Empty { kind: "team id" }));
        assert!(matches!(
            ChannelId::parse(&"C".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            UserId::parse("U1 2"),
            Err(IdError::InvalidChar { .. })
        ));
        assert!(matches!(
            UserId::parse("Ü123"),
            Err(IdError::InvalidChar { .. })
        ));
        assert!(matches!(
            BotId::parse("<@U1>"),
            Err(IdError::InvalidChar { .. })
        ));
    }

    #[test]
    fn serde_round_trips_as_a_plain_string_and_validates() {
        let id: ChannelId = serde_json::from_str("\"C024BE91L\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"C024BE91L\"");
        assert!(serde_json::from_str::<ChannelId>("\"\"").is_err());
    }
}
