//! The demo's conversation as text for the terminal, and the Block Kit reading both
//! renderers share: blocks → [`BlockView`]s, mrkdwn → [`Span`]s.

use std::fmt::Write;

use serde_json::Value;

use super::DemoReport;
use super::fake_slack::{Author, Ephemeral, Message, Workspace};

/// One Block Kit block, reduced to what a reader sees.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockView {
    Header(String),
    /// mrkdwn text.
    Section(String),
    Fields(Vec<String>),
    Context(Vec<String>),
    /// (label, primary).
    Buttons(Vec<(String, bool)>),
    Divider,
    /// A modal's input: its label.
    Input(String),
    Checkboxes(Vec<String>),
}

fn text_of(v: &Value) -> String {
    v.get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Reads the blocks cusp sent; unknown block types are left out.
pub fn view_blocks(blocks: &Value) -> Vec<BlockView> {
    let mut out = Vec::new();
    for block in blocks.as_array().into_iter().flatten() {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "header" => out.push(BlockView::Header(
                block.get("text").map(text_of).unwrap_or_default(),
            )),
            "section" => {
                if let Some(text) = block.get("text") {
                    out.push(BlockView::Section(text_of(text)));
                }
                if let Some(fields) = block.get("fields").and_then(Value::as_array) {
                    out.push(BlockView::Fields(fields.iter().map(text_of).collect()));
                }
            }
            "context" => out.push(BlockView::Context(
                block
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(text_of)
                    .collect(),
            )),
            "actions" => out.push(BlockView::Buttons(
                block
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|e| e.get("type").and_then(Value::as_str) == Some("button"))
                    .map(|e| {
                        (
                            e.get("text").map(text_of).unwrap_or_default(),
                            e.get("style").and_then(Value::as_str) == Some("primary"),
                        )
                    })
                    .collect(),
            )),
            "divider" => out.push(BlockView::Divider),
            "input" => {
                let label = block.get("label").map(text_of).unwrap_or_default();
                let element = block.get("element");
                let is_checkboxes = element.and_then(|e| e.get("type")).and_then(Value::as_str)
                    == Some("checkboxes");
                if is_checkboxes {
                    let options = element
                        .and_then(|e| e.get("options"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|o| o.get("text").map(text_of).unwrap_or_default())
                        .collect();
                    out.push(BlockView::Checkboxes(options));
                } else {
                    out.push(BlockView::Input(label));
                }
            }
            _ => {}
        }
    }
    out
}

/// A run of mrkdwn, with links and mentions resolved against the workspace.
#[derive(Debug, Clone, PartialEq)]
pub enum Span {
    Text {
        text: String,
        bold: bool,
        italic: bool,
        code: bool,
    },
    Link {
        url: String,
        label: String,
    },
    /// `#channel-name` or `@Person Name`.
    Mention(String),
}

/// Slack mrkdwn → spans: `<url|label>`, `<#C…>`, `<@U…>`, `*bold*`, `_italic_`, `` `code` ``,
/// and the `&amp; &lt; &gt;` escapes. Unmatched markers stay literal.
pub fn mrkdwn(ws: &Workspace, s: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        styled(&rest[..open], &mut out);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            styled(&rest[open..], &mut out);
            return out;
        };
        let inner = &after[..close];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if let Some(id) = target.strip_prefix('#') {
            let name = ws
                .channel(id)
                .map_or_else(|| label.unwrap_or(id).to_owned(), |c| c.name.clone());
            out.push(Span::Mention(format!("#{name}")));
        } else if let Some(id) = target.strip_prefix('@') {
            let name = ws
                .person(id)
                .map_or_else(|| label.unwrap_or(id).to_owned(), |p| p.name.to_owned());
            out.push(Span::Mention(format!("@{name}")));
        } else if let Some(special) = target.strip_prefix('!') {
            out.push(Span::Mention(format!("@{}", label.unwrap_or(special))));
        } else {
            out.push(Span::Link {
                url: unescape(target),
                label: unescape(label.unwrap_or(target)),
            });
        }
        rest = &after[close + 1..];
    }
    styled(rest, &mut out);
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Splits plain mrkdwn text on `*`, `_` and `` ` `` pairs. A marker opens only before a
/// non-space and when a closing one follows on the same line; `_` only at word edges, so
/// `snake_case` stays as it is.
fn styled(s: &str, out: &mut Vec<Span>) {
    let chars: Vec<char> = unescape(s).chars().collect();
    let (mut bold, mut italic, mut code) = (false, false, false);
    let mut buf = String::new();
    let flush = |buf: &mut String, out: &mut Vec<Span>, bold, italic, code| {
        if !buf.is_empty() {
            out.push(Span::Text {
                text: std::mem::take(buf),
                bold,
                italic,
                code,
            });
        }
    };
    let edge = |c: Option<&char>| c.is_none_or(|c| !c.is_alphanumeric());
    let closes_later = |from: usize, marker: char| {
        chars[from + 1..]
            .iter()
            .take_while(|c| **c != '\n')
            .enumerate()
            .any(|(j, c)| {
                *c == marker
                    && (marker != '_' || edge(chars.get(from + 1 + j + 1)))
                    && chars.get(from + j).is_some_and(|p| !p.is_whitespace())
            })
    };
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i == 0 { None } else { chars.get(i - 1) };
        let next = chars.get(i + 1);
        let toggles = |open: bool| {
            if open {
                prev.is_some_and(|p| !p.is_whitespace()) && (c != '_' || edge(next))
            } else {
                next.is_some_and(|n| !n.is_whitespace())
                    && (c != '_' || edge(prev))
                    && closes_later(i, c)
            }
        };
        let flag = match c {
            '*' if !code => Some(&mut bold),
            '_' if !code => Some(&mut italic),
            '`' => Some(&mut code),
            _ => None,
        };
        match flag {
            Some(flag) if toggles(*flag) => {
                let (b, it, co) = (bold, italic, code);
                flush(&mut buf, out, b, it, co);
                match c {
                    '*' => bold = !bold,
                    '_' => italic = !italic,
                    _ => code = !code,
                }
            }
            _ => buf.push(c),
        }
    }
    flush(&mut buf, out, bold, italic, code);
}

/// Spans as plain text: links as `label (url)`.
pub fn plain(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text { text, .. } => text.clone(),
            Span::Link { url, label } if url == label => url.clone(),
            Span::Link { url, label } => format!("{label} ({url})"),
            Span::Mention(m) => m.clone(),
        })
        .collect()
}

/// All the visible text of some blocks, one line per line (for checks).
pub fn blocks_text(blocks: &Value) -> String {
    let ws = Workspace::default();
    let mut out = String::new();
    write_blocks(&ws, &view_blocks(blocks), "", &mut out);
    out
}

fn write_blocks(ws: &Workspace, blocks: &[BlockView], indent: &str, out: &mut String) {
    let mut line = |text: &str| {
        for l in text.lines() {
            let _ = writeln!(out, "{indent}{l}");
        }
    };
    for block in blocks {
        match block {
            BlockView::Header(h) => {
                line(h);
                line(&"═".repeat(h.chars().count().min(60)));
            }
            BlockView::Section(s) => line(&plain(&mrkdwn(ws, s))),
            BlockView::Fields(fields) => {
                for f in fields {
                    // "*Balanced*\n2 (22%)" reads best on one line; lists keep theirs.
                    let text = plain(&mrkdwn(ws, f));
                    match text.split_once('\n') {
                        Some((label, value))
                            if !value.contains('\n') && !value.starts_with('•') =>
                        {
                            line(&format!("{label}: {value}"));
                        }
                        _ => line(&text),
                    }
                }
            }
            BlockView::Context(parts) => {
                let texts: Vec<String> = parts.iter().map(|p| plain(&mrkdwn(ws, p))).collect();
                line(&texts.join(" · "));
            }
            BlockView::Buttons(buttons) => {
                let labels: Vec<String> = buttons.iter().map(|(l, _)| format!("[ {l} ]")).collect();
                line(&labels.join(" "));
            }
            BlockView::Divider => line("────────"),
            BlockView::Input(label) => line(&format!("{label}\n  [ ____________________ ]")),
            BlockView::Checkboxes(options) => {
                for o in options {
                    line(&format!("[x] {o}"));
                }
            }
        }
    }
}

fn emoji(name: &str) -> String {
    match name {
        "seedling" => "🌱".to_owned(),
        "white_check_mark" => "✅".to_owned(),
        "eyes" => "👀".to_owned(),
        other => format!(":{other}:"),
    }
}

fn write_message(ws: &Workspace, m: &Message, indent: &str, out: &mut String) {
    let who = ws.author_name(&m.author);
    let badge = match m.author {
        Author::Person(_) => "",
        Author::Cusp | Author::OtherBot(_) => " [APP]",
    };
    let when = m
        .day
        .as_deref()
        .map(|d| format!("{d} · "))
        .unwrap_or_default();
    let _ = writeln!(out, "{indent}{when}{who}{badge}");
    let body_indent = format!("{indent}  ");
    if m.blocks.is_null() {
        for l in m.text.lines() {
            let _ = writeln!(out, "{body_indent}{l}");
        }
    } else {
        write_blocks(ws, &view_blocks(&m.blocks), &body_indent, out);
    }
    if m.edited {
        let _ = writeln!(out, "{body_indent}(edited)");
    }
    for r in &m.reactions {
        let _ = writeln!(out, "{body_indent}{} 1 (cusp)", emoji(r));
    }
}

/// A channel's top-level messages and ephemeral notes (by index into `notes`) in the
/// order they appeared; both renderings walk a channel this way.
pub fn timeline<'a>(
    top: &[&'a Message],
    notes: &[&'a Ephemeral],
) -> Vec<(&'a str, Option<&'a Message>, Option<usize>)> {
    let mut items: Vec<(&str, Option<&Message>, Option<usize>)> = top
        .iter()
        .map(|m| (m.ts.as_str(), Some(*m), None))
        .chain(
            notes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.ts.as_str(), None, Some(i))),
        )
        .collect();
    items.sort_by_key(|(ts, _, _)| super::fake_slack::ts_key(ts));
    items
}

/// Every channel, its threads, reactions and notes, then the DMs and modals.
pub fn conversation(report: &DemoReport) -> String {
    let ws = &report.workspace;
    let mut out = String::new();
    for channel in &ws.channels {
        let top = ws.top_level(&channel.id);
        let notes = ws.ephemerals_in(&channel.id);
        if top.is_empty() && notes.is_empty() {
            continue;
        }
        let title = match &channel.dm_with {
            Some(_) => format!("Direct message · cusp → {}", channel.name),
            None => format!("#{}", channel.name),
        };
        let _ = writeln!(out, "\n{title}\n{}", "─".repeat(title.chars().count()));
        let items = timeline(&top, &notes);
        for (_, message, note) in items {
            if let Some(m) = message {
                write_message(ws, m, "", &mut out);
                let replies = ws.replies(&channel.id, &m.ts);
                if !replies.is_empty() {
                    let _ = writeln!(
                        out,
                        "  └─ thread ({} repl{})",
                        replies.len(),
                        if replies.len() == 1 { "y" } else { "ies" }
                    );
                    for r in replies {
                        write_message(ws, r, "     ", &mut out);
                    }
                }
            }
            if let Some(i) = note {
                let n = notes[i];
                let who = ws.person(&n.user).map_or(n.user.as_str(), |p| p.name);
                let _ = writeln!(out, "Only visible to {who} · cusp");
                if let Some(context) = &n.context {
                    let _ = writeln!(out, "  > {context}");
                }
                if n.blocks.is_null() {
                    for l in n.text.lines() {
                        let _ = writeln!(out, "  {l}");
                    }
                } else {
                    write_blocks(ws, &view_blocks(&n.blocks), "  ", &mut out);
                }
            }
        }
    }
    for view in &ws.views {
        let who = view
            .user
            .as_deref()
            .and_then(|u| ws.person(u))
            .map_or("someone", |p| p.name);
        let title = view
            .view
            .pointer("/title/text")
            .and_then(Value::as_str)
            .unwrap_or("modal");
        let heading = format!("Modal “{title}” opened for {who}");
        let _ = writeln!(out, "\n{heading}\n{}", "─".repeat(heading.chars().count()));
        write_blocks(
            ws,
            &view_blocks(view.view.get("blocks").unwrap_or(&Value::Null)),
            "  ",
            &mut out,
        );
        if let Some(answers) = &view.submitted {
            let _ = writeln!(
                out,
                "  → saved{}:",
                if view.shared {
                    ", shared with the team digest"
                } else {
                    ""
                }
            );
            for (q, a) in answers {
                let _ = writeln!(out, "    {q}\n      “{a}”");
            }
        }
    }
    out
}

/// One line per step, ✓ or ✗ with the reason.
pub fn steps(report: &DemoReport) -> String {
    let mut out = String::new();
    for step in &report.steps {
        let mark = if step.problem.is_some() { "✗" } else { "✓" };
        let _ = writeln!(
            out,
            "{mark} {:<11} {}\n    → {}",
            step.day, step.action, step.outcome
        );
        if let Some(problem) = &step.problem {
            let _ = writeln!(out, "    PROBLEM: {problem}");
        }
    }
    out
}

pub fn summary(report: &DemoReport) -> String {
    let s = &report.summary;
    let rows = [
        (
            "messages from people in the deal channels",
            s.messages_from_people.to_string(),
        ),
        (
            "deal updates cusp saw in them",
            s.deal_updates_in_channels.to_string(),
        ),
        (
            "observations logged (database)",
            s.observations_logged.to_string(),
        ),
        ("threaded nudges", s.nudges.to_string()),
        ("reactions", s.reactions.to_string()),
        ("direct messages (CRM)", s.direct_messages.to_string()),
        ("notes only one person saw", s.ephemeral_notes.to_string()),
        ("reflections saved", s.reflections_saved.to_string()),
        (
            "429s answered / Retry-After respected",
            format!("{} / {}", s.rate_limits_answered, s.rate_limits_respected),
        ),
        (
            "weekly digest posted",
            if s.digest_posted { "yes" } else { "no" }.to_owned(),
        ),
        ("Slack Web API calls cusp made", s.slack_calls.to_string()),
    ];
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<width$}  {value}");
    }
    out
}

/// The whole printout of `cusp demo`.
pub fn report(report: &DemoReport, html: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cusp demo: the real server on {} with a stand-in Slack Web API at {}",
        report.server_url, report.slack_api_url
    );
    let _ = writeln!(
        out,
        "database: {} (SQLite, fresh for this run)",
        report.database.display()
    );
    let _ = writeln!(out, "\n=== What cusp did in Slack ===");
    out.push_str(&conversation(report));
    let _ = writeln!(
        out,
        "\n=== Each step, checked against the stand-in's records and the database ==="
    );
    out.push_str(&steps(report));
    let _ = writeln!(
        out,
        "\n=== Summary ({:.1} s) ===",
        report.elapsed.as_secs_f64()
    );
    out.push_str(&summary(report));
    let _ = writeln!(
        out,
        "\nThe database stays at {}. Look inside with:",
        report.database.display()
    );
    let _ = writeln!(out, "  {}", report.export_command());
    let _ = writeln!(
        out,
        "  cusp digest preview --team {} --database-url sqlite://{}",
        report.team_id,
        report.database.display()
    );
    if let Some(path) = html {
        let _ = writeln!(out, "The same conversation as a page: {}", path.display());
    }
    let _ = writeln!(
        out,
        "Ready for a real workspace? See README.md, \"Create the Slack app\"."
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(t: &str, bold: bool, italic: bool) -> Span {
        Span::Text {
            text: t.to_owned(),
            bold,
            italic,
            code: false,
        }
    }

    #[test]
    fn mrkdwn_reads_bold_italic_links_and_escapes() {
        let ws = crate::demo::script::workspace();
        let spans = mrkdwn(
            &ws,
            "*Hi* _there_ in <#C0DEALSNA> &amp; <https://x.example/a|a link> snake_case",
        );
        assert_eq!(
            spans,
            vec![
                text("Hi", true, false),
                text(" ", false, false),
                text("there", false, true),
                text(" in ", false, false),
                Span::Mention("#deals-na".into()),
                text(" & ", false, false),
                Span::Link {
                    url: "https://x.example/a".into(),
                    label: "a link".into()
                },
                text(" snake_case", false, false),
            ]
        );
    }

    #[test]
    fn unmatched_markers_stay_literal() {
        let ws = Workspace::default();
        assert_eq!(
            plain(&mrkdwn(&ws, "5 * 3 and a_b and *open")),
            "5 * 3 and a_b and *open"
        );
    }
}
