//! The situation a deal update describes (a lost deal, a won one, a renewal at risk, a
//! first call…), read purely from its words, so that questions fit it: nobody should be
//! asked "if this works, what's different in six months?" about a deal that is gone.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};
use serde::Serialize;

use super::slots::{Tok, clean, words};
use super::{Analysis, Stage, Theme};

/// Where the deal stands, as far as the message tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Situation {
    /// An open deal with nothing more specific said.
    #[default]
    Active,
    /// A first call or early qualification.
    Discovery,
    /// They are weighing us against someone else.
    Competitive,
    /// Gone quiet, slipped, on hold.
    Stalled,
    /// An existing customer showing churn signals.
    AtRisk,
    /// An existing customer, renewal or expansion, no alarm.
    Renewal,
    /// The customer decided against us (or churned).
    Lost,
    /// Signed.
    Won,
}

impl Situation {
    pub const ALL: [Situation; 8] = [
        Situation::Active,
        Situation::Discovery,
        Situation::Competitive,
        Situation::Stalled,
        Situation::AtRisk,
        Situation::Renewal,
        Situation::Lost,
        Situation::Won,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Situation::Active => "active",
            Situation::Discovery => "discovery",
            Situation::Competitive => "competitive",
            Situation::Stalled => "stalled",
            Situation::AtRisk => "at_risk",
            Situation::Renewal => "renewal",
            Situation::Lost => "lost",
            Situation::Won => "won",
        }
    }

    pub fn parse(s: &str) -> Option<Situation> {
        Situation::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A deal still being decided (the bank's `open` group).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Situation::Active | Situation::Discovery | Situation::Competitive | Situation::Stalled
        )
    }

    /// The customer themes worth asking about first in this situation.
    pub fn expected_themes(self) -> &'static [Theme] {
        use Theme::*;
        match self {
            Situation::Active => &[],
            Situation::Discovery => &[CustomerOutcome, CustomerConcern, Stakeholders],
            Situation::Competitive => &[DecisionProcess, CustomerOutcome, DecisionConfidence],
            Situation::Stalled => &[CustomerConcern, DecisionProcess, CustomerOutcome],
            Situation::AtRisk => &[CustomerConcern, Stakeholders, SharedSuccess, Adoption],
            Situation::Renewal => &[SharedSuccess, Adoption, CustomerConcern],
            Situation::Lost => &[
                DecisionProcess,
                Stakeholders,
                CustomerConcern,
                DecisionConfidence,
            ],
            Situation::Won => &[Adoption, SharedSuccess, Stakeholders, CustomerRisk],
        }
    }

    /// The situation a CRM stage implies on its own.
    pub fn from_stage(stage: Stage) -> Situation {
        match stage {
            Stage::ClosedWon => Situation::Won,
            Stage::ClosedLost => Situation::Lost,
            Stage::Discovery => Situation::Discovery,
            Stage::Renewal => Situation::Renewal,
            Stage::Demo | Stage::Proposal | Stage::Negotiation => Situation::Active,
        }
    }
}

struct Rule {
    situation: Situation,
    re: Regex,
    /// Words just before a match (same clause) that cancel it: "need them to sign".
    guard: &'static [&'static str],
    /// Fires only for an existing customer (the message also reads as a renewal).
    customer: bool,
}

const RENEWAL: &str = r"renewal|renewals|renew|renewing|upsell|expansion|qbr|ebr|existing customer|account review|true[ -]up|customer since|since (?:go[ -]live|rollout|launch|they went live|we went live|onboarding)|their contract (?:is )?up|(?:yr|year)[ -]?(?:1|one|2|two)|annual review|business review|paid for itself|health check|check[ -]in call with (?:the )?customer";

/// Words in front of "signed/won/renewed" that make it a wish or a plan, not a fact.
const NOT_YET: &[&str] = &[
    "to",
    "get",
    "getting",
    "need",
    "needs",
    "want",
    "wants",
    "will",
    "would",
    "if",
    "when",
    "once",
    "before",
    "until",
    "not",
    "n't",
    "be",
    "being",
    "can",
    "could",
    "should",
    "hope",
    "hoping",
    "expect",
    "expecting",
    "might",
    "may",
    "ready",
    "about",
    "almost",
    "never",
    "haven't",
    "hasn't",
    "didn't",
    "don't",
    "won't",
    "isn't",
    "aren't",
    "yet",
    "still",
    "gotta",
    "gonna",
    "must",
    "let's",
    "pls",
    "please",
    "ever",
    "nda",
    "mnda",
    "b4",
    "til",
    "till",
    "for",
    "push",
    "pushing",
    "chase",
    "chasing",
    "awaiting",
    "waiting",
    "pending",
    "expected",
    "co-",
    "co",
];
const NEGATED: &[&str] = &[
    "not", "no", "never", "isn't", "aren't", "wasn't", "don't", "didn't", "won't", "hasn't",
    "haven't", "nothing", "without",
];

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let r = |situation, pattern: &str, guard: &'static [&'static str], customer| {
            // Every pattern here is a literal of this file, checked by a unit test.
            Regex::new(&format!(r"(?i)(?-u:\b)(?:{pattern})(?:(?-u:\b)| |$)"))
                .ok()
                .map(|re| Rule {
                    situation,
                    re,
                    guard,
                    customer,
                })
        };
        use Situation::*;
        [
            r(Lost, r"closed[ -]?lost|lost (?-i:[A-Z])[\w&.-]*(?: (?-i:[A-Z])[\w&.-]*)? to|lost (?:the deal|this deal|this one|the opp|it|out|to)|we lost|lost (?:the )?(?:deal|opp|opportunity|bid|account)|went (?:with|w) (?:a competitor|another vendor|someone else|the other|the incumbent|(?-i:[A-Z])[\w&.-]*)|chose (?:a competitor|another vendor|someone else|the incumbent|(?-i:[A-Z])[\w&.-]*) (?:over|instead)|picked \w+ over us|decided (?:not to|against) (?:go|move|proceed|buy|renew|us|sign)|(?:not|won't be) moving forward|passed on us|pulled out|no[ -]decision|deal is dead|dead deal|walked away|churned|cancel+ed (?:their|the) (?:contract|subscription|account|renewal)|gave (?:us )?notice|not renewing|won't renew|will not renew|decided not to renew", NEGATED, false),
            r(Won, r"closed[ -]?won|signed(?: \||$| [0-9]| \w+yr| for [0-9]| copy)|(?:^|\| )signed (?-i:[A-Z])|we won|won (?:the deal|it|this one|the account|the business)|signed (?:the |their )?(?:contract|order form|deal|paper|paperwork|msa|renewal|agreement|sow|po)|(?:contract|deal|paper|paperwork|renewal|order form|msa|agreement) (?:is |was |got |has been )?(?:signed|countersigned|executed|inked)|(?:they|we) (?:just |finally |officially )?(?:signed|inked|renewed)(?: \||$| today| yesterday| this morning| with us| on (?:the|monday|tuesday|wednesday|thursday|friday))|(?:it's|its|it is) (?:officially )?(?:signed|inked)|got the po|po (?:is in|received|came in|landed|arrived)|received (?:the|their) po|inked|renewed (?:for|early|at|with)|it's official|officially (?:signed|a customer)|booked it|closed it", NOT_YET, false),
            r(AtRisk, r"churn risk|at[ -]risk|risk of (?:churn|losing)|(?:might|may|could|will|going to|likely to|threatening to|thinking about|considering) (?:churn|cancel|leave|not renew|walk)|(?:might|may) not renew|not sure (?:they'll|they will|if they'll) renew|renewal (?:is )?(?:in trouble|in danger|in doubt|at risk|looks shaky|shaky)|usage (?:is |has )?(?:down|dropped|dropping|fell|falling|declined|declining|tanked|flat)|(?:logins|adoption|engagement|activity) (?:is |are |has |have )?(?:down|dropped|dropping|fell|falling|declined|declining|stalled|flat)|champion (?:left|is leaving|has left|quit|moved on|departed|is gone|got laid off)|lost (?:their|our) (?:champion|champ|sponsor|exec sponsor)|(?:champ|sponsor) (?:left|quit|is leaving|has left|moved on)|(?:considering|evaluating|looking at) (?:alternatives|other vendors|other options|switching|leaving|competitors)|downgrad(?:e|ing)|cut(?:ting)? seats|reduc(?:e|ing) seats|red account|health score (?:is )?(?:red|down|dropped)|shelfware|(?:not|hasn't|haven't|isn't) seen? (?:the |any )?value|not seeing (?:the |any )?value", NEGATED, false),
            // Weaker signs of trouble count only for an existing customer.
            r(AtRisk, r"escalat(?:ed|ion|ions)|unhappy|frustrated|complain(?:ed|ing|ts)?|threaten(?:ed|ing) to|budget cuts?|angry|upset", NEGATED, true),
            r(Stalled, r"gone dark|went dark|ghost(?:ed|ing)|no response|no reply|(?:haven't|hasn't|not) heard back|radio silence|stalled|(?:deal|it|this|things|everything|we) (?:is |are |'s |was )?stuck|stuck in (?:legal|procurement|review|approval|security)|slipp(?:ed|ing)|pushed (?:out|back|to next|into next|to q[0-9]|to (?:january|february|march|april|may|june|july|august|september|october|november|december)|a quarter)|on hold|paused|delayed|deprioriti[sz]ed|back burner|lost momentum|no movement|not responding|unresponsive|hasn't replied|haven't replied|kicked the can|went quiet|gone quiet|silent since", NEGATED, false),
            r(Competitive, r"vs\.?|versus|competitor|competitors|competing (?:with|against)|competition|bake[ -]?off|head[ -]to[ -]head|also (?:looking at|evaluating|talking to|considering)|shortlist(?:ed)?|short list|incumbent|comparing us|compared (?:us )?(?:to|with)|up against|other vendors?|undercut(?:ting)?|cheaper than us|price match|came in cheaper|rfp", &[], false),
            r(Discovery, r"discovery (?:call|meeting|session|chat|with|w)|(?:^|\| )discovery \||disco call|intro(?:ductory)? (?:call|meeting|chat)|first (?:call|meeting|conversation|chat|touch|convo)|initial (?:call|meeting|conversation|chat)|qualification call|just met (?:them|with)|met (?:them |with them )?for the first time|inbound lead|new lead|booked a (?:first )?meeting|early days", &[], false),
            r(Renewal, RENEWAL, &[], false),
        ]
        .into_iter()
        .flatten()
        .collect()
    })
}

/// All the rules' patterns in one automaton: one pass over the words tells which rules can
/// fire at all, so only those are searched match by match (most messages match one or two).
fn rule_set() -> Option<&'static RegexSet> {
    static SET: OnceLock<Option<RegexSet>> = OnceLock::new();
    SET.get_or_init(|| RegexSet::new(rules().iter().map(|r| r.re.as_str())).ok())
        .as_ref()
}

/// The rules that fire on `flat`, in order.
fn firing<'r>(flat: &'r str, customer: bool) -> impl Iterator<Item = &'static Rule> + 'r {
    let can_match = rule_set().map(|set| set.matches(flat));
    rules()
        .iter()
        .enumerate()
        .filter(move |(i, _)| can_match.as_ref().is_none_or(|m| m.matched(*i)))
        .map(|(_, r)| r)
        .filter(move |r| rule_fires(r, flat, customer))
}

fn renewal_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    // A literal of this file, checked by a unit test.
    RE.get_or_init(|| Regex::new(&format!(r"(?i)(?-u:\b)(?:{RENEWAL})(?-u:\b)")).ok())
        .as_ref()
}

/// The message's words as written, clauses separated by `|`.
fn flat(text: &str) -> String {
    flat_words(&words(&clean(text)))
}

/// `flat` of words already read.
fn flat_words(toks: &[Tok]) -> String {
    let mut out = String::with_capacity(toks.len() * 8);
    for t in toks {
        if t.brk && !out.is_empty() {
            out.push_str(" |");
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&t.raw);
    }
    out
}

fn rule_fires(rule: &Rule, flat: &str, customer: bool) -> bool {
    if rule.customer && !customer {
        return false;
    }
    rule.re.find_iter(flat).any(|m| {
        // The clause's last few words before the match.
        let before = &flat[..m.start()];
        let clause = before.rsplit('|').next().unwrap_or("");
        let near: Vec<String> = clause
            .split_whitespace()
            .rev()
            .take(3)
            .map(str::to_lowercase)
            .collect();
        !near.iter().any(|w| {
            rule.guard.contains(&w.as_str()) || (w.ends_with("n't") && !rule.guard.is_empty())
        })
    })
}

/// The deal stage a pasted CRM card names ("Stage: Discovery", "Stage: Proposal →
/// Negotiation": the last one).
fn crm_stage(text: &str) -> Option<Stage> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| {
            // A literal of this file, checked by a unit test.
            Regex::new(r"(?im)\bstage(?: change[ds]?)?\s*:\s*([^\n→>|/]+?)\s*(?:(?:→|->|=>|>|\bto\b)\s*([^\n/|;,(]+?))?\s*(?:[\n/|;,(]|$)").ok()
        })
        .as_ref()?;
    let c = re.captures(text)?;
    let last = c.get(2).or_else(|| c.get(1))?.as_str();
    Stage::parse(last)
}

/// A list of several deals (a forecast, a pipeline review) has no one situation; its
/// heading may have one ("At-risk renewals", "Won this week").
fn list_heading(text: &str) -> Option<&str> {
    let bullets = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("- ")
                || l.starts_with("• ")
                || l.starts_with("* ")
                || l.starts_with('▸')
                || l.split_once(". ").is_some_and(|(n, _)| {
                    !n.is_empty() && n.len() <= 2 && n.chars().all(|c| c.is_ascii_digit())
                })
        })
        .count();
    (bullets >= 2).then(|| text.lines().next().unwrap_or(""))
}

/// The situation `text` describes. Earlier situations win: a deal lost to a competitor is
/// lost, a renewal at risk that slipped is at risk. `a` adds what the analysis read: a
/// renewal whose update shows the customer's risks is at risk.
impl From<super::DealState> for Situation {
    fn from(state: super::DealState) -> Situation {
        match state {
            super::DealState::Discovery => Situation::Discovery,
            super::DealState::AtRisk => Situation::AtRisk,
            super::DealState::Won => Situation::Won,
            super::DealState::Lost => Situation::Lost,
        }
    }
}

pub fn situation(text: &str, a: &Analysis) -> Situation {
    let cleaned = clean(text);
    situation_of(text, &cleaned, &words(&cleaned), a)
}

/// `situation` with the message cleaned (`clean`) and its words read (`words`) once, for
/// question selection to share with the slots.
pub(crate) fn situation_of(text: &str, cleaned: &str, toks: &[Tok], a: &Analysis) -> Situation {
    if let Some(heading) = list_heading(text) {
        let f = flat(heading);
        let customer = renewal_re().is_some_and(|re| re.is_match(&f));
        return firing(&f, customer)
            .next()
            .map_or(Situation::Active, |r| r.situation);
    }
    let f = flat_words(toks);
    let customer = renewal_re().is_some_and(|re| re.is_match(&f));
    let mut found = firing(&f, customer).map(|r| r.situation);
    let first = found.next().unwrap_or_default();
    // A pasted CRM card's stage says more than a word like "discovery" or "vs" in it;
    // what happened (lost, won, at risk, gone quiet) still says more than the stage.
    let settled = matches!(
        first,
        Situation::Lost | Situation::Won | Situation::AtRisk | Situation::Stalled
    );
    if !settled && let Some(stage) = crm_stage(cleaned) {
        return Situation::from_stage(stage);
    }
    if first == Situation::Renewal
        && a.has(Theme::CustomerRisk)
        && !a.has(Theme::SharedSuccess)
        && a.has(Theme::CustomerConcern)
    {
        return Situation::AtRisk;
    }
    first
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    fn sit(text: &str) -> Situation {
        let e = Engine::builtin();
        situation(text, &e.analyze(text))
    }

    #[test]
    fn every_rule_compiles() {
        assert_eq!(rules().len(), 8);
        assert!(renewal_re().is_some());
        assert_eq!(rule_set().map(RegexSet::len), Some(8));
    }

    #[test]
    fn reads_the_situation() {
        use Situation::*;
        let cases = [
            (
                "Hooli renewal: champion left last month, new VP hasn't seen the value yet, usage down 30%",
                AtRisk,
            ),
            ("Globex closed lost, they went with Salesforce", Lost),
            ("lost Initech to the incumbent on price", Lost),
            ("Acme signed the order form today :tada:", Won),
            ("Acme closed won!", Won),
            ("need Acme to sign by Friday", Active),
            ("Acme wants to sign before quarter end", Active),
            (
                "first call with Wayne Fintech, their CFO is worried about audit season",
                Discovery,
            ),
            (
                "Soylent has gone dark since the demo, pushed to Q3",
                Stalled,
            ),
            ("bake-off vs Gong next week at Umbrella", Competitive),
            ("Vandelay renewal QBR next week, usage up 20%", Renewal),
            ("they didn't sign yet", Active),
            ("not worried about Stark renewal, usage is up", Renewal),
            (
                "Account: Blue Heron\nStage: Qualification → Discovery\nAmount: $40,000",
                Discovery,
            ),
            (
                "Opp: Ironside\nStage: Discovery → Evaluation\nNotes: vs Gong",
                Active,
            ),
            ("eastmark signed 🙌🙌", Won),
            ("Signed 🖊️ Tallis & Mercer for HR core", Won),
            ("westfield surgical NDA signed", Active),
            (
                "negotiation notes: they signed two new clients and need to onboard them",
                Active,
            ),
            ("Next step: push for signed order form by 12/20", Active),
            (
                "Health commit\n• Palisade 96k: CMO co-signed\n• Holloway 145k: pushing",
                Active,
            ),
            (
                "At-risk renewals\n1. Sablewood: no logins in 3 weeks\n2. Ostrander: CFO review",
                AtRisk,
            ),
            ("their GM signed off on the mutual plan", Active),
            (
                "Discovery with Zephyr Airlines: payroll and rosters don't talk",
                Discovery,
            ),
        ];
        for (t, want) in cases {
            assert_eq!(sit(t), want, "{t}");
        }
    }

    #[test]
    fn a_crm_stage_implies_a_situation() {
        assert_eq!(Situation::from_stage(Stage::ClosedLost), Situation::Lost);
        assert_eq!(Situation::from_stage(Stage::ClosedWon), Situation::Won);
        assert_eq!(Situation::from_stage(Stage::Proposal), Situation::Active);
        for s in Situation::ALL {
            assert_eq!(Situation::parse(s.as_str()), Some(s));
        }
    }
}
