//! Exponential backoff with jitter, shared by the inbox and outbox workers. Pure: the
//! caller passes the jitter, so tests can pin it.

use std::time::Duration;

/// Delays between attempts at a failing inbox event: 2 s doubling to 5 min.
pub const INBOX_BACKOFF: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));

/// Pauses of a worker whose database calls fail one after another: 1 s doubling to 15 s,
/// so an outage is neither hammered nor logged every second, and work resumes within
/// about 15 s of the database coming back (sooner when an event or message rings).
pub const DATABASE_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(15));

/// Retry delays: `base · 2^(failures-1)`, capped at `max`, scaled by a jitter factor in
/// [0.5, 1.5) so that many failures do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure (before jitter).
    pub base: Duration,
    /// No delay exceeds this.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    /// Delay before the next attempt after `failures` failed ones; `jitter` in [0, 1).
    pub fn delay(&self, failures: i64, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).clamp(0, 20) as u32;
        let base = self
            .base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max);
        base.mul_f64(0.5 + jitter.clamp(0.0, 1.0)).min(self.max)
    }
}

/// `now_ms + delay`, in the stores' Unix milliseconds.
pub(crate) fn after(now_ms: i64, delay: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(600));

    #[test]
    fn delays_double_and_are_capped() {
        assert_eq!(B.delay(1, 0.5), Duration::from_secs(2));
        assert_eq!(B.delay(2, 0.5), Duration::from_secs(4));
        assert_eq!(B.delay(4, 0.5), Duration::from_secs(16));
        assert_eq!(B.delay(30, 0.5), B.max);
        assert_eq!(B.delay(0, 0.5), Duration::from_secs(2));
    }

    #[test]
    fn jitter_spreads_a_delay_between_half_and_one_and_a_half_times() {
        assert_eq!(B.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(B.delay(1, 0.999), Duration::from_secs_f64(2.0 * 1.499));
        assert_eq!(B.delay(1, 7.0), Duration::from_secs(3), "jitter is clamped");
    }

    #[test]
    fn after_saturates() {
        assert_eq!(after(1_000, Duration::from_millis(250)), 1_250);
        assert_eq!(after(i64::MAX - 1, Duration::from_secs(1)), i64::MAX);
    }
}
