//! The one mechanism behind every signed webhook (Slack's, the CRM hook's, HubSpot's):
//! HMAC-SHA256 compared in constant time, against any of several secrets, and one replay
//! window on the signed timestamp. Each protocol only describes its [`Scheme`] (headers,
//! how the signature is written) and which bytes it signs. Pure: the clock is a parameter.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a signed timestamp may be from our clock, in either direction, before the
/// request counts as a replay. Slack and HubSpot both ask for five minutes; the CRM hook
/// uses the same.
pub const REPLAY_WINDOW_MS: i64 = 5 * 60 * 1000;

/// How one webhook signs its requests.
#[derive(Debug, Clone, Copy)]
pub struct Scheme {
    /// Header names, for error messages.
    pub timestamp_header: &'static str,
    pub signature_header: &'static str,
    pub timestamp_unit: TimestampUnit,
    pub encoding: Encoding,
}

/// What the timestamp header counts since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUnit {
    Seconds,
    Milliseconds,
}

/// How the signature header writes the 32-byte HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower-case hex after a fixed prefix (`v0=`, `sha256=`).
    Hex { prefix: &'static str },
    /// Standard base64, no prefix.
    Base64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingTimestamp(&'static str),
    #[error("malformed {0} header")]
    MalformedTimestamp(&'static str),
    #[error("stale request timestamp ({skew_secs}s from now)")]
    Stale { skew_secs: i64 },
    #[error("missing {0} header")]
    MissingSignature(&'static str),
    #[error("malformed {0} header")]
    MalformedSignature(&'static str),
    #[error("signature mismatch")]
    Mismatch,
}

impl SignatureError {
    /// A short, fixed label for metrics (`cusp_signature_failures_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::MissingTimestamp(_) => "missing_timestamp",
            SignatureError::MalformedTimestamp(_) => "malformed_timestamp",
            SignatureError::Stale { .. } => "stale_timestamp",
            SignatureError::MissingSignature(_) => "missing_signature",
            SignatureError::MalformedSignature(_) => "malformed_signature",
            SignatureError::Mismatch => "bad_signature",
        }
    }
}

/// The parsed timestamp, if `raw` is a plain decimal number (no sign, no spaces) within
/// [`REPLAY_WINDOW_MS`] of `now_ms`.
pub fn check_timestamp(scheme: &Scheme, raw: &[u8], now_ms: i64) -> Result<i64, SignatureError> {
    let malformed = SignatureError::MalformedTimestamp(scheme.timestamp_header);
    let ts: i64 = std::str::from_utf8(raw)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or(malformed.clone())?;
    let ts_ms = match scheme.timestamp_unit {
        TimestampUnit::Seconds => ts.checked_mul(1000).ok_or(malformed)?,
        TimestampUnit::Milliseconds => ts,
    };
    let skew_ms = now_ms.saturating_sub(ts_ms);
    if skew_ms.saturating_abs() > REPLAY_WINDOW_MS {
        return Err(SignatureError::Stale {
            skew_secs: skew_ms / 1000,
        });
    }
    Ok(ts)
}

/// Checks a signed request: the timestamp is present and fresh, the signature is present
/// and well-formed, and it is the HMAC of `signed` (the parts, concatenated) under one of
/// `secrets` (several while one is rotated). Header values are passed raw so that absent
/// and non-ASCII headers are told apart. Returns the signed timestamp, in the scheme's
/// unit.
pub fn verify<S: AsRef<[u8]>>(
    scheme: &Scheme,
    secrets: &[S],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    signed: &[&[u8]],
    now_ms: i64,
) -> Result<i64, SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp(scheme.timestamp_header))?;
    let signed_at = check_timestamp(scheme, timestamp, now_ms)?;
    let signature = signature.ok_or(SignatureError::MissingSignature(scheme.signature_header))?;
    let expected = decode(scheme, signature)
        .filter(|mac| mac.len() == 32)
        .ok_or(SignatureError::MalformedSignature(scheme.signature_header))?;
    if matches_any(secrets, signed, &expected) {
        Ok(signed_at)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The signature header value for `signed` under `secret`; for tests and for tooling that
/// replays requests against a local server.
pub fn sign(scheme: &Scheme, secret: &[u8], signed: &[&[u8]]) -> String {
    let Some(mac) = hmac_sha256(secret, signed) else {
        return String::new();
    };
    let bytes = mac.finalize().into_bytes();
    match scheme.encoding {
        Encoding::Hex { prefix } => format!("{prefix}{}", hex::encode(bytes)),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// Whether `expected` is the HMAC-SHA256 of `signed` under any of `secrets`. hmac's
/// `verify_slice` compares in constant time; every secret is tried, so the time taken
/// does not tell which one matched.
pub fn matches_any<S: AsRef<[u8]>>(secrets: &[S], signed: &[&[u8]], expected: &[u8]) -> bool {
    secrets.iter().fold(false, |matched, secret| {
        let this = hmac_sha256(secret.as_ref(), signed)
            .is_some_and(|mac| mac.verify_slice(expected).is_ok());
        matched | this
    })
}

/// The bytes a signature header encodes, however it is spelt (hex in either case): two
/// requests carry the same signature exactly when these are equal.
pub fn decode(scheme: &Scheme, signature: &[u8]) -> Option<Vec<u8>> {
    match scheme.encoding {
        Encoding::Hex { prefix } => hex::decode(signature.strip_prefix(prefix.as_bytes())?).ok(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(signature)
            .ok(),
    }
}

/// HMAC takes keys of any length, so `None` cannot happen in practice; callers treat it
/// as "no match" rather than panic.
fn hmac_sha256(secret: &[u8], signed: &[&[u8]]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    for part in signed {
        mac.update(part);
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEME: Scheme = Scheme {
        timestamp_header: "X-Test-Timestamp",
        signature_header: "X-Test-Signature",
        timestamp_unit: TimestampUnit::Seconds,
        encoding: Encoding::Hex { prefix: "t=" },
    };

    #[test]
    fn the_signed_parts_are_concatenated() {
        assert_eq!(
            sign(&SCHEME, b"k", &[b"ab", b"c"]),
            sign(&SCHEME, b"k", &[b"abc"])
        );
        assert_ne!(
            sign(&SCHEME, b"k", &[b"abc"]),
            sign(&SCHEME, b"k", &[b"abd"])
        );
    }

    #[test]
    fn any_secret_matches_and_a_wrong_length_never_does() {
        let sig = sign(&SCHEME, b"new", &[b"body"]);
        let mac = hex::decode(sig.trim_start_matches("t=")).unwrap_or_default();
        assert!(matches_any(&["old", "new"], &[b"body"], &mac));
        assert!(!matches_any(&["old"], &[b"body"], &mac));
        assert!(!matches_any(&["new"], &[b"body"], &mac[..31]));
        assert!(!matches_any::<&str>(&[], &[b"body"], &mac));
    }

    #[test]
    fn the_window_is_the_same_in_seconds_and_milliseconds() {
        let ms = Scheme {
            timestamp_unit: TimestampUnit::Milliseconds,
            ..SCHEME
        };
        let now_ms = 1_700_000_000_000;
        assert_eq!(
            check_timestamp(&SCHEME, b"1699999700", now_ms),
            Ok(1_699_999_700)
        );
        assert_eq!(
            check_timestamp(&SCHEME, b"1699999699", now_ms),
            Err(SignatureError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            check_timestamp(&ms, b"1699999700000", now_ms),
            Ok(1_699_999_700_000)
        );
        assert_eq!(
            check_timestamp(&ms, b"1700000300001", now_ms),
            Err(SignatureError::Stale { skew_secs: -300 })
        );
        // A seconds value too large to turn into milliseconds is malformed, not a panic.
        assert_eq!(
            check_timestamp(&SCHEME, b"9223372036854776", now_ms),
            Err(SignatureError::MalformedTimestamp("X-Test-Timestamp"))
        );
    }
}
