//! Block Kit builders that keep every field within Slack's limits (SLACK.md §2.10), so a
//! long user-supplied string degrades into a truncated message instead of an
//! `invalid_blocks` error and a lost post.
//!
//! Limits count characters, and truncation happens on `char` boundaries, so multibyte
//! text never panics. Human-readable text that was cut ends with "…". Machine strings
//! (`block_id`, `action_id`, `value`, `callback_id`, `private_metadata`) are cut without
//! a marker — a marker doesn't help a machine — and a warning is logged, because a cut id
//! is a bug in the caller.
//!
//! Sources for the limits: https://docs.slack.dev/reference/block-kit/blocks,
//! https://docs.slack.dev/reference/block-kit/block-elements/checkboxes-element,
//! https://docs.slack.dev/reference/block-kit/composition-objects/option-object,
//! https://docs.slack.dev/reference/block-kit/block-elements/radio-button-group-element,
//! https://docs.slack.dev/reference/block-kit/block-elements/multi-select-menu-element,
//! https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element,
//! https://docs.slack.dev/reference/views/modal-views (title/submit/close ≤ 24,
//! private_metadata ≤ 3000, callback_id ≤ 255, 100 blocks).

use serde_json::{Value, json};

/// Blocks in one message.
pub const MAX_MESSAGE_BLOCKS: usize = 50;
/// Blocks in a modal or Home tab.
pub const MAX_MODAL_BLOCKS: usize = 100;
/// `block_id` and `action_id`, and a view's `callback_id`.
pub const MAX_ID_CHARS: usize = 255;
/// Header block text (plain_text).
pub const MAX_HEADER_CHARS: usize = 150;
/// Section block `text`, and any other text object.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Section `fields`: count and length of each.
pub const MAX_SECTION_FIELDS: usize = 10;
pub const MAX_FIELD_CHARS: usize = 2000;
/// Context block elements.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Actions block elements.
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
/// Button text and value.
pub const MAX_BUTTON_TEXT_CHARS: usize = 75;
pub const MAX_BUTTON_VALUE_CHARS: usize = 2000;
/// Input block label.
pub const MAX_LABEL_CHARS: usize = 2000;
/// Checkboxes and radio buttons: options per element, option text and option value.
pub const MAX_CHECKBOX_OPTIONS: usize = 10;
/// Options in a static (multi-)select menu.
pub const MAX_SELECT_OPTIONS: usize = 100;
/// Select menu placeholder text.
pub const MAX_PLACEHOLDER_CHARS: usize = 150;
/// What a `plain_text_input` accepts.
pub const MAX_TEXT_INPUT_CHARS: usize = 3000;
pub const MAX_OPTION_TEXT_CHARS: usize = 75;
pub const MAX_OPTION_VALUE_CHARS: usize = 150;
/// Modal title, submit and close button texts.
pub const MAX_MODAL_TITLE_CHARS: usize = 24;
/// Modal `private_metadata`.
pub const MAX_PRIVATE_METADATA_CHARS: usize = 3000;

const ELLIPSIS: char = '…';

/// Cuts `text` to at most `max` characters, ending with "…" when something was removed.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) if max == 0 => String::new(),
        Some(_) => {
            // Keep `max - 1` chars plus the ellipsis. `nth` gives a byte offset on a char
            // boundary, so slicing cannot panic.
            let end = text
                .char_indices()
                .nth(max - 1)
                .map_or(text.len(), |(i, _)| i);
            let mut out = String::with_capacity(end + ELLIPSIS.len_utf8());
            out.push_str(&text[..end]);
            out.push(ELLIPSIS);
            out
        }
    }
}

/// Like [`truncate`] for mrkdwn: also drops a trailing half-cut entity such as `&am`, so
/// an escaped `&amp;` never renders as a stray "&am…".
fn truncate_mrkdwn(text: &str, max: usize) -> String {
    let cut = truncate(text, max);
    if cut.len() == text.len() {
        return cut;
    }
    let body = cut.strip_suffix(ELLIPSIS).unwrap_or(&cut);
    match body.rfind('&') {
        Some(amp) if !body[amp..].contains(';') && body.len() - amp <= "&amp".len() => {
            format!("{}{ELLIPSIS}", &body[..amp])
        }
        _ => cut,
    }
}

/// Cuts a machine string (id, value, metadata) without adding a marker.
fn truncate_id(kind: &str, id: &str, max: usize) -> String {
    match id.char_indices().nth(max) {
        None => id.to_owned(),
        Some((end, _)) => {
            tracing::warn!(kind, max, "Block Kit {kind} too long; truncated");
            id[..end].to_owned()
        }
    }
}

fn keep_first(kind: &str, mut items: Vec<Value>, max: usize) -> Vec<Value> {
    if items.len() > max {
        tracing::warn!(
            kind,
            max,
            dropped = items.len() - max,
            "too many Block Kit {kind}; extra dropped"
        );
        items.truncate(max);
    }
    items
}

/// Escapes the three characters Slack's mrkdwn treats as control characters, so user
/// text can't form links or mentions (`<!channel>`). Apply before passing to `section`.
pub fn escape_mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

fn plain_text(text: &str, max: usize) -> Value {
    json!({ "type": "plain_text", "text": truncate(text, max), "emoji": true })
}

fn mrkdwn(text: &str, max: usize) -> Value {
    json!({ "type": "mrkdwn", "text": truncate_mrkdwn(text, max) })
}

pub fn header(text: &str) -> Value {
    json!({ "type": "header", "text": plain_text(text, MAX_HEADER_CHARS) })
}

/// A section with mrkdwn text. Escape user-provided parts with [`escape_mrkdwn`] first.
pub fn section(text: &str) -> Value {
    json!({ "type": "section", "text": mrkdwn(text, MAX_SECTION_CHARS) })
}

/// A section laid out as a two-column grid of mrkdwn fields.
pub fn section_fields(fields: &[&str]) -> Value {
    let fields: Vec<Value> = fields.iter().map(|f| mrkdwn(f, MAX_FIELD_CHARS)).collect();
    json!({ "type": "section", "fields": keep_first("section fields", fields, MAX_SECTION_FIELDS) })
}

/// Small grey mrkdwn text, one element per string.
pub fn context(elements: &[&str]) -> Value {
    let elements: Vec<Value> = elements
        .iter()
        .map(|e| mrkdwn(e, MAX_SECTION_CHARS))
        .collect();
    json!({ "type": "context", "elements": keep_first("context elements", elements, MAX_CONTEXT_ELEMENTS) })
}

pub fn divider() -> Value {
    json!({ "type": "divider" })
}

/// A row of interactive elements, typically [`button`]s.
pub fn actions(block_id: &str, elements: Vec<Value>) -> Value {
    json!({
        "type": "actions",
        "block_id": truncate_id("block_id", block_id, MAX_ID_CHARS),
        "elements": keep_first("actions elements", elements, MAX_ACTIONS_ELEMENTS),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonStyle {
    Primary,
    Danger,
}

pub fn button(text: &str, action_id: &str, value: &str, style: Option<ButtonStyle>) -> Value {
    let mut button = json!({
        "type": "button",
        "text": plain_text(text, MAX_BUTTON_TEXT_CHARS),
        "action_id": truncate_id("action_id", action_id, MAX_ID_CHARS),
        "value": truncate_id("button value", value, MAX_BUTTON_VALUE_CHARS),
    });
    if let (Some(style), Some(obj)) = (style, button.as_object_mut()) {
        let style = match style {
            ButtonStyle::Primary => "primary",
            ButtonStyle::Danger => "danger",
        };
        obj.insert("style".into(), Value::from(style));
    }
    button
}

/// A required free-text input for a modal; read it back with `ViewState::text_value`.
pub fn plain_input(block_id: &str, action_id: &str, label: &str, multiline: bool) -> Value {
    json!({
        "type": "input",
        "block_id": truncate_id("block_id", block_id, MAX_ID_CHARS),
        "label": plain_text(label, MAX_LABEL_CHARS),
        "element": {
            "type": "plain_text_input",
            "action_id": truncate_id("action_id", action_id, MAX_ID_CHARS),
            "multiline": multiline,
        },
    })
}

/// `input` (a modal input block) may be left empty.
pub fn optional(mut input: Value) -> Value {
    input["optional"] = Value::Bool(true);
    input
}

/// A checkbox group for a modal; `options` are `(label, value)` pairs. Read the ticked
/// values back with `ViewState::selected_values`.
pub fn checkboxes(
    block_id: &str,
    action_id: &str,
    label: &str,
    options: &[(&str, &str)],
    optional: bool,
) -> Value {
    let options: Vec<Value> = options
        .iter()
        .map(|(text, value)| {
            json!({
                "text": plain_text(text, MAX_OPTION_TEXT_CHARS),
                "value": truncate_id("option value", value, MAX_OPTION_VALUE_CHARS),
            })
        })
        .collect();
    json!({
        "type": "input",
        "block_id": truncate_id("block_id", block_id, MAX_ID_CHARS),
        "optional": optional,
        "label": plain_text(label, MAX_LABEL_CHARS),
        "element": {
            "type": "checkboxes",
            "action_id": truncate_id("action_id", action_id, MAX_ID_CHARS),
            "options": keep_first("checkbox options", options, MAX_CHECKBOX_OPTIONS),
        },
    })
}

fn options(items: &[(&str, &str)], max: usize) -> Vec<Value> {
    let options = items
        .iter()
        .map(|(text, value)| {
            json!({
                "text": plain_text(text, MAX_OPTION_TEXT_CHARS),
                "value": truncate_id("option value", value, MAX_OPTION_VALUE_CHARS),
            })
        })
        .collect();
    keep_first("options", options, max)
}

fn input(block_id: &str, label: &str, optional: bool, element: Value) -> Value {
    json!({
        "type": "input",
        "block_id": truncate_id("block_id", block_id, MAX_ID_CHARS),
        "optional": optional,
        "label": plain_text(label, MAX_LABEL_CHARS),
        "element": element,
    })
}

/// A required radio-button group for a modal, `initial` (a value) preselected. Read the
/// choice back with `ViewState::selected_value`.
pub fn radio_buttons(
    block_id: &str,
    action_id: &str,
    label: &str,
    items: &[(&str, &str)],
    initial: Option<&str>,
) -> Value {
    let options = options(items, MAX_CHECKBOX_OPTIONS);
    let mut element = json!({
        "type": "radio_buttons",
        "action_id": truncate_id("action_id", action_id, MAX_ID_CHARS),
        "options": options,
    });
    let chosen = initial.and_then(|v| options.iter().find(|o| o["value"] == v));
    if let (Some(chosen), Some(obj)) = (chosen, element.as_object_mut()) {
        obj.insert("initial_option".into(), chosen.clone());
    }
    input(block_id, label, false, element)
}

/// A multi-select menu of static options for a modal (type-ahead helps with long lists).
/// Read the chosen values back with `ViewState::selected_values`.
pub fn multi_select(
    block_id: &str,
    action_id: &str,
    label: &str,
    placeholder: &str,
    items: &[(&str, &str)],
    optional: bool,
) -> Value {
    input(
        block_id,
        label,
        optional,
        json!({
            "type": "multi_static_select",
            "action_id": truncate_id("action_id", action_id, MAX_ID_CHARS),
            "placeholder": plain_text(placeholder, MAX_PLACEHOLDER_CHARS),
            "options": options(items, MAX_SELECT_OPTIONS),
        }),
    )
}

/// An optional multi-line text input that accepts at most [`MAX_TEXT_INPUT_CHARS`].
pub fn optional_text_input(block_id: &str, action_id: &str, label: &str, hint: &str) -> Value {
    let mut block = input(
        block_id,
        label,
        true,
        json!({
            "type": "plain_text_input",
            "action_id": truncate_id("action_id", action_id, MAX_ID_CHARS),
            "multiline": true,
            "max_length": MAX_TEXT_INPUT_CHARS,
        }),
    );
    if let Some(obj) = block.as_object_mut() {
        obj.insert("hint".into(), plain_text(hint, MAX_LABEL_CHARS));
    }
    block
}

/// A modal view for `views.open`. `private_metadata` round-trips to the
/// `view_submission`; a cut one would be corrupt, so keep it well under the limit.
pub fn modal(
    callback_id: &str,
    title: &str,
    submit: &str,
    close: &str,
    blocks: Vec<Value>,
    private_metadata: &str,
) -> Value {
    json!({
        "type": "modal",
        "callback_id": truncate_id("callback_id", callback_id, MAX_ID_CHARS),
        "title": plain_text(title, MAX_MODAL_TITLE_CHARS),
        "submit": plain_text(submit, MAX_MODAL_TITLE_CHARS),
        "close": plain_text(close, MAX_MODAL_TITLE_CHARS),
        "blocks": keep_first("modal blocks", blocks, MAX_MODAL_BLOCKS),
        "private_metadata": truncate_id("private_metadata", private_metadata, MAX_PRIVATE_METADATA_CHARS),
    })
}

/// The `blocks` of a message, keeping at most 50.
pub fn message_blocks(blocks: Vec<Value>) -> Vec<Value> {
    keep_first("message blocks", blocks, MAX_MESSAGE_BLOCKS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// 4-byte, 3-byte and 2-byte characters, so a byte-based cut would panic.
    fn long(chars: usize) -> String {
        "🦀日é".chars().cycle().take(chars).collect()
    }

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap().chars().count()
    }

    #[test]
    fn truncate_keeps_short_text_and_marks_cuts() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello!", 5), "hell…");
        assert_eq!(truncate("🦀🦀🦀", 2), "🦀…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn header_is_cut_to_150_chars() {
        let h = header(&long(400));
        assert_eq!(chars(&h["text"]["text"]), MAX_HEADER_CHARS);
        assert!(h["text"]["text"].as_str().unwrap().ends_with('…'));
        assert_eq!(h["text"]["type"], "plain_text");
        assert_eq!(header("Weekly digest")["text"]["text"], "Weekly digest");
    }

    #[test]
    fn section_is_cut_to_3000_chars() {
        let s = section(&long(5000));
        assert_eq!(chars(&s["text"]["text"]), MAX_SECTION_CHARS);
        assert_eq!(s["text"]["type"], "mrkdwn");
    }

    #[test]
    fn section_cut_never_leaves_half_an_entity() {
        let text = format!("{}{}", "a".repeat(2998), escape_mrkdwn("& more"));
        let cut = section(&text)["text"]["text"].as_str().unwrap().to_owned();
        assert!(cut.ends_with("aa…"), "{}", &cut[cut.len() - 10..]);
    }

    #[test]
    fn section_fields_are_capped_in_count_and_length() {
        let field = long(2500);
        let fields: Vec<&str> = std::iter::repeat_n(field.as_str(), 12).collect();
        let s = section_fields(&fields);
        let arr = s["fields"].as_array().unwrap();
        assert_eq!(arr.len(), MAX_SECTION_FIELDS);
        assert!(arr.iter().all(|f| chars(&f["text"]) == MAX_FIELD_CHARS));
    }

    #[test]
    fn context_keeps_ten_elements() {
        let text = long(4000);
        let elems: Vec<&str> = std::iter::repeat_n(text.as_str(), 11).collect();
        let c = context(&elems);
        assert_eq!(
            c["elements"].as_array().unwrap().len(),
            MAX_CONTEXT_ELEMENTS
        );
        assert_eq!(chars(&c["elements"][0]["text"]), MAX_SECTION_CHARS);
    }

    #[test]
    fn button_fields_respect_limits() {
        let b = button(
            &long(100),
            &long(300),
            &long(2100),
            Some(ButtonStyle::Primary),
        );
        assert_eq!(chars(&b["text"]["text"]), MAX_BUTTON_TEXT_CHARS);
        assert_eq!(chars(&b["action_id"]), MAX_ID_CHARS);
        assert_eq!(chars(&b["value"]), MAX_BUTTON_VALUE_CHARS);
        assert!(
            !b["value"].as_str().unwrap().ends_with('…'),
            "machine strings get no marker"
        );
        assert_eq!(b["style"], "primary");
        assert!(button("Ok", "ok", "1", None).get("style").is_none());
        assert_eq!(
            button("No", "no", "0", Some(ButtonStyle::Danger))["style"],
            "danger"
        );
    }

    #[test]
    fn actions_keep_25_elements_and_cut_block_id() {
        let buttons = (0..30)
            .map(|i| button("b", &format!("a{i}"), "v", None))
            .collect();
        let a = actions(&long(300), buttons);
        assert_eq!(
            a["elements"].as_array().unwrap().len(),
            MAX_ACTIONS_ELEMENTS
        );
        assert_eq!(chars(&a["block_id"]), MAX_ID_CHARS);
    }

    #[test]
    fn inputs_cut_labels_and_options() {
        let i = plain_input("b", "a", &long(2500), true);
        assert_eq!(chars(&i["label"]["text"]), MAX_LABEL_CHARS);
        assert_eq!(i["element"]["multiline"], true);
        let label = long(80);
        let opts: Vec<(&str, &str)> = std::iter::repeat_n((label.as_str(), "v"), 12).collect();
        let c = checkboxes("b", "a", "Moves", &opts, true);
        let options = c["element"]["options"].as_array().unwrap();
        assert_eq!(options.len(), MAX_CHECKBOX_OPTIONS);
        assert_eq!(chars(&options[0]["text"]["text"]), MAX_OPTION_TEXT_CHARS);
        assert_eq!(c["optional"], true);
    }

    #[test]
    fn radio_selects_and_multi_select_respect_option_limits() {
        let r = radio_buttons(
            "d",
            "d",
            "Deal?",
            &[("Yes", "yes"), ("No", "no")],
            Some("no"),
        );
        assert_eq!(r["element"]["type"], "radio_buttons");
        assert_eq!(r["element"]["initial_option"]["value"], "no");
        assert_eq!(r["optional"], false);
        let unknown = radio_buttons("d", "d", "Deal?", &[("Yes", "yes")], Some("maybe"));
        assert!(unknown["element"].get("initial_option").is_none());
        let label = long(80);
        let many: Vec<(&str, &str)> = std::iter::repeat_n((label.as_str(), "v"), 120).collect();
        let m = multi_select("m", "m", "Missed", &long(200), &many, true);
        let options = m["element"]["options"].as_array().unwrap();
        assert_eq!(options.len(), MAX_SELECT_OPTIONS);
        assert_eq!(chars(&options[0]["text"]["text"]), MAX_OPTION_TEXT_CHARS);
        assert_eq!(
            chars(&m["element"]["placeholder"]["text"]),
            MAX_PLACEHOLDER_CHARS
        );
        let t = optional_text_input("t", "t", "Text", "hint");
        assert_eq!(t["element"]["max_length"], MAX_TEXT_INPUT_CHARS);
        assert_eq!(
            (t["optional"].clone(), t["hint"]["text"].clone()),
            (json!(true), json!("hint"))
        );
    }

    #[test]
    fn modal_respects_title_block_and_metadata_limits() {
        let blocks = (0..120).map(|_| divider()).collect();
        let m = modal(
            &long(300),
            &long(30),
            &long(30),
            &long(30),
            blocks,
            &long(3500),
        );
        assert_eq!(chars(&m["title"]["text"]), MAX_MODAL_TITLE_CHARS);
        assert_eq!(chars(&m["submit"]["text"]), MAX_MODAL_TITLE_CHARS);
        assert_eq!(chars(&m["close"]["text"]), MAX_MODAL_TITLE_CHARS);
        assert_eq!(chars(&m["callback_id"]), MAX_ID_CHARS);
        assert_eq!(m["blocks"].as_array().unwrap().len(), MAX_MODAL_BLOCKS);
        assert_eq!(chars(&m["private_metadata"]), MAX_PRIVATE_METADATA_CHARS);
    }

    #[test]
    fn message_keeps_fifty_blocks() {
        assert_eq!(
            message_blocks((0..60).map(|_| divider()).collect()).len(),
            MAX_MESSAGE_BLOCKS
        );
        assert_eq!(message_blocks(vec![divider()]).len(), 1);
    }

    #[test]
    fn escape_mrkdwn_neutralises_control_characters() {
        assert_eq!(
            escape_mrkdwn("<!channel> & <@U1|x>"),
            "&lt;!channel&gt; &amp; &lt;@U1|x&gt;"
        );
        assert_eq!(escape_mrkdwn("plain 🦀 *bold*"), "plain 🦀 *bold*");
    }
}
