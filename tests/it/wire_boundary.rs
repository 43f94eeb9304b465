//! Slack's wire format stays in `slack/`: `bot/` and `jobs/` build typed calls
//! (`slack::calls::SlackCall`, typed `SlackClient` methods) and never write a Web API
//! method name, call the raw client, or build request JSON themselves.

use std::path::{Path, PathBuf};

/// Web API method families; a string literal starting `"<family>.` names a method.
const METHOD_FAMILIES: &[&str] = &[
    "admin",
    "apps",
    "auth",
    "bookmarks",
    "bots",
    "channels",
    "chat",
    "conversations",
    "dialog",
    "dnd",
    "emoji",
    "files",
    "groups",
    "im",
    "mpim",
    "oauth",
    "pins",
    "reactions",
    "reminders",
    "search",
    "stars",
    "team",
    "usergroups",
    "users",
    "views",
];

/// Web API arguments that only a hand-built request would spell out.
const REQUEST_ARGUMENTS: &[&str] = &[
    "\"thread_ts\"",
    "\"trigger_id\"",
    "\"metadata\"",
    "\"event_payload\"",
    "\"unfurl_links\"",
    "\"unfurl_media\"",
    "\"response_action\"",
    "\"response_type\"",
    "insert(\"channel\"",
];

/// Files whose `json!` is not Slack's: the export's own file format.
const JSON_ALLOWED: &[&str] = &["src/bot/export.rs"];

/// What in `source` writes Slack's wire format, as `line: reason`.
fn violations(source: &str, json_allowed: bool) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.trim_start();
        // Unit tests below build Slack's payloads as fixtures, which is their job.
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        // Comments and error texts may name a method; neither makes a request.
        if code.starts_with("//") || code.starts_with("#[error(") {
            continue;
        }
        let n = n + 1;
        for family in METHOD_FAMILIES {
            if code.contains(&format!("\"{family}.")) {
                found.push(format!("{n}: names a `{family}.*` Web API method"));
            }
        }
        // The raw client is `SlackClient::call(method, params)`; an outbox row's
        // `item.call()` (its stored SlackCall) is not.
        if code.contains("slack.call(") || code.contains(".call(\"") {
            found.push(format!("{n}: calls the raw Web API client"));
        }
        if !json_allowed && code.contains("json!") {
            found.push(format!("{n}: builds JSON with json!"));
        }
        for argument in REQUEST_ARGUMENTS {
            if code.contains(argument) {
                found.push(format!("{n}: spells out the request argument {argument}"));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn bot_and_jobs_never_write_slacks_wire_format() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/bot"), &mut files);
    rust_files(&root.join("src/jobs"), &mut files);
    assert!(files.len() > 10, "scanned {files:?}");
    let mut report = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let source = std::fs::read_to_string(&file).unwrap();
        let json_allowed = JSON_ALLOWED.contains(&relative.as_str());
        for violation in violations(&source, json_allowed) {
            report.push(format!("{relative}:{violation}"));
        }
    }
    assert!(
        report.is_empty(),
        "Slack's wire format belongs in src/slack/ (build a slack::calls::SlackCall or add a \
         typed SlackClient method):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_scan_catches_a_hand_built_request() {
    // What bot/nudge.rs did before calls were typed.
    let old = r#"
        let mut params = Map::new();
        params.insert("channel".into(), json!(channel));
        params.insert("name".into(), json!(settings.reaction));
        effects.outbox.push(NewOutboxMessage { method: "reactions.add".into(), params });
        // "chat.postMessage" in a comment is fine
        ctx.workspace.slack.call("views.open", &params).await;
    "#;
    let found = violations(old, false);
    assert!(
        found.iter().any(|v| v.contains("`reactions.*`")),
        "{found:?}"
    );
    assert!(found.iter().any(|v| v.contains("`views.*`")), "{found:?}");
    assert!(found.iter().any(|v| v.contains("raw Web API")), "{found:?}");
    assert!(found.iter().any(|v| v.contains("json!")), "{found:?}");
    assert!(found.iter().any(|v| v.contains("\"channel\"")), "{found:?}");
    assert!(!found.iter().any(|v| v.contains("`chat.*`")), "{found:?}");
    assert!(violations("let x = json!({});", true).is_empty());
    let fixtures =
        "fn f() {}\n#[cfg(test)]\nmod tests { fn e() { json!({\"channel\": \"C1\"}); } }";
    assert!(violations(fixtures, false).is_empty());
    assert!(violations("    #[error(\"oauth.v2.access answered 500\")]", false).is_empty());
}
