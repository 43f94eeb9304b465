//! HubSpot's v3 request signature: base64 HMAC-SHA256 of `{method}{uri}{body}{timestamp}`
//! with the app's client secret, where `uri` is the full URL HubSpot called and the
//! timestamp is in Unix milliseconds. Pure: the clock is a parameter.

use crate::signing::{self, Encoding, Scheme, SignatureError, TimestampUnit};

pub const SCHEME: Scheme = Scheme {
    timestamp_header: "X-HubSpot-Request-Timestamp",
    signature_header: "X-HubSpot-Signature-v3",
    timestamp_unit: TimestampUnit::Milliseconds,
    encoding: Encoding::Base64,
};

/// Verifies `X-HubSpot-Signature-v3`; HubSpot asks receivers to reject signatures older
/// than five minutes, the shared replay window.
pub fn verify_v3(
    client_secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let signed: [&[u8]; 4] = [
        method.as_bytes(),
        uri.as_bytes(),
        body,
        timestamp.unwrap_or_default(),
    ];
    signing::verify(
        &SCHEME,
        &[client_secret],
        timestamp,
        signature,
        &signed,
        now_ms,
    )
    .map(|_| ())
}

/// The header HubSpot would send; for tests and local tooling.
pub fn sign_v3(
    client_secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> String {
    let timestamp = timestamp_ms.to_string();
    let signed: [&[u8]; 4] = [
        method.as_bytes(),
        uri.as_bytes(),
        body,
        timestamp.as_bytes(),
    ];
    signing::sign(&SCHEME, client_secret, &signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "https://cusp.example.com/hooks/hubspot";

    #[test]
    fn a_v3_signature_verifies_within_five_minutes() {
        let body = br#"[{"eventId":1}]"#;
        let sig = sign_v3(b"secret", "POST", URI, body, 1_700_000_000_000);
        let ok = verify_v3(
            b"secret",
            "POST",
            URI,
            body,
            Some(b"1700000000000"),
            Some(sig.as_bytes()),
            1_700_000_100_000,
        );
        assert_eq!(ok, Ok(()));
        let stale = verify_v3(
            b"secret",
            "POST",
            URI,
            body,
            Some(b"1700000000000"),
            Some(sig.as_bytes()),
            1_700_000_400_000,
        );
        assert_eq!(stale, Err(SignatureError::Stale { skew_secs: 400 }));
        let other_uri = verify_v3(
            b"secret",
            "POST",
            "https://evil.test/hooks/hubspot",
            body,
            Some(b"1700000000000"),
            Some(sig.as_bytes()),
            1_700_000_000_000,
        );
        assert_eq!(other_uri, Err(SignatureError::Mismatch));
        assert_eq!(
            verify_v3(b"secret", "POST", URI, body, None, Some(b"x"), 0),
            Err(SignatureError::MissingTimestamp(SCHEME.timestamp_header))
        );
    }
}
