//! The vocabulary as data: a line-based format that is easy to edit and to report errors on.
//!
//! ```text
//! # comment (also after an entry)
//! !replace                     # custom files only: drop the built-in vocabulary
//! <kind> [weight] <phrase>
//! ```
//! `kind` is a theme id or one of `deal`, `not_deal`, `negation`, `clause`, `ignore`,
//! `account`, `common`. See `docs/engine.md` for the phrase syntax.

use super::markup::normalise_phrase;
use super::{DealState, LexiconError, Theme};

/// What a matched phrase means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Theme(Theme),
    /// Talk about a deal (stage words, paperwork, signing, win/loss).
    Deal,
    /// Talk that is clearly not about a customer deal (lunch, leases, TV).
    NotDeal,
    /// Cancels a following seller-centric cue in the same clause.
    Negation,
    /// Starts a new clause ("but", "instead").
    Clause,
    /// Swallows shorter matches inside it, e.g. "quota system" so "quota" does not fire.
    Ignore,
    /// A known account name.
    Account,
    /// A capitalised word that is never an account name.
    Common,
    /// "never mentioned", "didn't ask about": cancels the following cue of ANY theme in
    /// the clause ("they never mentioned their rollout" shows no adoption).
    Absent,
    /// Where the deal stands (`won`, `lost`, `at_risk`, `discovery`).
    DealState(DealState),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: Kind,
    pub weight: f32,
}

/// One concrete pattern after expanding alternations and inflections.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub text: String,
    pub entry: usize,
    /// Trailing `*`: the last word may continue (stem match).
    pub prefix: bool,
    /// `=` phrases written with capitals ("=IT") must match the original text exactly.
    pub case_sensitive: Option<String>,
    /// Word endings the match may be extended by ("sign" + "ed"); checked at match time so
    /// the automaton stays small.
    pub suffixes: &'static [&'static str],
    /// Whether the pattern matches without one of `suffixes` (false for stems like "clos").
    pub bare: bool,
}

/// Regular endings accepted after any inflectable phrase.
pub(crate) const REGULAR: &[&str] = &["s", "es", "ed", "d", "ing", "'d", "'s"];
const E_DROP: &[&str] = &["ing", "ed", "es"];
const Y_TO_I: &[&str] = &["es", "ed"];
const DOUBLED: &[&str] = &["ed", "ing", "er", "ers"];

#[derive(Debug, Clone, Default)]
pub(crate) struct Lexicon {
    pub entries: Vec<Entry>,
    pub patterns: Vec<Pattern>,
    /// `:emoji:` names (without colons) mapped to entries.
    pub emojis: Vec<(String, usize)>,
    /// Lower-cased words never taken as account names.
    pub common: Vec<String>,
    /// `~` entries: regular expressions over the normalised text (linear-time engine).
    pub regexes: Vec<(regex::Regex, usize)>,
}

const MAX_VARIANTS: usize = 4096;

impl Lexicon {
    /// Parses `source`, appending to `self`. Returns true when the file asked to `!replace`.
    pub fn parse_into(&mut self, source: &str) -> Result<bool, LexiconError> {
        let mut replace = false;
        for (idx, raw) in source.lines().enumerate() {
            let line = idx + 1;
            let err = |reason: String| LexiconError::Invalid { line, reason };
            // A comment is a line starting with `#`, or ` # ` after an entry (so "my #"
            // stays a phrase).
            let content = match raw.find(" # ") {
                Some(p) => &raw[..p],
                None => raw,
            }
            .trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if content.starts_with('!') {
                if content == "!replace" {
                    replace = true;
                    continue;
                }
                return Err(err(format!(
                    "unknown directive `{content}` (only `!replace` exists)"
                )));
            }
            let (kind_s, rest) = split_word(content);
            let kind = parse_kind(kind_s).ok_or_else(|| {
                err(format!(
                    "unknown kind `{kind_s}`: expected a theme id or deal, not_deal, negation, absent, clause, ignore, account, common, won, lost, at_risk, discovery"
                ))
            })?;
            let (weight, phrase) = match split_word(rest) {
                (w, p) if !p.is_empty() && w.parse::<f32>().is_ok() => {
                    let v: f32 = w.parse().unwrap_or(1.0);
                    if !(0.0..=10.0).contains(&v) || v.is_nan() {
                        return Err(err(format!("weight {w} is outside 0..=10")));
                    }
                    (v, p)
                }
                _ => (1.0, rest),
            };
            if phrase.is_empty() {
                return Err(err("missing phrase".into()));
            }
            self.add(kind, weight, phrase).map_err(err)?;
        }
        Ok(replace)
    }

    fn add(&mut self, kind: Kind, weight: f32, phrase: &str) -> Result<(), String> {
        if kind == Kind::Common {
            self.common.push(phrase.to_lowercase());
            return Ok(());
        }
        let entry = self.entries.len();
        self.entries.push(Entry { kind, weight });
        if phrase.len() > 2
            && phrase.starts_with(':')
            && phrase.ends_with(':')
            && !phrase.contains(' ')
        {
            self.emojis
                .push((phrase[1..phrase.len() - 1].to_lowercase(), entry));
            return Ok(());
        }
        if let Some(re) = phrase.strip_prefix('~') {
            // Anchored to word starts; the `regex` crate never backtracks, so user patterns
            // cannot blow up on long messages.
            let re = regex::RegexBuilder::new(&format!(r"\b(?:{re})"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("bad regular expression: {e}"))?;
            self.regexes.push((re, entry));
            return Ok(());
        }
        let (exact, phrase) = match phrase.strip_prefix('=') {
            Some(p) => (true, p),
            None => (false, phrase),
        };
        let (prefix, phrase) = match phrase.strip_suffix('*') {
            Some(p) => (true, p),
            None => (false, phrase),
        };
        // Names and function words are matched as written; vocabulary gets word forms.
        let case_sensitive = exact && phrase.chars().any(char::is_uppercase);
        let inflect = !exact
            && !prefix
            && matches!(
                kind,
                Kind::Theme(_) | Kind::Deal | Kind::NotDeal | Kind::DealState(_)
            );
        let mut variants = Vec::new();
        expand(phrase, &mut variants)?;
        for v in variants {
            let norm = normalise_phrase(&v);
            if norm.is_empty() {
                continue;
            }
            if inflect {
                for (stem, suffixes) in stems(&norm) {
                    self.patterns.push(Pattern {
                        text: stem,
                        entry,
                        prefix,
                        case_sensitive: None,
                        suffixes,
                        bare: false,
                    });
                }
            }
            let case_sensitive = case_sensitive.then(|| v.clone());
            let suffixes: &'static [&'static str] = if inflect { REGULAR } else { &[] };
            self.patterns.push(Pattern {
                text: norm,
                entry,
                prefix,
                case_sensitive,
                suffixes,
                bare: true,
            });
        }
        Ok(())
    }
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(p) => (&s[..p], s[p..].trim_start()),
        None => (s, ""),
    }
}

fn parse_kind(s: &str) -> Option<Kind> {
    Some(match s {
        "deal" => Kind::Deal,
        "not_deal" => Kind::NotDeal,
        "negation" => Kind::Negation,
        "clause" => Kind::Clause,
        "ignore" => Kind::Ignore,
        "account" => Kind::Account,
        "common" => Kind::Common,
        "absent" => Kind::Absent,
        "won" => Kind::DealState(DealState::Won),
        "lost" => Kind::DealState(DealState::Lost),
        "at_risk" => Kind::DealState(DealState::AtRisk),
        "discovery" => Kind::DealState(DealState::Discovery),
        other => Kind::Theme(Theme::from_id(other)?),
    })
}

/// Expands `{a|b|}` groups (an empty alternative makes the group optional).
fn expand(phrase: &str, out: &mut Vec<String>) -> Result<(), String> {
    let mut acc = vec![String::new()];
    let mut rest = phrase;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| c + open)
            .ok_or("unclosed `{`")?;
        let lit = &rest[..open];
        if lit.contains('}') {
            return Err("`}` without `{`".into());
        }
        let alts: Vec<&str> = rest[open + 1..close].split('|').collect();
        let mut next = Vec::with_capacity(acc.len() * alts.len());
        for a in &acc {
            for alt in &alts {
                next.push(format!("{a}{lit}{alt}"));
            }
        }
        if next.len() > MAX_VARIANTS {
            return Err(format!("more than {MAX_VARIANTS} variants"));
        }
        acc = next;
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err("`}` without `{`".into());
    }
    for a in acc {
        out.push(
            format!("{a}{rest}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    Ok(())
}

/// Changed stems of the phrase's last word, each with the endings it takes: "close" ->
/// "clos" + ing, "worry" -> "worri" + es/ed, "ship" -> "shipp" + ed/ing. Regular endings
/// ("signs", "signed") need no extra pattern: see `REGULAR`.
fn stems(norm: &str) -> Vec<(String, &'static [&'static str])> {
    let (head, last) = match norm.rfind(' ') {
        Some(p) => (&norm[..=p], &norm[p + 1..]),
        None => ("", norm),
    };
    if last.len() < 3 || !last.chars().all(|c| c.is_ascii_alphabetic()) {
        return Vec::new();
    }
    let b = last.as_bytes();
    let n = b.len();
    let vowel = |c: u8| b"aeiou".contains(&c);
    let mut out: Vec<(String, &'static [&'static str])> = Vec::new();
    if b[n - 1] == b'e' {
        out.push((format!("{head}{}", &last[..n - 1]), E_DROP));
    }
    if b[n - 1] == b'y' && !vowel(b[n - 2]) {
        out.push((format!("{head}{}i", &last[..n - 1]), Y_TO_I));
    }
    if !vowel(b[n - 1]) && vowel(b[n - 2]) && !vowel(b[n - 3]) && !b"wxy".contains(&b[n - 1]) {
        out.push((format!("{head}{last}{}", b[n - 1] as char), DOUBLED));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn expands_alternatives_and_inflections() {
        let mut l = Lexicon::default();
        l.parse_into("closing_push 2 {get|getting} them to sign\nproduct_pitch demo")
            .unwrap();
        let texts: Vec<_> = l.patterns.iter().map(|p| p.text.as_str()).collect();
        assert!(texts.contains(&"getting them to sign"));
        assert!(texts.contains(&"get them to sign"));
        assert!(
            l.patterns.iter().all(|p| p.text != "demo'd"),
            "endings are checked at match time"
        );
        assert_eq!(l.entries[0].weight, 2.0);
    }

    #[test]
    fn reports_line_and_reason() {
        let mut l = Lexicon::default();
        let e = l.parse_into("# ok\nbogus_theme 1 x").unwrap_err();
        assert!(matches!(e, LexiconError::Invalid { line: 2, .. }), "{e}");
        let e = l.parse_into("\n\ndeal 1 {a|b").unwrap_err();
        assert!(matches!(e, LexiconError::Invalid { line: 3, .. }), "{e}");
    }
}
