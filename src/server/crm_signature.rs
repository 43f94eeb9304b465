//! Signatures on CRM deal webhooks: `X-Cusp-Signature: sha256=<hex HMAC-SHA256 of
//! "{timestamp}.{body}">` keyed with `CUSP_WEBHOOK_SECRET`, and a 5-minute window on
//! `X-Cusp-Timestamp` (Unix seconds). Pure: the clock is a parameter.

use crate::signing::{self, Encoding, Scheme, SignatureError, TimestampUnit};

/// How the CRM hook is signed: `X-Cusp-Signature: sha256=<hex>` over
/// `{timestamp}.{body}`, with `X-Cusp-Timestamp` in Unix seconds.
pub const SCHEME: Scheme = Scheme {
    timestamp_header: "X-Cusp-Timestamp",
    signature_header: "X-Cusp-Signature",
    timestamp_unit: TimestampUnit::Seconds,
    encoding: Encoding::Hex { prefix: "sha256=" },
};

/// What a verified delivery proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed timestamp (Unix seconds): without a delivery id, the day it names is
    /// part of the delivery's dedupe key.
    pub signed_at: i64,
    /// The HMAC the request carried. `X-Cusp-Delivery` is not signed, so a captured
    /// request can be replayed under any delivery id; the same signature is what gives
    /// the replay away.
    pub mac: Vec<u8>,
}

pub fn verify(
    secret: &[u8],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now_unix: i64,
) -> Result<Verified, SignatureError> {
    let signed: [&[u8]; 3] = [timestamp.unwrap_or_default(), b".", body];
    let signed_at = signing::verify(
        &SCHEME,
        &[secret],
        timestamp,
        signature,
        &signed,
        now_unix.saturating_mul(1000),
    )?;
    // Verified, so present and decodable.
    let mac = signature
        .and_then(|signature| signing::decode(&SCHEME, signature))
        .ok_or(SignatureError::MalformedSignature(SCHEME.signature_header))?;
    Ok(Verified { signed_at, mac })
}

/// The header value a CRM integration sends; used by tests and integrators' tooling.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    signing::sign(&SCHEME, secret, &[timestamp.as_bytes(), b".", body])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not() {
        let sig = sign(b"whsec", 1_700_000_000, b"{\"deal_id\":\"1\"}");
        assert!(sig.starts_with("sha256="));
        let ok = verify(
            b"whsec",
            Some(b"1700000000"),
            Some(sig.as_bytes()),
            b"{\"deal_id\":\"1\"}",
            1_700_000_100,
        );
        let mac = hex::decode(sig.trim_start_matches("sha256=")).unwrap_or_default();
        assert_eq!(
            ok,
            Ok(Verified {
                signed_at: 1_700_000_000,
                mac: mac.clone()
            })
        );
        // The same signature spelt in upper case is the same MAC: a replay's key.
        let upper = format!("sha256={}", hex::encode_upper(&mac));
        let again = verify(
            b"whsec",
            Some(b"1700000000"),
            Some(upper.as_bytes()),
            b"{\"deal_id\":\"1\"}",
            1_700_000_100,
        );
        assert_eq!(again.map(|v| v.mac), Ok(mac));
        let changed = verify(
            b"whsec",
            Some(b"1700000000"),
            Some(sig.as_bytes()),
            b"{\"deal_id\":\"2\"}",
            1_700_000_100,
        );
        assert_eq!(changed, Err(SignatureError::Mismatch));
        let other_secret = verify(
            b"other",
            Some(b"1700000000"),
            Some(sig.as_bytes()),
            b"{\"deal_id\":\"1\"}",
            1_700_000_100,
        );
        assert_eq!(other_secret, Err(SignatureError::Mismatch));
    }

    #[test]
    fn stale_missing_and_malformed_headers_are_rejected() {
        let sig = sign(b"s", 1_000, b"x");
        assert_eq!(
            verify(b"s", Some(b"1000"), Some(sig.as_bytes()), b"x", 1_301),
            Err(SignatureError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            verify(b"s", None, Some(sig.as_bytes()), b"x", 1_000),
            Err(SignatureError::MissingTimestamp("X-Cusp-Timestamp"))
        );
        assert_eq!(
            verify(b"s", Some(b"1000"), None, b"x", 1_000),
            Err(SignatureError::MissingSignature("X-Cusp-Signature"))
        );
        assert_eq!(
            verify(b"s", Some(b"1e3"), Some(sig.as_bytes()), b"x", 1_000),
            Err(SignatureError::MalformedTimestamp("X-Cusp-Timestamp"))
        );
        assert_eq!(
            verify(b"s", Some(b"1000"), Some(b"md5=00"), b"x", 1_000),
            Err(SignatureError::MalformedSignature("X-Cusp-Signature"))
        );
    }
}
