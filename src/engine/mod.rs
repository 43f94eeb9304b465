//! The CUSP engine: pure, deterministic, no I/O, no clock, no randomness of its own.
//!
//! PLACEHOLDER API SKETCH — the engine issue replaces the bodies; callers rely on the
//! signatures below.

use serde::Serialize;

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
            Theme::QuotaPressure | Theme::ClosingPush | Theme::DiscountLever | Theme::ProductPitch => None,
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
        [Class::CustomerCentric, Class::Balanced, Class::SellerCentric, Class::Neutral]
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    pub id: String,
    pub pillar: Pillar,
    pub text: String,
}

/// What question selection needs to know beyond the analysis.
#[derive(Debug, Clone, Default)]
pub struct QuestionContext<'a> {
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

/// The engine: vocabulary and question bank, built once at start.
#[derive(Debug, Clone)]
pub struct Engine {}

impl Engine {
    /// The vocabulary and question bank built into the binary.
    pub fn builtin() -> Engine {
        Engine {}
    }

    /// Builds an engine from lexicon file contents (the format `CUSP_LEXICON` names).
    pub fn from_lexicon(_source: &str) -> Result<Engine, LexiconError> {
        Ok(Engine {})
    }

    pub fn analyze(&self, _text: &str) -> Analysis {
        Analysis {
            is_deal_update: false,
            account: None,
            themes: Vec::new(),
            class: Class::Neutral,
            score: 0.0,
        }
    }

    pub fn choose_questions(&self, _analysis: &Analysis, _ctx: &QuestionContext<'_>) -> Vec<Question> {
        Vec::new()
    }
}
