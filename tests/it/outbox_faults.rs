//! The running outbox worker, on the wall clock, through everything Slack does when it
//! is unwell: a 429 burst with `Retry-After`, `ratelimited` on an HTTP 200, 500s and
//! 503s, `ok:false` with a retryable error, and stalls past the client's timeout (done
//! by Slack, or never done). Every message is posted exactly once once Slack recovers,
//! and no call to the method reaches Slack before a `Retry-After` has passed. A call
//! slower than the claim's lease keeps its claim.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cusp::jobs::outbox_worker::{Delivery, OUTBOX_LEASE};
use cusp::slack::calls::{Message, SlackCall};
use cusp::slack::ids::ChannelId;
use cusp::store::{NewOutboxMessage, OutboxStatus};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, now_ms};
use crate::support::fake_slack::Scripted;

const KEYS: [&str; 6] = ["n1", "n2", "n3", "n4", "n5", "n6"];

fn nudge(key: &str, channel: &str) -> NewOutboxMessage {
    NewOutboxMessage::new(
        key,
        SlackCall::PostMessage {
            channel: ChannelId::parse(channel).unwrap(),
            thread_ts: Some("1700000000.000100".into()),
            message: Message::text(format!("nudge {key}")),
        },
    )
}

async fn every_message_is_posted_once_through_a_storm_of_faults(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // In the order Slack answers the calls, whichever row makes them. The test client
    // gives up after 500 ms, so 900 ms is a stall past the timeout.
    let storm = [
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
        Scripted::RateLimited {
            retry_after_secs: 2,
        },
        Scripted::Status(500),
        Scripted::OkFalseRateLimited {
            retry_after_secs: 1,
        },
        Scripted::Status(503),
        Scripted::Delay(Duration::from_millis(900)),
        Scripted::Hang(Duration::from_millis(900)),
        Scripted::OkFalse("internal_error"),
    ];
    let limits: HashMap<usize, Duration> = storm
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Scripted::RateLimited { retry_after_secs }
            | Scripted::OkFalseRateLimited { retry_after_secs } => {
                Some((i, Duration::from_secs(*retry_after_secs)))
            }
            _ => None,
        })
        .collect();
    for answer in storm {
        app.slack.push_response("chat.postMessage", answer);
    }
    let messages: Vec<_> = KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| nudge(key, if i % 2 == 0 { "C_DEALS" } else { "C_OTHER" }))
        .collect();
    app.state
        .store
        .enqueue_outbox(TEAM, &messages, now_ms())
        .await
        .unwrap();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(cusp::jobs::outbox_worker::run(app.state.clone(), stopped));
    // Backoffs of 2 s and 4 s (jittered) and holds of up to 2 s: well inside a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let backlog = app.state.store.outbox_backlog(TEAM).await.unwrap();
        if backlog == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{backlog} never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .unwrap()
        .unwrap();

    let mut posted: HashMap<String, usize> = HashMap::new();
    for message in app.slack.posted_messages() {
        let key = message.metadata["event_payload"]["key"]
            .as_str()
            .unwrap()
            .to_owned();
        *posted.entry(key).or_default() += 1;
    }
    for key in KEYS {
        assert_eq!(posted.get(key), Some(&1), "{key} posted once: {posted:?}");
        let (status, _, _) = app.state.store.outbox_status(TEAM, key).await.unwrap();
        assert_eq!(status, OutboxStatus::Sent, "{key}");
    }
    assert_eq!(posted.len(), KEYS.len());

    // Retry-After never undercut: after each rate limit, the next post came no sooner.
    let calls = app.slack.calls_to("chat.postMessage");
    for (i, wait) in limits {
        let (limited, next) = (&calls[i], &calls[i + 1]);
        let gap = next.at.duration_since(limited.at);
        assert!(
            gap >= wait,
            "call {} came {gap:?} after a {wait:?} hold",
            i + 1
        );
    }
}

/// A call slower than the lease keeps its claim, renewed while it is in flight: another
/// replica looking for due work all along never takes the row, so nothing is posted
/// twice although Slack has not done the first call when the lease would have ended.
async fn a_call_slower_than_the_lease_keeps_its_claim(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slow = OUTBOX_LEASE + Duration::from_secs(2);
    app.slack
        .push_response("chat.postMessage", Scripted::Slow(slow));
    app.state
        .store
        .enqueue_outbox(TEAM, &[nudge("n1", "C_DEALS")], now_ms())
        .await
        .unwrap();
    let patient = app
        .another_replica_waiting(slow + Duration::from_secs(5))
        .await;
    let first =
        tokio::spawn(
            async move { cusp::jobs::outbox_worker::deliver_next(&patient, now_ms()).await },
        );
    let deadline = Instant::now() + slow + Duration::from_secs(10);
    while app.slack.calls_to("chat.postMessage").is_empty() {
        assert!(Instant::now() < deadline, "the first replica never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while !first.is_finished() {
        assert!(Instant::now() < deadline, "the slow call never ended");
        let taken = app.deliver_outbox_at(now_ms()).await;
        assert_eq!(
            taken,
            vec![],
            "another replica took a row whose call was in flight"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered = first.await.unwrap().unwrap();
    assert!(
        matches!(delivered, Some(Delivery::Sent { .. })),
        "{delivered:?}"
    );
    assert_eq!(app.slack.calls_to("chat.postMessage").len(), 1);
    assert_eq!(app.slack.posted_messages().len(), 1);
    let (status, _, _) = app.state.store.outbox_status(TEAM, "n1").await.unwrap();
    assert_eq!(status, OutboxStatus::Sent);
}

backend_matrix!(
    every_message_is_posted_once_through_a_storm_of_faults,
    a_call_slower_than_the_lease_keeps_its_claim,
);
