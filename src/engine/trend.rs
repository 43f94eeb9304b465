//! Which way a number moved, and whether that is good for the customer.
//!
//! The lexicon writes every number `0`, so "seats 480 → 310" and "pickups 91% → 96%" read
//! alike and both looked like the customer's success. Here the numbers are read back from
//! the original text: a metric that is better low (time, costs, errors, churn…) falling, or
//! one that is better high (users, seats, logins, usage…) rising, is `shared_success`; the
//! opposite is `customer_risk`. A cue of the other theme inside the same words is dropped
//! ("dropped 480 → 310" is not a success, "downtime down 23%" is not a risk).

use std::sync::OnceLock;

use regex::Regex;

use super::Theme;
use super::classify::Found;
use super::markup::Prepared;

/// Units a moving number may carry; durations are compared in minutes.
const UNIT: &str = r"%|k|pts|points|h|hrs?|hours?|mins?|minutes?|d|days?|wks?|weeks?|months?";

/// Metrics that are better when they fall.
const LOWER_BETTER: &[&str] = &[
    "time",
    "times",
    "cost",
    "costs",
    "spend",
    "waste",
    "churn",
    "error",
    "errors",
    "incident",
    "incidents",
    "downtime",
    "outage",
    "outages",
    "complaint",
    "complaints",
    "backlog",
    "scrap",
    "ticket",
    "tickets",
    "wait",
    "waits",
    "delay",
    "delays",
    "fraud",
    "loss",
    "losses",
    "chargeback",
    "chargebacks",
    "dispute",
    "disputes",
    "attrition",
    "overtime",
    "turnover",
    "lag",
    "latency",
    "defect",
    "defects",
    "rework",
    "returns",
    "absenteeism",
    "callback",
    "callbacks",
    "failed",
    "failure",
    "failures",
    "misses",
    "missed",
    "late",
    "backorders",
    "triage",
    "turnaround",
    "handling",
    "shrink",
    "penalties",
    "escalations",
    "manual",
    "exceptions",
    "stockouts",
    "detect",
    "resolve",
    "close",
    "queue",
    "injuries",
    "accidents",
    "breaches",
    "readmissions",
    "mttr",
    "mttd",
    "aht",
    "dso",
];

/// Metrics that are better when they rise.
const HIGHER_BETTER: &[&str] = &[
    "user",
    "users",
    "seat",
    "seats",
    "login",
    "logins",
    "usage",
    "adoption",
    "active",
    "participation",
    "revenue",
    "nps",
    "csat",
    "compliance",
    "accuracy",
    "bookings",
    "sales",
    "margin",
    "margins",
    "productivity",
    "uptime",
    "retention",
    "engagement",
    "conversion",
    "matched",
    "savings",
    "throughput",
    "utilisation",
    "utilization",
    "licences",
    "licenses",
    "oee",
    "members",
    "attendance",
    "completion",
    "coverage",
    "pickups",
    "licence",
    "license",
];

const DOWN_WORDS: &[&str] = &[
    "down",
    "dropped",
    "drop",
    "drops",
    "fell",
    "falls",
    "cut",
    "cuts",
    "reduced",
    "reduce",
    "decreased",
    "declined",
    "lowered",
    "lower",
    "shrank",
];

fn re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        // "from 0 to 0", "0 → 0", "0% > 0%" (`->` was written ` >`), "down 0%", "-0%".
        let num = r"0(?:\.0)?";
        let pattern = format!(
            r"(?:(?P<from>from )?(?P<a>{num}) ?(?P<ua>{UNIT})? ?(?P<to>→|⇒|>|to) ?(?:under |below |about |around |roughly |nearly |almost |just |~)?(?P<b>{num})(?: ?(?P<ub>{UNIT}))?)|(?:(?P<verb>down|dropped|drop|drops|fell|falls|cut|cuts|reduced|reduce|decreased|declined|lowered|lower|shrank|up|rose|grew|increased|improved|higher|raised)(?P<inner>(?: [a-z]+){{0,3}}?) (?:by )?(?P<vn>{num})%)|(?:(?P<plus>\+ ?)?(?P<sn>{num})%)"
        );
        Regex::new(&pattern).ok()
    })
    .as_ref()
}

/// Minutes per duration unit; 1 for anything else (percentages, counts).
fn scale(unit: Option<&str>) -> f64 {
    match unit.unwrap_or("") {
        "h" | "hr" | "hrs" | "hour" | "hours" => 60.0,
        "d" | "day" | "days" => 1_440.0,
        "wk" | "wks" | "week" | "weeks" => 10_080.0,
        "month" | "months" => 43_200.0,
        _ => 1.0,
    }
}

fn is_duration(unit: Option<&str>) -> bool {
    scale(unit) > 1.0 || matches!(unit, Some("min" | "mins" | "minute" | "minutes"))
}

/// The number written at normalised bytes `s..e` (`0` or `0.0`), read from the original.
fn value(p: &Prepared, text: &str, s: usize, e: usize) -> Option<f64> {
    let (os, oe) = p.original_span(s, e);
    let raw: String = text
        .get(os..oe)?
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    raw.parse().ok()
}

/// Whether a metric is better low (`Some(true)`) or high (`Some(false)`).
fn polarity(word: &str) -> Option<bool> {
    if LOWER_BETTER.contains(&word) {
        Some(true)
    } else if HIGHER_BETTER.contains(&word) {
        Some(false)
    } else {
        None
    }
}

/// The nearest metric word before normalised byte `at`, within six words of its clause:
/// its polarity and where it starts.
fn metric_before(norm: &str, at: usize) -> Option<(bool, usize)> {
    let head = &norm[..at];
    let clause_start = head
        .rfind(['.', ';', '!', '?', '\n', ',', '|', '(', ')'])
        .map_or(0, |i| i + 1);
    let mut end = at;
    for _ in 0..6 {
        let clause = &norm[clause_start..end];
        let trimmed = clause.trim_end_matches(|c: char| !c.is_alphanumeric());
        if trimmed.is_empty() {
            return None;
        }
        let start = trimmed
            .rfind(|c: char| !c.is_alphanumeric() && c != '\'')
            .map_or(0, |i| i + 1);
        let word = &trimmed[start..];
        if let Some(lower) = polarity(word) {
            return Some((lower, clause_start + start));
        }
        end = clause_start + start;
    }
    None
}

/// Adds a trend cue for every number that moved on a metric of known direction, and drops
/// cues of the opposite reading inside the same words.
pub(crate) fn apply(p: &Prepared, text: &str, found: &mut Vec<Found>) {
    let norm = p.norm.as_str();
    if !norm.contains('0') {
        return;
    }
    let Some(re) = re() else { return };
    let mut added: Vec<Found> = Vec::new();
    for c in re.captures_iter(norm) {
        let Some(m) = c.get(0) else { continue };
        // Whole words only: "q0" or "0x" are not amounts that moved.
        let before = norm[..m.start()].chars().next_back();
        let after = norm[m.end()..].chars().next();
        if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric) {
            continue;
        }
        // down: the number fell; lower: the metric is better low; from: where its words start.
        let (down, own_metric, from) = if let (Some(a), Some(b)) = (c.name("a"), c.name("b")) {
            // "1 to 2 weeks" is a range, "from 1 to 2 weeks" a change.
            if c.name("to").is_some_and(|t| t.as_str() == "to") && c.name("from").is_none() {
                continue;
            }
            let (ua, ub) = (
                c.name("ua").map(|u| u.as_str()),
                c.name("ub").map(|u| u.as_str()),
            );
            let (Some(va), Some(vb)) = (
                value(p, text, a.start(), a.end()),
                value(p, text, b.start(), b.end()),
            ) else {
                continue;
            };
            let (va, vb) = (va * scale(ua.or(ub)), vb * scale(ub.or(ua)));
            if va == vb {
                continue;
            }
            // A duration that changed is a time to do something: better short.
            let duration = is_duration(ua) || is_duration(ub);
            (vb < va, duration.then_some(true), m.start())
        } else if let (Some(verb), Some(_)) = (c.name("verb"), c.name("vn")) {
            let inner = c.name("inner").map_or("", |i| i.as_str());
            let own = inner.split(' ').rev().find_map(polarity);
            (DOWN_WORDS.contains(&verb.as_str()), own, m.start())
        } else if let Some(n) = c.name("sn") {
            // A signed percentage: "-18%" (the `-` was written as a space) or "+3%".
            let (os, _) = p.original_span(n.start(), n.end());
            let mut back = text[..os].chars().rev();
            let minus = matches!(back.next(), Some('-' | '−'))
                && back.next().is_none_or(|c| c.is_whitespace() || c == '(');
            if !minus && c.name("plus").is_none() {
                continue;
            }
            (minus, None, m.start())
        } else {
            continue;
        };
        let (lower, start) = match own_metric {
            Some(lower) => (lower, from),
            None => match metric_before(norm, m.start()) {
                Some(found) => found,
                None => continue,
            },
        };
        let theme = if down == lower {
            Theme::SharedSuccess
        } else {
            Theme::CustomerRisk
        };
        added.push(Found {
            theme,
            weight: 1.0,
            norm: Some((start, m.end())),
            orig: p.original_span(start, m.end()),
        });
    }
    for t in &added {
        let Some((s, e)) = t.norm else { continue };
        let other = if t.theme == Theme::SharedSuccess {
            Theme::CustomerRisk
        } else {
            Theme::SharedSuccess
        };
        found.retain(|f| f.theme != other || f.norm.is_none_or(|(fs, fe)| fe <= s || fs >= e));
    }
    found.extend(added);
}
