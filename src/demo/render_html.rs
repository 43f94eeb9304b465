//! The demo's conversation as one self-contained HTML page, laid out the way Slack shows
//! it: channels in a sidebar, messages with threads, buttons and reactions, the DM, the
//! modal and the digest. Inline CSS, no external resources; every piece of text is
//! escaped.
//!
//! Opened with `#selfcheck` at the end of its URL, a small inline script checks that the
//! nudges and the digest are really visible (size, computed style, on screen, not
//! covered) and writes its verdict into `<pre id="selfcheck-result">`; the integration
//! test reads it back from headless Chromium.

use std::fmt::Write;

use serde_json::Value;

use super::DemoReport;
use super::fake_slack::{Author, Channel, Message, Workspace};
use super::render_text::{BlockView, Span, mrkdwn, view_blocks};
use super::script::{DIGEST_CHANNEL, has_buttons};

/// Escapes text for an HTML text node or a quoted attribute value (the one HTML escaper,
/// shared with the OAuth pages).
pub use crate::server::oauth::escape_html as escape;

/// mrkdwn spans as inline HTML. Only `http(s)` links become anchors.
fn spans_html(spans: &[Span]) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Span::Text {
                text,
                bold,
                italic,
                code,
            } => {
                let mut t = escape(text).replace('\n', "<br>");
                if *code {
                    t = format!("<code>{t}</code>");
                }
                if *italic {
                    t = format!("<em>{t}</em>");
                }
                if *bold {
                    t = format!("<strong>{t}</strong>");
                }
                out.push_str(&t);
            }
            Span::Link { url, label }
                if url.starts_with("https://") || url.starts_with("http://") =>
            {
                let _ = write!(
                    out,
                    "<a href=\"{}\" rel=\"noreferrer\">{}</a>",
                    escape(url),
                    escape(label)
                );
            }
            Span::Link { label, .. } => out.push_str(&escape(label)),
            Span::Mention(m) => {
                let _ = write!(out, "<span class=\"mention\">{}</span>", escape(m));
            }
        }
    }
    out
}

fn mrkdwn_html(ws: &Workspace, s: &str) -> String {
    spans_html(&mrkdwn(ws, s))
}

fn blocks_html(ws: &Workspace, blocks: &[BlockView]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            BlockView::Header(h) => {
                let _ = write!(out, "<div class=\"b-header\">{}</div>", escape(h));
            }
            BlockView::Section(s) => {
                let _ = write!(out, "<div class=\"b-section\">{}</div>", mrkdwn_html(ws, s));
            }
            BlockView::Fields(fields) => {
                out.push_str("<div class=\"b-fields\">");
                for f in fields {
                    let _ = write!(out, "<div>{}</div>", mrkdwn_html(ws, f));
                }
                out.push_str("</div>");
            }
            BlockView::Context(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| mrkdwn_html(ws, p)).collect();
                let _ = write!(out, "<div class=\"b-context\">{}</div>", parts.join(" · "));
            }
            BlockView::Buttons(buttons) => {
                out.push_str("<div class=\"b-actions\">");
                for (label, primary) in buttons {
                    let _ = write!(
                        out,
                        "<span class=\"btn{}\">{}</span>",
                        if *primary { " primary" } else { "" },
                        escape(label)
                    );
                }
                out.push_str("</div>");
            }
            BlockView::Divider => out.push_str("<hr class=\"b-divider\">"),
            BlockView::Input(label) => {
                let _ = write!(
                    out,
                    "<div class=\"b-input\"><label>{}</label><div class=\"field\"></div></div>",
                    escape(label)
                );
            }
            BlockView::Checkboxes(options) => {
                for o in options {
                    let _ = write!(out, "<div class=\"b-check\">☑ {}</div>", escape(o));
                }
            }
        }
    }
    out
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect()
}

/// A stable colour per author.
fn hue(key: &str) -> u32 {
    key.bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360
}

fn emoji(name: &str) -> String {
    match name {
        "seedling" => "🌱".to_owned(),
        "white_check_mark" => "✅".to_owned(),
        "eyes" => "👀".to_owned(),
        other => format!(":{other}:"),
    }
}

fn message_html(ws: &Workspace, m: &Message, check: Option<&str>) -> String {
    let who = ws.author_name(&m.author);
    let (avatar_style, badge) = match &m.author {
        Author::Cusp => (
            "background:#2eb67d".to_owned(),
            "<span class=\"badge\">APP</span>",
        ),
        Author::OtherBot(name) => (
            format!("background:hsl({},30%,45%)", hue(name)),
            "<span class=\"badge\">APP</span>",
        ),
        Author::Person(id) => (format!("background:hsl({},55%,45%)", hue(id)), ""),
    };
    let avatar = if m.author == Author::Cusp {
        "c".to_owned()
    } else {
        initials(&who)
    };
    let body = if m.blocks.is_null() {
        format!(
            "<div class=\"text\">{}</div>",
            escape(&m.text).replace('\n', "<br>")
        )
    } else {
        blocks_html(ws, &view_blocks(&m.blocks))
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<div class=\"msg{}\"{}><div class=\"avatar\" style=\"{avatar_style}\">{}</div><div class=\"content\">\
         <div class=\"meta\"><span class=\"who\">{}</span>{badge}<span class=\"day\">{}</span></div>{body}",
        if m.author == Author::Cusp {
            " from-cusp"
        } else {
            ""
        },
        check
            .map(|c| format!(" data-check=\"{c}\""))
            .unwrap_or_default(),
        escape(&avatar),
        escape(&who),
        escape(m.day.as_deref().unwrap_or("")),
    );
    if m.edited {
        out.push_str("<span class=\"edited\">(edited)</span>");
    }
    if !m.reactions.is_empty() {
        out.push_str("<div class=\"reactions\">");
        for r in &m.reactions {
            let _ = write!(
                out,
                "<span class=\"reaction\" title=\"cusp reacted with :{}:\">{} 1</span>",
                escape(r),
                escape(&emoji(r))
            );
        }
        out.push_str("</div>");
    }
    out
}

fn channel_html(ws: &Workspace, channel: &Channel) -> Option<String> {
    let top = ws.top_level(&channel.id);
    let notes = ws.ephemerals_in(&channel.id);
    if top.is_empty() && notes.is_empty() {
        return None;
    }
    let title = match &channel.dm_with {
        Some(_) => format!("{} · direct message with cusp", channel.name),
        None => format!("# {}", channel.name),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<section class=\"channel\" id=\"c-{}\"><h2>{}</h2>",
        escape(&channel.id),
        escape(&title)
    );
    let items = super::render_text::timeline(&top, &notes);
    for (_, message, note) in items {
        if let Some(m) = message {
            let check =
                (channel.id == DIGEST_CHANNEL && m.author == Author::Cusp).then_some("digest");
            out.push_str(&message_html(ws, m, check));
            let replies = ws.replies(&channel.id, &m.ts);
            if !replies.is_empty() {
                let _ = write!(
                    out,
                    "<div class=\"thread\"><div class=\"thread-label\">{} repl{}</div>",
                    replies.len(),
                    if replies.len() == 1 { "y" } else { "ies" }
                );
                for r in replies {
                    let check = (r.author == Author::Cusp && has_buttons(r)).then_some("nudge");
                    out.push_str(&message_html(ws, r, check));
                    out.push_str("</div></div>");
                }
                out.push_str("</div>");
            }
            out.push_str("</div></div>");
        }
        if let Some(i) = note {
            let n = notes[i];
            let who = ws.person(&n.user).map_or(n.user.as_str(), |p| p.name);
            let _ = write!(
                out,
                "<div class=\"ephemeral\"><div class=\"only\">👁 Only visible to {}</div>",
                escape(who)
            );
            if let Some(context) = &n.context {
                let _ = write!(out, "<div class=\"typed\">{}</div>", escape(context));
            }
            if n.blocks.is_null() {
                let _ = write!(
                    out,
                    "<div class=\"text\">{}</div>",
                    mrkdwn_html(ws, &n.text)
                );
            } else {
                out.push_str(&blocks_html(ws, &view_blocks(&n.blocks)));
            }
            out.push_str("</div>");
        }
    }
    out.push_str("</section>");
    Some(out)
}

fn views_html(ws: &Workspace) -> String {
    let mut out = String::new();
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
            .unwrap_or("Modal");
        let _ = write!(
            out,
            "<section class=\"channel\" id=\"modal-{}\"><h2>Modal opened for {}</h2><div class=\"modal\"><div class=\"modal-title\">{}</div>{}",
            escape(&view.id),
            escape(who),
            escape(title),
            blocks_html(
                ws,
                &view_blocks(view.view.get("blocks").unwrap_or(&Value::Null))
            )
        );
        let submit = view
            .view
            .pointer("/submit/text")
            .and_then(Value::as_str)
            .unwrap_or("Save");
        let _ = write!(
            out,
            "<div class=\"b-actions right\"><span class=\"btn\">Cancel</span><span class=\"btn primary\">{}</span></div></div>",
            escape(submit)
        );
        if let Some(answers) = &view.submitted {
            let _ = write!(
                out,
                "<div class=\"saved\"><strong>{} saved{}:</strong>",
                escape(who),
                if view.shared {
                    ", shared with the team digest"
                } else {
                    ""
                }
            );
            for (q, a) in answers {
                let _ = write!(
                    out,
                    "<div class=\"qa\"><div class=\"q\">{}</div><div class=\"a\">“{}”</div></div>",
                    escape(q),
                    escape(a)
                );
            }
            out.push_str("</div>");
        }
        out.push_str("</section>");
    }
    out
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.46 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1c1d;background:#fff}
.app{display:flex;min-height:100vh}
nav{width:240px;flex:none;background:#3f0e40;color:#cfc3cf;padding:16px 0;position:sticky;top:0;height:100vh;overflow:auto}
nav .team{color:#fff;font-weight:700;font-size:17px;padding:0 16px 12px;border-bottom:1px solid #5d2c5d}
nav .group{padding:14px 16px 4px;font-size:13px;opacity:.8}
nav a{display:block;color:#cfc3cf;text-decoration:none;padding:3px 16px 3px 26px}
nav a:hover{background:#350d36;color:#fff}
main{flex:1;min-width:0;padding:0 24px 48px}
.intro{padding:18px 0 8px;border-bottom:1px solid #ddd}
.intro h1{font-size:20px;margin:0 0 6px}
.intro p{margin:4px 0;color:#454245}
.figures{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}
.figures span{background:#f4ede4;border-radius:6px;padding:4px 10px;font-size:13px}
.channel{padding:8px 0 16px;border-bottom:1px solid #eee}
.channel h2{font-size:18px;margin:16px 0 8px}
.msg{display:flex;gap:10px;padding:6px 8px;border-radius:6px}
.msg:hover{background:#f8f8f8}
.avatar{width:36px;height:36px;border-radius:6px;color:#fff;font-weight:700;display:flex;align-items:center;justify-content:center;flex:none;font-size:14px}
.content{min-width:0;flex:1}
.meta .who{font-weight:900;margin-right:6px}
.meta .day{color:#616061;font-size:12px;margin-left:6px}
.badge{background:#e8e8e8;color:#616061;font-size:10px;font-weight:700;border-radius:3px;padding:1px 4px;vertical-align:1px}
.text,.b-section{white-space:normal;overflow-wrap:anywhere;margin:2px 0}
.edited{color:#616061;font-size:12px}
.reactions{margin-top:4px}
.reaction{display:inline-block;border:1px solid #1264a3;background:#e8f5fa;border-radius:12px;padding:0 8px;font-size:13px;color:#1264a3}
.thread{margin:6px 0 2px;border-left:3px solid #ddd;padding-left:10px}
.thread-label{color:#1264a3;font-weight:700;font-size:13px;margin:2px 0}
.from-cusp .b-section{margin:4px 0}
.b-header{font-weight:900;font-size:18px;margin:4px 0 6px}
.b-fields{display:grid;grid-template-columns:1fr 1fr;gap:6px 24px;margin:6px 0}
.b-context{color:#616061;font-size:13px;margin:4px 0}
.b-divider{border:0;border-top:1px solid #ddd;margin:10px 0}
.b-actions{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 2px}
.b-actions.right{justify-content:flex-end}
.btn{display:inline-block;border:1px solid #bbb;border-radius:4px;padding:3px 12px;font-weight:700;font-size:14px;background:#fff}
.btn.primary{background:#007a5a;border-color:#007a5a;color:#fff}
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 2px}
code{background:#f6f6f6;border:1px solid #ddd;border-radius:3px;padding:0 3px;font-size:13px}
.ephemeral{margin:6px 8px 6px 54px;background:#f8f8f8;border-left:3px solid #aaa;border-radius:4px;padding:6px 10px}
.ephemeral .only{color:#616061;font-size:12px}
.ephemeral .typed{font-family:ui-monospace,Menlo,monospace;font-size:13px;color:#454245;margin:2px 0}
.modal{max-width:520px;border:1px solid #ccc;border-radius:8px;box-shadow:0 4px 12px rgba(0,0,0,.12);padding:12px 16px;margin:6px 0}
.modal-title{font-weight:900;font-size:18px;margin-bottom:6px}
.b-input label{display:block;font-weight:700;margin-top:8px}
.b-input .field{height:54px;border:1px solid #bbb;border-radius:4px;margin-top:4px}
.saved{margin:10px 0;background:#f4faf6;border-radius:6px;padding:8px 12px}
.qa .q{font-weight:700;margin-top:6px}
.checks li{margin:4px 0}
.checks .bad{color:#b00020}
.checks .outcome{color:#454245}
#selfcheck-result{display:none}
"#;

/// Checks each `[data-check]` element is really visible and writes the verdict.
const SELFCHECK: &str = r#"
(function () {
  if (location.hash !== '#selfcheck') return;
  var expected = { nudge: 'Reflect', digest: null };
  var sparks = /[\u2581-\u2588]/;
  function why(el) {
    for (var e = el; e; e = e.parentElement) {
      var s = getComputedStyle(e);
      if (s.display === 'none') return 'display:none';
      if (parseFloat(s.opacity) < 0.1) return 'transparent';
    }
    var cs = getComputedStyle(el);
    if (cs.visibility !== 'visible') return 'visibility:' + cs.visibility;
    var r = el.getBoundingClientRect();
    if (r.width < 4 || r.height < 4) return 'no size';
    el.scrollIntoView({ block: 'center', inline: 'nearest' });
    r = el.getBoundingClientRect();
    var x = r.left + Math.min(r.width / 2, 60), y = r.top + Math.min(r.height / 2, 20);
    if (x < 0 || y < 0 || x > window.innerWidth || y > window.innerHeight) return 'off screen';
    var hit = document.elementFromPoint(x, y);
    if (!hit || !(hit === el || el.contains(hit))) return 'covered by ' + (hit ? hit.tagName : 'nothing');
    return null;
  }
  var result = { verdict: 'pass', found: {}, problems: [] };
  Object.keys(expected).forEach(function (kind) {
    var els = document.querySelectorAll('[data-check="' + kind + '"]');
    result.found[kind] = els.length;
    if (els.length === 0) result.problems.push(kind + ': missing');
    Array.prototype.forEach.call(els, function (el, i) {
      var problem = why(el);
      var shown = el.innerText || '';
      if (!problem && kind === 'nudge' && shown.indexOf(expected.nudge) < 0) problem = 'no visible Reflect button';
      if (!problem && kind === 'nudge' && shown.indexOf('?') < 0) problem = 'no visible question';
      if (!problem && kind === 'digest' && !sparks.test(shown)) problem = 'no visible sparkline';
      if (problem) result.problems.push(kind + ' #' + (i + 1) + ': ' + problem);
    });
  });
  if (result.problems.length) result.verdict = 'fail';
  var out = document.getElementById('selfcheck-result');
  out.setAttribute('data-verdict', result.verdict);
  out.textContent = JSON.stringify(result);
})();
"#;

/// The whole page.
pub fn page(report: &DemoReport) -> String {
    let ws = &report.workspace;
    let s = &report.summary;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>cusp demo · {}</title><style>{STYLE}</style></head><body><div class=\"app\"><nav>\
         <div class=\"team\">{}</div><div class=\"group\">Channels</div>",
        escape(super::fake_slack::TEAM_NAME),
        escape(super::fake_slack::TEAM_NAME)
    );
    for c in ws.channels.iter().filter(|c| c.dm_with.is_none()) {
        let _ = write!(
            out,
            "<a href=\"#c-{}\"># {}</a>",
            escape(&c.id),
            escape(&c.name)
        );
    }
    out.push_str("<div class=\"group\">Direct messages</div>");
    for c in ws.channels.iter().filter(|c| c.dm_with.is_some()) {
        let _ = write!(
            out,
            "<a href=\"#c-{}\">{}</a>",
            escape(&c.id),
            escape(&c.name)
        );
    }
    if !ws.views.is_empty() {
        out.push_str("<div class=\"group\">Modals</div>");
        for v in &ws.views {
            let _ = write!(out, "<a href=\"#modal-{}\">Reflect</a>", escape(&v.id));
        }
    }
    out.push_str("<div class=\"group\"><a href=\"#checks\" style=\"padding-left:0\">Checks</a></div></nav><main>");
    let _ = write!(
        out,
        "<div class=\"intro\"><h1>What cusp did in Slack</h1>\
         <p>A week in two deal channels, sent to the real cusp server over HTTP with signed requests; Slack's Web API was a stand-in on 127.0.0.1. Team <code>{}</code>, database <code>{}</code>.</p>\
         <div class=\"figures\"><span>{} messages from people</span><span>{} deal updates seen</span><span>{} observations logged</span><span>{} threaded nudges</span><span>{} reactions</span><span>{} DM</span><span>{} reflection saved</span><span>{} × 429 respected</span><span>digest {}</span></div></div>",
        escape(&report.team_id),
        escape(&report.database.display().to_string()),
        s.messages_from_people,
        s.deal_updates_in_channels,
        s.observations_logged,
        s.nudges,
        s.reactions,
        s.direct_messages,
        s.reflections_saved,
        s.rate_limits_respected,
        if s.digest_posted { "posted" } else { "missing" },
    );
    for channel in &ws.channels {
        if let Some(html) = channel_html(ws, channel) {
            out.push_str(&html);
        }
    }
    out.push_str(&views_html(ws));
    out.push_str("<section class=\"channel checks\" id=\"checks\"><h2>Each step, checked</h2><ul>");
    for step in &report.steps {
        let _ = write!(
            out,
            "<li class=\"{}\">{} <strong>{}</strong> · {}<br><span class=\"outcome\">→ {}</span>{}</li>",
            if step.problem.is_some() { "bad" } else { "ok" },
            if step.problem.is_some() { "✗" } else { "✓" },
            escape(&step.day),
            escape(&step.action),
            escape(&step.outcome),
            step.problem
                .as_deref()
                .map(|p| format!("<br><strong>Problem:</strong> {}", escape(p)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "</ul></section></main></div><pre id=\"selfcheck-result\"></pre><script>{SELFCHECK}</script></body></html>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        let ws = Workspace::default();
        let html = mrkdwn_html(
            &ws,
            "*a* &lt;b&gt; <javascript:alert(1)|click> <https://x.example/?a=1&amp;b=\"2\"|ok>",
        );
        assert_eq!(
            html,
            "<strong>a</strong> &lt;b&gt; click <a href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\" rel=\"noreferrer\">ok</a>"
        );
    }
}
