//! HubSpot's CRM API, the two reads cusp makes: a deal's name and its owner's email.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub const DEFAULT_API_URL: &str = "https://api.hubapi.com";

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
