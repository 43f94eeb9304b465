//! Slots: the specific things a message names (a role on their side, a step of their
//! process, a date, a sum, a competitor, a worry…), read purely from its words so that a
//! question can ask about them. A slot is only ever filled with the message's own words
//! (tidied: case, articles); nothing is invented. Markup, emoji and CRM field labels never
//! reach a slot.

use std::collections::HashSet;

use serde::Serialize;

/// The kinds of slot a question template can name (`{role}`, `{step}`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    Account,
    /// A person or group on the customer's side: "CFO", "head of security", "IT team".
    Role,
    /// A step of their decision: "security review", "pilot", "board meeting".
    Step,
    /// A step after the decision: "go-live", "rollout", "onboarding".
    Milestone,
    Competitor,
    Date,
    /// A sum of money: "$40k".
    Money,
    /// A discount with its size: "a 15% discount".
    Discount,
    /// A count of their people or places: "120 seats", "12 sites".
    Count,
    /// A measured change: "the 30% drop in usage".
    Trend,
    /// What worries them: "downtime during migration".
    Concern,
    /// What they fear will happen, as a clause: "that the crews won't type on site".
    Worry,
}

impl SlotKind {
    pub const ALL: [SlotKind; 12] = [
        SlotKind::Account,
        SlotKind::Role,
        SlotKind::Step,
        SlotKind::Milestone,
        SlotKind::Competitor,
        SlotKind::Date,
        SlotKind::Money,
        SlotKind::Discount,
        SlotKind::Count,
        SlotKind::Trend,
        SlotKind::Concern,
        SlotKind::Worry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Account => "account",
            SlotKind::Role => "role",
            SlotKind::Step => "step",
            SlotKind::Milestone => "milestone",
            SlotKind::Competitor => "competitor",
            SlotKind::Date => "date",
            SlotKind::Money => "money",
            SlotKind::Discount => "discount",
            SlotKind::Count => "count",
            SlotKind::Trend => "trend",
            SlotKind::Concern => "concern",
            SlotKind::Worry => "worry",
        }
    }

    pub fn parse(s: &str) -> Option<SlotKind> {
        SlotKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One filled slot: the phrase put into the question, and the message words it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filled {
    pub text: String,
    pub words: Vec<String>,
}

/// Everything a message names that a question can use.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    pub role: Option<Filled>,
    pub step: Option<Filled>,
    pub milestone: Option<Filled>,
    pub competitor: Option<Filled>,
    pub date: Option<Filled>,
    pub money: Option<Filled>,
    pub discount: Option<Filled>,
    pub count: Option<Filled>,
    pub trend: Option<Filled>,
    pub concern: Option<Filled>,
    pub worry: Option<Filled>,
}

impl Slots {
    pub fn get(&self, kind: SlotKind) -> Option<&Filled> {
        match kind {
            SlotKind::Account => None,
            SlotKind::Role => self.role.as_ref(),
            SlotKind::Step => self.step.as_ref(),
            SlotKind::Milestone => self.milestone.as_ref(),
            SlotKind::Competitor => self.competitor.as_ref(),
            SlotKind::Date => self.date.as_ref(),
            SlotKind::Money => self.money.as_ref(),
            SlotKind::Discount => self.discount.as_ref(),
            SlotKind::Count => self.count.as_ref(),
            SlotKind::Trend => self.trend.as_ref(),
            SlotKind::Concern => self.concern.as_ref(),
            SlotKind::Worry => self.worry.as_ref(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cleaning and words

/// A word of the message. `brk` is true when a clause boundary (punctuation, a line break,
/// an emoji) comes between it and the previous word.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    pub raw: String,
    pub lower: String,
    pub brk: bool,
    /// Followed directly by `:` — a field label of a pasted card ("Owner:", "Stage:").
    pub label: bool,
}

/// The message's prose with Slack markup removed: mentions, channels and bare links are
/// dropped, a link keeps its label, `:emoji:` codes and pictographs become clause breaks,
/// code is skipped, `&amp;`-style entities are decoded, formatting marks are dropped.
pub(crate) fn clean(text: &str) -> String {
    // Most messages have no entity: no copies then.
    let text: std::borrow::Cow<'_, str> = if text.contains('&') {
        text.replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .into()
    } else {
        text.into()
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '<' => {
                // Slack markup: <@U1>, <#C1|name>, <https://…|label>, <!here>.
                let close = chars[i + 1..]
                    .iter()
                    .take(400)
                    .position(|&x| x == '>' || x == '\n');
                match close.map(|p| i + 1 + p) {
                    Some(end) if chars[end] == '>' => {
                        let inner: String = chars[i + 1..end].iter().collect();
                        if let Some((target, label)) = inner.split_once('|')
                            && !target.starts_with('#')
                            && !target.starts_with('@')
                            && !target.starts_with('!')
                        {
                            out.push(' ');
                            out.push_str(label);
                        }
                        out.push(' ');
                        i = end + 1;
                    }
                    _ => {
                        out.push(' ');
                        i += 1;
                    }
                }
            }
            '>' if out.trim_end_matches([' ', '\t']).ends_with('\n') || out.trim().is_empty() => {
                // A block quote marker; the quoted words stay.
                out.push(' ');
                i += 1;
            }
            ':' => {
                // :emoji_code: (needs a letter, no spaces) is a clause break, not words.
                let end = chars[i + 1..]
                    .iter()
                    .take(60)
                    .position(|&x| !(x.is_ascii_alphanumeric() || "_+-'".contains(x)))
                    .map(|p| i + 1 + p);
                match end {
                    Some(e)
                        if chars[e] == ':'
                            && e > i + 1
                            && chars[i + 1..e].iter().any(|x| x.is_ascii_alphabetic()) =>
                    {
                        out.push_str(" ; ");
                        i = e + 1;
                    }
                    _ => {
                        out.push(':');
                        i += 1;
                    }
                }
            }
            '`' => {
                let fence = chars[i..].starts_with(&['`', '`', '`']);
                let skip = if fence { 3 } else { 1 };
                let rest = &chars[i + skip..];
                let close = if fence {
                    (0..rest.len()).find(|&k| rest[k..].starts_with(&['`', '`', '`']))
                } else {
                    rest.iter()
                        .take(400)
                        .position(|&x| x == '`' || x == '\n')
                        .filter(|&p| rest[p] == '`')
                };
                match close {
                    Some(p) => {
                        out.push_str(" ; ");
                        i += skip + p + skip;
                    }
                    None => {
                        out.push(' ');
                        i += skip;
                    }
                }
            }
            '*' | '_' | '~' => {
                out.push(' ');
                i += 1;
            }
            '\u{2019}' | '\u{2018}' => {
                out.push('\'');
                i += 1;
            }
            '\u{201c}' | '\u{201d}' => {
                out.push('"');
                i += 1;
            }
            c if is_pictograph(c) => {
                out.push_str(" ; ");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn is_pictograph(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE0F | 0x200D)
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '\'' | '&' | '$' | '€' | '£' | '%' | '+' | '#')
}

/// The words of already-cleaned text, with clause boundaries.
pub(crate) fn words(cleaned: &str) -> Vec<Tok> {
    let chars: Vec<char> = cleaned.chars().collect();
    let mut toks = Vec::new();
    let mut brk = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if word_char(c) {
            let start = i;
            while i < chars.len() {
                let x = chars[i];
                let inner = |ok: fn(char) -> bool| {
                    i > start
                        && chars[i - 1].is_alphanumeric()
                        && chars.get(i + 1).is_some_and(|n| ok(*n))
                };
                if word_char(x)
                    || (x == '-' && inner(char::is_alphanumeric))
                    || (x == '.' && inner(char::is_alphanumeric))
                    || ((x == ',' || x == '/') && inner(|n| n.is_ascii_digit()))
                {
                    i += 1;
                } else {
                    break;
                }
            }
            let word: String = chars[start..i].iter().collect();
            // Quotes and stray marks around a word are not part of it.
            let trimmed = word
                .trim_start_matches(|c: char| !c.is_alphanumeric() && !"$€£#".contains(c))
                .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '%' && c != '+');
            if trimmed.chars().any(char::is_alphanumeric) {
                toks.push(Tok {
                    raw: trimmed.to_string(),
                    lower: trimmed.to_lowercase(),
                    brk,
                    label: chars.get(i) == Some(&':'),
                });
                brk = false;
            } else {
                // A lone "&", "%" or quote mark stands between clauses.
                brk = true;
            }
            continue;
        }
        if c == '-' || c == '\u{2013}' || c == '\u{2014}' {
            // A dash between spaces (or an arrow) separates clauses; "-" inside a word
            // was taken above.
            brk = true;
        } else if !(c == ' ' || c == '\t' || c == '\r') {
            brk = true;
        }
        i += 1;
    }
    toks
}

// ---------------------------------------------------------------------------------------
// Vocabulary

/// C-level and other role acronyms, written in capitals.
const ROLE_ACRONYMS: &[&str] = &[
    "cfo", "ceo", "cio", "cto", "coo", "ciso", "cro", "cmo", "cpo", "chro", "cdo", "cso", "cco",
    "cno", "cmio", "dpo", "vp", "svp", "evp", "avp", "gm",
];
/// Words that name a department or function when they come before a role word.
const DEPARTMENTS: &[&str] = &[
    "it",
    "ops",
    "operations",
    "finance",
    "financial",
    "security",
    "infosec",
    "procurement",
    "purchasing",
    "legal",
    "hr",
    "people",
    "marketing",
    "sales",
    "revops",
    "engineering",
    "product",
    "data",
    "analytics",
    "clinical",
    "nursing",
    "plant",
    "warehouse",
    "dispatch",
    "compliance",
    "risk",
    "audit",
    "facilities",
    "fleet",
    "logistics",
    "support",
    "service",
    "training",
    "payroll",
    "accounting",
    "treasury",
    "tax",
    "quality",
    "manufacturing",
    "production",
    "maintenance",
    "pharmacy",
    "lab",
    "claims",
    "underwriting",
    "admissions",
    "billing",
    "store",
    "regional",
    "district",
    "site",
    "branch",
    "project",
    "program",
    "programme",
    "network",
    "infrastructure",
    "platform",
    "design",
    "research",
    "medical",
    "transformation",
    "digital",
    "innovation",
    "customer",
    "cx",
    "field",
    "frontline",
    "shift",
    "terminal",
    "operating",
    "office",
    "practice",
    "revenue",
    "technology",
    "tech",
    "information",
    "supply",
    "chain",
    "business",
    "budget",
    "system",
    "systems",
    "process",
    "services",
    "school",
    "district's",
    "hospital",
    "clinic",
    "floor",
    "line",
    "depot",
    "executive",
    "exec",
    "steering",
    "buying",
    "evaluation",
    "selection",
    "leadership",
    "board",
];
/// Role words that can stand after a department ("ops VP", "finance lead", "IT team").
const ROLE_HEADS: &[&str] = &[
    "vp",
    "svp",
    "evp",
    "director",
    "directors",
    "manager",
    "managers",
    "mgr",
    "mgrs",
    "lead",
    "leads",
    "head",
    "chief",
    "officer",
    "owner",
    "owners",
    "admin",
    "admins",
    "administrator",
    "administrators",
    "architect",
    "architects",
    "team",
    "teams",
    "committee",
    "council",
    "controller",
    "counsel",
    "supervisor",
    "supervisors",
    "coordinator",
    "analyst",
    "analysts",
    "engineer",
    "engineers",
    "leader",
    "leaders",
    "group",
    "partner",
    "principal",
    "superintendent",
    "sponsor",
    "champion",
    "buyer",
];
/// Role phrases that stand alone, with the way they are written in a question.
const STANDALONE_ROLES: &[(&[&str], &str)] = &[
    (&["economic", "buyer"], "economic buyer"),
    (&["executive", "sponsor"], "executive sponsor"),
    (&["exec", "sponsor"], "exec sponsor"),
    (&["buying", "committee"], "buying committee"),
    (&["buying", "group"], "buying group"),
    (&["steering", "committee"], "steering committee"),
    (&["steerco"], "steering committee"),
    (&["decision", "maker"], "decision maker"),
    (&["decision", "makers"], "decision makers"),
    (&["end", "users"], "end users"),
    (&["end", "user"], "end users"),
    (&["champion"], "champion"),
    (&["champ"], "champion"),
    (&["sponsor"], "sponsor"),
    (&["procurement"], "procurement team"),
    (&["purchasing"], "purchasing team"),
    (&["controller"], "controller"),
    (&["comptroller"], "comptroller"),
    (&["treasurer"], "treasurer"),
    (&["founder"], "founder"),
    (&["cofounder"], "co-founder"),
    (&["co-founder"], "co-founder"),
    (&["owner"], "owner"),
    (&["president"], "president"),
    (&["superintendent"], "superintendent"),
    (&["principal"], "principal"),
    (&["dean"], "dean"),
    (&["provost"], "provost"),
    (&["board"], "board"),
    (&["admins"], "admins"),
    (&["dispatchers"], "dispatchers"),
    (&["nurses"], "nurses"),
    (&["clinicians"], "clinicians"),
    (&["physicians"], "physicians"),
    (&["supervisors"], "supervisors"),
    (&["underwriters"], "underwriters"),
    (&["recruiters"], "recruiters"),
    (&["planners"], "planners"),
    (&["technicians"], "technicians"),
    (&["drivers"], "drivers"),
    (&["teachers"], "teachers"),
    (&["agents"], "agents"),
    (&["paralegals"], "paralegals"),
    (&["partners"], "partners"),
];
/// Words before a role that make it ours, not theirs.
const OURS: &[&str] = &["our", "my", "we", "us", "me", "i", "i'm", "im", "ours"];
/// Words that mark a following role as the customer's.
const THEIRS: &[&str] = &["their", "the", "client's", "customer's", "theirs", "whose"];

/// Steps of the customer's decision, with how they are written in a question. Earlier
/// entries are preferred when a message names several.
const STEPS: &[(&[&str], &str)] = &[
    (&["security", "review"], "security review"),
    (&["security", "questionnaire"], "security questionnaire"),
    (&["security", "assessment"], "security assessment"),
    (&["infosec", "review"], "infosec review"),
    (&["it", "review"], "IT review"),
    (&["architecture", "review"], "architecture review"),
    (&["technical", "review"], "technical review"),
    (&["legal", "review"], "legal review"),
    (&["procurement", "review"], "procurement review"),
    (&["vendor", "review"], "vendor review"),
    (&["vendor", "assessment"], "vendor assessment"),
    (&["risk", "assessment"], "risk assessment"),
    (&["compliance", "review"], "compliance review"),
    (&["budget", "approval"], "budget approval"),
    (&["budget", "review"], "budget review"),
    (&["board", "meeting"], "board meeting"),
    (&["board", "review"], "board review"),
    (&["board", "approval"], "board approval"),
    (&["board", "vote"], "board vote"),
    (&["steerco"], "steering committee meeting"),
    (
        &["steering", "committee", "meeting"],
        "steering committee meeting",
    ),
    (&["exec", "review"], "exec review"),
    (&["executive", "review"], "executive review"),
    (&["proof", "of", "concept"], "proof of concept"),
    (&["poc"], "POC"),
    (&["pilot"], "pilot"),
    (&["trial"], "trial"),
    (&["bake-off"], "bake-off"),
    (&["bakeoff"], "bake-off"),
    (&["rfp"], "RFP"),
    (&["rfi"], "RFI"),
    (&["tender"], "tender"),
    (&["final", "presentation"], "final presentation"),
    (&["shortlist", "presentation"], "shortlist presentation"),
    (&["reference", "call"], "reference call"),
    (&["site", "visit"], "site visit"),
    (&["workshop"], "workshop"),
    (&["business", "case", "review"], "business case review"),
    (&["pricing", "review"], "pricing review"),
    (&["contract", "review"], "contract review"),
    (&["technical", "deep", "dive"], "technical deep dive"),
    (&["deep", "dive"], "deep dive"),
    (&["demo"], "demo"),
];
/// Steps after the decision.
const MILESTONES: &[(&[&str], &str)] = &[
    (&["go-live"], "go-live"),
    (&["go", "live"], "go-live"),
    (&["golive"], "go-live"),
    (&["cutover"], "cutover"),
    (&["cut-over"], "cutover"),
    (&["migration"], "migration"),
    (&["rollout"], "rollout"),
    (&["roll-out"], "rollout"),
    (&["implementation"], "implementation"),
    (&["onboarding"], "onboarding"),
    (&["kickoff"], "kickoff"),
    (&["kick-off"], "kickoff"),
    (&["launch"], "launch"),
    (&["qbr"], "QBR"),
    (&["ebr"], "EBR"),
];

const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: &[(&str, &str)] = &[
    ("january", "January"),
    ("jan", "January"),
    ("february", "February"),
    ("feb", "February"),
    ("march", "March"),
    ("april", "April"),
    ("apr", "April"),
    ("may", "May"),
    ("june", "June"),
    ("july", "July"),
    ("august", "August"),
    ("aug", "August"),
    ("september", "September"),
    ("sept", "September"),
    ("sep", "September"),
    ("october", "October"),
    ("oct", "October"),
    ("november", "November"),
    ("nov", "November"),
    ("december", "December"),
    ("dec", "December"),
];
const COUNT_NOUNS: &[&str] = &[
    "seats",
    "users",
    "licenses",
    "licences",
    "sites",
    "locations",
    "stores",
    "branches",
    "clinics",
    "hospitals",
    "plants",
    "warehouses",
    "terminals",
    "schools",
    "campuses",
    "agents",
    "reps",
    "employees",
    "staff",
    "people",
    "nurses",
    "drivers",
    "technicians",
    "techs",
    "engineers",
    "developers",
    "devs",
    "analysts",
    "managers",
    "members",
    "trucks",
    "vehicles",
    "beds",
    "offices",
    "facilities",
    "depots",
    "restaurants",
    "hotels",
    "properties",
    "desks",
    "departments",
    "regions",
    "countries",
    "students",
    "teachers",
    "doctors",
    "physicians",
    "clinicians",
    "pharmacies",
    "dealers",
    "dealerships",
    "franchisees",
    "stations",
    "practices",
    "labs",
    "lines",
    "factories",
    "mills",
    "ships",
    "vessels",
    "kitchens",
    "dispatchers",
    "planners",
    "underwriters",
    "adjusters",
    "recruiters",
    "lawyers",
    "attorneys",
    "accountants",
    "brokers",
    "advisors",
    "advisers",
    "tellers",
    "caregivers",
    "pharmacists",
    "operators",
];
const METRICS: &[&str] = &[
    "usage",
    "adoption",
    "logins",
    "log-ins",
    "engagement",
    "activity",
    "nps",
    "csat",
    "churn",
    "tickets",
    "volume",
    "utilization",
    "utilisation",
    "sessions",
    "dau",
    "mau",
    "wau",
    "satisfaction",
    "retention",
    "deflection",
    "throughput",
    "errors",
    "downtime",
    "overtime",
    "turnover",
    "attrition",
    "costs",
    "spend",
    "accuracy",
    "backlog",
    "complaints",
    "escalations",
    "incidents",
    "defects",
    "returns",
    "no-shows",
    "claims",
    "readmissions",
    "delays",
    "scrap",
    "yield",
    "uptime",
    "conversion",
    "bookings",
    "occupancy",
];
const RISE: &[&str] = &[
    "up",
    "grew",
    "rose",
    "increased",
    "doubled",
    "tripled",
    "improved",
    "jumped",
    "climbed",
];
const DROP: &[&str] = &[
    "down",
    "dropped",
    "fell",
    "declined",
    "decreased",
    "halved",
    "shrank",
    "slipped",
    "plummeted",
    "tanked",
];
const RISE_NOUN: &[&str] = &["increase", "rise", "jump", "improvement", "growth", "lift"];
const DROP_NOUN: &[&str] = &[
    "drop",
    "decline",
    "decrease",
    "reduction",
    "fall",
    "dip",
    "cut",
];
/// Phrases after which the next words are what the customer worries about.
const CONCERN_CUES: &[&[&str]] = &[
    &["worried", "about"],
    &["worry", "about"],
    &["worries", "about"],
    &["worrying", "about"],
    &["concerned", "about"],
    &["concerned", "with"],
    &["concern", "about"],
    &["concerns", "about"],
    &["concerns", "around"],
    &["concern", "around"],
    &["concerns", "over"],
    &["nervous", "about"],
    &["anxious", "about"],
    &["uneasy", "about"],
    &["stressed", "about"],
    &["wary", "of"],
    &["wary", "about"],
    &["afraid", "of"],
    &["scared", "of"],
    &["fear", "of"],
    &["fears", "about"],
    &["fears", "around"],
    &["hesitant", "about"],
    &["skeptical", "of"],
    &["skeptical", "about"],
    &["sceptical", "of"],
    &["sceptical", "about"],
    &["cautious", "about"],
    &["burned", "by"],
    &["burnt", "by"],
    &["pushback", "on"],
    &["pushed", "back", "on"],
    &["push", "back", "on"],
    &["frustrated", "with"],
    &["frustrated", "by"],
    &["frustrated", "about"],
    &["unhappy", "with"],
    &["unhappy", "about"],
    &["struggling", "with"],
    &["struggle", "with"],
    &["balked", "at"],
    &["balking", "at"],
    &["hung", "up", "on"],
    &["pain", "around"],
    &["pain", "with"],
    &["their", "worry", "is"],
    &["their", "concern", "is"],
    &["their", "fear", "is"],
    &["main", "worry", "is"],
    &["main", "concern", "is"],
    &["big", "worry", "is"],
    &["biggest", "worry", "is"],
    &["biggest", "concern", "is"],
    &["objection", "is"],
    &["objections", "around"],
    &["objection", "around"],
    &["objection", "to"],
];
/// Words that end the object of a worry.
const CONCERN_STOP: &[&str] = &[
    "and", "but", "so", "because", "bc", "since", "which", "that", "who", "if", "when", "while",
    "as", "though", "although", "whereas", "after", "before", "until", "or", "then", "plus", "we",
    "i", "they", "she", "he", "it's", "they're", "we're", "i'm", "she's", "he's", "unless", "w",
    "tbh", "imo", "lol", "etc", "per",
];
/// Words that may not end a phrase taken from the message.
const DANGLING: &[&str] = &[
    "the", "a", "an", "of", "to", "for", "in", "on", "at", "with", "by", "from", "their", "our",
    "my", "your", "its", "this", "that", "about", "around", "into", "over", "is", "are", "was",
    "were", "be", "being", "how", "what", "any", "some", "all", "more", "less", "very", "too",
    "much", "just", "also", "really", "even", "again", "still", "re", "vs",
];
/// Objects that say nothing on their own ("worried about it").
const EMPTY_OBJECTS: &[&str] = &[
    "it",
    "this",
    "that",
    "us",
    "them",
    "him",
    "her",
    "me",
    "you",
    "things",
    "stuff",
    "everything",
    "anything",
    "something",
    "all",
    "that's",
];
/// Field labels of pasted CRM cards, never a name.
pub(crate) const CRM_LABELS: &[&str] = &[
    "opp",
    "opportunity",
    "account",
    "stage",
    "amount",
    "owner",
    "deal",
    "close",
    "next",
    "status",
    "company",
    "name",
    "forecast",
    "notes",
    "note",
    "arr",
    "acv",
    "tcv",
    "type",
    "probability",
    "region",
    "segment",
    "source",
    "contact",
];
/// Cues before a competitor's name.
const COMPETITOR_CUES: &[&[&str]] = &[
    &["vs"],
    &["vs."],
    &["versus"],
    &["up", "against"],
    &["competing", "against"],
    &["competing", "with"],
    &["compete", "with"],
    &["lost", "to"],
    &["lost", "out", "to"],
    &["went", "with"],
    &["going", "with"],
    &["chose"],
    &["picked"],
    &["selected"],
    &["signed", "with"],
    &["switching", "to"],
    &["switched", "to"],
    &["switch", "to"],
    &["moving", "to"],
    &["move", "to"],
    &["competitor"],
    &["competitors"],
    &["incumbent"],
    &["evaluating"],
    &["also", "looking", "at"],
    &["also", "talking", "to"],
    &["also", "evaluating"],
    &["bake-off", "with"],
    &["bakeoff", "with"],
    &["compared", "to"],
    &["compared", "with"],
    &["comparing", "us", "to"],
    &["comparing", "us", "with"],
    &["comparing", "us", "against"],
    &["benchmarking", "against"],
    &["renewing", "with"],
    &["stay", "with"],
    &["staying", "with"],
    &["stick", "with"],
    &["sticking", "with"],
];
/// Words after a capitalised name that make it a competitor ("Gong came in cheaper").
const COMPETITOR_AFTER: &[&[&str]] = &[
    &["is", "the", "incumbent"],
    &["came", "in", "cheaper"],
    &["came", "in", "lower"],
    &["is", "cheaper"],
    &["undercut"],
    &["undercutting"],
    &["won", "it"],
    &["won", "the"],
    &["over", "us"],
];

// ---------------------------------------------------------------------------------------
// Extraction

/// Reads every slot from `text`. `account` is the analysis' account (never a competitor or
/// role); `common` is the engine's list of capitalised words that are never names.
#[cfg(test)]
pub(crate) fn extract(text: &str, account: Option<&str>, common: &HashSet<String>) -> Slots {
    extract_from(&words(&clean(text)), account, common)
}

/// `extract` over the message's words already read (`words(&clean(text))`): question
/// selection reads them once for the slots and the situation.
pub(crate) fn extract_from(toks: &[Tok], account: Option<&str>, common: &HashSet<String>) -> Slots {
    let account_words: Vec<String> = account
        .map(|a| a.split_whitespace().map(str::to_lowercase).collect())
        .unwrap_or_default();
    Slots {
        role: role(toks),
        step: phrase_from(toks, STEPS),
        milestone: phrase_from(toks, MILESTONES),
        competitor: competitor(toks, &account_words, common),
        date: date(toks),
        money: money(toks),
        discount: discount(toks),
        count: count(toks),
        trend: trend(toks),
        concern: concern(toks),
        worry: worry(toks),
    }
}

/// `w` without its trailing "'s" (all of them, as `trim_end_matches("'s")`), without building
/// a substring searcher on every call.
fn no_possessive(w: &str) -> &str {
    let mut w = w;
    while let Some(b) = w.strip_suffix("'s") {
        w = b;
    }
    w
}

fn is_in(list: &[&str], w: &str) -> bool {
    list.iter().any(|x| same(x, w))
}

/// `a == b`, deciding most unequal words on their length and first byte before comparing
/// the rest (the vocabulary lists are scanned for every word).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

/// True when `toks[i..]` starts with `phrase` inside one clause.
fn starts(toks: &[Tok], i: usize, phrase: &[&str]) -> bool {
    phrase.len() <= toks.len().saturating_sub(i)
        && phrase
            .iter()
            .enumerate()
            .all(|(k, w)| same(&toks[i + k].lower, w) && (k == 0 || !toks[i + k].brk))
}

/// The word before `i` in the same clause.
fn prev(toks: &[Tok], i: usize) -> Option<&str> {
    (i > 0 && !toks[i].brk).then(|| toks[i - 1].lower.as_str())
}

/// How a role word is written: acronyms in capitals, other words in lower case.
fn role_word(t: &Tok) -> String {
    let l = no_possessive(&t.lower);
    if is_in(ROLE_ACRONYMS, l)
        || matches!(l, "it" | "hr" | "cx" | "l&d" | "ehs" | "qa" | "pmo")
        || (t.raw.len() <= 5
            && t.raw.len() >= 2
            && t.raw.chars().all(|c| c.is_ascii_uppercase() || c == '&'))
    {
        l.to_uppercase()
    } else {
        l.to_string()
    }
}

/// The role found at `i`, with the number of words it spans.
fn role_at(toks: &[Tok], i: usize) -> Option<(String, usize)> {
    let w = |k: usize| toks.get(i + k).filter(|t| k == 0 || !t.brk);
    let lw = |k: usize| w(k).map(|t| no_possessive(&t.lower));
    let l0 = lw(0)?;
    // chief X officer, chief of staff
    if l0 == "chief"
        && let (Some(x), Some(o)) = (lw(1), lw(2))
        && o == "officer"
        && x.chars().all(char::is_alphabetic)
    {
        return Some((format!("chief {x} officer"), 3));
    }
    // head/VP/director/manager of X (Y)
    if matches!(
        l0,
        "head" | "vp" | "svp" | "evp" | "director" | "manager" | "chief" | "dir"
    ) && lw(1) == Some("of")
    {
        let mut k = 2;
        if lw(k) == Some("the") {
            k += 1;
        }
        let mut dept = Vec::new();
        while dept.len() < 2 {
            match w(k) {
                Some(t) if is_in(DEPARTMENTS, no_possessive(&t.lower)) => {
                    dept.push(role_word(t));
                    k += 1;
                }
                _ => break,
            }
        }
        if !dept.is_empty() {
            let head = role_word(&toks[i]);
            let head = if head == "dir" {
                "director".into()
            } else {
                head
            };
            return Some((format!("{head} of {}", dept.join(" ")), k));
        }
        if l0 == "head" {
            return None;
        }
    }
    // DEPT HEAD ("ops VP", "finance lead", "IT team", "plant managers")
    if is_in(DEPARTMENTS, l0)
        && let Some(h) = lw(1)
        && is_in(ROLE_HEADS, h)
    {
        let h = if h == "mgr" {
            "manager".to_string()
        } else if h == "mgrs" {
            "managers".to_string()
        } else {
            role_word(&toks[i + 1])
        };
        // "IT team" needs its capitals to be the department, not the pronoun "it".
        if l0 == "it" && toks[i].raw != "IT" {
            return None;
        }
        return Some((format!("{} {h}", role_word(&toks[i])), 2));
    }
    if is_in(ROLE_ACRONYMS, l0) {
        // "the VP" alone is kept, "VP" followed by a department was taken above.
        return Some((role_word(&toks[i]), 1));
    }
    for (phrase, shown) in STANDALONE_ROLES {
        let n = phrase.len();
        if (0..n).all(|k| lw(k) == Some(phrase[k])) {
            // Lone generic words need "their/the" in front to be a role ("the board").
            let generic = matches!(
                *shown,
                "owner" | "board" | "principal" | "partners" | "president" | "agents" | "sponsor"
            );
            if generic && !prev(toks, i).is_some_and(|p| is_in(THEIRS, p) || p.ends_with("'s")) {
                return None;
            }
            return Some((shown.to_string(), n));
        }
    }
    None
}

fn role(toks: &[Tok]) -> Option<Filled> {
    let mut i = 0;
    while i < toks.len() {
        if let Some((text, n)) = role_at(toks, i) {
            let before: Vec<&str> = (1..=2)
                .map_while(|k| (i >= k && !toks[i - k + 1].brk).then(|| toks[i - k].lower.as_str()))
                .collect();
            let ours = before.iter().any(|p| is_in(OURS, p));
            // CRM labels ("Owner: …") and roles of ours are skipped.
            let label = toks[i + n - 1].label;
            if !ours && !label {
                let words = toks[i..i + n].iter().map(|t| t.raw.clone()).collect();
                return Some(Filled { text, words });
            }
            i += n;
        } else {
            i += 1;
        }
    }
    None
}

fn phrase_from(toks: &[Tok], list: &[(&[&str], &str)]) -> Option<Filled> {
    let mut best: Option<(usize, usize, usize)> = None; // (rank, position, len)
    for i in 0..toks.len() {
        for (rank, (phrase, _)) in list.iter().enumerate() {
            if starts(toks, i, phrase) && best.is_none_or(|b| rank < b.0) {
                // "our demo" is ours; "their pilot", "the pilot" are a step of theirs.
                if prev(toks, i).is_some_and(|p| p == "our" || p == "my") {
                    continue;
                }
                best = Some((rank, i, phrase.len()));
            }
        }
    }
    best.map(|(rank, i, n)| Filled {
        text: list[rank].1.to_string(),
        words: toks[i..i + n].iter().map(|t| t.raw.clone()).collect(),
    })
}

/// Kinds of software, written in capitals, that are not anyone's name.
const CATEGORIES: &[&str] = &[
    "crm", "erp", "lms", "hris", "ehr", "emr", "tms", "wms", "ats", "cms", "pos", "mdm", "siem",
    "itsm", "cpq", "plm", "mes", "scada", "bi", "ai", "api", "sso", "saas", "ms", "csv", "pdf",
    "sla", "sow", "msa", "dpa", "nda", "roi", "tco", "kpi", "okr", "rfp", "poc", "qbr", "eoq",
    "eoy", "arr", "acv", "ctms", "lis", "pms", "cad", "gis", "iot",
];

fn capitalised_name(t: &Tok, account: &[String], common: &HashSet<String>) -> bool {
    let first_upper = t.raw.chars().next().is_some_and(char::is_uppercase);
    let bare = no_possessive(&t.lower);
    first_upper
        && !t.label
        && !CATEGORIES.contains(&bare)
        && !bare
            .strip_suffix('s')
            .is_some_and(|b| CATEGORIES.contains(&b))
        && t.raw.chars().any(char::is_alphabetic)
        && !common.contains(bare)
        && !bare.strip_suffix('s').is_some_and(|s| common.contains(s))
        && !account.iter().any(|a| a == bare)
        && !is_in(ROLE_ACRONYMS, bare)
        && !is_in(CRM_LABELS, bare)
        && !WEEKDAYS.contains(&bare)
        && !MONTHS.iter().any(|(m, _)| *m == bare)
        && !is_quarter(bare)
}

fn is_quarter(l: &str) -> bool {
    let mut cs = l.chars();
    cs.next() == Some('q') && matches!(cs.next(), Some('1'..='4')) && cs.next().is_none()
}

fn competitor(toks: &[Tok], account: &[String], common: &HashSet<String>) -> Option<Filled> {
    let name_at = |j: usize| -> Option<Filled> {
        let first = toks.get(j)?;
        if !capitalised_name(first, account, common) {
            return None;
        }
        let mut words = vec![no_possessive(&first.raw).to_string()];
        if let Some(next) = toks.get(j + 1)
            && !next.brk
            && capitalised_name(next, account, common)
            && !first.raw.ends_with("'s")
        {
            words.push(no_possessive(&next.raw).to_string());
        }
        Some(Filled {
            text: words.join(" "),
            words,
        })
    };
    // After a clear cue ("lost to", "vs") a tool's name is a competitor too ("Salesforce"),
    // though the account detector never takes it for the customer.
    let strong_name = |j: usize| -> Option<Filled> {
        let t = toks.get(j)?;
        let bare = no_possessive(&t.lower);
        let ok = t.raw.chars().next().is_some_and(char::is_uppercase)
            && !t.label
            && bare
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
            && bare.len() >= 3
            && !CATEGORIES.contains(&bare)
            && !is_in(ROLE_ACRONYMS, bare)
            && !is_in(CRM_LABELS, bare)
            && !account.iter().any(|a| a == bare)
            && !WEEKDAYS.contains(&bare)
            && !MONTHS.iter().any(|(m, _)| *m == bare)
            && !is_quarter(bare)
            && !matches!(
                bare,
                "the"
                    | "us"
                    | "them"
                    | "it"
                    | "their"
                    | "our"
                    | "this"
                    | "that"
                    | "another"
                    | "someone"
                    | "other"
                    | "one"
                    | "price"
                    | "budget"
                    | "timing"
                    | "in-house"
                    | "internal"
                    | "nothing"
                    | "none"
            );
        ok.then(|| Filled {
            text: no_possessive(&t.raw).to_string(),
            words: vec![no_possessive(&t.raw).to_string()],
        })
    };
    for i in 0..toks.len() {
        for cue in COMPETITOR_CUES {
            if starts(toks, i, cue) {
                let mut j = i + cue.len();
                if toks.get(j).is_some_and(|t| t.lower == "the" && !t.brk) {
                    j += 1;
                }
                if toks.get(j).is_some_and(|t| !t.brk) {
                    let strong = matches!(
                        cue[0],
                        "vs" | "vs."
                            | "versus"
                            | "lost"
                            | "went"
                            | "chose"
                            | "switching"
                            | "switched"
                            | "competitor"
                            | "competing"
                            | "incumbent"
                    );
                    if let Some(f) = name_at(j).or_else(|| strong.then(|| strong_name(j)).flatten())
                    {
                        return Some(f);
                    }
                }
                // "the incumbent" / "their incumbent": no name, still their alternative.
                if cue == &["incumbent"]
                    && prev(toks, i).is_some_and(|p| p == "the" || p == "their")
                {
                    return Some(Filled {
                        text: format!("{} incumbent", prev(toks, i).unwrap_or("the")),
                        words: vec!["incumbent".into()],
                    });
                }
            }
        }
        // "lost Perrault Freight to CrowdStrike"
        if toks[i].lower == "to"
            && !toks[i].brk
            && (i.saturating_sub(4)..i).any(|k| toks[k].lower == "lost")
            && let Some(f) = name_at(i + 1).or_else(|| strong_name(i + 1))
        {
            return Some(f);
        }
        for after in COMPETITOR_AFTER {
            if i + 1 < toks.len()
                && starts(toks, i + 1, after)
                && let Some(f) = name_at(i)
            {
                return Some(f);
            }
        }
    }
    None
}

fn ordinal_day(l: &str) -> bool {
    let digits: String = l.chars().take_while(char::is_ascii_digit).collect();
    let rest = &l[digits.len()..];
    !digits.is_empty()
        && digits.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
        && matches!(rest, "" | "st" | "nd" | "rd" | "th")
}

/// Words before a date that make it a deadline someone holds to ("by Friday", "before
/// quarter end"): a meeting "next week" is not worth a question about whose date it is.
const DEADLINE: &[&str] = &[
    "by", "before", "until", "till", "til", "due", "for", "in", "into", "deadline", "end", "mid",
    "early", "late", "from", "after", "of",
];

fn date(toks: &[Tok]) -> Option<Filled> {
    for i in 0..toks.len() {
        let l = toks[i].lower.as_str();
        let p = prev(toks, i);
        // The word before the date phrase (skipping "the", "next", "this").
        let mut k = i;
        while k > 0
            && !toks[k].brk
            && matches!(
                toks[k - 1].lower.as_str(),
                "the" | "next" | "this" | "of" | "end" | "quarter" | "year" | "month"
            )
            && k + 3 > i
        {
            k -= 1;
        }
        let deadline = (k > 0 && !toks[k].brk && is_in(DEADLINE, &toks[k - 1].lower))
            || is_in(DEADLINE, &toks[k].lower)
            || matches!(
                l,
                "eoq" | "eoy" | "eom" | "quarter-end" | "year-end" | "month-end"
            );
        if !deadline {
            continue;
        }
        let next = toks.get(i + 1).filter(|t| !t.brk);
        if let Some(day) = WEEKDAYS.iter().find(|d| **d == l) {
            let mut cap: String = day[..1].to_uppercase();
            cap.push_str(&day[1..]);
            let text = match p {
                Some(m @ ("next" | "this")) => format!("{m} {cap}"),
                _ => cap,
            };
            return Some(Filled {
                text,
                words: vec![toks[i].raw.clone()],
            });
        }
        if let Some((_, month)) = MONTHS.iter().find(|(m, _)| *m == l) {
            // Short or ambiguous month words need a day or a date preposition.
            let with_day = next.filter(|n| ordinal_day(&n.lower));
            let prep = p.is_some_and(|p| {
                matches!(
                    p,
                    "in" | "by" | "before" | "until" | "end" | "mid" | "early" | "late"
                )
            });
            let strong = l.len() > 4 && l != "march";
            if with_day.is_none()
                && !prep
                && !(strong && toks[i].raw.starts_with(char::is_uppercase))
            {
                continue;
            }
            let text = match with_day {
                Some(d) => format!("{month} {}", d.raw),
                None if matches!(p, Some("end" | "mid" | "early" | "late")) => {
                    let p = p.unwrap_or("end");
                    if p == "end" {
                        format!("the end of {month}")
                    } else {
                        format!("{p} {month}")
                    }
                }
                None => month.to_string(),
            };
            let mut words = vec![toks[i].raw.clone()];
            words.extend(with_day.map(|d| d.raw.clone()));
            return Some(Filled { text, words });
        }
        if is_quarter(l)
            && matches!(
                p,
                Some("in" | "by" | "before" | "end" | "for" | "until" | "into" | "to" | "of")
            )
        {
            return Some(Filled {
                text: l.to_uppercase(),
                words: vec![toks[i].raw.clone()],
            });
        }
        let text = match l {
            "eoq" => Some("quarter end"),
            "eoy" => Some("year end"),
            "eom" => Some("month end"),
            "quarter-end" => Some("quarter end"),
            "year-end" => Some("year end"),
            "month-end" => Some("month end"),
            "quarter" | "year" | "month"
                if next.is_some_and(|n| n.lower == "end")
                    && !p.is_some_and(|p| matches!(p, "next" | "last" | "this" | "per" | "a")) =>
            {
                Some(match l {
                    "quarter" => "quarter end",
                    "year" => "year end",
                    _ => "month end",
                })
            }
            "end"
                if starts(toks, i, &["end", "of", "quarter"])
                    || starts(toks, i, &["end", "of", "the", "quarter"]) =>
            {
                Some("the end of the quarter")
            }
            "end"
                if starts(toks, i, &["end", "of", "year"])
                    || starts(toks, i, &["end", "of", "the", "year"]) =>
            {
                Some("the end of the year")
            }
            "end"
                if starts(toks, i, &["end", "of", "month"])
                    || starts(toks, i, &["end", "of", "the", "month"]) =>
            {
                Some("the end of the month")
            }
            _ => None,
        };
        if let Some(text) = text {
            return Some(Filled {
                text: text.to_string(),
                words: vec![toks[i].raw.clone()],
            });
        }
        if p == Some("the") && ordinal_day(l) && l.chars().any(char::is_alphabetic) {
            return Some(Filled {
                text: format!("the {l}"),
                words: vec![toks[i].raw.clone()],
            });
        }
        if matches!(l, "week" | "month" | "quarter") && matches!(p, Some("next")) {
            return Some(Filled {
                text: format!("next {l}"),
                words: vec![toks[i - 1].raw.clone(), toks[i].raw.clone()],
            });
        }
    }
    None
}

/// "$40k", "€1.2M", "40k", "120,000 USD".
fn is_money(t: &Tok) -> bool {
    let l = t.lower.as_str();
    let body = l.trim_start_matches(['$', '€', '£']);
    let currency = body.len() < l.len();
    let digits = body.trim_end_matches(['k', 'm']);
    let suffix = digits.len() < body.len();
    !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        && (currency || suffix)
        && body.len() - digits.len() <= 1
}

fn money(toks: &[Tok]) -> Option<Filled> {
    // "$0" (an empty CRM field) says nothing.
    let zero = |t: &&Tok| {
        t.lower
            .chars()
            .filter(char::is_ascii_digit)
            .all(|c| c == '0')
    };
    toks.iter()
        .filter(|t| !zero(t))
        .find(|t| is_money(t))
        .map(|t| {
            let mut s = t.raw.clone();
            // "40K" reads as "40k"; "$1.2M" keeps its capital M.
            if s.ends_with('K') {
                s.pop();
                s.push('k');
            }
            Filled {
                words: vec![t.raw.clone()],
                text: s,
            }
        })
}

fn percent(t: &Tok) -> Option<u32> {
    let l = t.lower.strip_suffix('%')?;
    let whole = l.split('.').next()?;
    whole.parse::<u32>().ok().filter(|n| *n <= 1000)
}

fn article_for(n: u32) -> &'static str {
    let s = n.to_string();
    if s.starts_with('8') || n == 11 || n == 18 {
        "an"
    } else {
        "a"
    }
}

fn discount(toks: &[Tok]) -> Option<Filled> {
    for i in 0..toks.len() {
        let Some(n) = percent(&toks[i]) else { continue };
        let next = toks.get(i + 1).filter(|t| !t.brk).map(|t| t.lower.as_str());
        let prev2 = (i >= 2 && !toks[i].brk && !toks[i - 1].brk)
            .then(|| (toks[i - 2].lower.as_str(), toks[i - 1].lower.as_str()));
        let discounty = matches!(next, Some("off" | "discount" | "discounts"))
            || matches!(prev2, Some((_, "discount")) | Some(("discount", "of")));
        if discounty {
            return Some(Filled {
                text: format!("{} {} discount", article_for(n), toks[i].raw),
                words: vec![toks[i].raw.clone()],
            });
        }
    }
    None
}

fn count(toks: &[Tok]) -> Option<Filled> {
    for i in 0..toks.len().saturating_sub(1) {
        let t = &toks[i];
        let l = t.lower.replace(',', "");
        let Ok(n) = l.parse::<u64>() else { continue };
        let next = &toks[i + 1];
        if n < 2 || next.brk || !is_in(COUNT_NOUNS, &next.lower) {
            continue;
        }
        return Some(Filled {
            text: format!("{} {}", t.raw, next.lower),
            words: vec![t.raw.clone(), next.raw.clone()],
        });
    }
    None
}

fn trend(toks: &[Tok]) -> Option<Filled> {
    let metric_at = |i: usize| -> bool {
        toks.get(i)
            .is_some_and(|t| is_in(METRICS, no_possessive(&t.lower)))
    };
    let make = |pct: Option<&Tok>, rise: bool, metric: &Tok| -> Filled {
        let dir = if rise { "rise" } else { "drop" };
        let m = no_possessive(&metric.lower).to_uppercase();
        let m = if matches!(m.as_str(), "NPS" | "CSAT" | "DAU" | "MAU" | "WAU") {
            m
        } else {
            no_possessive(&metric.lower).to_string()
        };
        let mut words = vec![metric.raw.clone()];
        let text = match pct {
            Some(p) => {
                words.push(p.raw.clone());
                format!("the {} {dir} in {m}", p.raw)
            }
            None => format!("the {dir} in {m}"),
        };
        Filled { text, words }
    };
    for i in 0..toks.len() {
        if metric_at(i) {
            // METRIC [is|was|has|have] DIRECTION [by] [PCT]
            let mut j = i + 1;
            if toks.get(j).is_some_and(|t| {
                !t.brk
                    && matches!(
                        t.lower.as_str(),
                        "is" | "was" | "are" | "were" | "has" | "have" | "had"
                    )
            }) {
                j += 1;
            }
            let Some(d) = toks.get(j).filter(|t| !t.brk) else {
                continue;
            };
            let rise = is_in(RISE, &d.lower);
            if !rise && !is_in(DROP, &d.lower) {
                continue;
            }
            let mut k = j + 1;
            if toks.get(k).is_some_and(|t| !t.brk && t.lower == "by") {
                k += 1;
            }
            let pct = toks.get(k).filter(|t| !t.brk && percent(t).is_some());
            return Some(make(pct, rise, &toks[i]));
        }
        if percent(&toks[i]).is_some() {
            // PCT DIRECTION-NOUN in METRIC / PCT fewer METRIC
            let Some(d) = toks.get(i + 1).filter(|t| !t.brk) else {
                continue;
            };
            let (rise, metric) = if (is_in(RISE_NOUN, &d.lower) || is_in(DROP_NOUN, &d.lower))
                && toks.get(i + 2).is_some_and(|t| !t.brk && t.lower == "in")
                && metric_at(i + 3)
            {
                (is_in(RISE_NOUN, &d.lower), i + 3)
            } else if matches!(
                d.lower.as_str(),
                "fewer" | "less" | "lower" | "more" | "higher"
            ) && metric_at(i + 2)
            {
                (matches!(d.lower.as_str(), "more" | "higher"), i + 2)
            } else {
                continue;
            };
            if toks[metric].brk {
                continue;
            }
            return Some(make(Some(&toks[i]), rise, &toks[metric]));
        }
    }
    None
}

fn concern(toks: &[Tok]) -> Option<Filled> {
    for i in 0..toks.len() {
        for cue in CONCERN_CUES {
            if !starts(toks, i, cue) {
                continue;
            }
            // Whose worry: ours ("I'm worried about the quarter") is not theirs; a negated
            // one ("not worried about") is no worry.
            let clause_start = (0..=i).rev().find(|&k| toks[k].brk).unwrap_or(0);
            let before = &toks[clause_start.max(i.saturating_sub(4))..i];
            if before.iter().any(|t| {
                is_in(OURS, &t.lower)
                    || matches!(
                        t.lower.as_str(),
                        "we're"
                            | "i've"
                            | "we've"
                            | "not"
                            | "no"
                            | "never"
                            | "isn't"
                            | "aren't"
                            | "wasn't"
                    )
                    || t.lower.ends_with("n't")
            }) {
                continue;
            }
            let start = i + cue.len();
            let mut end = start;
            while end < toks.len()
                && end - start < 6
                && (end == start || !toks[end].brk)
                && !is_in(CONCERN_STOP, &toks[end].lower)
                && !is_money(&toks[end])
            {
                if end == start && toks[end].brk {
                    break;
                }
                end += 1;
            }
            // Never end on "the", "of", "their"…
            while end > start && is_in(DANGLING, &toks[end - 1].lower) {
                end -= 1;
            }
            let object = &toks[start..end];
            if object.is_empty()
                || is_in(EMPTY_OBJECTS, &object[0].lower)
                || (object.len() == 1 && is_in(EMPTY_OBJECTS, &object[0].lower))
                || object
                    .iter()
                    .all(|t| is_in(DANGLING, &t.lower) || is_in(EMPTY_OBJECTS, &t.lower))
            {
                continue;
            }
            let words: Vec<String> = object.iter().map(|t| t.raw.clone()).collect();
            let text = object
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    // Keep names and acronyms; a capital that only starts a sentence goes.
                    let capital_only_first = t.raw.chars().next().is_some_and(char::is_uppercase)
                        && t.raw.chars().skip(1).all(|c| !c.is_uppercase());
                    if k == 0 && capital_only_first && t.lower.chars().all(char::is_alphabetic) {
                        t.lower.clone()
                    } else {
                        t.raw.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            return Some(Filled { text, words });
        }
    }
    None
}

/// Verbs that make the words after "worried" a clause ("the crews won't type on site").
const CLAUSE_VERBS: &[&str] = &[
    "won't", "can't", "will", "would", "might", "may", "could", "isn't", "aren't", "don't",
    "doesn't", "didn't", "wouldn't", "couldn't", "is", "are", "was", "were", "need", "needs",
    "have", "has", "lose", "loses", "break", "breaks", "get", "gets", "see", "sees", "treat",
];

/// "worried (that) the crews won't type on site" → "that the crews won't type on site".
fn worry(toks: &[Tok]) -> Option<Filled> {
    for i in 0..toks.len() {
        if !matches!(
            toks[i].lower.as_str(),
            "worried"
                | "worries"
                | "worry"
                | "concerned"
                | "nervous"
                | "afraid"
                | "scared"
                | "fears"
                | "fear"
        ) {
            continue;
        }
        let clause_start = (0..=i).rev().find(|&k| toks[k].brk).unwrap_or(0);
        if toks[clause_start.max(i.saturating_sub(4))..i]
            .iter()
            .any(|t| {
                is_in(OURS, &t.lower)
                    || matches!(t.lower.as_str(), "we're" | "not" | "no" | "never")
                    || t.lower.ends_with("n't")
            })
        {
            continue;
        }
        let mut start = i + 1;
        if toks.get(start).is_some_and(|t| t.lower == "that" && !t.brk) {
            start += 1;
        }
        if toks.get(start).is_none_or(|t| {
            t.brk
                || matches!(
                    t.lower.as_str(),
                    "about" | "of" | "with" | "by" | "one" | "ones" | "too" | "enough"
                )
        }) {
            continue;
        }
        let mut end = start;
        while end < toks.len() && end - start < 9 && (end == start || !toks[end].brk) {
            if matches!(
                toks[end].lower.as_str(),
                "and" | "but" | "so" | "because" | "bc" | "which" | "since" | "tho" | "though"
            ) {
                break;
            }
            end += 1;
        }
        while end > start && is_in(DANGLING, &toks[end - 1].lower) {
            end -= 1;
        }
        let clause = &toks[start..end];
        // A clause needs a subject and a verb; first-person clauses are ours.
        if clause.len() < 3
            || !clause[1..].iter().any(|t| is_in(CLAUSE_VERBS, &t.lower))
            || is_in(OURS, &clause[0].lower)
            || clause[0].lower == "you"
        {
            continue;
        }
        let words: Vec<String> = clause.iter().map(|t| t.raw.clone()).collect();
        let mut text = String::from("that ");
        for (k, t) in clause.iter().enumerate() {
            if k > 0 {
                text.push(' ');
            }
            let capital_only_first = t.raw.chars().next().is_some_and(char::is_uppercase)
                && t.raw.chars().skip(1).all(|c| !c.is_uppercase());
            if k == 0
                && capital_only_first
                && matches!(
                    t.lower.as_str(),
                    "the" | "their" | "they" | "they'll" | "it"
                )
            {
                text.push_str(&t.lower);
            } else {
                text.push_str(&t.raw);
            }
        }
        return Some(Filled { text, words });
    }
    None
}

/// The words of a message (or a question) as cusp reads them: markup removed, lower case.
/// `cusp eval --questions` uses it to check that a question's words are the message's.
pub fn message_words(text: &str) -> Vec<String> {
    words(&clean(text)).into_iter().map(|t| t.lower).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn slots(text: &str) -> Slots {
        let common: HashSet<String> = super::super::account::builtin_common()
            .map(str::to_string)
            .collect();
        extract(text, None, &common)
    }

    fn text_of(f: Option<Filled>) -> Option<String> {
        f.map(|f| f.text)
    }

    #[test]
    fn roles_are_theirs_and_read_naturally() {
        let cases = [
            ("Met their Head of Security today", Some("head of security")),
            ("their ops VP wants a rollout plan", Some("ops VP")),
            ("Umbrella's CISO is the real blocker", Some("CISO")),
            ("finance lead asked for a TCO model", Some("finance lead")),
            ("looped in their IT team", Some("IT team")),
            ("our CTO joined the call", None),
            ("my manager wants this in Q4", None),
            ("champ at Hooli is pushing it", Some("champion")),
            ("it team is fine", None),
            (
                "their VP of Operations signed off",
                Some("VP of operations"),
            ),
            ("Opp: Globex / Owner: me", None),
        ];
        for (t, want) in cases {
            assert_eq!(text_of(slots(t).role).as_deref(), want, "{t}");
        }
    }

    #[test]
    fn steps_dates_numbers_competitors_concerns() {
        let s = slots(
            "Globex: security review next week, pilot after, goes to their board on the 14th",
        );
        assert_eq!(text_of(s.step).as_deref(), Some("security review"));
        assert_eq!(s.date, None, "a meeting date is not a deadline");
        let s = slots("their board has to approve it by the 14th");
        assert_eq!(text_of(s.date).as_deref(), Some("the 14th"));
        let s = slots("need them to sign by Friday, I'm $40k short");
        assert_eq!(text_of(s.date).as_deref(), Some("Friday"));
        assert_eq!(text_of(s.money).as_deref(), Some("$40k"));
        let s = slots("offered 15% off if they sign before quarter end");
        assert_eq!(text_of(s.discount).as_deref(), Some("a 15% discount"));
        assert_eq!(text_of(s.date).as_deref(), Some("quarter end"));
        let s = slots("Hooli renewal: champion left, usage down 30% :grimacing:");
        assert_eq!(text_of(s.trend).as_deref(), Some("the 30% drop in usage"));
        let s = slots("lost to Salesforce on price");
        assert_eq!(text_of(s.competitor).as_deref(), Some("Salesforce"));
        let s = slots("head to head vs Gong, they like our UI");
        assert_eq!(text_of(s.competitor).as_deref(), Some("Gong"));
        let s =
            slots("their worry is downtime during migration, so we're mapping a phased rollout");
        assert_eq!(
            text_of(s.concern).as_deref(),
            Some("downtime during migration")
        );
        assert_eq!(text_of(s.milestone).as_deref(), Some("migration"));
        let s = slots("I'm worried about the quarter");
        assert_eq!(s.concern, None);
        let s =
            slots("their ops director worried the crews won't type on site. showed voice notes");
        assert_eq!(
            text_of(s.worry).as_deref(),
            Some("that the crews won't type on site")
        );
        assert_eq!(slots("I'm worried we won't hit the number").worry, None);
        let s = slots("rolling out to 120 seats across 12 sites");
        assert_eq!(text_of(s.count).as_deref(), Some("120 seats"));
        let s = slots("offered an 8% discount");
        assert_eq!(text_of(s.discount).as_deref(), Some("an 8% discount"));
    }

    #[test]
    fn markup_never_reaches_a_slot() {
        let s = slots(
            "<@U123> *their* :fire: <https://x.y|CFO> worried about `code` :smile: the cutover plan",
        );
        assert_eq!(text_of(s.role).as_deref(), Some("CFO"));
        assert_eq!(text_of(s.concern), None, "an emoji ends the clause");
        let s = slots("they're worried about _the cutover plan_ &amp; training");
        assert_eq!(text_of(s.concern).as_deref(), Some("the cutover plan"));
    }
}
