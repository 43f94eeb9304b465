//! Slack markup and text normalisation.
//!
//! The matcher works on a *normalised* copy of the text (lower-cased, whitespace collapsed,
//! dashes and underscores turned into spaces, curly quotes straightened, Slack markup removed).
//! Every byte of that copy remembers the original character it came from, so evidence
//! offsets always point into the ORIGINAL text, on character boundaries.

/// The normalised view of one message.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// Lower-cased, markup-free text the lexicon is matched against.
    pub norm: String,
    /// For each byte of `norm`: the original byte span of the char it came from.
    pub spans: Vec<(usize, usize)>,
    /// `:emoji:` codes found, with their original byte span (name without colons).
    pub emojis: Vec<(String, usize, usize)>,
}

impl Prepared {
    /// Original byte span of the normalised byte range `[s, e)`.
    pub fn original_span(&self, s: usize, e: usize) -> (usize, usize) {
        (self.spans[s].0, self.spans[e - 1].1)
    }
}

/// Builds the normalised view, skipping markup that is not prose.
pub(crate) fn prepare(text: &str) -> Prepared {
    let mut b = Builder::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut line_start = true;
    // Searches that failed, remembered so that a run of unclosed `<` or backticks costs
    // one scan, not one per character (which would be quadratic in the text length).
    // `<` without `>` before this newline position (or the end of the text):
    let mut unclosed_angle_until = 0usize;
    // No closing fence anywhere after these positions:
    let mut no_fence_after = [usize::MAX; 2];
    while i < bytes.len() {
        let c = bytes[i];
        // Block quote marker at line start: the quoted words are kept (they are usually the
        // customer's or a colleague's words), only the marker goes.
        if line_start {
            line_start = false;
            if text[i..].starts_with("&gt;") {
                i += 4;
                continue;
            }
            if c == b'>' {
                i += 1;
                continue;
            }
        }
        match c {
            b'`' => {
                // Code block or inline code: not prose, skipped entirely (acts as a clause break).
                let (fence, kind) = if text[i..].starts_with("```") {
                    ("```", 0)
                } else {
                    ("`", 1)
                };
                let from = i + fence.len();
                let close = if from >= no_fence_after[kind] {
                    None
                } else {
                    text[from..].find(fence)
                };
                if let Some(close) = close {
                    b.newline(i);
                    i = from + close + fence.len();
                    continue;
                }
                no_fence_after[kind] = no_fence_after[kind].min(from);
                b.push_char('`', i, i + 1);
                i += 1;
            }
            b'<' => {
                // Slack escapes literal '<' as &lt;, so '<…>' is always markup.
                let close = if i < unclosed_angle_until {
                    None
                } else {
                    let end = text[i + 1..]
                        .find(['>', '\n'])
                        .map_or(bytes.len(), |p| p + i + 1);
                    if end == bytes.len() || bytes[end] == b'\n' {
                        unclosed_angle_until = end;
                        None
                    } else {
                        Some(end)
                    }
                };
                if let Some(close) = close {
                    let inner = &text[i + 1..close];
                    let is_ref =
                        inner.starts_with('@') || inner.starts_with('!') || inner.starts_with('#');
                    match inner.find('|') {
                        // A link label is prose the author wrote; mentions and channels are not.
                        Some(bar) if !is_ref => {
                            b.space(i);
                            let label_start = i + 1 + bar + 1;
                            push_plain(&mut b, text, label_start, close);
                            b.space(close);
                        }
                        _ => b.space(i),
                    }
                    i = close + 1;
                    continue;
                }
                b.push_char('<', i, i + 1);
                i += 1;
            }
            b':' => {
                if let Some(len) = emoji_len(&bytes[i..])
                    && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                {
                    b.emojis
                        .push((text[i + 1..i + len - 1].to_string(), i, i + len));
                    b.space(i);
                    i += len;
                    continue;
                }
                b.push_char(':', i, i + 1);
                i += 1;
            }
            b'&' => {
                let (ch, len) = if text[i..].starts_with("&amp;") {
                    ('&', 5)
                } else if text[i..].starts_with("&lt;") {
                    ('<', 4)
                } else if text[i..].starts_with("&gt;") {
                    ('>', 4)
                } else {
                    ('&', 1)
                };
                b.push_char(ch, i, i + len);
                i += len;
            }
            // Fast path for the bulk of prose: lower-case ASCII letters need no mapping.
            b'a'..=b'z' | b'A'..=b'Z' if b.pending.is_none() => {
                b.digit_run_end = None;
                b.out.norm.push(c.to_ascii_lowercase() as char);
                b.out.spans.push((i, i + 1));
                i += 1;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                let len = ch.len_utf8();
                // A pasted emoji means what its Slack code means, so one `:fire:` lexicon
                // entry covers both forms.
                if let Some(name) = emoji_name(ch) {
                    b.emojis.push((name.to_string(), i, i + len));
                    b.space(i);
                    i += len;
                    continue;
                }
                if ch == '\n' {
                    line_start = true;
                }
                b.push_char(ch, i, i + len);
                i += len;
            }
        }
    }
    b.finish()
}

/// The Slack code of the few pictographs that carry deal meaning when pasted as characters
/// (Slack itself sends `:fire:`; other clients and copied text carry the character).
fn emoji_name(ch: char) -> Option<&'static str> {
    Some(match ch {
        '\u{1F525}' => "fire",
        '\u{1F4B0}' => "moneybag",
        '\u{1F4B8}' => "money_with_wings",
        '\u{1F911}' => "money_mouth_face",
        '\u{1F91D}' => "handshake",
        '\u{1F389}' => "tada",
        // Traffic-light and flag marks of a renewal list ("🔴 two therapists left").
        '\u{1F6A9}' => "triangular_flag_on_post",
        '\u{1F534}' => "red_circle",
        '\u{1F62C}' => "grimacing",
        _ => return None,
    })
}

/// Length in bytes of an `:emoji_code:` at the start of `b`, if there is one.
fn emoji_len(b: &[u8]) -> Option<usize> {
    let mut j = 1;
    let mut has_letter = false;
    while j < b.len() && j < 64 {
        let c = b[j];
        if c == b':' {
            return (j > 1 && has_letter).then_some(j + 1);
        }
        if c.is_ascii_lowercase() {
            has_letter = true;
        } else if !(c.is_ascii_digit() || c == b'_' || c == b'+' || c == b'-' || c == b'\'') {
            return None;
        }
        j += 1;
    }
    None
}

fn push_plain(b: &mut Builder, text: &str, from: usize, to: usize) {
    for (off, ch) in text[from..to].char_indices() {
        b.push_char(ch, from + off, from + off + ch.len_utf8());
    }
}

struct Builder {
    out: Prepared,
    /// Pending collapsed whitespace: None, Some(false) = space, Some(true) = newline.
    pending: Option<(bool, usize)>,
    emojis: Vec<(String, usize, usize)>,
    /// Original end of the digit run just written, so a run collapses into one `0`.
    digit_run_end: Option<usize>,
}

impl Builder {
    fn with_capacity(n: usize) -> Self {
        Builder {
            out: Prepared {
                norm: String::with_capacity(n),
                spans: Vec::with_capacity(n),
                emojis: Vec::new(),
            },
            pending: None,
            emojis: Vec::new(),
            digit_run_end: None,
        }
    }

    fn space(&mut self, at: usize) {
        self.digit_run_end = None;
        if self.pending.is_none() {
            self.pending = Some((false, at));
        }
    }

    fn newline(&mut self, at: usize) {
        self.digit_run_end = None;
        self.pending = Some((true, at));
    }

    fn push_char(&mut self, ch: char, start: usize, end: usize) {
        let ch = match ch {
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => return self.newline(start),
            c if c.is_whitespace() => return self.space(start),
            // Dashes and underscores join words in many spellings ("go-live", "closed_won").
            '-' | '_' | '\u{2010}'..='\u{2015}' => return self.space(start),
            '\u{2018}' | '\u{2019}' | '\u{02BC}' | '`' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            c => c,
        };
        if let Some((nl, at)) = self.pending.take()
            && !self.out.norm.is_empty()
        {
            self.raw(if nl { '\n' } else { ' ' }, at, at);
        }
        if ch.is_ascii_digit() {
            // Every number becomes `0` so the lexicon can say "0% off" or "q0" once for all
            // numbers; the `0` maps back to the whole run of digits.
            if self.digit_run_end == Some(start) {
                if let Some(last) = self.out.spans.last_mut() {
                    last.1 = end;
                }
            } else {
                self.raw('0', start, end);
            }
            self.digit_run_end = Some(end);
            return;
        }
        self.digit_run_end = None;
        if ch.is_ascii() {
            self.raw(ch.to_ascii_lowercase(), start, end);
        } else {
            for lc in ch.to_lowercase() {
                self.raw(lc, start, end);
            }
        }
    }

    fn raw(&mut self, ch: char, start: usize, end: usize) {
        if ch.is_ascii() {
            self.out.norm.push(ch);
            self.out.spans.push((start, end));
            return;
        }
        let mut buf = [0u8; 4];
        let s = ch.encode_utf8(&mut buf);
        self.out.norm.push_str(s);
        for _ in 0..s.len() {
            self.out.spans.push((start, end));
        }
    }

    fn finish(mut self) -> Prepared {
        self.out.emojis = self.emojis;
        self.out
    }
}

/// Normalises a lexicon phrase exactly like message text, so the two always line up.
pub(crate) fn normalise_phrase(phrase: &str) -> String {
    let p = prepare(phrase);
    p.norm.trim().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_removed_and_offsets_map_back() {
        let t =
            "Hi <@U123> see <https://x.io/a|the Deal> in <#C1|deals> :fire: `code` &amp; Go-Live";
        let p = prepare(t);
        assert_eq!(p.norm, "hi see the deal in\n& go live");
        let q = prepare("Q3 at 104%");
        assert_eq!(q.norm, "q0 at 0%");
        assert_eq!(q.original_span(6, 7), (6, 9));
        let s = p.norm.find("the deal").unwrap();
        let (a, b) = p.original_span(s, s + 8);
        assert_eq!(&t[a..b], "the Deal");
        assert_eq!(p.emojis[0].0, "fire");
    }

    #[test]
    fn pasted_emoji_reads_as_its_slack_code() {
        let t = "\u{1F525} need this one";
        let p = prepare(t);
        assert_eq!(p.norm, "need this one");
        assert_eq!(p.emojis, vec![("fire".to_string(), 0, 4)]);
    }

    #[test]
    fn unicode_lowercasing_keeps_boundaries() {
        let t = "İSTANBUL Straße café";
        let p = prepare(t);
        for i in 0..p.norm.len() {
            assert!(t.is_char_boundary(p.spans[i].0) && t.is_char_boundary(p.spans[i].1));
        }
    }
}
