//! HubSpot's side of deal webhooks, protocol only (`bot::crm` decides what an update
//! causes): the v3 request signature (`signature`), the events HubSpot posts (here), and
//! the two API reads that turn a deal-stage change into a deal update (`client`).

pub mod client;
pub mod signature;

use serde::Deserialize;

pub use client::{DEFAULT_API_URL, DealFacts, HubSpotApiError, HubSpotClient};
pub use signature::{sign_v3, verify_v3};

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

#[cfg(test)]
mod tests {
    use super::*;

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
