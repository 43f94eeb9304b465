//! Shared integration-test helpers: the fake Slack Web API and the `TestApp` harness.

pub mod app;
pub mod db_proxy;
pub mod fake_slack;
pub mod fake_socket_mode;
pub mod oauth_app;
pub mod serve;
pub mod two_teams;
