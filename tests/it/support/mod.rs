//! Shared integration-test helpers. The lead adds the TestApp harness here.

pub mod fake_slack;
