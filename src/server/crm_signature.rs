//! Signatures on CRM deal webhooks: `X-Cusp-Signature: sha256=<hex HMAC-SHA256 of
//! "{timestamp}.{body}">` keyed with `CUSP_WEBHOOK_SECRET`, and a 5-minute window on
//! `X-Cusp-Timestamp` (Unix seconds). Pure: the clock is a parameter.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::signing::TimestampError;

use crate::slack::signature::MAX_CLOCK_SKEW_SECS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrmSignatureError {
    #[error("missing X-Cusp-Timestamp header")]
    MissingTimestamp,
    #[error("malformed X-Cusp-Timestamp header")]
    MalformedTimestamp,
    #[error("stale X-Cusp-Timestamp ({skew_secs}s from now)")]
    Stale { skew_secs: i64 },
    #[error("missing X-Cusp-Signature header")]
    MissingSignature,
    #[error("malformed X-Cusp-Signature header (expected sha256=<hex>)")]
    MalformedSignature,
    #[error("signature mismatch")]
    Mismatch,
}

impl CrmSignatureError {
    /// A short, fixed label for metrics, the same words as Slack's verification uses.
    pub fn reason(&self) -> &'static str {
        match self {
            CrmSignatureError::MissingTimestamp => "missing_timestamp",
            CrmSignatureError::MalformedTimestamp => "malformed_timestamp",
            CrmSignatureError::Stale { .. } => "stale_timestamp",
            CrmSignatureError::MissingSignature => "missing_signature",
            CrmSignatureError::MalformedSignature => "malformed_signature",
            CrmSignatureError::Mismatch => "bad_signature",
        }
    }
}

pub fn verify(
    secret: &[u8],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), CrmSignatureError> {
    let timestamp = timestamp.ok_or(CrmSignatureError::MissingTimestamp)?;
    crate::signing::check_timestamp(timestamp, now_unix, MAX_CLOCK_SKEW_SECS).map_err(
        |e| match e {
            TimestampError::Malformed => CrmSignatureError::MalformedTimestamp,
            TimestampError::Stale { skew_secs } => CrmSignatureError::Stale { skew_secs },
        },
    )?;
    let signature = signature.ok_or(CrmSignatureError::MissingSignature)?;
    let hex_digest = signature
        .strip_prefix(b"sha256=")
        .ok_or(CrmSignatureError::MalformedSignature)?;
    let expected = hex::decode(hex_digest).map_err(|_| CrmSignatureError::MalformedSignature)?;
    let mac = mac_for(secret, timestamp, body).ok_or(CrmSignatureError::Mismatch)?;
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| CrmSignatureError::Mismatch)
}

/// The header value a CRM integration sends; used by tests and integrators' tooling.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    mac_for(secret, timestamp.to_string().as_bytes(), body)
        .map(|mac| format!("sha256={}", hex::encode(mac.finalize().into_bytes())))
        .unwrap_or_default()
}

fn mac_for(secret: &[u8], timestamp: &[u8], body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
    Some(mac)
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
        assert_eq!(ok, Ok(()));
        let changed = verify(
            b"whsec",
            Some(b"1700000000"),
            Some(sig.as_bytes()),
            b"{\"deal_id\":\"2\"}",
            1_700_000_100,
        );
        assert_eq!(changed, Err(CrmSignatureError::Mismatch));
        let other_secret = verify(
            b"other",
            Some(b"1700000000"),
            Some(sig.as_bytes()),
            b"{\"deal_id\":\"1\"}",
            1_700_000_100,
        );
        assert_eq!(other_secret, Err(CrmSignatureError::Mismatch));
    }

    #[test]
    fn stale_missing_and_malformed_headers_are_rejected() {
        let sig = sign(b"s", 1_000, b"x");
        assert_eq!(
            verify(b"s", Some(b"1000"), Some(sig.as_bytes()), b"x", 1_301),
            Err(CrmSignatureError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            verify(b"s", None, Some(sig.as_bytes()), b"x", 1_000),
            Err(CrmSignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(b"s", Some(b"1000"), None, b"x", 1_000),
            Err(CrmSignatureError::MissingSignature)
        );
        assert_eq!(
            verify(b"s", Some(b"1e3"), Some(sig.as_bytes()), b"x", 1_000),
            Err(CrmSignatureError::MalformedTimestamp)
        );
        assert_eq!(
            verify(b"s", Some(b"1000"), Some(b"md5=00"), b"x", 1_000),
            Err(CrmSignatureError::MalformedSignature)
        );
    }
}
