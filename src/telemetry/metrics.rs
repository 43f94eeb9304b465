//! Prometheus metrics through the `metrics` facade. The recorder is installed once per
//! process ([`install`]); `GET /metrics` renders it ([`render`]). Every metric cusp
//! records is named and described here, so this file and the README's table are the
//! whole list. Labels take values from small fixed sets (route templates, reasons,
//! outcomes, Slack method names cusp calls): never ids or text, so the series stay few.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests answered, by `route` (the matched route template, `unmatched` for a
/// 404), `method` and `status`.
pub const HTTP_REQUESTS: &str = "cusp_http_requests_total";
/// Time to answer an HTTP request, by `route`.
pub const HTTP_REQUEST_DURATION: &str = "cusp_http_request_duration_seconds";
/// TCP connections open on the HTTP listener.
pub const HTTP_CONNECTIONS_OPEN: &str = "cusp_http_connections_open";
/// Connections shed because `CUSP_MAX_CONNECTIONS` were open, by `action`:
/// `closed_idle` (the one waiting longest for a request was closed to make room) or
/// `refused` (all were busy: the new one was answered 503).
pub const HTTP_CONNECTIONS_SHED: &str = "cusp_http_connections_shed_total";
/// Connections closed for not sending a request head within
/// `CUSP_HTTP_HEADER_TIMEOUT_SECS` (slow clients, idle keep-alives).
pub const HTTP_CONNECTIONS_TIMED_OUT: &str = "cusp_http_connections_timed_out_total";
/// Signed requests refused, by `source` (`slack`, `crm`, `hubspot`) and `reason`.
pub const SIGNATURE_FAILURES: &str = "cusp_signature_failures_total";
/// Slack events accepted into the inbox, by event `type`.
pub const EVENTS_RECEIVED: &str = "cusp_events_received_total";
/// Slack events already in the inbox (Slack's retries, another replica's copy).
pub const EVENTS_DEDUPLICATED: &str = "cusp_events_deduplicated_total";
/// Events the inbox worker handled, by `outcome` (`nudge`, `reaction`, `logged`, …).
pub const EVENTS_HANDLED: &str = "cusp_events_handled_total";
/// Failed attempts at an event, by `outcome` (`retry` or `parked`).
pub const EVENTS_FAILED: &str = "cusp_events_failed_total";
/// Time from an event's arrival to its handling, queueing included.
pub const EVENT_LATENCY: &str = "cusp_event_handling_latency_seconds";
/// Observations stored, by `class` and `source`.
pub const OBSERVATIONS_LOGGED: &str = "cusp_observations_logged_total";
/// Outbox rows written, by `kind` (`nudge`, `reaction`, `crm_prompt`, `digest`, …).
pub const OUTBOX_ENQUEUED: &str = "cusp_outbox_enqueued_total";
/// Outbox rows pending or being sent (refreshed from the database).
pub const OUTBOX_DEPTH: &str = "cusp_outbox_depth";
/// Age of the oldest outbox row not yet sent; 0 when there is none.
pub const OUTBOX_OLDEST_AGE: &str = "cusp_outbox_oldest_pending_age_seconds";
/// Delivery attempts, by Slack `method` and `outcome` (`sent`, `found_earlier_post`,
/// `retrying`, `rate_limited`, `dead`, `interrupted`, `lease_lost`). Their sum is the
/// attempts.
pub const DELIVERIES: &str = "cusp_outbox_deliveries_total";
/// Time one delivery attempt took, by `method`.
pub const DELIVERY_DURATION: &str = "cusp_outbox_delivery_duration_seconds";
/// 429 answers that put a Slack method on hold for the team, by `method`.
pub const RATE_LIMIT_HOLDS: &str = "cusp_slack_rate_limit_holds_total";
/// Seconds left on a method's 429 hold, by `method` (refreshed from the database).
pub const RATE_LIMIT_HOLD_REMAINING: &str = "cusp_slack_rate_limit_hold_remaining_seconds";
/// Digest runs, by `outcome` (`queued`, `skipped`, `failed`).
pub const DIGEST_RUNS: &str = "cusp_digest_runs_total";
/// 1 while the Socket Mode WebSocket is connected, 0 while it is not; absent in HTTP mode.
pub const SOCKET_MODE_CONNECTED: &str = "cusp_socket_mode_connected";
/// Socket Mode connections replaced, by reason.
pub const SOCKET_MODE_RECONNECTS: &str = "cusp_socket_mode_reconnects_total";
/// Readings people corrected with **Not quite right** (new corrections, not resubmissions).
pub const CORRECTIONS: &str = "cusp_corrections_total";
/// **Why?** clicks answered.
pub const WHY_REQUESTS: &str = "cusp_why_requests_total";
/// OAuth mode: installations removed by Slack's events, by `event` (`app_uninstalled`,
/// `tokens_revoked`).
pub const INSTALLATIONS_REMOVED: &str = "cusp_installations_removed_total";
/// OAuth mode: token refresh attempts, by `outcome` (`refreshed`, `rejected`, `failed`,
/// `lost_claim`).
pub const TOKEN_REFRESHES: &str = "cusp_token_refreshes_total";
/// OAuth mode: removed workspaces whose data was deleted 30 days after removal.
pub const TEAMS_PURGED: &str = "cusp_uninstalled_teams_purged_total";

/// Buckets for every `_seconds` histogram: Slack's 3-second deadline sits in the middle.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process, once; later calls return the same
/// handle. If some other recorder was installed first, the handle renders nothing.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Only an empty bucket list is refused, and ours is not empty.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// The current metrics in Prometheus' text format.
pub fn render() -> String {
    install().render()
}

/// Folds recorded histogram samples into their buckets; run now and then (the gauge
/// refresher does) so that memory stays flat between scrapes.
pub fn run_upkeep() {
    install().run_upkeep();
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request"
    );
    describe_gauge!(
        HTTP_CONNECTIONS_OPEN,
        "TCP connections open on the HTTP listener"
    );
    describe_counter!(
        HTTP_CONNECTIONS_SHED,
        "Connections shed at CUSP_MAX_CONNECTIONS, by action (closed_idle, refused)"
    );
    describe_counter!(
        HTTP_CONNECTIONS_TIMED_OUT,
        "Connections closed for not sending a request head in time"
    );
    describe_counter!(
        SIGNATURE_FAILURES,
        "Signed requests refused, by source and reason"
    );
    describe_counter!(EVENTS_RECEIVED, "Slack events stored in the inbox, by type");
    describe_counter!(EVENTS_DEDUPLICATED, "Slack events already in the inbox");
    describe_counter!(
        EVENTS_HANDLED,
        "Events handled by the inbox worker, by outcome"
    );
    describe_counter!(EVENTS_FAILED, "Failed attempts at an event, by outcome");
    describe_histogram!(
        EVENT_LATENCY,
        Unit::Seconds,
        "Time from an event's arrival to its handling"
    );
    describe_counter!(
        OBSERVATIONS_LOGGED,
        "Observations stored, by class and source"
    );
    describe_counter!(OUTBOX_ENQUEUED, "Outbox rows written, by kind");
    describe_gauge!(OUTBOX_DEPTH, "Outbox rows pending or being sent");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest outbox row not yet sent"
    );
    describe_counter!(DELIVERIES, "Delivery attempts, by Slack method and outcome");
    describe_histogram!(
        DELIVERY_DURATION,
        Unit::Seconds,
        "Time one delivery attempt took"
    );
    describe_counter!(RATE_LIMIT_HOLDS, "429 holds put on a Slack method");
    describe_gauge!(
        RATE_LIMIT_HOLD_REMAINING,
        Unit::Seconds,
        "Seconds left on a Slack method's 429 hold"
    );
    describe_counter!(DIGEST_RUNS, "Weekly digest runs, by outcome");
    describe_gauge!(
        SOCKET_MODE_CONNECTED,
        "1 while the Socket Mode connection is up, 0 while it is not"
    );
    describe_counter!(
        CORRECTIONS,
        "Readings corrected with Not quite right (new corrections)"
    );
    describe_counter!(WHY_REQUESTS, "Why? clicks answered");
    describe_counter!(
        INSTALLATIONS_REMOVED,
        "Installations removed by app_uninstalled or tokens_revoked, by event"
    );
    describe_counter!(TOKEN_REFRESHES, "Token refresh attempts, by outcome");
    describe_counter!(
        TEAMS_PURGED,
        "Removed workspaces whose data was deleted after 30 days"
    );
    describe_counter!(
        SOCKET_MODE_RECONNECTS,
        "Socket Mode connections opened again, by reason"
    );
}

pub fn installation_removed(event: &'static str) {
    counter!(INSTALLATIONS_REMOVED, "event" => event).increment(1);
}

pub fn token_refresh(outcome: &'static str) {
    counter!(TOKEN_REFRESHES, "outcome" => outcome).increment(1);
}

pub fn team_purged() {
    counter!(TEAMS_PURGED).increment(1);
}

pub fn socket_mode_reconnect(reason: &str) {
    counter!(SOCKET_MODE_RECONNECTS, "reason" => reason.to_owned()).increment(1);
}

pub fn correction_recorded() {
    counter!(CORRECTIONS).increment(1);
}

pub fn why_requested() {
    counter!(WHY_REQUESTS).increment(1);
}

pub fn http_connection_opened() {
    gauge!(HTTP_CONNECTIONS_OPEN).increment(1.0);
}

pub fn http_connection_closed() {
    gauge!(HTTP_CONNECTIONS_OPEN).decrement(1.0);
}

pub fn http_connection_shed(action: &'static str) {
    counter!(HTTP_CONNECTIONS_SHED, "action" => action).increment(1);
}

pub fn http_connection_timed_out() {
    counter!(HTTP_CONNECTIONS_TIMED_OUT).increment(1);
}

pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.to_owned(), "method" => method.to_owned(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route.to_owned())
        .record(elapsed.as_secs_f64());
}

/// `source`: `slack`, `crm` or `hubspot`; `reason`: the error's `reason()`.
pub fn signature_failure(source: &'static str, reason: &'static str) {
    counter!(SIGNATURE_FAILURES, "source" => source, "reason" => reason).increment(1);
}

pub fn event_received(kind: &'static str) {
    counter!(EVENTS_RECEIVED, "type" => kind).increment(1);
}

pub fn event_deduplicated() {
    counter!(EVENTS_DEDUPLICATED).increment(1);
}

pub fn event_handled(outcome: &'static str, latency: Duration) {
    counter!(EVENTS_HANDLED, "outcome" => outcome).increment(1);
    metrics::histogram!(EVENT_LATENCY).record(latency.as_secs_f64());
}

/// `parked`: the event will not be tried again.
pub fn event_failed(parked: bool) {
    let outcome = if parked { "parked" } else { "retry" };
    counter!(EVENTS_FAILED, "outcome" => outcome).increment(1);
}

pub fn observation_logged(class: &'static str, source: &'static str) {
    counter!(OBSERVATIONS_LOGGED, "class" => class, "source" => source).increment(1);
}

/// What an outbox row is for, from its idempotency key's prefix (`nudge:…`,
/// `reaction:…`, `crm:…`, `digest:…`, …). Unknown prefixes are `other`.
pub fn outbox_kind(idempotency_key: &str) -> &'static str {
    let prefix = idempotency_key.split(':').next().unwrap_or_default();
    match prefix {
        "nudge" => "nudge",
        "reaction" => "reaction",
        "crm" => "crm_prompt",
        "digest" => "digest",
        "mention" | "mention-hint" => "mention",
        "reflect-failed" => "ephemeral",
        _ => "other",
    }
}

pub fn outbox_enqueued(kind: &'static str) {
    counter!(OUTBOX_ENQUEUED, "kind" => kind).increment(1);
}

pub fn set_outbox_depth(depth: i64, oldest_age: Duration) {
    gauge!(OUTBOX_DEPTH).set(depth as f64);
    gauge!(OUTBOX_OLDEST_AGE).set(oldest_age.as_secs_f64());
}

pub fn delivery(method: &str, outcome: &'static str, elapsed: Duration) {
    counter!(DELIVERIES, "method" => method.to_owned(), "outcome" => outcome).increment(1);
    metrics::histogram!(DELIVERY_DURATION, "method" => method.to_owned())
        .record(elapsed.as_secs_f64());
}

pub fn rate_limit_hold(method: &str) {
    counter!(RATE_LIMIT_HOLDS, "method" => method.to_owned()).increment(1);
}

pub fn set_rate_limit_hold_remaining(method: &str, remaining: Duration) {
    gauge!(RATE_LIMIT_HOLD_REMAINING, "method" => method.to_owned()).set(remaining.as_secs_f64());
}

/// `outcome`: `queued`, `skipped` or `failed`.
pub fn digest_run(outcome: &'static str) {
    counter!(DIGEST_RUNS, "outcome" => outcome).increment(1);
}

/// For the Socket Mode transport: set on connect (`true`) and on every disconnect.
pub fn set_socket_mode_connected(connected: bool) {
    gauge!(SOCKET_MODE_CONNECTED).set(if connected { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_rows_are_told_apart_by_their_key() {
        assert_eq!(outbox_kind("nudge:C1:1700000000.000100"), "nudge");
        assert_eq!(outbox_kind("reaction:C1:1.2"), "reaction");
        assert_eq!(outbox_kind("crm:delivery:abc"), "crm_prompt");
        assert_eq!(outbox_kind("digest:T1:2026-W05"), "digest");
        assert_eq!(outbox_kind("mention-hint:C1:1.2"), "mention");
        assert_eq!(outbox_kind("whatever"), "other");
    }
}
