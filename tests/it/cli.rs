//! The real `cusp` binary: `serve` against the fake Slack, configuration errors,
//! `migrate` and `export`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::app::{Backend, SECRET, TEAM, TestDb, command_body, message_event};
use crate::support::fake_slack::FakeSlack;
use crate::support::serve::{cusp, signed_post, start_server, start_server_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_a_signed_reflect_fast_and_rejects_an_unsigned_one() {
    let db = TestDb::new(Backend::Sqlite).await;
    let slack = FakeSlack::start().await;
    let server = start_server(&db.url, &slack).await;
    let form = "application/x-www-form-urlencoded";

    let body = command_body(
        "reflect Acme: need them to sign by Friday so I hit my number",
        "trig-cli",
    );
    let started = Instant::now();
    let response = signed_post(
        &format!("{}/slack/commands", server.base),
        form,
        body.clone(),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(elapsed < Duration::from_secs(1), "answered in {elapsed:?}");
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["response_type"], "ephemeral");

    let unsigned = reqwest::Client::new()
        .post(format!("{}/slack/commands", server.base))
        .header("content-type", form)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // An event is acked, then handled by the background worker.
    let event = message_event(
        "Ev-cli",
        "U_SELLER",
        "Acme renewal: pushing them to sign the contract by EOQ for my quota",
        "1700000001.000100",
    );
    let ack = signed_post(
        &format!("{}/slack/events", server.base),
        "application/json",
        event.to_string(),
    )
    .await;
    assert_eq!(ack.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = cusp(&["export", "--format", "json"])
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.iter().any(|l| l["source"] == "message") {
            assert!(lines.iter().any(|l| l["source"] == "command"));
            assert!(lines.iter().all(|l| l["team_id"] == TEAM));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the event was never observed: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn serve_without_a_signing_secret_names_the_variable() {
    let out = cusp(&["serve"])
        .env("SLACK_BOT_TOKEN", "xoxb-x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SLACK_SIGNING_SECRET") && stderr.contains("Basic Information"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_rejected_token_fails_at_start() {
    let db = TestDb::new(Backend::Sqlite).await;
    let slack = FakeSlack::start().await;
    let out = tokio::task::spawn_blocking({
        let url = slack.base_url();
        let db_url = db.url.clone();
        move || {
            cusp(&["serve"])
                .env("SLACK_SIGNING_SECRET", SECRET)
                .env("SLACK_BOT_TOKEN", "xoxb-revoked")
                .env("DATABASE_URL", db_url)
                .env("CUSP_ADDR", "127.0.0.1:0")
                .env("SLACK_API_URL", url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Slack rejected SLACK_BOT_TOKEN (invalid_auth)"),
        "{stderr}"
    );
}

#[test]
fn export_rejects_a_bad_date_with_the_expected_form() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("x.db").display());
    let migrate = cusp(&["migrate"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let out = cusp(&["export", "--format", "csv", "--since", "yesterday"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"));
    let empty = cusp(&["export", "--format", "csv"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(empty.status.success());
    assert_eq!(
        String::from_utf8_lossy(&empty.stdout).trim(),
        cusp::bot::export::CSV_HEADER
    );
}

#[test]
fn an_unsupported_database_url_is_a_clear_error() {
    let out = cusp(&["migrate"])
        .env("DATABASE_URL", "mysql://root@localhost/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sqlite:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn export_filters_by_team_and_date_and_joins_themes_in_csv() {
    use cusp::engine::{Class, Theme};
    use cusp::store::{Effects, NewObservation, ObservationSource, Store};

    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("x.db").display());
    // A database file nobody migrated yet (here: empty): export brings the schema up itself.
    std::fs::write(dir.path().join("x.db"), b"").unwrap();
    let fresh = cusp(&["export", "--format", "csv"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );

    let store = Store::connect(&db_url).await.unwrap();
    let day = |d: &str| {
        format!("{d}T12:00:00Z")
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond()
    };
    for (team, key, at, themes) in [
        ("T1", "old", day("2026-11-01"), vec![Theme::ClosingPush]),
        (
            "T1",
            "new",
            day("2026-11-10"),
            vec![Theme::ClosingPush, Theme::Stakeholders],
        ),
        ("T2", "other", day("2026-11-10"), vec![Theme::Adoption]),
    ] {
        let obs = NewObservation {
            channel_id: "C1".into(),
            user_id: "U1".into(),
            message_ts: Some(format!("{key}.0001")),
            source: ObservationSource::Message,
            class: Class::Balanced,
            score: 0.5,
            account: Some("Acme".into()),
            themes,
            dedupe_key: key.into(),
            text: None,
        };
        let effects = Effects {
            observation: Some(obs),
            ..Effects::default()
        };
        store.record_effects(team, &effects, at).await.unwrap();
    }

    let csv = cusp(&[
        "export",
        "--format",
        "csv",
        "--team",
        "T1",
        "--since",
        "2026-11-05",
    ])
    .env("DATABASE_URL", &db_url)
    .output()
    .unwrap();
    assert!(csv.status.success());
    let csv = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(lines[0], cusp::bot::export::CSV_HEADER);
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(&fields[..3], ["T1", "C1", "U1"], "{csv}");
    assert!(
        fields.contains(&"closing_push;stakeholders"),
        "themes joined with ';': {csv}"
    );
    assert!(
        fields.last().unwrap().starts_with("2026-11-10T12:00:00"),
        "{csv}"
    );

    let json = cusp(&["export", "--format", "json", "--until", "2026-11-05"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    let rows: Vec<Value> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["team_id"], "T1");
    assert_eq!(rows[0]["themes"], serde_json::json!(["closing_push"]));
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn read_commands_never_create_a_database_and_name_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.db");
    let db_url = format!("sqlite://{}", path.display());
    for args in [
        vec!["export", "--format", "csv"],
        vec!["digest", "preview", "--team", "T1"],
        vec!["digest", "send", "--team", "T1"],
    ] {
        let out = cusp(&args).env("DATABASE_URL", &db_url).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr_of(&out);
        assert!(
            err.contains(&path.display().to_string()) && err.contains("DATABASE_URL"),
            "{args:?}: {err}"
        );
        assert!(!path.exists(), "{args:?} created {}", path.display());
    }
}

#[test]
fn creating_a_new_database_file_is_said_loudly_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let first = cusp(&["migrate"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr_of(&first));
    let said = "creating a new, empty SQLite database";
    assert!(stderr_of(&first).contains(said), "{}", stderr_of(&first));
    let again = cusp(&["migrate"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert!(!stderr_of(&again).contains(said), "{}", stderr_of(&again));
}

#[tokio::test]
async fn an_unknown_team_is_an_error_that_lists_the_teams_the_database_holds() {
    use cusp::engine::Class;
    use cusp::store::{Effects, NewObservation, ObservationSource, Store};

    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("x.db").display());
    let store = Store::connect(&db_url).await.unwrap();
    store.migrate().await.unwrap();
    let empty = cusp(&["digest", "preview", "--team", "TNOPE"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(!empty.status.success());
    assert!(
        stderr_of(&empty).contains("holds no team yet"),
        "{}",
        stderr_of(&empty)
    );

    for team in ["TAAA", "TBBB"] {
        let effects = Effects {
            observation: Some(NewObservation {
                channel_id: "C1".into(),
                user_id: "U1".into(),
                message_ts: Some("1.0001".into()),
                source: ObservationSource::Message,
                class: Class::Neutral,
                score: 0.0,
                account: None,
                themes: vec![],
                dedupe_key: "k".into(),
                text: None,
            }),
            ..Effects::default()
        };
        store.record_effects(team, &effects, 1_000).await.unwrap();
    }
    store.close().await;
    for args in [
        vec!["export", "--format", "json", "--team", "TNOPE"],
        vec!["digest", "preview", "--team", "TNOPE"],
        vec!["digest", "send", "--team", "TNOPE"],
    ] {
        let out = cusp(&args).env("DATABASE_URL", &db_url).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr_of(&out);
        assert!(
            err.contains("team TNOPE is not in this database") && err.contains("TAAA, TBBB"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed something");
    }
    let known = cusp(&["digest", "preview", "--team", "TAAA"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(known.status.success(), "{}", stderr_of(&known));
}

#[test]
fn a_dot_env_file_in_the_working_directory_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-dotenv.db");
    let from_env = dir.path().join("from-env.db");
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "# as in deploy/example.env\nDATABASE_URL=sqlite://{}\n",
            from_file.display()
        ),
    )
    .unwrap();
    let out = cusp(&["export", "--format", "csv"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("from-dotenv.db"),
        "{}",
        stderr_of(&out)
    );
    let out = cusp(&["export", "--format", "csv"])
        .current_dir(dir.path())
        .env("DATABASE_URL", format!("sqlite://{}", from_env.display()))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(
        err.contains("from-env.db") && !err.contains("from-dotenv.db"),
        "{err}"
    );

    std::fs::write(dir.path().join(".env"), "THIS IS NOT A VALID LINE\n").unwrap();
    let out = cusp(&["export", "--format", "csv"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains(".env"), "{}", stderr_of(&out));
}

#[test]
fn deploy_example_env_works_as_a_dot_env_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/example.env"),
        dir.path().join(".env"),
    )
    .unwrap();
    // The file parses, and its DATABASE_URL (sqlite://cusp.db) is the one used.
    let out = cusp(&["export", "--format", "csv"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("cusp.db") && err.contains("does not exist") && !err.contains(".env"),
        "{err}"
    );
    // Its empty SLACK_SIGNING_SECRET is reported as missing, naming where to find it.
    let out = cusp(&["serve"]).current_dir(dir.path()).output().unwrap();
    assert!(
        stderr_of(&out).contains("nor SLACK_SIGNING_SECRET is set"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_listen_address_with_a_host_name_resolves_and_a_bad_one_is_named() {
    let out = cusp(&["serve"])
        .env("SLACK_SIGNING_SECRET", "s")
        .env("SLACK_BOT_TOKEN", "xoxb-1")
        .env("CUSP_ADDR", "localhost")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("CUSP_ADDR") && err.contains("host:port"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_listens_on_a_host_name() {
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("x.db").display());
    // `localhost` may resolve to ::1 or 127.0.0.1 first; the server binds one and answers.
    let server = start_server_on("localhost", &db_url, &slack).await;
    assert!(server.base.starts_with("http://localhost:"));
}

#[test]
fn reflect_says_when_cusp_would_stay_silent() {
    let out = cusp(&["reflect", "anyone up for lunch at noon?"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("not a deal update: in a channel cusp would stay silent"),
        "{text}"
    );
}

#[test]
fn train_writes_a_model_that_eval_reads_and_cross_validation_reports_each_file() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dev = format!("{root}/eval/dev.jsonl");
    let fresh = format!("{root}/eval/fresh-2026-11-23.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.txt");
    let model_s = model.display().to_string();
    let out = cusp(&["train", "--out", &model_s, "--epochs", "5", &dev])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&model)
            .unwrap()
            .starts_with("cusp-model 1\n")
    );
    let out = cusp(&["eval", "--model", &model_s, &dev, &fresh])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fresh-2026-11-23.jsonl") && text.contains("all files:\nmessages: 260"),
        "{text}"
    );
    let out = cusp(&["train", "--cross-validate", "--epochs", "5", &dev, &fresh])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pooled over the held-out files:\nmessages: 260"),
        "{text}"
    );
    // A file that is not a model is refused with its name.
    let out = cusp(&["eval", "--model", &dev, &fresh]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a cusp model"));
    // One file cannot be held out against nothing.
    let out = cusp(&["train", "--cross-validate", &dev]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least two files"));
    // By writer, two parts of one writer are one fold: nothing left to train on.
    let part_a = dir.path().join("w1-train.jsonl");
    let part_b = dir.path().join("w1-test.jsonl");
    std::fs::copy(&dev, &part_a).unwrap();
    std::fs::copy(&fresh, &part_b).unwrap();
    let (a, b) = (part_a.display().to_string(), part_b.display().to_string());
    let out = cusp(&["train", "--cross-validate", "--by-writer", &a, &b])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("two writers"));
    // With another writer beside them, the writer's parts are held out together.
    let out = cusp(&[
        "train",
        "--cross-validate",
        "--by-writer",
        "--epochs",
        "2",
        &a,
        &dev,
        &b,
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let w1 = text
        .lines()
        .find(|l| l.starts_with("w1 "))
        .unwrap_or_default();
    assert!(w1.split_whitespace().nth(1) == Some("260"), "{text}");
    assert!(
        text.contains("pooled over the held-out files:\nmessages: 480"),
        "{text}"
    );
}
