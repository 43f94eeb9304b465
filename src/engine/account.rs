//! Telling which account (company) a message is about.
//!
//! Known accounts from the lexicon win. Otherwise the best-placed run of capitalised words
//! that are not common English, roles or sales acronyms is taken: at the start of the
//! message, before `:`/`'s`, after "at/with/for/on…", or before deal words score higher.

use std::collections::HashSet;

use super::markup::Prepared;

/// Capitalised words that start sentences or name roles, tools and times: never accounts.
const COMMON: &str = include_str!("common_words.txt");

struct Tok<'a> {
    /// Original text of the word.
    word: &'a str,
    lower: &'a str,
    start: usize,
    end: usize,
    /// Character following the word in the normalised text.
    next: Option<char>,
    /// Normalised byte range.
    ns: usize,
}

fn tokens<'a>(p: &'a Prepared, text: &'a str) -> Vec<Tok<'a>> {
    const MAX_TOKENS: usize = 400;
    let norm = p.norm.as_str();
    let bytes = norm.as_bytes();
    let mut out = Vec::with_capacity(32);
    let push = |s: usize, e: usize, out: &mut Vec<Tok<'a>>| {
        let (os, oe) = p.original_span(s, e);
        out.push(Tok {
            word: &text[os..oe],
            lower: &norm[s..e],
            start: os,
            end: oe,
            next: norm[e..].chars().next(),
            ns: s,
        });
    };
    // Bytes, not chars: every non-ASCII byte counts as part of a word (letters of other
    // scripts), so tokens still start and end on char boundaries (at ASCII bytes).
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80 || b == b'&';
    let mut start: Option<usize> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (is_word(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                push(s, i, &mut out);
                start = None;
                // Accounts are named early; long texts need not be scanned to the end.
                if out.len() >= MAX_TOKENS {
                    return out;
                }
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        push(s, norm.len(), &mut out);
    }
    out
}

/// The built-in list of capitalised words that are never accounts.
pub(crate) fn builtin_common() -> impl Iterator<Item = &'static str> {
    COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn is_common(common: &HashSet<String>, w: &str) -> bool {
    // Plurals of common words and acronyms ("QBRs", "CFOs") are common too.
    common.contains(w) || w.strip_suffix('s').is_some_and(|s| common.contains(s))
}

/// Words that end company names; they let a lower-case name be found ("stark mfg").
const SUFFIXES: [&str; 34] = [
    "inc",
    "co",
    "corp",
    "llc",
    "ltd",
    "gmbh",
    "mfg",
    "manufacturing",
    "bank",
    "health",
    "healthcare",
    "logistics",
    "labs",
    "group",
    "analytics",
    "payments",
    "freight",
    "dental",
    "clinics",
    "systems",
    "technologies",
    "software",
    "holdings",
    "industries",
    "foods",
    "energy",
    "motors",
    "insurance",
    "capital",
    "consulting",
    "agency",
    "pharma",
    "fintech",
    "retail",
];

fn capitalised(w: &str) -> bool {
    let mut cs = w.chars();
    matches!(cs.next(), Some(c) if c.is_uppercase()) && !w.chars().any(|c| c.is_ascii_digit())
}

const PREPS: [&str; 14] = [
    "at", "with", "w", "for", "on", "from", "to", "into", "about", "lost", "won", "signed",
    "closed", "re",
];
const DEAL_NEXT: [&str; 18] = [
    "demo",
    "poc",
    "pilot",
    "renewal",
    "call",
    "deal",
    "account",
    "legal",
    "procurement",
    "champ",
    "champion",
    "signed",
    "lost",
    "rfp",
    "proposal",
    "contract",
    "qbr",
    "expansion",
];

/// CRM field labels whose value names the account, strongest first.
const ACCOUNT_FIELDS: [&str; 6] = [
    "account",
    "account name",
    "company",
    "customer",
    "client",
    "organization",
];
/// Field labels whose value starts with the account ("Acme Corp – Renewal").
const DEAL_FIELDS: [&str; 5] = [
    "opp",
    "opportunity",
    "deal",
    "deal name",
    "opportunity name",
];
/// Labels of pasted CRM cards and forecast lines: fields, never names.
const FIELD_LABELS: [&str; 48] = [
    "opp",
    "opportunity",
    "account",
    "stage",
    "amount",
    "next step",
    "next steps",
    "close date",
    "owner",
    "deal",
    "company",
    "customer",
    "client",
    "arr",
    "acv",
    "tcv",
    "value",
    "probability",
    "forecast",
    "notes",
    "note",
    "status",
    "contact",
    "region",
    "segment",
    "source",
    "type",
    "priority",
    "goal",
    "progress",
    "next",
    "health",
    "risk",
    "renewal date",
    "term",
    "product",
    "seats",
    "champion",
    "competitor",
    "plan",
    "summary",
    "timeline",
    "budget",
    "commit",
    "best case",
    "pipeline",
    "upside",
    "update",
];

/// The value of a CRM field naming the account ("Account: Riverbend Health"), or the lead
/// of a deal field ("Deal: Palisade Medical Group – Referral Mgmt").
fn crm_field(text: &str) -> Option<(usize, usize)> {
    for fields in [&ACCOUNT_FIELDS[..], &DEAL_FIELDS[..]] {
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let lead = line.len()
                - line
                    .trim_start_matches([' ', '\t', '*', '-', '•', '>'])
                    .len();
            let body = &line[lead..];
            let Some((label, _)) = body.split_once(':') else {
                continue;
            };
            if !fields.contains(&label.trim().to_lowercase().trim_matches('*')) {
                continue;
            }
            let vstart = start + lead + label.len() + 1;
            let value = &text[vstart..start + line.len()];
            let skipped = value.len() - value.trim_start().len();
            let value = value.trim_start();
            let end = [" – ", " — ", " - ", " | ", "|", ",", "(", " / ", "\n", ":"]
                .iter()
                .filter_map(|sep| value.find(sep))
                .min()
                .unwrap_or(value.len());
            let name = value[..end].trim_end().trim_matches('*');
            if !name.is_empty() && name.len() <= 60 && name.chars().any(char::is_alphabetic) {
                let s = vstart + skipped + value[..end].find(name).unwrap_or(0);
                return Some((s, s + name.len()));
            }
        }
    }
    None
}

/// Where the list starts when the message is a heading followed by two or more bulleted
/// lines (a forecast list): the heading is not an account.
fn list_start(text: &str) -> Option<usize> {
    let mut offset = 0;
    let mut first = None;
    let mut bullets = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if offset > 0
            && (t.starts_with("- ")
                || t.starts_with("• ")
                || t.starts_with("* ")
                || t.starts_with("▸ "))
        {
            bullets += 1;
            first.get_or_insert(offset);
        }
        offset += line.len();
    }
    (bullets >= 2).then_some(first).flatten()
}

/// The account a message is about, with its byte span in `text`.
pub(crate) fn detect(
    p: &Prepared,
    text: &str,
    extra_common: &HashSet<String>,
) -> Option<(String, usize, usize)> {
    if let Some((s, e)) = crm_field(text) {
        return Some((text[s..e].to_string(), s, e));
    }
    let mut toks = tokens(p, text);
    if let Some(from) = list_start(text) {
        toks.retain(|t| t.start >= from);
    }
    let mut best: Option<(i32, usize, usize)> = None;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let name_like =
            capitalised(t.word) && !is_common(extra_common, t.lower) && t.word.chars().count() > 1;
        if !name_like {
            i += 1;
            continue;
        }
        let at_sentence_start = i == 0 || prev_is_sentence_end(p, toks[i].ns);
        let mut j = i + 1;
        // Inside a name, capitalised common words belong to it ("Graphic Design Institute");
        // an all-caps common word ends it ("Acme Health IT").
        while j < toks.len()
            && t_continues(&toks[j - 1])
            && capitalised(toks[j].word)
            && !(is_common(extra_common, toks[j].lower)
                && (toks[j].word.chars().all(|c| !c.is_lowercase()) || toks[j].lower.len() <= 2))
        {
            j += 1;
        }
        let last = &toks[j - 1];
        // A field label of a pasted card ("Stage:", "Next step:") is not a name.
        if last.next == Some(':') {
            let label: Vec<&str> = toks[i..j].iter().map(|t| t.lower).collect();
            if FIELD_LABELS.contains(&label.join(" ").as_str()) {
                i = j;
                continue;
            }
        }
        let all_caps = toks[i..j]
            .iter()
            .all(|t| t.word.chars().all(|c| !c.is_lowercase()));
        // Any capitalised unknown word could be a name (base 1); all-caps runs are usually
        // acronyms and need good placement to count.
        let mut score = 1;
        if i == 0 {
            score += 3;
        } else if at_sentence_start {
            score += 1;
        }
        if matches!(last.next, Some(':')) || matches!(last.next, Some('\'')) {
            score += 2;
        }
        if i > 0 && PREPS.contains(&toks[i - 1].lower) {
            score += 2;
        }
        if j < toks.len() && DEAL_NEXT.contains(&toks[j].lower) {
            score += 2;
        }
        if j - i > 1 {
            score += 1;
        }
        if all_caps {
            score -= 4;
        }
        if best.is_none_or(|(b, _, _)| score > b) {
            best = Some((score, t.start, last.end));
        }
        i = j;
    }
    if let Some((score, s, e)) = best
        && score >= 1
    {
        let name = text[s..e].trim_end_matches(['\'', '’']);
        return Some((name.to_string(), s, s + name.len()));
    }
    lowercase_lead(&toks, extra_common)
        .or_else(|| lowercase_suffixed(&toks, extra_common))
        .map(|(s, e)| (text[s..e].to_string(), s, e))
}

/// Words in a name run are separated by a single space, never by punctuation.
fn t_continues(t: &Tok<'_>) -> bool {
    matches!(t.next, Some(' '))
}

fn prev_is_sentence_end(p: &Prepared, ns: usize) -> bool {
    p.norm[..ns]
        .trim_end()
        .chars()
        .next_back()
        .is_none_or(|c| matches!(c, '.' | '!' | '?' | '\n' | ':'))
}

/// "wayne fintech: …" / "wayne fintech POC: …" — a short lower-case lead before a colon,
/// without trailing common words.
fn lowercase_lead(toks: &[Tok<'_>], common: &HashSet<String>) -> Option<(usize, usize)> {
    let colon = toks.iter().take(4).position(|t| t.next == Some(':'))?;
    let run = &toks[..=colon];
    let label: Vec<&str> = run.iter().map(|t| t.lower).collect();
    if FIELD_LABELS.contains(&label.join(" ").as_str()) {
        return None;
    }
    let name_len = run
        .iter()
        .position(|t| is_common(common, t.lower))
        .unwrap_or(run.len());
    if name_len == 0
        || run[..name_len]
            .iter()
            .any(|t| t.lower.chars().any(|c| c.is_ascii_digit()))
    {
        return None;
    }
    Some((run[0].start, run[name_len - 1].end))
}

/// "stark mfg still not signed" — a lower-case word followed by a company suffix.
fn lowercase_suffixed(toks: &[Tok<'_>], common: &HashSet<String>) -> Option<(usize, usize)> {
    let i = toks
        .iter()
        .skip(1)
        .position(|t| SUFFIXES.contains(&t.lower))?
        + 1;
    let head = &toks[i - 1];
    if is_common(common, head.lower)
        || !head.lower.chars().all(char::is_alphabetic)
        || head.next != Some(' ')
    {
        return None;
    }
    Some((head.start, toks[i].end))
}
