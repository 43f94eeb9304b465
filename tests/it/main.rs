//! The single integration-test binary; one module per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod cli;
mod crm;
mod demo;
mod deploy_files;
mod digest;
mod feedback;
mod hubspot;
mod inbox;
mod inbox_kinds;
mod installations;
mod installations_cli;
mod lifecycle;
mod nudges;
mod oauth_install;
mod ops;
mod outbox;
mod server;
mod slack_client;
mod socket_mode;
mod store;
mod support;
mod workspaces;
