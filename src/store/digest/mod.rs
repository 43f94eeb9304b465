//! What the weekly digest stores and reads: its settings, the week's aggregates, and the
//! run claims that make one replica send each week once.

mod aggregates;
mod runs;
mod settings;

pub use aggregates::{ClassCounts, SpotlightRow};
pub use runs::RunClaim;
pub use settings::DigestSettingsRow;
