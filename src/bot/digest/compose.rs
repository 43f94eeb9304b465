//! Pure composition: `WeekStats` → the digest's text and Block Kit. No IO, no clock.
//!
//! Team figures only: nothing here names, counts or ranks a person. The spotlight links
//! to updates (never to people), and the personal digest goes only to its owner.

use serde_json::Value;

use super::week::IsoWeek;
use crate::engine::{Engine, Pillar, Question, Theme};
use crate::slack::blocks;

/// How many weeks the trend covers, this week included.
pub const TREND_WEEKS: usize = 8;
/// Spotlight links at most.
pub const SPOTLIGHT_MAX: usize = 3;
/// Customer-centric themes and seller-centric signals listed at most.
const TOP_THEMES: usize = 5;
/// Account names in the spotlight are cut to this many characters.
const ACCOUNT_CHARS: usize = 60;
const SPARK_LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// A week without any update in the sparkline.
const SPARK_EMPTY: char = '·';

/// Counts of a week's deal updates by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mix {
    pub customer_centric: u64,
    pub balanced: u64,
    pub seller_centric: u64,
    pub neutral: u64,
}

impl Mix {
    pub fn total(&self) -> u64 {
        self.customer_centric + self.balanced + self.seller_centric + self.neutral
    }

    /// Customer-centric share of all updates; `None` for a week without updates.
    pub fn customer_centric_share(&self) -> Option<f64> {
        share(self.customer_centric, self.total())
    }
}

fn share(part: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
}

/// One linkable customer-centric update of the week.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotlightItem {
    pub channel_id: String,
    pub message_ts: String,
    pub account: Option<String>,
    pub themes: Vec<Theme>,
}

impl SpotlightItem {
    /// `https://slack.com/archives/C123/p1700000000123456`.
    pub fn permalink(&self) -> String {
        format!(
            "https://slack.com/archives/{}/p{}",
            self.channel_id,
            self.message_ts.replace('.', "")
        )
    }
}

/// Everything the team digest shows, computed by the store layer.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekStats {
    /// The reported ISO week.
    pub week: IsoWeek,
    /// `true` for a preview of the week so far.
    pub in_progress: bool,
    pub this_week: Mix,
    pub previous: Mix,
    /// `TREND_WEEKS` entries, oldest first; the last is `week`.
    pub trend: Vec<(IsoWeek, Mix)>,
    /// Updates showing each theme this week (themes not shown may be absent).
    pub themes: Vec<(Theme, u64)>,
    /// Up to `SPOTLIGHT_MAX`, best first, from people who have not opted out.
    pub spotlight: Vec<SpotlightItem>,
    /// Reflections people chose to share with the team digest this week.
    pub shared_reflections: u32,
    /// What people answered on this week's nudges ("Helpful" / "Not now" / "Not quite right").
    pub feedback: Feedback,
    /// Question ids people marked "Not now" (newest first): not the question of the week.
    pub unhelpful_questions: Vec<String>,
}

/// Button feedback on prompts, counted for the team, never per person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Feedback {
    pub helpful: u32,
    pub not_now: u32,
    /// Readings people corrected with "Not quite right".
    pub corrections: u32,
}

/// A person's own figures, for their DM only.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalStats {
    pub week: IsoWeek,
    pub this_week: Mix,
    pub previous: Mix,
    pub trend: Vec<(IsoWeek, Mix)>,
}

/// A composed message: the Block Kit, Slack's `text` fallback, and a plain rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    pub fallback: String,
    pub blocks: Vec<Value>,
    pub text: String,
}

/// A block's worth of content, kept so the text and Block Kit renderings match.
enum Part {
    Header(String),
    Section(String),
    Fields(Vec<String>),
    Context(String),
    Divider,
}

fn assemble(fallback: String, parts: Vec<Part>) -> Digest {
    let mut out = Vec::new();
    let mut text = String::new();
    for part in &parts {
        match part {
            Part::Header(h) => {
                out.push(blocks::header(h));
                text.push_str(h);
                text.push('\n');
                text.push_str(&"=".repeat(h.chars().count().min(60)));
                text.push('\n');
            }
            Part::Section(s) => {
                out.push(blocks::section(s));
                text.push('\n');
                text.push_str(&mrkdwn_to_plain(s));
                text.push('\n');
            }
            Part::Fields(fields) => {
                let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                out.push(blocks::section_fields(&refs));
                for f in fields {
                    text.push('\n');
                    text.push_str(&mrkdwn_to_plain(f));
                    text.push('\n');
                }
            }
            Part::Context(c) => {
                out.push(blocks::context(&[c.as_str()]));
                text.push('\n');
                text.push_str(&mrkdwn_to_plain(c));
                text.push('\n');
            }
            Part::Divider => out.push(blocks::divider()),
        }
    }
    Digest {
        fallback,
        blocks: blocks::message_blocks(out),
        text,
    }
}

/// `10–16 Nov 2026` (the Monday and Sunday of the week).
pub fn week_label(week: IsoWeek) -> String {
    let Ok(monday) = week.monday() else {
        return week.to_string();
    };
    let Ok(sunday) = monday.checked_add(jiff::Span::new().days(6)) else {
        return week.to_string();
    };
    if monday.month() == sunday.month() {
        format!(
            "{}–{} {}",
            monday.day(),
            sunday.day(),
            sunday.strftime("%b %Y")
        )
    } else if monday.year() == sunday.year() {
        format!(
            "{} {} – {} {}",
            monday.day(),
            monday.strftime("%b"),
            sunday.day(),
            sunday.strftime("%b %Y")
        )
    } else {
        format!(
            "{} – {}",
            monday.strftime("%-d %b %Y"),
            sunday.strftime("%-d %b %Y")
        )
    }
}

fn pct(x: f64) -> String {
    format!("{}%", whole_pct(x))
}

/// A share as whole percent, rounded half away from zero; changes are computed from these
/// so that "12% (+13 pts)" never disagrees with the figures shown.
fn whole_pct(x: f64) -> i64 {
    (x * 100.0).round() as i64
}

/// `+6 pts`, `−2 pts`, `±0 pts`; empty when either week had no updates.
fn change_pts(now: Option<f64>, before: Option<f64>) -> String {
    match (now, before) {
        (Some(a), Some(b)) => {
            let d = whole_pct(a) - whole_pct(b);
            match d {
                0 => "±0 pts".to_owned(),
                d if d > 0 => format!("+{d} pts"),
                d => format!("−{} pts", -d),
            }
        }
        _ => String::new(),
    }
}

/// The share of one class this week, with its change from last week.
/// One field per class: its count, share and change from the previous week.
fn class_fields(mix: &Mix, prev: &Mix) -> Vec<String> {
    [
        (
            "Customer-centric",
            mix.customer_centric,
            prev.customer_centric,
        ),
        ("Balanced", mix.balanced, prev.balanced),
        ("Seller-centric", mix.seller_centric, prev.seller_centric),
        ("No signal", mix.neutral, prev.neutral),
    ]
    .into_iter()
    .map(|(label, n, prev_n)| class_line(label, n, mix, prev, prev_n))
    .collect()
}

fn class_line(label: &str, n: u64, mix: &Mix, prev: &Mix, prev_n: u64) -> String {
    let total = mix.total();
    let Some(s) = share(n, total) else {
        return format!("*{label}*\n0");
    };
    let change = change_pts(Some(s), share(prev_n, prev.total()));
    let change = if change.is_empty() {
        String::new()
    } else {
        format!(", {change}")
    };
    format!("*{label}*\n{n} ({}{change})", pct(s))
}

fn updates_line(mix: &Mix, prev: &Mix, in_progress: bool) -> String {
    let n = mix.total();
    let noun = if n == 1 {
        "deal update"
    } else {
        "deal updates"
    };
    let d = n as i64 - prev.total() as i64;
    let vs = if in_progress {
        format!("so far ({} last week)", prev.total())
    } else if d == 0 {
        "(same as last week)".to_owned()
    } else {
        format!("({}{d} on last week)", if d > 0 { "+" } else { "" })
    };
    format!("*{n} {noun}* {vs}")
}

/// `▂▃▅·▆▇█` — one character per week, the customer-centric share from ▁ (0%) to █ (100%);
/// `·` marks a week without updates.
pub fn sparkline(trend: &[(IsoWeek, Mix)]) -> String {
    trend
        .iter()
        .map(|(_, mix)| match mix.customer_centric_share() {
            Some(s) => {
                let i = (s.clamp(0.0, 1.0) * (SPARK_LEVELS.len() - 1) as f64).round() as usize;
                SPARK_LEVELS[i.min(SPARK_LEVELS.len() - 1)]
            }
            None => SPARK_EMPTY,
        })
        .collect()
}

fn trend_line(trend: &[(IsoWeek, Mix)], who: &str) -> String {
    let spark = sparkline(trend);
    let shares: Vec<f64> = trend
        .iter()
        .filter_map(|(_, m)| m.customer_centric_share())
        .collect();
    let range = match (shares.first(), shares.last()) {
        (Some(a), Some(b)) if shares.len() > 1 => format!(" {} → {}", pct(*a), pct(*b)),
        (Some(a), _) => format!(" {}", pct(*a)),
        _ => " no updates yet".to_owned(),
    };
    format!(
        "*{who} customer-centric share, last {} weeks:* `{spark}`{range}",
        trend.len()
    )
}

fn theme_name(theme: Theme) -> String {
    theme.id().replace('_', " ")
}

fn pillar_name(p: Pillar) -> &'static str {
    match p {
        Pillar::Care => "Care",
        Pillar::Understand => "Understand",
        Pillar::Serve => "Serve",
        Pillar::Purpose => "Purpose",
    }
}

const PILLARS: [Pillar; 4] = [
    Pillar::Care,
    Pillar::Understand,
    Pillar::Serve,
    Pillar::Purpose,
];

/// The pillar with the fewest theme mentions this week, and its count. Ties (e.g. an
/// empty week) are broken by `seed`, so the team hears about each pillar in turn.
pub fn least_present_pillar(themes: &[(Theme, u64)], seed: u64) -> (Pillar, u64) {
    let count = |p: Pillar| -> u64 {
        themes
            .iter()
            .filter(|(t, _)| t.pillar() == Some(p))
            .map(|(_, n)| *n)
            .sum()
    };
    let counts: Vec<(Pillar, u64)> = PILLARS.iter().map(|&p| (p, count(p))).collect();
    let min = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
    let tied: Vec<(Pillar, u64)> = counts.into_iter().filter(|(_, n)| *n == min).collect();
    let pick = (seed % tied.len().max(1) as u64) as usize;
    tied.get(pick).copied().unwrap_or((Pillar::Care, 0))
}

/// A question from the engine's bank aimed at `pillar`, chosen by `seed`.
pub fn question_of_the_week(
    engine: &Engine,
    pillar: Pillar,
    avoid: &[String],
    seed: u64,
) -> Option<Question> {
    let of_pillar = || {
        engine
            .team_questions()
            .into_iter()
            .filter(|q| q.pillar == pillar)
    };
    // Questions the team found unhelpful are left out, unless that leaves none.
    let mut fitting: Vec<Question> = of_pillar().filter(|q| !avoid.contains(&q.id)).collect();
    if fitting.is_empty() {
        fitting = of_pillar().collect();
    }
    fitting.sort_by(|a, b| a.id.cmp(&b.id));
    let n = fitting.len() as u64;
    if n == 0 {
        return None;
    }
    let i = (crate::bot::reflect::seed_from(&[&seed.to_string()]) % n) as usize;
    fitting.into_iter().nth(i)
}

fn top(themes: &[(Theme, u64)], seller: bool) -> Vec<(Theme, u64)> {
    let mut list: Vec<(Theme, u64)> = themes
        .iter()
        .copied()
        .filter(|(t, n)| *n > 0 && t.is_seller_centric() == seller)
        .collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    list.truncate(TOP_THEMES);
    list
}

fn theme_list(title: &str, list: &[(Theme, u64)], empty: &str) -> String {
    if list.is_empty() {
        return format!("*{title}*\n{empty}");
    }
    let lines: Vec<String> = list
        .iter()
        .map(|(t, n)| format!("• {} ({n})", theme_name(*t)))
        .collect();
    format!("*{title}*\n{}", lines.join("\n"))
}

fn spotlight_line(item: &SpotlightItem) -> String {
    let label = match &item.account {
        Some(a) if !a.trim().is_empty() => {
            blocks::escape_mrkdwn(&blocks::truncate(a.trim(), ACCOUNT_CHARS)).replace('|', "¦")
        }
        _ => "an update".to_owned(),
    };
    let themes: Vec<String> = item
        .themes
        .iter()
        .filter(|t| !t.is_seller_centric())
        .take(4)
        .map(|t| theme_name(*t))
        .collect();
    let about = if themes.is_empty() {
        String::new()
    } else {
        format!(" — {}", themes.join(", "))
    };
    format!(
        "• <{}|{label}> in <#{}>{about}",
        item.permalink(),
        item.channel_id
    )
}

/// The team digest.
pub fn compose(stats: &WeekStats, engine: &Engine, seed: u64) -> Digest {
    let label = week_label(stats.week);
    let mix = &stats.this_week;
    let prev = &stats.previous;
    let mut parts = Vec::new();
    parts.push(Part::Header(if stats.in_progress {
        format!("cusp digest so far · {label}")
    } else {
        format!("cusp weekly digest · {label}")
    }));

    let total = mix.total();
    if total == 0 {
        parts.push(Part::Section(format!(
            "*No deal updates this week* ({} last week). Quiet weeks happen; the question below is a good way back in.",
            prev.total()
        )));
    } else {
        parts.push(Part::Section(updates_line(mix, prev, stats.in_progress)));
        if mix.neutral == total {
            parts.push(Part::Section(
                "None of them showed CUSP themes or seller-centric signals yet: room to bring the customer's world into the conversation."
                    .to_owned(),
            ));
        } else {
            parts.push(Part::Fields(class_fields(mix, prev)));
        }
    }
    parts.push(Part::Section(trend_line(&stats.trend, "Team")));

    let customer = top(&stats.themes, false);
    let seller = top(&stats.themes, true);
    if !customer.is_empty() || !seller.is_empty() {
        parts.push(Part::Fields(vec![
            theme_list("Top customer-centric themes", &customer, "none this week"),
            theme_list("Top seller-centric signals", &seller, "none this week"),
        ]));
    }

    parts.push(Part::Divider);
    let (pillar, n) = least_present_pillar(&stats.themes, seed);
    let presence = match n {
        0 => "didn't show up this week".to_owned(),
        1 => "showed up once this week".to_owned(),
        n => format!("showed up {n} times this week, less than the others"),
    };
    let question = question_of_the_week(engine, pillar, &stats.unhelpful_questions, seed)
        .map(|q| {
            format!(
                "\n*Question of the week:* {}",
                blocks::escape_mrkdwn(&q.text)
            )
        })
        .unwrap_or_default();
    parts.push(Part::Section(format!(
        "*{}* {presence}.{question}",
        pillar_name(pillar)
    )));

    if !stats.spotlight.is_empty() {
        let lines: Vec<String> = stats
            .spotlight
            .iter()
            .take(SPOTLIGHT_MAX)
            .map(spotlight_line)
            .collect();
        parts.push(Part::Section(format!(
            "*Spotlight:* updates that put the customer's world first\n{}",
            lines.join("\n")
        )));
    }
    if stats.shared_reflections > 0 {
        let n = stats.shared_reflections;
        parts.push(Part::Section(format!(
            "*{n} reflection{} shared with the team* this week.",
            if n == 1 { "" } else { "s" }
        )));
    }
    let Feedback {
        helpful,
        not_now,
        corrections,
    } = stats.feedback;
    if helpful + not_now + corrections > 0 {
        let mut line = format!(
            "*cusp's questions this week:* {helpful} marked helpful, {not_now} \"not now\""
        );
        if corrections > 0 {
            line.push_str(&format!(
                ", {corrections} reading{} corrected with \"not quite right\" (`cusp export --corrections` \
                 turns those with text into a test set)",
                if corrections == 1 { "" } else { "s" }
            ));
        }
        line.push_str(". Questions marked \"not now\" are asked less.");
        parts.push(Part::Section(line));
    }
    parts.push(Part::Context(
        "Team figures only; cusp never ranks people. `/cusp digest me on` sends you your own mix by DM · \
         `/cusp digest spotlight off` keeps your updates out of the spotlight."
            .to_owned(),
    ));

    let fallback = match mix.customer_centric_share() {
        Some(s) => format!(
            "cusp digest for {label}: {total} deal update{}, {} customer-centric",
            if total == 1 { "" } else { "s" },
            pct(s)
        ),
        None => format!("cusp digest for {label}: no deal updates"),
    };
    assemble(fallback, parts)
}

/// A person's own digest, for their DM.
pub fn compose_personal(stats: &PersonalStats) -> Digest {
    let label = week_label(stats.week);
    let mix = &stats.this_week;
    let prev = &stats.previous;
    let mut parts = vec![Part::Header(format!("Your week · {label}"))];
    if mix.total() == 0 {
        parts.push(Part::Section(format!(
            "cusp logged no deal updates from you this week ({} last week).",
            prev.total()
        )));
    } else {
        parts.push(Part::Section(updates_line(mix, prev, false)));
        parts.push(Part::Fields(class_fields(mix, prev)));
    }
    parts.push(Part::Section(trend_line(&stats.trend, "Your")));
    parts.push(Part::Context(
        "Only you get this message. `/cusp digest me off` stops it.".to_owned(),
    ));
    let fallback = match mix.customer_centric_share() {
        Some(s) => format!(
            "Your week ({label}): {} deal updates, {} customer-centric",
            mix.total(),
            pct(s)
        ),
        None => format!("Your week ({label}): no deal updates"),
    };
    assemble(fallback, parts)
}

/// Slack mrkdwn → readable plain text for the CLI: `<url|label>` → `label (url)`,
/// `<#C1>` → `#C1`, entities unescaped, `*bold*` and backticks dropped.
pub fn mrkdwn_to_plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &after[..close];
        match inner.split_once('|') {
            Some((url, label)) if !url.starts_with('#') => {
                out.push_str(&format!("{label} ({url})"))
            }
            _ => out.push_str(inner.split('|').next().unwrap_or(inner)),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.replace(['*', '`'], "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn week(s: &str) -> IsoWeek {
        s.parse().unwrap()
    }

    fn mix(cc: u64, bal: u64, sc: u64, neu: u64) -> Mix {
        Mix {
            customer_centric: cc,
            balanced: bal,
            seller_centric: sc,
            neutral: neu,
        }
    }

    fn stats(this: Mix, prev: Mix) -> WeekStats {
        let w = week("2026-W47");
        let mut weeks = vec![w];
        while weeks.len() < TREND_WEEKS {
            let p = weeks[0].prev().unwrap();
            weeks.insert(0, p);
        }
        let trend = weeks
            .iter()
            .enumerate()
            .map(|(i, wk)| {
                let m = match i {
                    7 => this,
                    6 => prev,
                    i => mix(i as u64, 2, 1, 0),
                };
                (*wk, m)
            })
            .collect();
        WeekStats {
            week: w,
            in_progress: false,
            this_week: this,
            previous: prev,
            trend,
            themes: vec![],
            spotlight: vec![],
            shared_reflections: 0,
            feedback: Feedback::default(),
            unhelpful_questions: Vec::new(),
        }
    }

    fn all_text(d: &Digest) -> String {
        serde_json::to_string(&d.blocks).unwrap()
    }

    #[test]
    fn week_labels_read_naturally() {
        assert_eq!(week_label(week("2026-W47")), "16–22 Nov 2026");
        assert_eq!(week_label(week("2026-W44")), "26 Oct – 1 Nov 2026");
        assert_eq!(week_label(week("2026-W53")), "28 Dec 2026 – 3 Jan 2027");
    }

    #[test]
    fn sparkline_maps_shares_and_marks_empty_weeks() {
        let w = week("2026-W47");
        let t = vec![
            (w, mix(0, 1, 0, 0)),
            (w, Mix::default()),
            (w, mix(1, 1, 0, 0)),
            (w, mix(5, 0, 0, 0)),
        ];
        assert_eq!(sparkline(&t), "▁·▅█");
    }

    #[test]
    fn mix_shows_shares_and_change_from_last_week() {
        let d = compose(
            &stats(mix(6, 2, 2, 0), mix(4, 2, 4, 0)),
            &Engine::builtin(),
            1,
        );
        let json = all_text(&d);
        assert!(
            json.contains("*10 deal updates* (same as last week)"),
            "{json}"
        );
        assert!(json.contains("6 (60%, +20 pts)"), "{json}");
        assert!(json.contains("2 (20%, −20 pts)"), "{json}");
        assert!(
            d.fallback.contains("60% customer-centric"),
            "{}",
            d.fallback
        );
        assert!(
            d.text.contains("Customer-centric\n6 (60%, +20 pts)"),
            "{}",
            d.text
        );
    }

    #[test]
    fn an_empty_week_still_makes_a_useful_post() {
        let d = compose(
            &stats(Mix::default(), mix(3, 0, 0, 0)),
            &Engine::builtin(),
            7,
        );
        assert!(d.text.contains("No deal updates this week"), "{}", d.text);
        assert!(d.text.contains("Question of the week:"), "{}", d.text);
        assert!(d.fallback.ends_with("no deal updates"), "{}", d.fallback);
        assert!(!all_text(&d).contains("Spotlight"));
    }

    #[test]
    fn a_week_with_only_neutral_updates_says_so() {
        let d = compose(
            &stats(mix(0, 0, 0, 4), Mix::default()),
            &Engine::builtin(),
            7,
        );
        assert!(
            d.text
                .contains("*4 deal updates*".replace('*', "").as_str()),
            "{}",
            d.text
        );
        assert!(
            d.text.contains("None of them showed CUSP themes"),
            "{}",
            d.text
        );
        assert!(d.fallback.contains("0% customer-centric"), "{}", d.fallback);
    }

    #[test]
    fn least_present_pillar_counts_theme_mentions_and_breaks_ties_by_seed() {
        let themes = vec![
            (Theme::Stakeholders, 9),
            (Theme::CustomerConcern, 4),
            (Theme::Adoption, 2),
            (Theme::SharedSuccess, 3),
            (Theme::ClosingPush, 50),
        ];
        assert_eq!(least_present_pillar(&themes, 0), (Pillar::Serve, 2));
        let picks: std::collections::HashSet<Pillar> =
            (0..8).map(|s| least_present_pillar(&[], s).0).collect();
        assert_eq!(picks.len(), 4, "an empty week rotates through the pillars");
    }

    #[test]
    fn question_of_the_week_fits_the_pillar_and_is_stable() {
        let engine = Engine::builtin();
        for p in PILLARS {
            let q = question_of_the_week(&engine, p, &[], 42).unwrap();
            assert_eq!(q.pillar, p);
            assert_eq!(question_of_the_week(&engine, p, &[], 42), Some(q.clone()));
            // Never a question about one deal ("…for the customer's team" with no account).
            let per_deal: Vec<String> = engine
                .question_bank()
                .into_iter()
                .filter(|b| !engine.team_questions().contains(b))
                .map(|b| b.id)
                .collect();
            assert!(!per_deal.contains(&q.id), "{}", q.id);
            // A question the team marked "not now" gives way to another of the pillar.
            let other = question_of_the_week(&engine, p, std::slice::from_ref(&q.id), 42).unwrap();
            let choices = engine
                .team_questions()
                .iter()
                .filter(|t| t.pillar == p)
                .count();
            if choices > 1 {
                assert_ne!(other.id, q.id);
            }
            assert_eq!(other.pillar, p);
        }
    }

    #[test]
    fn changes_agree_with_the_rounded_shares() {
        // 1 of 8 is 12.5%: shown as 13%, so a change from 0% is +13 pts.
        assert_eq!(pct(0.125), "13%");
        assert_eq!(change_pts(Some(0.125), Some(0.0)), "+13 pts");
        assert_eq!(change_pts(Some(0.125), Some(0.115)), "+1 pts");
    }

    #[test]
    fn feedback_is_counted_for_the_team() {
        let mut s = stats(mix(3, 1, 1, 0), mix(2, 1, 1, 0));
        let quiet = compose(&s, &Engine::builtin(), 1);
        assert!(!quiet.text.contains("marked helpful"), "{}", quiet.text);
        s.feedback = Feedback {
            helpful: 4,
            not_now: 1,
            corrections: 0,
        };
        let d = compose(&s, &Engine::builtin(), 1);
        assert!(
            d.text.contains("4 marked helpful, 1 \"not now\". "),
            "{}",
            d.text
        );
        assert!(!d.text.contains("corrected"), "{}", d.text);
        s.feedback.corrections = 2;
        let d = compose(&s, &Engine::builtin(), 1);
        assert!(
            d.text.contains(
                "4 marked helpful, 1 \"not now\", 2 readings corrected with \"not quite right\""
            ),
            "{}",
            d.text
        );
        // Corrections alone are worth the line.
        s.feedback = Feedback {
            corrections: 1,
            ..Feedback::default()
        };
        let d = compose(&s, &Engine::builtin(), 1);
        assert!(d.text.contains("1 reading corrected"), "{}", d.text);
    }

    #[test]
    fn limits_hold_with_long_accounts_and_every_theme() {
        let mut s = stats(mix(30, 10, 5, 5), mix(20, 10, 10, 5));
        s.themes = Theme::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, 100 + i as u64))
            .collect();
        let long = "Ünïcødé & <Sons> | Holdings ".repeat(12);
        s.spotlight = (0..5)
            .map(|i| SpotlightItem {
                channel_id: "C123".into(),
                message_ts: format!("1700000000.00000{i}"),
                account: Some(long.clone()),
                themes: Theme::ALL.to_vec(),
            })
            .collect();
        s.shared_reflections = 3;
        let d = compose(&s, &Engine::builtin(), 3);
        assert!(d.blocks.len() <= blocks::MAX_MESSAGE_BLOCKS);
        for b in &d.blocks {
            match b["type"].as_str().unwrap() {
                "header" => assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 150),
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(t.chars().count() <= 3000);
                    }
                    if let Some(fields) = b["fields"].as_array() {
                        assert!(fields.len() <= 10);
                        for f in fields {
                            assert!(f["text"].as_str().unwrap().chars().count() <= 2000);
                        }
                    }
                }
                "context" => assert!(b["elements"].as_array().unwrap().len() <= 10),
                "divider" => {}
                other => panic!("unexpected block {other}"),
            }
        }
        let json = all_text(&d);
        assert_eq!(
            json.matches("https://slack.com/archives/C123/p").count(),
            3,
            "three links at most"
        );
        assert!(json.contains("&lt;Sons&gt;"), "account names are escaped");
        assert!(!json.contains("<Sons>"));
        assert!(json.contains("3 reflections shared"));
        assert_eq!(
            json.matches("• ").count(),
            5 + 4 + 3,
            "top 5 customer themes, 4 seller signals, 3 links"
        );
    }

    #[test]
    fn nothing_names_a_person() {
        let mut s = stats(mix(3, 1, 0, 0), Mix::default());
        s.spotlight = vec![SpotlightItem {
            channel_id: "C9".into(),
            message_ts: "1700000000.123456".into(),
            account: None,
            themes: vec![Theme::Stakeholders],
        }];
        let d = compose(&s, &Engine::builtin(), 1);
        let json = all_text(&d);
        assert!(json.contains("<https://slack.com/archives/C9/p1700000000123456|an update> in <#C9> — stakeholders"), "{json}");
        assert!(!json.contains("<@"), "no user mentions");
        assert!(
            d.text
                .contains("an update (https://slack.com/archives/C9/p1700000000123456) in #C9"),
            "{}",
            d.text
        );
    }

    #[test]
    fn personal_digest_shows_own_mix_and_trend() {
        let s = stats(mix(2, 1, 1, 0), mix(1, 0, 1, 0));
        let p = PersonalStats {
            week: s.week,
            this_week: s.this_week,
            previous: s.previous,
            trend: s.trend.clone(),
        };
        let d = compose_personal(&p);
        assert!(d.text.contains("Your week"), "{}", d.text);
        assert!(
            d.text.contains("Your customer-centric share, last 8 weeks"),
            "{}",
            d.text
        );
        assert!(d.text.contains("2 (50%, ±0 pts)"), "{}", d.text);
    }
}
