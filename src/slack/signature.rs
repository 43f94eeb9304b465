//! Slack's v0 request signature: HMAC-SHA256 of `v0:{timestamp}:{raw body}`.
//! Pure: the clock is a parameter. See SLACK.md §2.1.

use crate::signing::{self, Encoding, Scheme, SignatureError, TimestampUnit};

/// How Slack signs: `X-Slack-Signature: v0=<hex>` over `v0:{timestamp}:{body}`, with
/// `X-Slack-Request-Timestamp` in Unix seconds.
pub const SCHEME: Scheme = Scheme {
    timestamp_header: "X-Slack-Request-Timestamp",
    signature_header: "X-Slack-Signature",
    timestamp_unit: TimestampUnit::Seconds,
    encoding: Encoding::Hex { prefix: "v0=" },
};

/// Checks a request against every configured secret (several while one is rotated).
/// Header values are passed raw so that absent and non-ASCII headers are told apart.
pub fn verify<S: AsRef<[u8]>>(
    secrets: &[S],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let signed: [&[u8]; 4] = [b"v0:", timestamp.unwrap_or_default(), b":", body];
    signing::verify(
        &SCHEME,
        secrets,
        timestamp,
        signature,
        &signed,
        now_unix.saturating_mul(1000),
    )
    .map(|_| ())
}

/// The `X-Slack-Signature` value for a body; used by tests and by tooling that
/// replays requests against a local server.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    signing::sign(&SCHEME, secret, &[b"v0:", timestamp.as_bytes(), b":", body])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example, "Verifying requests from Slack" (SLACK.md §2.1).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: i64 = 1531420618;
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(secrets: &[&str], ts: &str, sig: &str, now: i64) -> Result<(), SignatureError> {
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
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_timestamps_more_than_five_minutes_away_in_either_direction() {
        assert_eq!(
            check(&[SECRET], "1531420618", EXPECTED, TIMESTAMP + 301),
            Err(SignatureError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            check(&[SECRET], "1531420618", EXPECTED, TIMESTAMP - 301),
            Err(SignatureError::Stale { skew_secs: -301 })
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
        assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn rejects_missing_and_malformed_headers() {
        let body = BODY.as_bytes();
        assert_eq!(
            verify(&[SECRET], None, Some(b"v0=00"), body, TIMESTAMP),
            Err(SignatureError::MissingTimestamp(SCHEME.timestamp_header))
        );
        assert_eq!(
            verify(&[SECRET], Some(b"1531420618"), None, body, TIMESTAMP),
            Err(SignatureError::MissingSignature(SCHEME.signature_header))
        );
        for ts in ["", "-5", "12ab", "+1531420618", "99999999999999999999999"] {
            assert_eq!(
                check(&[SECRET], ts, EXPECTED, TIMESTAMP),
                Err(SignatureError::MalformedTimestamp(SCHEME.timestamp_header)),
                "{ts:?}"
            );
        }
        for sig in ["a2114d57", "v1=a2114d57", "v0=zz", "v0=abcd", ""] {
            assert_eq!(
                check(&[SECRET], "1531420618", sig, TIMESTAMP),
                Err(SignatureError::MalformedSignature(SCHEME.signature_header)),
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
            Err(SignatureError::MalformedTimestamp(SCHEME.timestamp_header))
        );
    }
}
