//! Where a deal stands, from the lexicon's deal-state cues (`won`, `lost`, `at_risk`,
//! `discovery` entries in `lexicon.txt`), so questions can fit it: an early call, a failing
//! renewal, a win and a loss each need different questions.

use super::classify::Signals;
use super::{DealState, Theme};

/// DealState cues needed before a situation is told (weak cues need support).
const SURE: f32 = 1.0;

/// The situation of a deal update, or `None` when the words do not say. A loss outranks a
/// win ("lost the renewal we signed in 2024"), a win outranks risk talk, and risk outranks
/// discovery. A customer risk in a renewal counts as at risk.
pub(crate) fn detect(sig: &Signals, is_deal_update: bool) -> Option<DealState> {
    if !is_deal_update {
        return None;
    }
    let sum = |s: DealState| -> f32 {
        sig.situations
            .iter()
            .filter(|(k, _)| *k == s)
            .map(|(_, w)| w)
            .sum()
    };
    let renewal_risk = sig.sum(Theme::CustomerRisk) >= 1.0 && sum(DealState::AtRisk) > 0.0;
    [
        DealState::Lost,
        DealState::Won,
        DealState::AtRisk,
        DealState::Discovery,
    ]
    .into_iter()
    .find(|s| sum(*s) >= SURE || (*s == DealState::AtRisk && renewal_risk))
}
