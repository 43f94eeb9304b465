//! Handles stored events: claims each workspace's due events in batches and handles
//! events of different channels and people side by side, while the events of one
//! channel, and of one person, are handled one after the other in the order they came
//! (`lanes.rs`). Each event's effects are stored, and the event marked done, in one
//! transaction, and the event's channel and person are free for the next one only once
//! that has committed. A claim is a short lease (`jobs::lease`), renewed from the claim
//! until the commit — while an event waits for its turn too — so events left by a crash
//! are resumed within seconds.
//!
//! A failed attempt is retried later, not at once: the event waits `AppState::inbox_backoff`
//! (2 s doubling, jittered) or, when Slack rate-limited the call, at least its
//! Retry-After. Without the wait a short Slack problem would use up every attempt
//! within milliseconds and the event would be parked `failed`, its payload gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

use super::group_commit::GroupCommit;
use super::lanes::{Lanes, Ticket};
use super::lease;
use crate::backoff;
use crate::bot::{self, DispatchError, relevance::CheckedEvent};
use crate::state::{AppState, Workspace};
use crate::store::{Applied, Effects, InboxItem, StoreError};
use crate::telemetry::metrics;

/// How long a claimed event is ours, unless renewed, before another worker may take it
/// over; renewed every second while the event is in hand (`lease::CLAIM`).
pub const INBOX_LEASE: Duration = lease::CLAIM.length;
/// How often the worker looks for work when nobody rang.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How many claimed events a process holds at most, being handled or waiting for their
/// channel or person. Small enough that none waits long under its lease; large enough
/// that a batch spans many channels.
pub const IN_HAND: usize = 64;
/// Claims again once this few are left in hand, so a claim brings a batch, not one event.
const REFILL_AT: usize = IN_HAND / 2;
/// How many events are handled at the same moment: about the store's connections (8 on
/// SQLite), so handlers do not queue for one.
pub const AT_ONCE: usize = 8;

/// Handles events until `shutdown`. Once it is signalled nothing more is claimed, and
/// the events in hand are finished (each is bounded by the Slack call timeout).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut worker = Worker::new(state.clone());
    // The last claim found fewer due events than it had room for: claim again when new
    // events ring, the poll interval passes or nothing is left in hand, not each time an
    // event finishes.
    let mut caught_up = false;
    // Consecutive failed claims: the pause grows (`backoff::DATABASE_BACKOFF`) so an
    // outage is not hammered.
    let mut failures = 0;
    loop {
        if *shutdown.borrow() {
            worker.finish().await;
            return;
        }
        if worker.in_hand() == 0 {
            caught_up = false;
        }
        if worker.in_hand() <= REFILL_AT && !caught_up {
            match worker.fill(jiff::Timestamp::now().as_millisecond()).await {
                Ok(fill) => {
                    failures = 0;
                    caught_up = fill.claimed < fill.asked;
                }
                Err(err) => {
                    failures += 1;
                    let pause = backoff::DATABASE_BACKOFF.delay(failures, rand::random::<f64>());
                    tracing::error!(error = %err, failures, pause_ms = pause.as_millis() as u64, "inbox worker could not reach the database");
                    if !super::idle(&state.inbox_wake, pause, &mut shutdown).await {
                        worker.finish().await;
                        return;
                    }
                    continue;
                }
            }
        }
        if worker.in_hand() == 0 {
            if !super::idle(&state.inbox_wake, POLL_INTERVAL, &mut shutdown).await {
                return;
            }
            continue;
        }
        // Events in hand: wait for one to finish (room for more), or for new events when
        // there is room already.
        let room = worker.in_hand() <= REFILL_AT;
        tokio::select! {
            Some(done) = worker.tasks.join_next() => {
                let _ = log_failure(done);
            }
            () = state.inbox_wake.notified(), if room => caught_up = false,
            () = tokio::time::sleep(POLL_INTERVAL) => caught_up = false,
            _ = shutdown.changed() => {}
        }
    }
}

/// Handles every due event (tests, and `cusp` tooling); returns how many were tried. An
/// event that fails is not due again at the same `now_ms`, so this tries it once.
pub async fn drain(state: &AppState, now_ms: i64) -> Result<usize, StoreError> {
    let mut worker = Worker::new(state.clone());
    let mut done = Done::default();
    loop {
        if worker.in_hand() <= REFILL_AT && done.error.is_none() {
            let claimed = worker.fill(now_ms).await;
            done.add(claimed.map(|_| 0));
        }
        let Some(finished) = worker.tasks.join_next().await else {
            break;
        };
        done.add(log_failure(finished).map(|()| 1));
    }
    done.into_result()
}

/// One pass of the worker (tests): claims up to [`IN_HAND`] due events, an equal share
/// per workspace, handles them, and returns how many.
pub async fn process_batch(state: &AppState, now_ms: i64) -> Result<usize, StoreError> {
    let mut worker = Worker::new(state.clone());
    let mut done = Done::default();
    done.add(worker.fill(now_ms).await.map(|_| 0));
    while let Some(finished) = worker.tasks.join_next().await {
        done.add(log_failure(finished).map(|()| 1));
    }
    done.into_result()
}

/// What one pass over the workspaces claimed, of how many it asked for.
#[derive(Debug, Default, Clone, Copy)]
struct Fill {
    asked: usize,
    claimed: usize,
}

/// How many events a drain handled, and the first database error it met.
#[derive(Default)]
struct Done {
    handled: usize,
    error: Option<StoreError>,
}

impl Done {
    fn add(&mut self, result: Result<usize, StoreError>) {
        match result {
            Ok(n) => self.handled += n,
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
    }

    fn into_result(self) -> Result<usize, StoreError> {
        match self.error {
            Some(err) => Err(err),
            None => Ok(self.handled),
        }
    }
}

/// The events one process has in hand, and what keeps them in order.
struct Worker {
    state: AppState,
    lanes: Arc<Lanes>,
    at_once: Arc<Semaphore>,
    commit: GroupCommit,
    tasks: JoinSet<Result<(), StoreError>>,
    /// Which workspace claims first in the next pass, so none is always last.
    turn: usize,
}

impl Worker {
    fn new(state: AppState) -> Worker {
        Worker {
            commit: GroupCommit::start(state.store.clone()),
            state,
            lanes: Arc::new(Lanes::default()),
            at_once: Arc::new(Semaphore::new(AT_ONCE)),
            tasks: JoinSet::new(),
            turn: 0,
        }
    }

    fn in_hand(&self) -> usize {
        self.tasks.len()
    }

    /// Claims due events up to [`IN_HAND`], an equal share per workspace served (at least
    /// one each, the first workspace taking turns), so a busy workspace does not hold up
    /// the others, and starts handling them.
    async fn fill(&mut self, now_ms: i64) -> Result<Fill, StoreError> {
        let teams = self.state.workspaces.teams().await?;
        let mut fill = Fill::default();
        if teams.is_empty() {
            return Ok(fill);
        }
        let share = (IN_HAND.saturating_sub(self.in_hand()) / teams.len()).max(1);
        let first = self.turn % teams.len();
        self.turn = self.turn.wrapping_add(1);
        for team in teams.iter().cycle().skip(first).take(teams.len()) {
            let room = IN_HAND.saturating_sub(self.in_hand());
            if room == 0 {
                break;
            }
            fill.asked += share.min(room);
            fill.claimed += self.claim(team, share.min(room), now_ms).await?;
        }
        Ok(fill)
    }

    /// Claims up to `limit` of `team`'s due events; each waits for its turn (its channel
    /// and person), in the order the events came, then is handled on its own task.
    async fn claim(&mut self, team: &str, limit: usize, now_ms: i64) -> Result<usize, StoreError> {
        // Resolved before claiming: an installation that cannot be read now (the database
        // failing for a moment, a token sealed under a key no longer in CUSP_ENCRYPTION_KEY)
        // must not use up the attempts of the team's events, which would park them with
        // their payload deleted. They wait untouched, and the other teams carry on.
        let workspace = match self.state.workspaces.for_team(team).await {
            Ok(workspace) => workspace,
            Err(err) => {
                tracing::error!(team_id = %team, error = %err, "could not read the workspace's installation; its events wait");
                return Ok(0);
            }
        };
        let items = self
            .state
            .store
            .claim_inbox_items(team, now_ms, INBOX_LEASE, limit)
            .await?;
        // `now_ms` as of this instant: the clock the handling's Slack calls measure holds on.
        let claimed_at = Instant::now();
        let claimed = items.len();
        for item in items {
            let event = read_event(&item, workspace.as_deref());
            let keys = match &event {
                Ok(Some(event)) => serial_keys(team, event),
                // Handled without reading anything: nothing to keep in order.
                Ok(None) | Err(_) => Vec::new(),
            };
            // Taken here, in claim order, so each channel's events keep their order.
            let ticket = self.lanes.enter(keys);
            let handling = Handling {
                state: self.state.clone(),
                commit: self.commit.clone(),
                workspace: workspace.clone(),
                item,
                event,
                now_ms,
                at: claimed_at,
            };
            // With the caller's subscriber: its log lines go where the worker's go.
            self.tasks.spawn(
                handling
                    .run_in_turn(ticket, self.at_once.clone())
                    .with_current_subscriber(),
            );
        }
        Ok(claimed)
    }

    /// Waits for every event in hand (shutdown).
    async fn finish(&mut self) {
        while let Some(done) = self.tasks.join_next().await {
            let _ = log_failure(done);
        }
    }
}

/// Reads a claimed row back; `Ok(None)` when there is nothing to do (uninstalled since
/// the event arrived, payload already gone, or an old row the edge would now drop).
fn read_event(
    item: &InboxItem,
    workspace: Option<&Workspace>,
) -> Result<Option<CheckedEvent>, DispatchError> {
    match (item.payload.as_deref(), workspace) {
        (Some(payload), Some(workspace)) => {
            CheckedEvent::from_inbox(&workspace.identity, &item.kind, payload)
                .map_err(|e| DispatchError::BadPayload(e.to_string()))
        }
        (_, None) | (None, _) => Ok(None),
    }
}

/// The lanes an event waits in: its channel and its person, within its workspace.
fn serial_keys(team: &str, event: &CheckedEvent) -> Vec<String> {
    let (channel, person) = event.serial_keys();
    let mut keys = vec![format!("{team}/channel/{channel}")];
    if let Some(person) = person {
        keys.push(format!("{team}/person/{person}"));
    }
    keys
}

/// A store error a handling task ended with is logged where it happened; a task that
/// panicked is logged here. Either way the event keeps its lease and is tried again
/// once the lease runs out.
fn log_failure(
    done: Result<Result<(), StoreError>, tokio::task::JoinError>,
) -> Result<(), StoreError> {
    match done {
        Ok(result) => result,
        Err(err) => {
            tracing::error!(error = %err, "an inbox event's handling stopped");
            Ok(())
        }
    }
}

/// One claimed event and what handling it needs.
struct Handling {
    state: AppState,
    commit: GroupCommit,
    workspace: Option<Arc<Workspace>>,
    item: InboxItem,
    event: Result<Option<CheckedEvent>, DispatchError>,
    now_ms: i64,
    /// The instant `now_ms` was read at the claim.
    at: Instant,
}

impl Handling {
    /// Waits for the event's turn, handles it, and frees its channel and person only once
    /// its effects are committed (the ticket is dropped on return). The claim is renewed
    /// all along, waiting included; a claim that cannot be kept is given up before it runs
    /// out and the event left to the next holder (its effects are deduplicated, so a
    /// half-done attempt causes no double).
    async fn run_in_turn(self, ticket: Ticket, at_once: Arc<Semaphore>) -> Result<(), StoreError> {
        let store = self.state.store.clone();
        let (team, id, attempts) = (self.item.team_id.clone(), self.item.id, self.item.attempts);
        let claimed_at_ms = self.now_ms;
        let renew = |until_ms| store.renew_inbox_lease(&team, id, attempts, until_ms);
        let work = async move {
            ticket.ready().await;
            // Never closed, so this only waits; taken after the turn so that an event
            // waiting for its channel does not hold a place another could use.
            let _place = at_once.acquire().await.ok();
            let item = &self.item;
            let span = tracing::info_span!("inbox", team_id = %item.team_id, event_id = %item.event_id, attempt = item.attempts);
            let result = self.handle().instrument(span).await;
            if let Err(err) = &result {
                tracing::error!(error = %err, "inbox worker could not reach the database");
            }
            drop(ticket);
            result
        };
        tokio::select! {
            biased;
            result = work => result,
            lost = lease::CLAIM.keep(claimed_at_ms, renew) => {
                tracing::warn!(team_id = %team, inbox_id = id, ?lost, "could not keep the claim; event left to the next holder");
                Ok(())
            }
        }
    }

    async fn handle(self) -> Result<(), StoreError> {
        let Handling {
            state,
            commit,
            workspace,
            item,
            event,
            now_ms,
            at,
        } = self;
        let team = item.team_id.as_str();
        let started = Instant::now();
        let outcome = match (event, workspace.as_deref()) {
            (Ok(Some(event)), Some(workspace)) => {
                let ctx = state.team_on_clock(workspace, now_ms, at);
                bot::dispatch_checked(&ctx, &event, now_ms).await
            }
            (Err(err), _) => Err(err),
            (Ok(None), _) | (_, None) => Ok(Effects::default()),
        };
        match outcome {
            Ok(effects) => {
                let (effects, applied) = commit.finish(team, item.id, effects, now_ms).await;
                let applied = applied?;
                if !applied.enqueued.is_empty() {
                    state.outbox_wake.notify_one();
                }
                log_handled(&item, &effects, &applied, started);
            }
            Err(err) if err.is_permanent() => {
                metrics::event_failed(true);
                tracing::error!(error = %err, "event cannot be handled; parked without retrying");
                state
                    .store
                    .fail_inbox_item(team, item.id, &err.to_string(), now_ms, None)
                    .await?;
            }
            Err(err) => {
                // Slack's Retry-After is a floor: retrying earlier would only be refused
                // again. It counts from Slack's answer (on the claim's clock, rounded up),
                // as the method's hold does, so the retry never comes before the hold ends.
                let backoff_at = backoff::after(
                    now_ms,
                    state
                        .inbox_backoff
                        .delay(item.attempts, rand::random::<f64>()),
                );
                let answered_ms = now_ms.saturating_add(
                    i64::try_from(at.elapsed().as_millis())
                        .unwrap_or(i64::MAX)
                        .saturating_add(1),
                );
                let retry_at = Some(match err.retry_after() {
                    Some(wait) => backoff_at.max(backoff::after(answered_ms, wait)),
                    None => backoff_at,
                });
                metrics::event_failed(item.attempts >= crate::store::INBOX_MAX_ATTEMPTS);
                tracing::warn!(error = %err, ?retry_at, "event could not be handled");
                state
                    .store
                    .fail_inbox_item(team, item.id, &err.to_string(), now_ms, retry_at)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The one `info` line per handled event: what it caused, the class and themes of
/// the deal update, and how long it took from arrival. Ids only, never the text.
fn log_handled(item: &InboxItem, effects: &Effects, applied: &Applied, started: Instant) {
    let outcome = if applied.enqueued.contains(&"nudge") {
        "nudge"
    } else if applied.enqueued.contains(&"reaction") {
        "reaction"
    } else if let Some(kind) = applied.enqueued.first() {
        kind
    } else if applied.observation_logged {
        "logged"
    } else if !applied.fresh {
        "duplicate"
    } else {
        "ignored"
    };
    let latency_ms = jiff::Timestamp::now()
        .as_millisecond()
        .saturating_sub(item.received_at)
        .max(0);
    metrics::event_handled(outcome, Duration::from_millis(latency_ms.unsigned_abs()));
    let observation = effects.observation.as_ref();
    let themes = observation.map_or_else(String::new, |obs| {
        obs.themes
            .iter()
            .map(|theme| theme.id())
            .collect::<Vec<_>>()
            .join(",")
    });
    tracing::info!(
        channel_id = observation.map_or("", |obs| obs.channel_id.as_str()),
        class = observation.map_or("", |obs| obs.class.as_str()),
        themes,
        outcome,
        latency_ms,
        handle_ms = started.elapsed().as_millis() as u64,
        "event handled"
    );
}
