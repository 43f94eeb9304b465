//! Short claims, kept alive while the work is in hand.
//!
//! A worker owns a claimed inbox event or outbox delivery until its `locked_until`. The
//! lease is short ([`CLAIM`]: 5 s) so that what a dead process had claimed (`kill -9`, a lost
//! machine) is taken over within seconds of a restart rather than a minute, and it is
//! renewed every second while the work runs, so that a slow Slack call (up to
//! `SLACK_CALL_TIMEOUT`, longer than a lease) keeps its claim and no other worker or
//! replica starts the same delivery meanwhile.
//!
//! A renewal names the claim it extends by the row's `attempts`, which every claim
//! increments: it succeeds only while the row is still ours. A holder that cannot
//! renew (another worker has the row, or the database does not answer in time) gives
//! the work up *before* its lease runs out, as if it had crashed, so that two holders
//! never work on one row at once. The next holder finds a delivery so abandoned
//! `in_doubt` and looks for the post before posting again.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::store::StoreError;

/// How long a claim lasts, how often it is renewed, and when a holder that cannot renew
/// gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// How long a claim lasts without renewal: what a restart waits, at most, for the
    /// claims of the process it replaces.
    pub length: Duration,
    /// How often a holder extends its lease (and the longest one renewal may take).
    pub renew_every: Duration,
    /// A holder that has failed to renew stops its work when its lease has less than
    /// this left, so that it has stopped before anyone else may claim the row.
    pub margin: Duration,
}

/// The lease of every inbox and outbox claim. Even in the worst case (a renewal fails
/// right after one succeeded, and each failure takes its whole `renew_every`) a holder
/// gives up at least a second before its lease ends.
pub const CLAIM: Lease = Lease {
    length: Duration::from_secs(5),
    renew_every: Duration::from_secs(1),
    margin: Duration::from_millis(1_500),
};

/// Why [`Lease::keep`] returned: the work must stop and leave the row alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// The row is no longer ours (another holder claimed it after our lease ran out).
    Taken,
    /// Renewals failed and the lease is about to run out.
    Unrenewable,
}

impl Lease {
    /// Renews a lease claimed at `claimed_at_ms` (the clock the claim used) every
    /// `renew_every` with `renew(until_ms)`, which answers whether the row was still
    /// ours. Never returns while the lease holds; race it against the work.
    pub async fn keep<F, Fut>(&self, claimed_at_ms: i64, mut renew: F) -> Lost
    where
        F: FnMut(i64) -> Fut,
        Fut: Future<Output = Result<bool, StoreError>>,
    {
        let started = Instant::now();
        let mut expires = started + self.length;
        loop {
            tokio::time::sleep(self.renew_every).await;
            // On the claim's clock, so that a step function run at a given `now_ms`
            // (tests) renews consistently with its claim.
            let until_ms = claimed_at_ms
                .saturating_add(millis(started.elapsed()))
                .saturating_add(millis(self.length));
            let asked = Instant::now();
            match tokio::time::timeout(self.renew_every, renew(until_ms)).await {
                Ok(Ok(true)) => expires = asked + self.length,
                Ok(Ok(false)) => return Lost::Taken,
                Ok(Err(err)) => tracing::warn!(error = %err, "could not renew a claim"),
                Err(_) => tracing::warn!("renewing a claim timed out"),
            }
            if Instant::now() + self.margin >= expires {
                return Lost::Unrenewable;
            }
        }
    }

    /// `length` in milliseconds, for `locked_until`.
    pub fn length_ms(&self) -> i64 {
        millis(self.length)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SHORT: Lease = Lease {
        length: Duration::from_millis(600),
        renew_every: Duration::from_millis(100),
        margin: Duration::from_millis(250),
    };

    #[test]
    fn the_claim_lease_gives_up_with_a_renewal_to_spare() {
        let worst_gap = CLAIM.renew_every * 2;
        assert!(CLAIM.length >= worst_gap + CLAIM.margin + CLAIM.renew_every);
        assert!(CLAIM.margin >= CLAIM.renew_every);
    }

    #[tokio::test]
    async fn a_claim_taken_by_another_holder_is_given_up() {
        let lost = SHORT.keep(0, |_| async { Ok(false) }).await;
        assert_eq!(lost, Lost::Taken);
    }

    #[tokio::test]
    async fn failing_renewals_give_up_before_the_lease_runs_out() {
        let started = Instant::now();
        let lost = SHORT.keep(0, |_| async { Err(StoreError::NotFound) }).await;
        assert_eq!(lost, Lost::Unrenewable);
        assert!(started.elapsed() < SHORT.length, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn renewals_extend_on_the_claims_clock() {
        let mut seen = Vec::new();
        let lost = SHORT
            .keep(1_000_000, |until| {
                seen.push(until);
                let ours = seen.len() < 3;
                async move { Ok(ours) }
            })
            .await;
        assert_eq!(lost, Lost::Taken);
        assert_eq!(seen.len(), 3);
        // Each renewal asks for a lease counted from when it was made, so they grow.
        assert!(seen.windows(2).all(|w| w[1] > w[0]), "{seen:?}");
        let first_earliest = 1_000_000 + millis(SHORT.renew_every) + SHORT.length_ms();
        assert!(seen[0] >= first_earliest, "{seen:?}");
    }
}
