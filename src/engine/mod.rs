//! The CUSP engine: pure, deterministic, no I/O, no clock, no randomness of its own.
//!
//! `markup` normalises Slack text, `lexicon` parses the vocabulary (data in `lexicon.txt`),
//! `matcher` finds phrases in one linear pass, `classify` turns matches into themes, class
//! and score, `account` names the company, `questions` picks what to ask (bank in
//! `questions.txt`), filled by `slots` with what the message names and fitted to the
//! `situation` it describes. See `docs/engine.md`.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

mod account;
mod classify;
mod deal_state;
mod lexicon;
mod markup;
mod matcher;
mod model;
mod questions;
mod situation;
mod slots;
#[cfg(test)]
mod tests;
pub mod train;
mod trend;

pub use questions::{QuestionReason, SlotUse};
pub use situation::{Situation, situation};
pub use slots::{SlotKind, message_words};

use lexicon::Lexicon;
use matcher::Matcher;
use model::Model;
pub use model::ModelError;
use questions::BankQuestion;

/// The built-in vocabulary.
pub const BUILTIN_LEXICON: &str = include_str!("lexicon.txt");
/// The built-in model's weights (`cusp train` writes them; docs/engine.md).
pub const BUILTIN_MODEL: &str = include_str!("model.txt");
/// The built-in question bank.
pub const BUILTIN_QUESTIONS: &str = include_str!("questions.txt");

/// A CUSP pillar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pillar {
    Care,
    Understand,
    Serve,
    Purpose,
}

impl Pillar {
    pub fn as_str(self) -> &'static str {
        match self {
            Pillar::Care => "care",
            Pillar::Understand => "understand",
            Pillar::Serve => "serve",
            Pillar::Purpose => "purpose",
        }
    }
}

/// The stable theme ids of BRIEF.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    QuotaPressure,
    ClosingPush,
    DiscountLever,
    ProductPitch,
    CustomerConcern,
    CustomerOutcome,
    Stakeholders,
    DecisionProcess,
    CustomerRisk,
    Enablement,
    Adoption,
    DecisionConfidence,
    SharedSuccess,
}

impl Theme {
    pub const ALL: [Theme; 13] = [
        Theme::QuotaPressure,
        Theme::ClosingPush,
        Theme::DiscountLever,
        Theme::ProductPitch,
        Theme::CustomerConcern,
        Theme::CustomerOutcome,
        Theme::Stakeholders,
        Theme::DecisionProcess,
        Theme::CustomerRisk,
        Theme::Enablement,
        Theme::Adoption,
        Theme::DecisionConfidence,
        Theme::SharedSuccess,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Theme::QuotaPressure => "quota_pressure",
            Theme::ClosingPush => "closing_push",
            Theme::DiscountLever => "discount_lever",
            Theme::ProductPitch => "product_pitch",
            Theme::CustomerConcern => "customer_concern",
            Theme::CustomerOutcome => "customer_outcome",
            Theme::Stakeholders => "stakeholders",
            Theme::DecisionProcess => "decision_process",
            Theme::CustomerRisk => "customer_risk",
            Theme::Enablement => "enablement",
            Theme::Adoption => "adoption",
            Theme::DecisionConfidence => "decision_confidence",
            Theme::SharedSuccess => "shared_success",
        }
    }

    pub fn from_id(id: &str) -> Option<Theme> {
        Theme::ALL.into_iter().find(|t| t.id() == id)
    }

    /// `None` for seller-centric signals.
    pub fn pillar(self) -> Option<Pillar> {
        match self {
            Theme::QuotaPressure
            | Theme::ClosingPush
            | Theme::DiscountLever
            | Theme::ProductPitch => None,
            Theme::CustomerConcern => Some(Pillar::Care),
            Theme::CustomerOutcome
            | Theme::Stakeholders
            | Theme::DecisionProcess
            | Theme::CustomerRisk => Some(Pillar::Understand),
            Theme::Enablement | Theme::Adoption => Some(Pillar::Serve),
            Theme::DecisionConfidence | Theme::SharedSuccess => Some(Pillar::Purpose),
        }
    }

    pub fn is_seller_centric(self) -> bool {
        self.pillar().is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    CustomerCentric,
    Balanced,
    SellerCentric,
    Neutral,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::CustomerCentric => "customer_centric",
            Class::Balanced => "balanced",
            Class::SellerCentric => "seller_centric",
            Class::Neutral => "neutral",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        [
            Class::CustomerCentric,
            Class::Balanced,
            Class::SellerCentric,
            Class::Neutral,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// Deal stages the question bank can be tagged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Discovery,
    Demo,
    Proposal,
    Negotiation,
    ClosedWon,
    ClosedLost,
    Renewal,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Discovery,
        Stage::Demo,
        Stage::Proposal,
        Stage::Negotiation,
        Stage::ClosedWon,
        Stage::ClosedLost,
        Stage::Renewal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Discovery => "discovery",
            Stage::Demo => "demo",
            Stage::Proposal => "proposal",
            Stage::Negotiation => "negotiation",
            Stage::ClosedWon => "closed_won",
            Stage::ClosedLost => "closed_lost",
            Stage::Renewal => "renewal",
        }
    }

    /// Accepts common CRM spellings ("Closed Won", "closedwon", "closed-won", HubSpot's
    /// default pipeline ids such as `qualifiedtobuy` or `contractsent`).
    pub fn parse(s: &str) -> Option<Stage> {
        let key: String = s
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        Some(match key.as_str() {
            "discovery"
            | "qualification"
            | "qualify"
            | "qualified"
            | "qualifiedtobuy"
            | "appointmentscheduled"
            | "prospecting"
            | "lead"
            | "new"
            | "disco"
            | "firstmeeting"
            | "needsanalysis" => Stage::Discovery,
            "demo"
            | "demoscheduled"
            | "presentationscheduled"
            | "presentation"
            | "evaluation"
            | "eval"
            | "poc"
            | "pilot"
            | "trial"
            | "solution"
            | "technicalvalidation"
            | "valueproposition" => Stage::Demo,
            "proposal"
            | "proposalsent"
            | "quote"
            | "quotesent"
            | "decisionmakerboughtin"
            | "proposalpricequote"
            | "idpotentialdecisionmakers"
            | "perceptionanalysis"
            | "businesscase" => Stage::Proposal,
            "negotiation" | "negotiationreview" | "contractsent" | "contract" | "legal"
            | "procurement" | "commit" | "verbal" => Stage::Negotiation,
            "closedwon" | "won" | "closed" | "signed" | "win" => Stage::ClosedWon,
            "closedlost" | "lost" | "loss" | "churned" | "churn" => Stage::ClosedLost,
            "renewal" | "renewals" | "renew" | "upsell" | "expansion" => Stage::Renewal,
            _ => return None,
        })
    }

    /// The customer-centric themes an update at this stage should show, most important first
    /// (TAXONOMY.md, "What each stage should show").
    pub fn expected_themes(self) -> &'static [Theme] {
        use Theme::*;
        match self {
            Stage::Discovery => &[CustomerOutcome, CustomerConcern, Stakeholders],
            Stage::Demo => &[Stakeholders, DecisionProcess, CustomerOutcome],
            Stage::Proposal | Stage::Negotiation => &[
                DecisionProcess,
                Enablement,
                DecisionConfidence,
                CustomerRisk,
            ],
            Stage::ClosedWon => &[Adoption, SharedSuccess, Stakeholders],
            Stage::ClosedLost => &[DecisionProcess, Stakeholders, CustomerOutcome],
            Stage::Renewal => &[SharedSuccess, Adoption, CustomerConcern],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub text: String,
    /// Byte offsets into the analysed text.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThemeHit {
    pub theme: Theme,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub is_deal_update: bool,
    pub account: Option<String>,
    pub themes: Vec<ThemeHit>,
    pub class: Class,
    /// Customer-centric share in [0, 1].
    pub score: f64,
    /// Where the deal stands, when the words say so clearly (deal updates only).
    pub deal_state: Option<DealState>,
}

/// Where a deal stands, told from the words of the update (`deal_state.rs`): questions that
/// fit an early call do not fit a lost deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DealState {
    /// First calls, intros, discovery: little is known yet.
    Discovery,
    /// Something is going wrong: churn talk, falling usage, a champion gone, a stall.
    AtRisk,
    /// Signed, closed won, renewed.
    Won,
    /// Lost, churned, they chose someone else or nothing.
    Lost,
}

impl DealState {
    pub fn as_str(self) -> &'static str {
        match self {
            DealState::Discovery => "discovery",
            DealState::AtRisk => "at_risk",
            DealState::Won => "won",
            DealState::Lost => "lost",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    pub id: String,
    pub pillar: Pillar,
    pub text: String,
    /// Why it was asked (the gap, the situation, the message's words it uses).
    pub reason: QuestionReason,
}

/// What question selection needs to know beyond the analysis.
#[derive(Debug, Clone, Default)]
pub struct QuestionContext<'a> {
    /// The message the analysis is of: questions name what it names (roles, steps, dates,
    /// sums, competitors, worries) and fit the situation it describes. Empty: generic
    /// wording, situation from `stage`.
    pub text: &'a str,
    /// Question ids this person received most recently, newest first.
    pub recent: &'a [String],
    /// Question ids people marked unhelpful; asked less often.
    pub unhelpful: &'a [String],
    /// Deal stage when known (CRM webhooks).
    pub stage: Option<Stage>,
    /// Makes selection deterministic.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    #[error("lexicon line {line}: {reason}")]
    Invalid { line: usize, reason: String },
}

impl Analysis {
    /// True when the analysis shows this theme.
    pub fn has(&self, theme: Theme) -> bool {
        self.themes.iter().any(|h| h.theme == theme)
    }

    /// True when the update never mentions the customer's outcome (`customer_outcome`,
    /// `shared_success`) NOR their people (`stakeholders`, `customer_concern`): the nudging
    /// code asks about these first.
    pub fn lacks_outcome_and_people(&self) -> bool {
        let outcome = self.has(Theme::CustomerOutcome) || self.has(Theme::SharedSuccess);
        let people = self.has(Theme::Stakeholders) || self.has(Theme::CustomerConcern);
        !outcome && !people
    }

    /// Customer-centric themes worth asking about, most important first: the expected themes
    /// of `stage` that are missing, then the counterparts of the seller signals shown
    /// (strongest first), then outcome and people when both are missing, then any other
    /// missing customer theme. Themes the update already shows are never gaps.
    pub fn gaps(&self, stage: Option<Stage>) -> Vec<Theme> {
        questions::gaps(self, stage)
    }
}

/// The built-in model; a unit test checks it parses, so `None` (lexicon only) is a fallback
/// that keeps the bot running, never the normal case.
fn builtin_model() -> Option<Arc<Model>> {
    static MODEL: OnceLock<Option<Arc<Model>>> = OnceLock::new();
    MODEL
        .get_or_init(|| Model::parse(BUILTIN_MODEL).ok().map(Arc::new))
        .clone()
}

/// The engine: vocabulary and question bank, built once at start. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Each part is shared, not copied, between engines built from the same vocabulary (the
/// built-in engine is the lexicon-only one plus the model, and both stay alive): a copy of
/// the lexicon's compiled regexes and the matcher's automata was ~7 MiB of the server's
/// memory (README "Performance").
#[derive(Debug)]
struct Inner {
    lex: Arc<Lexicon>,
    matcher: Arc<Matcher>,
    /// Lower-cased capitalised words that are never account names.
    common: Arc<HashSet<String>>,
    bank: Arc<Vec<BankQuestion>>,
    /// The learned reading on top of the lexicon; `None` reads with the lexicon alone.
    model: Option<Arc<Model>>,
}

impl Engine {
    /// The vocabulary, model and question bank built into the binary.
    pub fn builtin() -> Engine {
        static BUILTIN: OnceLock<Engine> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Engine::lexicon_only().with_model(builtin_model()))
            .clone()
    }

    /// The built-in vocabulary and question bank without the learned model: themes fire on
    /// cue weights alone (the model's input, and a baseline for `cusp eval --lexicon-only`).
    pub fn lexicon_only() -> Engine {
        static LEXICON: OnceLock<Engine> = OnceLock::new();
        LEXICON
            .get_or_init(|| {
                let mut lex = Lexicon::default();
                // The built-in file is checked by a unit test; should it ever be broken the
                // engine degrades to matching nothing rather than crashing the bot.
                if lex.parse_into(BUILTIN_LEXICON).is_err() {
                    lex = Lexicon::default();
                }
                Engine::assemble(lex, None)
            })
            .clone()
    }

    /// This engine's vocabulary with another model (or none).
    fn with_model(&self, model: Option<Arc<Model>>) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                lex: self.inner.lex.clone(),
                matcher: self.inner.matcher.clone(),
                common: self.inner.common.clone(),
                bank: self.inner.bank.clone(),
                model,
            }),
        }
    }

    /// This engine's vocabulary with the model in `source` (the format `cusp train` writes).
    pub fn with_model_text(&self, source: &str) -> Result<Engine, ModelError> {
        Ok(self.with_model(Some(Arc::new(Model::parse(source)?))))
    }

    /// This engine without its model.
    pub fn without_model(&self) -> Engine {
        self.with_model(None)
    }

    /// True when a learned model reads the messages (false: the lexicon alone).
    pub fn has_model(&self) -> bool {
        self.inner.model.is_some()
    }

    /// Builds an engine from lexicon file contents (the format `CUSP_LEXICON` names).
    ///
    /// The file EXTENDS the built-in vocabulary, unless it contains the line `!replace`, in
    /// which case it replaces it. Errors name the line of `source`.
    pub fn from_lexicon(source: &str) -> Result<Engine, LexiconError> {
        let mut probe = Lexicon::default();
        let replace = probe.parse_into(source)?;
        // The model learned on the built-in vocabulary's findings; a replaced vocabulary
        // reads on its own.
        if replace {
            return Ok(Engine::assemble(probe, None));
        }
        let mut lex = Lexicon::default();
        lex.parse_into(BUILTIN_LEXICON).map_err(|e| match e {
            LexiconError::Invalid { line, reason } => LexiconError::Invalid {
                line,
                reason: format!("in the built-in lexicon: {reason}"),
            },
        })?;
        lex.parse_into(source)?;
        Ok(Engine::assemble(lex, builtin_model()))
    }

    fn assemble(lex: Lexicon, model: Option<Arc<Model>>) -> Engine {
        let matcher = Matcher::new(&lex);
        let mut common: HashSet<String> = account::builtin_common().map(str::to_string).collect();
        common.extend(lex.common.iter().cloned());
        let bank = questions::parse_bank(BUILTIN_QUESTIONS).unwrap_or_default();
        Engine {
            inner: Arc::new(Inner {
                lex: Arc::new(lex),
                matcher: Arc::new(matcher),
                common: Arc::new(common),
                bank: Arc::new(bank),
                model,
            }),
        }
    }

    pub fn analyze(&self, text: &str) -> Analysis {
        classify::analyze(&self.inner, text)
    }

    pub fn choose_questions(
        &self,
        analysis: &Analysis,
        ctx: &QuestionContext<'_>,
    ) -> Vec<Question> {
        questions::choose(&self.inner.bank, &self.inner.common, analysis, ctx)
    }

    /// The situation questions about `analysis` are fitted to, given the context (the
    /// message's words, or the CRM stage).
    pub fn question_situation(&self, analysis: &Analysis, ctx: &QuestionContext<'_>) -> Situation {
        questions::effective_situation(analysis, ctx)
    }

    /// The whole question bank (for tests and docs).
    pub fn question_bank(&self) -> Vec<Question> {
        self.inner.bank.iter().map(|q| q.render(None)).collect()
    }

    /// Questions that make sense to a whole team (the digest's question of the week):
    /// those that name nothing of one deal (no account, no slot) and are not only about a
    /// deal lost or a customer at risk ("Who could become their new champion?").
    pub fn team_questions(&self) -> Vec<Question> {
        self.inner
            .bank
            .iter()
            .filter(|q| !q.text.contains('{'))
            .filter(|q| {
                q.situations
                    .iter()
                    .any(|s| !matches!(s, Situation::Lost | Situation::AtRisk))
            })
            .map(|q| q.render(None))
            .collect()
    }

    /// The questions the bank tags for `stage` (for tests and docs: CRM prompts prefer them).
    pub fn stage_questions(&self, stage: Stage) -> Vec<Question> {
        self.inner
            .bank
            .iter()
            .filter(|q| q.stages.contains(&stage))
            .map(|q| q.render(None))
            .collect()
    }
}
