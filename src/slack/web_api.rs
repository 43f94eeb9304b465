//! TEMPORARY STUB until the slackproto branch lands.
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::ids::{BotId, TeamId, UserId};

pub struct SlackClient {}
pub struct AuthTest {
    pub team_id: TeamId,
    pub user_id: UserId,
    pub bot_id: Option<BotId>,
}
#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    #[error("api {method}: {code}")]
    Api { method: String, code: String },
}
impl SlackApiError {
    pub fn is_retryable(&self) -> bool {
        false
    }
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }
    pub fn code(&self) -> Option<&str> {
        None
    }
}
impl SlackClient {
    pub fn new(_base_url: &str, _token: SecretString, _timeout: Duration) -> Result<Self, SlackApiError> {
        Ok(SlackClient {})
    }
    pub async fn call(&self, _method: &str, _params: &Map<String, Value>) -> Result<Value, SlackApiError> {
        Ok(Value::Null)
    }
    pub async fn auth_test(&self) -> Result<AuthTest, SlackApiError> {
        Err(SlackApiError::Api { method: "x".into(), code: "x".into() })
    }
    pub async fn recent_messages(
        &self,
        _channel: &str,
        _thread_ts: Option<&str>,
        _oldest: &str,
        _limit: u32,
    ) -> Result<Vec<Value>, SlackApiError> {
        Ok(vec![])
    }
}
