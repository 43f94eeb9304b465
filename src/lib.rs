//! cusp: a Slack bot that coaches sales teams toward customer-centric selling.
//! `docs/architecture.md` draws how the modules below fit together.

pub mod app;
pub mod backoff;
pub mod bot;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod eval;
pub mod healthcheck;
pub mod hubspot;
pub mod jobs;
pub mod reflect;
pub mod replay;
pub mod server;
pub mod shutdown;
pub mod slack;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod train;
