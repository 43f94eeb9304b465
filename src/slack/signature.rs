//! Slack's v0 request signature: HMAC-SHA256 of `v0:{timestamp}:{raw body}`.
//! Pure: the clock is a parameter. See SLACK.md §2.1.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::signing::TimestampError;

type HmacSha256 = Hmac<Sha256>;

/// Requests signed further than this from our clock, in either direction, are replays.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("malformed X-Slack-Request-Timestamp header")]
    MalformedTimestamp,
    #[error("stale request timestamp ({skew_secs}s from now)")]
    StaleTimestamp { skew_secs: i64 },
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    #[error("malformed X-Slack-Signature header")]
    MalformedSignature,
    #[error("signature mismatch")]
    BadSignature,
}

impl VerifyError {
    /// A short, fixed label for metrics (`cusp_signature_failures_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::MissingTimestamp => "missing_timestamp",
            VerifyError::MalformedTimestamp => "malformed_timestamp",
            VerifyError::StaleTimestamp { .. } => "stale_timestamp",
            VerifyError::MissingSignature => "missing_signature",
            VerifyError::MalformedSignature => "malformed_signature",
            VerifyError::BadSignature => "bad_signature",
        }
    }
}

/// Checks a request against every configured secret (several while one is rotated).
/// Header values are passed raw so that absent and non-ASCII headers are told apart.
pub fn verify<S: AsRef<[u8]>>(
    secrets: &[S],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    let timestamp = timestamp.ok_or(VerifyError::MissingTimestamp)?;
    crate::signing::check_timestamp(timestamp, now_unix, MAX_CLOCK_SKEW_SECS).map_err(
        |e| match e {
            TimestampError::Malformed => VerifyError::MalformedTimestamp,
            TimestampError::Stale { skew_secs } => VerifyError::StaleTimestamp { skew_secs },
        },
    )?;
    let signature = signature.ok_or(VerifyError::MissingSignature)?;
    let hex_digest = signature
        .strip_prefix(b"v0=")
        .ok_or(VerifyError::MalformedSignature)?;
    let expected = hex::decode(hex_digest).map_err(|_| VerifyError::MalformedSignature)?;
    if expected.len() != 32 {
        return Err(VerifyError::MalformedSignature);
    }
    // verify_slice compares in constant time.
    let matched = secrets.iter().any(|secret| {
        mac_for(secret.as_ref(), timestamp, body)
            .is_some_and(|mac| mac.verify_slice(&expected).is_ok())
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The `X-Slack-Signature` value for a body; used by tests and by tooling that
/// replays requests against a local server.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    mac_for(secret, timestamp.to_string().as_bytes(), body)
        .map(|mac| format!("v0={}", hex::encode(mac.finalize().into_bytes())))
        .unwrap_or_default()
}

/// HMAC takes keys of any length, so `None` cannot happen in practice; it is handled
/// as "no match" rather than a panic.
fn mac_for(secret: &[u8], timestamp: &[u8], body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(b"v0:");
    mac.update(timestamp);
    mac.update(b":");
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example, "Verifying requests from Slack" (SLACK.md §2.1).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: i64 = 1531420618;
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(secrets: &[&str], ts: &str, sig: &str, now: i64) -> Result<(), VerifyError> {
        verify(
            secrets,
            Some(ts.as_bytes()),
            Some(sig.as_bytes()),
            BODY.as_bytes(),
            now,
        )
    }

    #[test]
    fn slacks_published_example_verifies() {
        assert_eq!(
            sign(SECRET.as_bytes(), TIMESTAMP, BODY.as_bytes()),
            EXPECTED
        );
        assert_eq!(
            check(&[SECRET], "1531420618", EXPECTED, TIMESTAMP + 10),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_rotated_secrets_verifies() {
        assert_eq!(
            check(&["old-secret", SECRET], "1531420618", EXPECTED, TIMESTAMP),
            Ok(())
        );
        assert_eq!(
            check(&["old-secret"], "1531420618", EXPECTED, TIMESTAMP),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn rejects_timestamps_more_than_five_minutes_away_in_either_direction() {
        assert_eq!(
            check(&[SECRET], "1531420618", EXPECTED, TIMESTAMP + 301),
            Err(VerifyError::StaleTimestamp { skew_secs: 301 })
        );
        assert_eq!(
            check(&[SECRET], "1531420618", EXPECTED, TIMESTAMP - 301),
            Err(VerifyError::StaleTimestamp { skew_secs: -301 })
        );
        assert_eq!(
            check(&[SECRET], "1531420618", EXPECTED, TIMESTAMP + 300),
            Ok(())
        );
    }

    #[test]
    fn rejects_a_tampered_body() {
        let result = verify(
            &[SECRET],
            Some(b"1531420618"),
            Some(EXPECTED.as_bytes()),
            b"text=evil",
            TIMESTAMP,
        );
        assert_eq!(result, Err(VerifyError::BadSignature));
    }

    #[test]
    fn rejects_missing_and_malformed_headers() {
        let body = BODY.as_bytes();
        assert_eq!(
            verify(&[SECRET], None, Some(b"v0=00"), body, TIMESTAMP),
            Err(VerifyError::MissingTimestamp)
        );
        assert_eq!(
            verify(&[SECRET], Some(b"1531420618"), None, body, TIMESTAMP),
            Err(VerifyError::MissingSignature)
        );
        for ts in ["", "-5", "12ab", "+1531420618", "99999999999999999999999"] {
            assert_eq!(
                check(&[SECRET], ts, EXPECTED, TIMESTAMP),
                Err(VerifyError::MalformedTimestamp),
                "{ts:?}"
            );
        }
        for sig in ["a2114d57", "v1=a2114d57", "v0=zz", "v0=abcd", ""] {
            assert_eq!(
                check(&[SECRET], "1531420618", sig, TIMESTAMP),
                Err(VerifyError::MalformedSignature),
                "{sig:?}"
            );
        }
        let non_utf8 = [0xff_u8, 0xfe];
        assert_eq!(
            verify(
                &[SECRET],
                Some(&non_utf8),
                Some(EXPECTED.as_bytes()),
                body,
                TIMESTAMP
            ),
            Err(VerifyError::MalformedTimestamp)
        );
    }
}
