//! cusp: a Slack bot that coaches sales teams toward customer-centric selling.
pub mod engine;
pub mod eval;
pub mod reflect;
