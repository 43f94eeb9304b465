//! Slack's wire protocol: what Slack sends us and what we send Slack. No bot decisions
//! live here — see `bot/` for behaviour.

pub mod blocks;
pub mod calls;
pub mod holds;
pub mod ids;
mod legacy_calls;
pub mod oauth;
pub mod payloads;
pub mod responses;
pub mod signature;
pub mod socket_mode;
pub mod web_api;
