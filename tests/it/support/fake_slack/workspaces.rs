//! The workspaces the fake serves, and which channels and people each one can reach.
//!
//! Every Web API call is made with one workspace's bot token, and Slack answers it only
//! about that workspace: a channel or person of another workspace does not exist for
//! that token. The fake does the same, so a test that sends T_A's nudge with T_B's token
//! (or into T_B's channel) sees the call fail, as it would in production.
//!
//! Rules: a `team_id` argument must name the caller's workspace
//! (`team_access_not_granted` otherwise); a channel or person is reachable when the calling workspace declared it
//! ([`FakeSlack::add_channel`], [`FakeSlack::add_user`]); one declared only by other
//! workspaces is refused with Slack's error code; one nobody declared is accepted only
//! while the fake serves a single workspace, which keeps the single-workspace tests (that
//! never declare anything) as they were. The same person id may be declared in several
//! workspaces (Slack Connect, Enterprise Grid); a DM channel belongs to the workspace
//! that opened it.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{BOT_ID, BOT_USER_ID, FakeSlack, Inner, TEAM_ID, TEST_TOKEN, is_user_id, param_str};

/// One workspace the fake serves: its bot token and who the bot is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeWorkspace {
    pub team_id: String,
    pub team_name: String,
    pub token: String,
    pub bot_user_id: String,
    pub bot_id: String,
}

impl FakeWorkspace {
    /// A workspace with the bot ids an installation test would store for it
    /// (`U_BOT_<team>`, `B_BOT_<team>`).
    pub fn new(team_id: &str, token: &str) -> FakeWorkspace {
        FakeWorkspace {
            team_id: team_id.to_owned(),
            team_name: format!("{team_id} Inc"),
            token: token.to_owned(),
            bot_user_id: format!("U_BOT_{team_id}"),
            bot_id: format!("B_BOT_{team_id}"),
        }
    }

    /// The workspace every single-workspace test uses (`T_TEST`, `xoxb-test-token`).
    pub fn default_test() -> FakeWorkspace {
        FakeWorkspace {
            team_id: TEAM_ID.to_owned(),
            team_name: "cusp test".to_owned(),
            token: TEST_TOKEN.to_owned(),
            bot_user_id: BOT_USER_ID.to_owned(),
            bot_id: BOT_ID.to_owned(),
        }
    }
}

#[derive(Debug)]
struct Served {
    workspace: FakeWorkspace,
    channels: HashSet<String>,
    users: HashSet<String>,
}

/// The workspaces served, what each declared, and the DM channels opened.
#[derive(Debug, Default)]
pub(super) struct Directory {
    served: Vec<Served>,
    /// DM channel id → (team, person), as `conversations.open` handed them out.
    dms: HashMap<String, (String, String)>,
}

/// Why a call was refused: Slack's `error` code.
pub(super) type Refusal = &'static str;

impl Directory {
    pub(super) fn new(workspaces: Vec<FakeWorkspace>) -> Directory {
        Directory {
            served: workspaces
                .into_iter()
                .map(|workspace| Served {
                    workspace,
                    channels: HashSet::new(),
                    users: HashSet::new(),
                })
                .collect(),
            dms: HashMap::new(),
        }
    }

    /// The workspace whose bot token this is.
    pub(super) fn by_token(&self, token: &str) -> Option<&FakeWorkspace> {
        self.served
            .iter()
            .map(|s| &s.workspace)
            .find(|w| w.token == token)
    }

    fn served_mut(&mut self, team: &str) -> &mut Served {
        let at = self
            .served
            .iter()
            .position(|s| s.workspace.team_id == team)
            .unwrap_or_else(|| panic!("the fake Slack serves no workspace {team}"));
        &mut self.served[at]
    }

    /// Whether `team` may see `id` (a channel when `user` is false).
    fn reachable(&self, team: &str, id: &str, user: bool) -> bool {
        let declares = |s: &Served| {
            if user {
                s.users.contains(id)
            } else {
                s.channels.contains(id)
            }
        };
        if self
            .served
            .iter()
            .any(|s| s.workspace.team_id == team && declares(s))
        {
            return true;
        }
        let declared_elsewhere = self.served.iter().any(declares);
        !declared_elsewhere && self.served.len() == 1
    }

    /// A channel parameter: a DM belongs to the workspace that opened it; a person's id
    /// (a post to their DM) is checked as a person.
    fn channel_ok(&self, team: &str, channel: &str) -> bool {
        if let Some((owner, _)) = self.dms.get(channel) {
            return owner == team;
        }
        if is_user_id(channel) {
            return self.reachable(team, channel, true);
        }
        self.reachable(team, channel, false)
    }

    /// `Some(error)` when a call made with `team`'s token names a channel or person that
    /// workspace cannot see.
    pub(super) fn refuse(
        &self,
        team: &str,
        method: &str,
        params: &Map<String, Value>,
    ) -> Option<Refusal> {
        // A `team_id` argument naming another workspace: the token has no access there.
        if param_str(params, "team_id").is_some_and(|t| t != team) {
            return Some("team_access_not_granted");
        }
        let channel = param_str(params, "channel");
        let channel_refused = || {
            channel
                .as_deref()
                .is_some_and(|c| !self.channel_ok(team, c))
        };
        match method {
            "chat.postMessage"
            | "chat.update"
            | "reactions.add"
            | "conversations.history"
            | "conversations.replies"
                if channel_refused() =>
            {
                Some("channel_not_found")
            }
            "chat.postEphemeral" if channel_refused() => Some("channel_not_found"),
            "chat.postEphemeral" => param_str(params, "user")
                .is_some_and(|u| !self.reachable(team, &u, true))
                .then_some("user_not_in_channel"),
            "conversations.open" => param_str(params, "users")
                .is_some_and(|users| users.split(',').any(|u| !self.reachable(team, u, true)))
                .then_some("user_not_found"),
            _ => None,
        }
    }

    /// Whether `team` may learn that `user` exists (`users.lookupByEmail`).
    pub(super) fn knows_user(&self, team: &str, user: &str) -> bool {
        self.reachable(team, user, true)
    }

    /// The DM channel between `team`'s bot and `user`: `D_<user>` while one workspace is
    /// served (as the single-workspace tests expect), `D_<user>_<team>` otherwise, since
    /// the same person id can be in two workspaces.
    pub(super) fn open_dm(&mut self, team: &str, user: &str) -> String {
        let id = if self.served.len() == 1 {
            format!("D_{user}")
        } else {
            format!("D_{user}_{team}")
        };
        self.dms
            .insert(id.clone(), (team.to_owned(), user.to_owned()));
        id
    }
}

impl FakeSlack {
    /// Declares that `team`'s bot can see `channel` (and no other workspace can, unless
    /// it declares it too).
    pub fn add_channel(&self, team: &str, channel: &str) {
        self.lock()
            .directory
            .served_mut(team)
            .channels
            .insert(channel.to_owned());
    }

    /// Declares that `user` is a member of `team`.
    pub fn add_user(&self, team: &str, user: &str) {
        self.lock()
            .directory
            .served_mut(team)
            .users
            .insert(user.to_owned());
    }
}

/// The workspace a call's `Authorization: Bearer …` header names, if it is a bot token
/// the fake issued.
pub(super) fn caller(inner: &Inner, auth: Option<&str>) -> Option<FakeWorkspace> {
    let token = auth?.strip_prefix("Bearer ")?;
    inner.directory.by_token(token).cloned()
}
