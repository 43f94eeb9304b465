//! HubSpot's side of deal webhooks: the v3 request signature and the two API reads that
//! turn a `deal.propertyChange` event into a deal update (the deal's name and owner).
//! Protocol only; `bot::crm` decides what to do with the update.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

/// HubSpot asks receivers to reject signatures older than five minutes.
pub const MAX_SIGNATURE_AGE_MS: i64 = 5 * 60 * 1000;
pub const DEFAULT_API_URL: &str = "https://api.hubapi.com";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubSpotSignatureError {
    #[error("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header")]
    Missing,
    #[error("malformed X-HubSpot-Request-Timestamp header")]
    MalformedTimestamp,
    #[error("stale X-HubSpot-Request-Timestamp")]
    Stale,
    #[error("signature mismatch")]
    Mismatch,
}

impl HubSpotSignatureError {
    /// A short, fixed label for metrics, the same words as Slack's verification uses.
    pub fn reason(&self) -> &'static str {
        match self {
            HubSpotSignatureError::Missing => "missing_signature",
            HubSpotSignatureError::MalformedTimestamp => "malformed_timestamp",
            HubSpotSignatureError::Stale => "stale_timestamp",
            HubSpotSignatureError::Mismatch => "bad_signature",
        }
    }
}

/// Verifies `X-HubSpot-Signature-v3`: base64 HMAC-SHA256 of
/// `{method}{uri}{body}{timestamp}` with the app's client secret, where `uri` is the
/// full URL HubSpot called. `now_ms` is a parameter so this stays pure.
pub fn verify_v3(
    client_secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    now_ms: i64,
) -> Result<(), HubSpotSignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(HubSpotSignatureError::Missing);
    };
    let ts: i64 = std::str::from_utf8(timestamp)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(HubSpotSignatureError::MalformedTimestamp)?;
    if now_ms.saturating_sub(ts) > MAX_SIGNATURE_AGE_MS
        || ts.saturating_sub(now_ms) > MAX_SIGNATURE_AGE_MS
    {
        return Err(HubSpotSignatureError::Stale);
    }
    let expected = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|_| HubSpotSignatureError::Mismatch)?;
    let mac = mac_for(client_secret, method, uri, body, timestamp)
        .ok_or(HubSpotSignatureError::Mismatch)?;
    mac.verify_slice(&expected)
        .map_err(|_| HubSpotSignatureError::Mismatch)
}

/// The header HubSpot would send; for tests and local tooling.
pub fn sign_v3(
    client_secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> String {
    mac_for(
        client_secret,
        method,
        uri,
        body,
        timestamp_ms.to_string().as_bytes(),
    )
    .map(|mac| base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    .unwrap_or_default()
}

fn mac_for(
    secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &[u8],
) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp);
    Some(mac)
}

/// One entry of the JSON array HubSpot posts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSpotEvent {
    pub event_id: i64,
    pub subscription_type: String,
    pub object_id: i64,
    #[serde(default)]
    pub property_name: Option<String>,
    #[serde(default)]
    pub property_value: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<i64>,
}

impl HubSpotEvent {
    /// A deal's stage changed: the only event cusp acts on.
    pub fn new_deal_stage(&self) -> Option<&str> {
        let is_stage_change = self.subscription_type == "deal.propertyChange"
            && self.property_name.as_deref() == Some("dealstage");
        is_stage_change
            .then_some(self.property_value.as_deref())
            .flatten()
    }
}

pub fn parse_events(body: &[u8]) -> Result<Vec<HubSpotEvent>, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("body is not a JSON array of HubSpot events: {e}"))
}

/// A deal's name and its owner's email, as cusp needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealFacts {
    pub name: String,
    pub owner_email: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubSpotApiError {
    #[error("HubSpot {path}: HTTP status {status}")]
    Status { path: String, status: u16 },
    #[error("HubSpot {path}: {source}")]
    Transport {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("invalid HubSpot client configuration: {0}")]
    Config(String),
}

/// Reads deals and owners with a private-app access token.
pub struct HubSpotClient {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
}

impl std::fmt::Debug for HubSpotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct DealResponse {
    properties: DealProperties,
}

#[derive(Deserialize)]
struct DealProperties {
    #[serde(default)]
    dealname: Option<String>,
    #[serde(default)]
    hubspot_owner_id: Option<String>,
}

#[derive(Deserialize)]
struct OwnerResponse {
    #[serde(default)]
    email: Option<String>,
}

impl HubSpotClient {
    pub fn new(
        base_url: &str,
        token: SecretString,
        timeout: Duration,
    ) -> Result<HubSpotClient, HubSpotApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| HubSpotApiError::Config(e.to_string()))?;
        Ok(HubSpotClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, HubSpotApiError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|source| HubSpotApiError::Transport {
                path: path.to_owned(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(HubSpotApiError::Status {
                path: path.to_owned(),
                status: status.as_u16(),
            });
        }
        response
            .json()
            .await
            .map_err(|source| HubSpotApiError::Transport {
                path: path.to_owned(),
                source,
            })
    }

    /// The deal's name and its owner's email (`None` when the deal has no owner).
    pub async fn deal_facts(&self, deal_id: i64) -> Result<DealFacts, HubSpotApiError> {
        let deal: DealResponse = self
            .get(&format!(
                "/crm/v3/objects/deals/{deal_id}?properties=dealname,hubspot_owner_id"
            ))
            .await?;
        let owner_email = match deal
            .properties
            .hubspot_owner_id
            .as_deref()
            .filter(|id| !id.is_empty())
        {
            Some(owner_id) if owner_id.bytes().all(|b| b.is_ascii_digit()) => {
                let owner: OwnerResponse = self.get(&format!("/crm/v3/owners/{owner_id}")).await?;
                owner.email
            }
            _ => None,
        };
        Ok(DealFacts {
            name: deal
                .properties
                .dealname
                .unwrap_or_else(|| format!("Deal {deal_id}")),
            owner_email,
        })
    }
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
        assert_eq!(stale, Err(HubSpotSignatureError::Stale));
        let other_uri = verify_v3(
            b"secret",
            "POST",
            "https://evil.test/hooks/hubspot",
            body,
            Some(b"1700000000000"),
            Some(sig.as_bytes()),
            1_700_000_000_000,
        );
        assert_eq!(other_uri, Err(HubSpotSignatureError::Mismatch));
        assert_eq!(
            verify_v3(b"secret", "POST", URI, body, None, Some(b"x"), 0),
            Err(HubSpotSignatureError::Missing)
        );
    }

    #[test]
    fn only_deal_stage_changes_count() {
        let events = parse_events(
            br#"[{"eventId":1,"subscriptionType":"deal.propertyChange","objectId":7,"propertyName":"dealstage","propertyValue":"closedwon"},
                 {"eventId":2,"subscriptionType":"deal.propertyChange","objectId":7,"propertyName":"amount","propertyValue":"10"},
                 {"eventId":3,"subscriptionType":"contact.creation","objectId":8}]"#,
        )
        .unwrap_or_default();
        let stages: Vec<Option<&str>> = events.iter().map(HubSpotEvent::new_deal_stage).collect();
        assert_eq!(stages, [Some("closedwon"), None, None]);
        assert!(parse_events(b"{}").is_err());
    }
}
