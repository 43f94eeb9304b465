//! The single integration-test binary; one module per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod slack_client;
mod support;
