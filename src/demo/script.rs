//! The demo's week, step by step. Each step sends what Slack (or a CRM) would send, waits
//! until cusp has handled it, and checks the outcome against the stand-in's records and
//! the database. A step that did not go as expected is kept with its problem, and the
//! run goes on so the reader sees everything that did happen.

use std::time::Duration;

use serde_json::{Value, json};

use super::fake_slack::{Author, Call, Channel, Message, Person, StandIn, Workspace};
use super::{DemoError, Driver, StepResult};
use crate::bot::nudge::{Response, response_for};
use crate::engine::{Class, Engine};

pub const EMEA: &str = "C0DEALSEMEA";
pub const NA: &str = "C0DEALSNA";
pub const DIGEST_CHANNEL: &str = "C0SALESTEAM";
pub const DEAL_CHANNELS: [&str; 2] = [EMEA, NA];

pub const MAYA: &str = "U0MAYA";
pub const SAM: &str = "U0SAM";
pub const PRIYA: &str = "U0PRIYA";
pub const LEO: &str = "U0LEO";

/// How long the stand-in asks cusp to wait after its one 429.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The demo workspace: four sellers, two deal channels and the team channel.
pub fn workspace() -> Workspace {
    let person = |id, name, email| Person { id, name, email };
    let channel = |id: &str, name: &str| Channel {
        id: id.to_owned(),
        name: name.to_owned(),
        dm_with: None,
    };
    Workspace::new(
        vec![
            person(MAYA, "Maya Chen", "maya@northwind.example"),
            person(SAM, "Sam Ortiz", "sam@northwind.example"),
            person(PRIYA, "Priya Nair", "priya@northwind.example"),
            person(LEO, "Leo Brandt", "leo@northwind.example"),
        ],
        vec![
            channel(EMEA, "deals-emea"),
            channel(NA, "deals-na"),
            channel(DIGEST_CHANNEL, "sales-team"),
        ],
    )
}

/// What cusp should do with a person's message.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A deal update of this class, answered with a threaded nudge.
    Nudge(Class),
    /// A customer-centric deal update, answered with a reaction only.
    React,
    /// Not a deal update: nothing logged, nothing said.
    Nothing,
}

struct Scenario<'a> {
    driver: &'a Driver,
    slack: &'a StandIn,
    engine: Engine,
    steps: Vec<StepResult>,
    events: u32,
    triggers: u32,
}

pub(super) async fn run(driver: &Driver, slack: &StandIn) -> Result<Vec<StepResult>, DemoError> {
    let mut s = Scenario {
        driver,
        slack,
        engine: Engine::builtin(),
        steps: Vec::new(),
        events: 0,
        triggers: 0,
    };
    s.week().await?;
    Ok(s.steps)
}

impl Scenario<'_> {
    async fn week(&mut self) -> Result<(), DemoError> {
        // Monday, #deals-emea.
        let acme = self
            .say("Monday", EMEA, MAYA, "Acme: their CFO needs the rollout live before the Q3 budget review so the warehouse team stops losing two days a month to manual reconciliation. Next step: workshop with their ops lead on Thursday.", None, Expect::React)
            .await?;
        let globex = self
            .say("Monday", EMEA, SAM, "Globex: pushing hard to close this by Friday so I hit quota, offered 15% discount if they sign this month.", None, Expect::Nudge(Class::SellerCentric))
            .await?;
        self.say(
            "Monday",
            EMEA,
            MAYA,
            "Anyone up for lunch? The new ramen place on 5th & Main opened <3",
            None,
            Expect::Nothing,
        )
        .await?;

        // Tuesday: another app's bot, then a nudge that meets Slack's rate limit, then an edit.
        self.bot_message(
            "Tuesday",
            EMEA,
            "Pipeline Bot",
            "Opportunity Globex moved to Negotiation (€84,000).",
        )
        .await?;
        self.slack.arm_rate_limit("chat.postMessage", RETRY_AFTER);
        let calls_before = self.slack.workspace().calls.len();
        let initech = self
            .say("Tuesday", EMEA, PRIYA, "Initech: demo went well, showed them all our new dashboard features and the AI module. Sending the proposal tomorrow.", None, Expect::Nudge(Class::SellerCentric))
            .await?;
        self.check_rate_limit(calls_before);
        self.edit("Tuesday", EMEA, PRIYA, &initech, "Initech: demo went well, showed them all our new dashboard features and the AI module. Sending the proposal tomorrow (their IT lead asked for the security pack).")
            .await?;

        // Wednesday: a reply in the thread of Monday's Acme update counts as an Acme update.
        self.say(
            "Wednesday",
            EMEA,
            MAYA,
            "Heads up: their procurement now wants 20% off to sign this month.",
            Some(&acme),
            // The model trained on all three writers reads the discount and the month as
            // the seller's lever (it drops their ask as a concern): still a nudge.
            Expect::Nudge(Class::SellerCentric),
        )
        .await?;
        // #deals-na, and Slack delivering the same event twice.
        let (pied_piper, event_id, event) = self
            .say_with_event("Wednesday", NA, LEO, "Pied Piper call: their VP Eng wants to cut cloud costs by 30% this year. Sent pricing; I offered a 10% discount to close by end of month.", None, Expect::Nudge(Class::Balanced))
            .await?;
        self.retry(&event_id, event, NA, &pied_piper).await?;

        // Thursday, #deals-na.
        self.say(
            "Thursday",
            NA,
            SAM,
            "Umbrella: contract is with legal, expected close end of month, 120k ARR.",
            None,
            Expect::Nudge(Class::Neutral),
        )
        .await?;
        self.say("Thursday", NA, PRIYA, "Stark Industries: security review passed. Their CISO is worried about repeat audit findings, so we mapped the rollout to their audit calendar; proposal goes out Monday.", None, Expect::React)
            .await?;
        self.reflect_command("Thursday", NA, SAM, "Umbrella: legal wants changes to the DPA; their IT lead is worried about data residency for their EU customers.")
            .await?;

        // Friday: buttons, a modal, a CRM webhook, the digest's channel.
        self.click_reflect_and_save("Friday", EMEA, SAM, &globex)
            .await?;
        self.click_not_now("Friday", EMEA, PRIYA, &initech).await?;
        self.crm_stage_change("Friday").await?;
        self.digest_setup("Friday", MAYA).await?;

        // Monday 09:00: the weekly digest.
        self.digest("Next Monday").await
    }

    fn record(&mut self, day: &str, action: String, outcome: String, problem: Option<String>) {
        self.steps.push(StepResult {
            day: day.to_owned(),
            action,
            outcome,
            problem,
        });
    }

    fn name(&self, user: &str) -> String {
        self.slack
            .workspace()
            .person(user)
            .map_or_else(|| user.to_owned(), |p| p.name.to_owned())
    }

    fn channel_name(&self, channel: &str) -> String {
        self.slack
            .workspace()
            .channel(channel)
            .map_or_else(|| channel.to_owned(), |c| c.name.clone())
    }

    fn next_event_id(&mut self) -> String {
        self.events += 1;
        format!("Ev0DEMO{:04}", self.events)
    }

    fn next_trigger(&mut self) -> String {
        self.triggers += 1;
        format!("demo-trigger-{}", self.triggers)
    }

    async fn observations(&self) -> Result<i64, DemoError> {
        Ok(self
            .driver
            .store
            .count_observations(&self.driver.team_id)
            .await?)
    }

    async fn reaction_name(&self) -> Result<String, DemoError> {
        Ok(self
            .driver
            .store
            .team_settings(&self.driver.team_id)
            .await?
            .reaction)
    }

    async fn say(
        &mut self,
        day: &str,
        channel: &str,
        user: &str,
        text: &str,
        thread: Option<&str>,
        expect: Expect,
    ) -> Result<String, DemoError> {
        Ok(self
            .say_with_event(day, channel, user, text, thread, expect)
            .await?
            .0)
    }

    /// A person posts; cusp gets the event; the outcome is checked. Returns the message's
    /// ts and the event as sent (for a redelivery).
    async fn say_with_event(
        &mut self,
        day: &str,
        channel: &str,
        user: &str,
        text: &str,
        thread: Option<&str>,
        expect: Expect,
    ) -> Result<(String, String, Value), DemoError> {
        let action = format!(
            "{} posts in #{}{}",
            self.name(user),
            self.channel_name(channel),
            if thread.is_some() {
                " (thread reply)"
            } else {
                ""
            }
        );
        let mut problems = self.engine_disagrees(text, thread.is_some(), expect);
        let before = self.observations().await?;
        let ts = self.slack.post_as_person(channel, user, text, thread, day);
        let mut event = json!({
            "type": "message", "channel": channel, "user": user, "text": text,
            "ts": ts, "event_ts": ts, "channel_type": "channel",
        });
        if let Some(root) = thread {
            event["thread_ts"] = json!(root);
        }
        let event_id = self.next_event_id();
        let status = self.driver.event(&event_id, event.clone(), None).await?;
        self.driver.settle(&action).await?;
        if status != 200 {
            problems.push(format!(
                "cusp answered the event with HTTP {status}, not 200"
            ));
        }
        let logged = self.observations().await? - before;
        let root = thread.unwrap_or(&ts).to_owned();
        let reaction = self.reaction_name().await?;
        let who = self.name(user);
        let (outcome, mut found) = {
            // Nothing below may lock the workspace again (`self.name` …): std's mutex is
            // not reentrant.
            let ws = self.slack.workspace();
            let nudges = ws.cusp_replies(channel, &root);
            let reacted = ws
                .message(channel, &ts)
                .is_some_and(|m| m.reactions.contains(&reaction));
            let mut found = Vec::new();
            let outcome = match expect {
                Expect::Nudge(class) => match nudges.iter().find(|m| has_buttons(m)) {
                    Some(nudge) => {
                        let questions = question_count(nudge);
                        format!(
                            "{} update → threaded nudge with {questions} question{} and buttons",
                            class_label(class),
                            if questions == 1 { "" } else { "s" }
                        )
                    }
                    None => {
                        found.push(format!(
                            "expected a threaded nudge under {}'s message, got none",
                            who
                        ));
                        "no nudge".to_owned()
                    }
                },
                Expect::React => {
                    if !reacted {
                        found.push(format!(
                            "expected a :{reaction}: reaction on {}'s message, got none",
                            who
                        ));
                    }
                    if !nudges.is_empty() {
                        found.push(
                            "a customer-centric update got a nudge; it should only get a reaction"
                                .to_owned(),
                        );
                    }
                    format!("customer-centric update → :{reaction}: reaction, no nudge")
                }
                Expect::Nothing => {
                    if reacted || !nudges.is_empty() {
                        found.push("cusp answered a message that is not a deal update".to_owned());
                    }
                    "not a deal update → nothing said, nothing logged".to_owned()
                }
            };
            (outcome, found)
        };
        let expected_logged = i64::from(!matches!(expect, Expect::Nothing));
        if logged != expected_logged {
            found.push(format!(
                "expected {expected_logged} observation(s) logged for this message, the database gained {logged}"
            ));
        }
        problems.append(&mut found);
        self.record(day, action, outcome, join(problems));
        Ok((ts, event_id, event))
    }

    /// The script says what each message is; the engine must still read it that way, or
    /// the demo would no longer show what it claims (e.g. after a vocabulary change).
    fn engine_disagrees(&self, text: &str, in_thread: bool, expect: Expect) -> Vec<String> {
        let analysis = self.engine.analyze(text);
        let mut out = Vec::new();
        let (class, response) = match expect {
            Expect::Nudge(class) => (Some(class), Some(Response::Nudge)),
            Expect::React => (Some(Class::CustomerCentric), Some(Response::React)),
            Expect::Nothing => (None, None),
        };
        // A thread reply is a deal update through its thread; alone it need not read as one.
        let is_update = analysis.is_deal_update || (in_thread && !analysis.themes.is_empty());
        if is_update != class.is_some() {
            out.push(format!(
                "the script expects {} the engine reads it {}",
                if class.is_some() {
                    "a deal update;"
                } else {
                    "chit-chat;"
                },
                if is_update {
                    "as a deal update"
                } else {
                    "as chit-chat"
                }
            ));
        }
        if let Some(class) = class.filter(|c| *c != analysis.class) {
            out.push(format!(
                "the script expects a {} update; the engine now says {} (update src/demo/script.rs)",
                class_label(class),
                class_label(analysis.class)
            ));
        }
        if let Some(response) = response.filter(|r| *r != response_for(&analysis)) {
            out.push(format!(
                "the script expects a {response:?}; the engine's class calls for the other"
            ));
        }
        out
    }

    async fn bot_message(
        &mut self,
        day: &str,
        channel: &str,
        bot: &str,
        text: &str,
    ) -> Result<(), DemoError> {
        let action = format!(
            "{bot} (another app) posts in #{}",
            self.channel_name(channel)
        );
        let ts = self.slack.post_as_bot(channel, bot, text, day);
        let event = json!({
            "type": "message", "subtype": "bot_message", "bot_id": "B0PIPELINE",
            "username": bot, "channel": channel, "text": text, "ts": ts, "event_ts": ts,
            "channel_type": "channel",
        });
        let event_id = self.next_event_id();
        self.ignored_event(
            day,
            action,
            &event_id,
            event,
            "a bot's message → ignored at the door (not stored)",
        )
        .await
    }

    async fn edit(
        &mut self,
        day: &str,
        channel: &str,
        user: &str,
        ts: &str,
        text: &str,
    ) -> Result<(), DemoError> {
        let action = format!("{} edits that message", self.name(user));
        let (previous, before_nudges) = {
            let ws = self.slack.workspace();
            (
                ws.message(channel, ts)
                    .map(|m| m.text.clone())
                    .unwrap_or_default(),
                ws.cusp_replies(channel, ts).len(),
            )
        };
        let event_ts = self.slack.edit(channel, ts, text);
        let event = json!({
            "type": "message", "subtype": "message_changed", "hidden": true,
            "channel": channel, "ts": event_ts, "event_ts": event_ts, "channel_type": "channel",
            "message": { "type": "message", "user": user, "text": text, "ts": ts,
                         "edited": { "user": user, "ts": event_ts } },
            "previous_message": { "type": "message", "user": user, "text": previous, "ts": ts },
        });
        let event_id = self.next_event_id();
        self.ignored_event(
            day,
            action,
            &event_id,
            event,
            "an edit → ignored (the update was already handled)",
        )
        .await?;
        let after = self.slack.workspace().cusp_replies(channel, ts).len();
        if after != before_nudges {
            if let Some(last) = self.steps.last_mut() {
                last.problem = Some(format!(
                    "the edit changed cusp's replies from {before_nudges} to {after}"
                ));
            }
        }
        Ok(())
    }

    /// An event cusp must drop at the edge: 200, nothing stored, nothing said.
    async fn ignored_event(
        &mut self,
        day: &str,
        action: String,
        event_id: &str,
        event: Value,
        outcome: &str,
    ) -> Result<(), DemoError> {
        let before = self.observations().await?;
        let calls_before = self.slack.workspace().calls.len();
        let status = self.driver.event(event_id, event, None).await?;
        self.driver.settle(&action).await?;
        let mut problems = Vec::new();
        if status != 200 {
            problems.push(format!("cusp answered HTTP {status}, not 200"));
        }
        match self
            .driver
            .store
            .inbox_state(&self.driver.team_id, event_id)
            .await
        {
            Err(crate::store::StoreError::NotFound) => {}
            Ok(_) => problems.push(
                "the event was stored in the inbox; it should be dropped at the edge".to_owned(),
            ),
            Err(err) => return Err(err.into()),
        }
        if self.observations().await? != before {
            problems.push("an observation was logged for it".to_owned());
        }
        let ws = self.slack.workspace();
        let new_calls = &ws.calls[calls_before..];
        if let Some(call) = new_calls.first() {
            problems.push(format!("cusp called {} in answer to it", call.method));
        }
        drop(ws);
        self.record(day, action, outcome.to_owned(), join(problems));
        Ok(())
    }

    /// Slack redelivers an event (as after a slow answer): handled once.
    async fn retry(
        &mut self,
        event_id: &str,
        event: Value,
        channel: &str,
        ts: &str,
    ) -> Result<(), DemoError> {
        let action = format!("Slack delivers event {event_id} again (X-Slack-Retry-Num: 1)");
        let before = self.observations().await?;
        let status = self.driver.event(event_id, event, Some(1)).await?;
        self.driver.settle(&action).await?;
        let mut problems = Vec::new();
        if status != 200 {
            problems.push(format!("cusp answered HTTP {status}, not 200"));
        }
        let logged = self.observations().await? - before;
        if logged != 0 {
            problems.push(format!("the retry logged {logged} more observation(s)"));
        }
        let nudges = self.slack.workspace().cusp_replies(channel, ts).len();
        if nudges != 1 {
            problems.push(format!(
                "expected exactly one nudge in the thread after the retry, found {nudges}"
            ));
        }
        self.record(
            "Wednesday",
            action,
            format!("a retried event → handled once ({nudges} nudge in the thread, nothing logged twice)"),
            join(problems),
        );
        Ok(())
    }

    /// The 429 armed before the last step: answered once, and the same delivery came back
    /// only after Retry-After.
    fn check_rate_limit(&mut self, calls_before: usize) {
        let ws = self.slack.workspace();
        let limited = ws.calls[calls_before..].iter().find(|c| c.status == 429);
        let (outcome, problem) = match limited {
            None => (
                "no 429".to_owned(),
                Some(
                    "the stand-in's 429 was never used: cusp made no chat.postMessage call"
                        .to_owned(),
                ),
            ),
            Some(call) => match retried_after(&ws, call) {
                None => (
                    "429 not retried".to_owned(),
                    Some("after the 429 cusp never delivered that message".to_owned()),
                ),
                Some((waited, _)) if waited < RETRY_AFTER => (
                    format!("retried after {} ms", waited.as_millis()),
                    Some(format!(
                        "cusp retried {} ms after the 429, before Retry-After ({} s)",
                        waited.as_millis(),
                        RETRY_AFTER.as_secs()
                    )),
                ),
                Some((waited, _)) => (
                    format!(
                        "Slack answered {} with 429 (Retry-After: {} s); the outbox held it and delivered it {:.1} s later, once",
                        call.method,
                        RETRY_AFTER.as_secs(),
                        waited.as_secs_f64()
                    ),
                    None,
                ),
            },
        };
        drop(ws);
        self.record(
            "Tuesday",
            "Slack rate-limits cusp".to_owned(),
            outcome,
            problem,
        );
    }

    /// `/cusp reflect …`: answered inline, only to the person who asked, and logged.
    async fn reflect_command(
        &mut self,
        day: &str,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), DemoError> {
        let action = format!(
            "{} types /cusp reflect in #{}",
            self.name(user),
            self.channel_name(channel)
        );
        let before = self.observations().await?;
        let trigger = self.next_trigger();
        let command = format!("reflect {text}");
        let (status, answer) = self
            .driver
            .command(
                channel,
                &self.channel_name(channel),
                user,
                &command,
                &trigger,
            )
            .await?;
        self.driver.settle(&action).await?;
        self.slack
            .show_ephemeral(channel, user, &format!("/cusp {command}"), &answer);
        let mut problems = Vec::new();
        if status != 200 || answer.get("response_type").and_then(Value::as_str) != Some("ephemeral")
        {
            problems.push(format!(
                "expected an ephemeral answer with HTTP 200, got HTTP {status}"
            ));
        }
        let shown = answer
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !shown.contains('?') {
            problems.push("the answer carries no question".to_owned());
        }
        if self.observations().await? - before != 1 {
            problems.push("the reflected deal update was not logged".to_owned());
        }
        self.record(
            day,
            action,
            "themes, class and questions, shown only to them; logged with source `command`"
                .to_owned(),
            join(problems),
        );
        Ok(())
    }

    /// The nudge under `root` and the button on it labelled `label`.
    /// [`Self::button`], or the step recorded as failed when the nudge has no such button.
    fn button_or_record(
        &mut self,
        day: &str,
        action: &str,
        channel: &str,
        root: &str,
        label: &str,
    ) -> Option<(Message, Value)> {
        let found = self.button(channel, root, label);
        if found.is_none() {
            self.record(
                day,
                action.to_owned(),
                format!("no {label} button"),
                Some(format!(
                    "expected a {label} button on the nudge, found none"
                )),
            );
        }
        found
    }

    fn button(&self, channel: &str, root: &str, label: &str) -> Option<(Message, Value)> {
        let ws = self.slack.workspace();
        let nudge = ws
            .cusp_replies(channel, root)
            .into_iter()
            .find(|m| has_buttons(m))?
            .clone();
        let button = buttons(&nudge)
            .into_iter()
            .find(|b| b.pointer("/text/text").and_then(Value::as_str) == Some(label))?;
        Some((nudge, button))
    }

    fn block_actions(
        &mut self,
        channel: &str,
        user: &str,
        nudge: &Message,
        button: &Value,
    ) -> Value {
        json!({
            "type": "block_actions",
            "team": { "id": self.driver.team_id, "domain": "northwind-demo" },
            "user": { "id": user, "team_id": self.driver.team_id },
            "api_app_id": "A0CUSPDEMO",
            "container": { "type": "message", "message_ts": nudge.ts, "channel_id": channel, "is_ephemeral": false },
            "trigger_id": self.next_trigger(),
            "channel": { "id": channel, "name": self.channel_name(channel) },
            "message": { "type": "message", "user": super::fake_slack::BOT_USER_ID, "bot_id": super::fake_slack::BOT_ID,
                         "text": nudge.text, "ts": nudge.ts, "thread_ts": nudge.thread_ts },
            "response_url": "https://hooks.slack.com/actions/T0DEMO/1/demo",
            "actions": [{
                "type": "button", "action_id": button.get("action_id"), "block_id": "cusp_prompt",
                "value": button.get("value"), "text": button.get("text"),
                "action_ts": jiff::Timestamp::now().as_second().to_string(),
            }],
        })
    }

    /// **Reflect** → `views.open` on the stand-in; then the person writes and saves.
    async fn click_reflect_and_save(
        &mut self,
        day: &str,
        channel: &str,
        user: &str,
        root: &str,
    ) -> Result<(), DemoError> {
        let action = format!("{} clicks Reflect under their nudge", self.name(user));
        let Some((nudge, button)) = self.button_or_record(day, &action, channel, root, "Reflect")
        else {
            return Ok(());
        };
        let views_before = self.slack.workspace().views.len();
        let payload = self.block_actions(channel, user, &nudge, &button);
        let (status, _) = self.driver.interaction(&payload).await?;
        self.driver.settle(&action).await?;
        let view = self.slack.workspace().views.get(views_before).cloned();
        let Some(mut opened) = view.filter(|_| status == 200) else {
            self.record(
                day,
                action,
                "no modal".to_owned(),
                Some(format!(
                    "expected views.open on the stand-in (HTTP {status}), got none"
                )),
            );
            return Ok(());
        };
        opened.user = Some(user.to_owned());
        if let Some(v) = self.slack.workspace().views.get_mut(views_before) {
            v.user = Some(user.to_owned());
        }
        let labels: Vec<String> = opened
            .view
            .get("blocks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("input"))
            .filter_map(|b| {
                Some((
                    b.get("block_id")?.as_str()?.to_owned(),
                    b.pointer("/label/text")?.as_str()?.to_owned(),
                ))
            })
            .filter(|(id, _)| id.starts_with('q'))
            .map(|(_, label)| label)
            .collect();
        self.record(
            day,
            action,
            format!("views.open → a modal with {} question(s)", labels.len()),
            None,
        );

        let action = format!(
            "{} writes a reflection and shares it with the digest",
            self.name(user)
        );
        let answers = [
            "I don't know yet what a late rollout costs Globex. I'll ask their ops lead before we talk price again.",
            "Not sure what waiting a quarter means for them; I'll ask what their year-end deadline is really about.",
            "Their finance team hasn't been on a call yet. I'll ask who signs off on the business case.",
        ];
        let mut values = serde_json::Map::new();
        let mut written = Vec::new();
        for (i, (label, answer)) in labels.iter().zip(answers).enumerate() {
            values.insert(
                format!("q{i}"),
                json!({ "answer": { "type": "plain_text_input", "value": answer } }),
            );
            written.push((label.clone(), answer.to_owned()));
        }
        values.insert("share".into(), json!({ "share": { "type": "checkboxes", "selected_options": [
            { "text": { "type": "plain_text", "text": "Share my reflection with the team digest" }, "value": "share" } ] } }));
        let submission = json!({
            "type": "view_submission",
            "team": { "id": self.driver.team_id, "domain": "northwind-demo" },
            "user": { "id": user, "team_id": self.driver.team_id },
            "api_app_id": "A0CUSPDEMO",
            "trigger_id": self.next_trigger(),
            "view": {
                "id": opened.id, "type": "modal",
                "callback_id": opened.view.get("callback_id"),
                "private_metadata": opened.view.get("private_metadata"),
                "state": { "values": values },
            },
        });
        let (status, body) = self.driver.interaction(&submission).await?;
        self.driver.settle(&action).await?;
        self.slack.record_submission(&opened.id, written, true);
        let saved = self
            .driver
            .store
            .reflections_of(&self.driver.team_id, user)
            .await?;
        let problem = if status != 200 || !body.trim().is_empty() {
            Some(format!(
                "expected the modal to close (HTTP 200, empty body), got HTTP {status}: {body}"
            ))
        } else if !saved.first().is_some_and(|(_, shared)| *shared) {
            Some("the reflection is not in the database as shared".to_owned())
        } else {
            None
        };
        self.record(
            day,
            action,
            "view_submission → saved for them, shared with the team digest".to_owned(),
            problem,
        );
        Ok(())
    }

    /// **Not now** → the feedback is stored and an ephemeral thanks goes out via the outbox.
    async fn click_not_now(
        &mut self,
        day: &str,
        channel: &str,
        user: &str,
        root: &str,
    ) -> Result<(), DemoError> {
        let action = format!("{} clicks Not now under their nudge", self.name(user));
        let Some((nudge, button)) = self.button_or_record(day, &action, channel, root, "Not now")
        else {
            return Ok(());
        };
        let notes_before = self.slack.workspace().ephemerals.len();
        let payload = self.block_actions(channel, user, &nudge, &button);
        let (status, _) = self.driver.interaction(&payload).await?;
        self.driver.settle(&action).await?;
        let note = self
            .slack
            .workspace()
            .ephemerals
            .get(notes_before)
            .map(|e| e.text.clone());
        let (_, not_now) = self
            .driver
            .store
            .count_prompt_feedback(&self.driver.team_id, 0, i64::MAX)
            .await?;
        let problem = if status != 200 {
            Some(format!("cusp answered HTTP {status}"))
        } else if note.is_none() {
            Some("expected an ephemeral acknowledgement (chat.postEphemeral), got none".to_owned())
        } else if not_now != 1 {
            Some(format!(
                "expected one \"not now\" in the database, found {not_now}"
            ))
        } else {
            None
        };
        self.record(
            day,
            action,
            "feedback stored (questions like these are asked less); a note only they see"
                .to_owned(),
            problem,
        );
        Ok(())
    }

    /// A CRM moves a deal: `POST /hooks/deals`; the owner is found by email and gets a DM.
    async fn crm_stage_change(&mut self, day: &str) -> Result<(), DemoError> {
        let action =
            "The CRM moves Hooli to proposal (POST /hooks/deals, owner by email)".to_owned();
        let body = json!({
            "deal_id": "HS-1042", "account": "Hooli", "stage": "proposal", "previous_stage": "demo",
            "owner": { "email": "leo@northwind.example" }, "amount": 48000, "close_date": "2026-12-18",
            "note": "Their head of support wants response times halved before peak season.",
        });
        let before = self.observations().await?;
        let (status, answer) = self.driver.crm(&body, "demo-delivery-1042").await?;
        self.driver.settle(&action).await?;
        let (looked_up, dm) = {
            let ws = self.slack.workspace();
            let looked_up = ws
                .calls_to("users.lookupByEmail")
                .iter()
                .any(|c| c.error.is_none());
            let dm = ws
                .messages
                .iter()
                .find(|m| {
                    m.author == Author::Cusp
                        && ws
                            .channel(&m.channel)
                            .is_some_and(|c| c.dm_with.as_deref() == Some(LEO))
                })
                .cloned();
            (looked_up, dm)
        };
        let mut problems = Vec::new();
        if status != 200 || answer.get("status").and_then(Value::as_str) != Some("queued") {
            problems.push(format!(
                "expected 200 {{\"status\":\"queued\"}}, got HTTP {status} {answer}"
            ));
        }
        if !looked_up {
            problems.push("cusp did not find the owner with users.lookupByEmail".to_owned());
        }
        if !dm.as_ref().is_some_and(has_buttons) {
            problems.push("expected a DM with questions and buttons to Leo, got none".to_owned());
        }
        if self.observations().await? - before != 1 {
            problems.push("the deal update was not logged (source `crm`)".to_owned());
        }
        self.record(
            day,
            action,
            "users.lookupByEmail → Leo; conversations.open; a DM with stage questions".to_owned(),
            join(problems),
        );
        Ok(())
    }

    /// `/cusp digest setup #sales-team monday 09:00 UTC`.
    async fn digest_setup(&mut self, day: &str, user: &str) -> Result<(), DemoError> {
        let channel = DIGEST_CHANNEL;
        let name = self.channel_name(channel);
        let action = format!(
            "{} types /cusp digest setup #{name} monday 09:00 UTC",
            self.name(user)
        );
        let command = format!("digest setup <#{channel}|{name}> monday 09:00 UTC");
        let trigger = self.next_trigger();
        let (status, answer) = self
            .driver
            .command(channel, &name, user, &command, &trigger)
            .await?;
        self.slack.show_ephemeral(
            channel,
            user,
            &format!("/cusp digest setup #{name} monday 09:00 UTC"),
            &answer,
        );
        let settings =
            crate::bot::digest::load_settings(&self.driver.store, &self.driver.team_id).await?;
        let problem = if status != 200
            || settings.channel_id.as_deref() != Some(channel)
            || !settings.enabled
        {
            Some(format!(
                "expected the digest to be set up for #{name}, got HTTP {status} and channel {:?}",
                settings.channel_id
            ))
        } else {
            None
        };
        self.record(
            day,
            action,
            "the team digest will go to this channel every Monday".to_owned(),
            problem,
        );
        Ok(())
    }

    /// The weekly digest: composed by the digest code the scheduler uses, queued in the
    /// outbox and delivered by the outbox worker. The scheduler would post it on Monday at
    /// 09:00 about the finished week; the demo's week is this one, so it is posted now.
    async fn digest(&mut self, day: &str) -> Result<(), DemoError> {
        use crate::bot::digest;
        let action = "The weekly digest is posted".to_owned();
        let store = &self.driver.store;
        let team = self.driver.team_id.as_str();
        let settings = digest::load_settings(store, team).await?;
        let Some(channel) = settings.channel_id.clone() else {
            self.record(
                day,
                action,
                "no digest".to_owned(),
                Some("the digest has no channel".to_owned()),
            );
            return Ok(());
        };
        let tz = &settings.schedule.time_zone;
        let week = digest::IsoWeek::at(jiff::Timestamp::now(), tz);
        let messages =
            digest::messages_for_week(store, &self.engine, team, &channel, week, tz, false).await?;
        store
            .enqueue_outbox(team, &messages, jiff::Timestamp::now().as_millisecond())
            .await?;
        self.driver.settle(&action).await?;
        let post = self
            .slack
            .workspace()
            .messages
            .iter()
            .find(|m| m.channel == channel && m.author == Author::Cusp)
            .cloned();
        let problem = match &post {
            None => Some(format!(
                "expected the digest in #{}, got nothing",
                self.channel_name(&channel)
            )),
            Some(m)
                if !super::render_text::blocks_text(&m.blocks)
                    .contains(['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']) =>
            {
                Some("the digest has no sparkline".to_owned())
            }
            Some(_) => None,
        };
        let outcome = post.map_or_else(
            || "no digest".to_owned(),
            |m| format!("in #{}: {}", self.channel_name(&channel), m.text),
        );
        self.record(day, action, outcome, problem);
        Ok(())
    }
}

/// When the call refused with 429 was made again with the same outbox key: the wait, and
/// the repeated call.
pub fn retried_after<'a>(ws: &'a Workspace, limited: &Call) -> Option<(Duration, &'a Call)> {
    let key = limited.outbox_key();
    ws.calls
        .iter()
        .filter(|c| c.method == limited.method && c.status == 200 && c.at > limited.at)
        .find(|c| key.is_none() || c.outbox_key() == key)
        .map(|c| (c.at.duration_since(limited.at), c))
}

fn join(problems: Vec<String>) -> Option<String> {
    (!problems.is_empty()).then(|| problems.join("; "))
}

pub fn class_label(class: Class) -> &'static str {
    match class {
        Class::CustomerCentric => "customer-centric",
        Class::Balanced => "balanced",
        Class::SellerCentric => "seller-centric",
        Class::Neutral => "neutral",
    }
}

/// The buttons of a message's `actions` blocks.
pub fn buttons(message: &Message) -> Vec<Value> {
    message
        .blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("actions"))
        .flat_map(|b| {
            b.get("elements")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("button"))
        .collect()
}

pub fn has_buttons(message: &Message) -> bool {
    !buttons(message).is_empty()
}

/// Questions in a prompt: its bullet lines.
fn question_count(message: &Message) -> usize {
    super::render_text::blocks_text(&message.blocks)
        .lines()
        .filter(|l| l.trim_start().starts_with('•'))
        .count()
}
