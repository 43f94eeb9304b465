//! The deploy files agree with the server they deploy: ports, health and readiness paths
//! (asked of the real router), environment variable names (those clap reads), secrets from
//! the Secret or an env file (never literal), a non-root user and the sandboxing options.
//! YAML is parsed with yaml-rust2; the Dockerfile, the systemd unit and env files line by
//! line. Renaming a route or a variable without updating deploy/ fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::{CommandFactory, Parser};
use yaml_rust2::{Yaml, YamlLoader};

use cusp::cli::{Cli, CliCommand};
use cusp::healthcheck::default_url;

use crate::support::app::{Backend, TestApp};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

// ---------------------------------------------------------------------------------------
// What cusp reads

/// Every environment variable cusp reads, from clap's definitions (all subcommands), and
/// which of them hold secrets (`hide_env_values`).
struct CuspEnv {
    all: BTreeSet<String>,
    secret: BTreeSet<String>,
}

fn cusp_env() -> CuspEnv {
    fn walk(cmd: &clap::Command, env: &mut CuspEnv) {
        for arg in cmd.get_arguments() {
            if let Some(name) = arg.get_env() {
                let name = name.to_str().unwrap().to_owned();
                if arg.is_hide_env_values_set() {
                    env.secret.insert(name.clone());
                }
                env.all.insert(name);
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, env);
        }
    }
    let mut env = CuspEnv {
        all: BTreeSet::new(),
        secret: BTreeSet::new(),
    };
    walk(&Cli::command(), &mut env);
    // Read by tracing-subscriber's EnvFilter, not clap; make sure that is still so.
    assert!(
        read("src/telemetry/mod.rs").contains("EnvFilter::try_from_default_env"),
        "src/telemetry/mod.rs no longer reads RUST_LOG"
    );
    env.all.insert("RUST_LOG".to_owned());
    for expected in ["DATABASE_URL", "SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"] {
        assert!(env.secret.contains(expected), "{expected} is not secret");
    }
    env
}

impl CuspEnv {
    fn check_names<'a>(&self, file: &str, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            assert!(
                self.all.contains(name),
                "{file} sets {name}, which cusp does not read (cusp reads {:?})",
                self.all
            );
        }
    }

    /// A secret may be written into a file only as a SQLite path (no credential in it).
    fn check_no_literal_secret(&self, file: &str, name: &str, value: &str) {
        if self.secret.contains(name) {
            assert!(
                name == "DATABASE_URL" && value.starts_with("sqlite:"),
                "{file} writes the secret {name} literally; take it from the Secret / env file"
            );
        }
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

/// The port `cusp serve` listens on with these variables (as `ServeArgs::validate` does).
fn serve_port(vars: &BTreeMap<String, String>) -> u16 {
    match (vars.get("CUSP_ADDR"), vars.get("PORT")) {
        (Some(addr), _) => port_of(addr),
        (None, Some(port)) => port.parse().unwrap(),
        (None, None) => port_of(cusp::config::DEFAULT_ADDR),
    }
}

/// `(port, path)` of an `http://host:port/path` URL.
fn url_port_path(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (port_of(authority), path.to_owned())
}

/// The router answers every probe path with 200 or 503 (not 404).
async fn assert_routed(paths: &BTreeSet<String>) {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in paths {
        let response = app
            .request(Request::get(path.as_str()).body(Body::empty()).unwrap())
            .await;
        assert!(
            [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(&response.status),
            "probe path {path} answers {} on the real router",
            response.status
        );
    }
    // The same check catches a path the router does not have (404, or 401 where the
    // signature layer answers first).
    let missing = app
        .request(Request::get("/no-such-probe").body(Body::empty()).unwrap())
        .await;
    assert!(
        ![StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(&missing.status),
        "{}",
        missing.status
    );
}

fn parse_cli(argv: &[&str]) -> Cli {
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?} is not a cusp command: {e}"))
}

// ---------------------------------------------------------------------------------------
// Dockerfile

#[derive(Default)]
struct Stage {
    instructions: Vec<(String, String)>,
}

/// Instructions per stage: continuation lines joined, comments dropped.
fn dockerfile_stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && logical.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(trimmed);
        let full = std::mem::take(&mut logical);
        let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stages.push(Stage::default());
        }
        if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, args.trim().to_owned()));
        }
    }
    stages
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, a)| a.as_str())
            .collect()
    }

    fn last(&self, keyword: &str) -> &str {
        self.all(keyword)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("runtime stage has no {keyword}"))
    }

    fn env(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        for args in self.all("ENV") {
            for pair in args.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV key=value");
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
        vars
    }

    fn position(&self, keyword: &str, needle: &str) -> usize {
        self.instructions
            .iter()
            .position(|(k, a)| k == keyword && a.contains(needle))
            .unwrap_or_else(|| panic!("no {keyword} … {needle}"))
    }
}

fn json_array(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not a JSON array ({e}): {args}"))
}

/// The URL the image's HEALTHCHECK asks, and checks that it is `cusp healthcheck`.
fn dockerfile_healthcheck_url(runtime: &Stage, env: &BTreeMap<String, String>) -> String {
    let healthcheck = runtime.last("HEALTHCHECK");
    let (_, cmd) = healthcheck.split_once("CMD").expect("HEALTHCHECK … CMD");
    let argv = json_array(cmd.trim());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let Cli {
        command: CliCommand::Healthcheck(args),
        ..
    } = parse_cli(&argv)
    else {
        panic!("HEALTHCHECK does not run `cusp healthcheck`: {argv:?}")
    };
    // The container's environment, not the test's, decides the default URL.
    args.url.unwrap_or_else(|| {
        default_url(
            env.get("CUSP_ADDR").map(String::as_str),
            env.get("PORT").and_then(|p| p.parse().ok()),
        )
    })
}

#[tokio::test]
async fn the_dockerfile_agrees_with_the_server() {
    let env = cusp_env();
    let stages = dockerfile_stages(&read("deploy/Dockerfile"));
    assert!(stages.len() >= 2, "multi-stage build expected");
    let (build, runtime) = (&stages[0], &stages[stages.len() - 1]);

    // Dependencies are built from the manifests alone before the sources are copied.
    let manifests = build.position("COPY", "Cargo.lock");
    let deps_build = build.position("RUN", "cargo build");
    let sources = build.position("COPY", "src");
    assert!(
        manifests < deps_build && deps_build < sources,
        "no cached dependency layer"
    );

    let vars = runtime.env();
    env.check_names("deploy/Dockerfile", vars.keys().map(String::as_str));
    for (name, value) in &vars {
        env.check_no_literal_secret("deploy/Dockerfile", name, value);
    }

    let user = runtime.last("USER");
    let name = user.split(':').next().unwrap();
    assert!(
        !["root", "0", ""].contains(&name),
        "runs as root: USER {user}"
    );

    let port = serve_port(&vars);
    let exposed: Vec<u16> = runtime
        .all("EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|p| p.trim_end_matches("/tcp").parse().unwrap())
        .collect();
    assert_eq!(exposed, [port], "EXPOSE vs the port cusp listens on");

    // The SQLite file lives in the declared volume.
    let db_path = vars["DATABASE_URL"]
        .strip_prefix("sqlite://")
        .expect("SQLite by default");
    let volumes = json_array(runtime.last("VOLUME"));
    assert!(
        volumes
            .iter()
            .any(|v| Path::new(db_path).parent() == Some(Path::new(v))),
        "DATABASE_URL {db_path} is not in VOLUME {volumes:?}"
    );

    let url = dockerfile_healthcheck_url(runtime, &vars);
    let (hc_port, hc_path) = url_port_path(&url);
    assert_eq!(hc_port, port, "HEALTHCHECK port");
    assert_eq!(hc_path, "/healthz");

    let mut argv = json_array(runtime.last("ENTRYPOINT"));
    argv.extend(json_array(runtime.last("CMD")));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert!(
        matches!(parse_cli(&argv).command, CliCommand::Serve(_)),
        "the image does not run `cusp serve`: {argv:?}"
    );

    assert_routed(&BTreeSet::from([hc_path])).await;
}

#[test]
fn the_docker_build_context_leaves_out_builds_databases_and_secrets() {
    let ignored: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    for pattern in ["target/", ".git/", "**/*.db", "**/.env", "**/*.env"] {
        assert!(ignored.contains(pattern), ".dockerignore lacks {pattern}");
    }
    // What the Dockerfile copies must not be ignored.
    for needed in ["src/", "migrations/", "benches/", "Cargo.lock"] {
        assert!(!ignored.contains(needed), ".dockerignore drops {needed}");
    }
}

// ---------------------------------------------------------------------------------------
// env files

/// Variable names in an env file, including commented-out `# NAME=value` examples.
fn env_file_names(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .map(|(name, _)| name.trim())
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect()
}

#[test]
fn the_example_env_file_names_only_variables_cusp_reads() {
    let env = cusp_env();
    let names = env_file_names(&read("deploy/example.env"));
    for required in ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "DATABASE_URL"] {
        assert!(names.iter().any(|n| n == required), "{required} missing");
    }
    env.check_names("deploy/example.env", names.iter().map(String::as_str));
}

// ---------------------------------------------------------------------------------------
// Compose

fn str_map(yaml: &Yaml) -> BTreeMap<String, String> {
    let Some(hash) = yaml.as_hash() else {
        return BTreeMap::new();
    };
    hash.iter()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) | Yaml::Real(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                other => panic!("unexpected value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

#[test]
fn compose_runs_cusp_on_a_healthy_postgres() {
    let env = cusp_env();
    let docs = yaml_docs("deploy/docker-compose.yml");
    let services = &docs[0]["services"];
    let cusp = &services["cusp"];
    assert_eq!(
        cusp["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );

    let vars = str_map(&cusp["environment"]);
    env.check_names("docker-compose.yml", vars.keys().map(String::as_str));
    for (name, value) in &vars {
        // Interpolated from deploy/.env or the shell, never written here.
        if env.secret.contains(name) && !value.contains("${") {
            env.check_no_literal_secret("docker-compose.yml", name, value);
        }
    }
    assert!(vars["DATABASE_URL"].starts_with("postgres://"));
    assert!(vars["DATABASE_URL"].contains("@postgres:5432/"));

    // The env file is a copy of deploy/example.env.
    let env_files = cusp["env_file"].as_vec().expect("env_file");
    assert!(env_files.iter().any(|f| f.as_str() == Some("cusp.env")));

    let port = serve_port(&vars);
    let ports: Vec<&str> = cusp["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(!ports.is_empty());
    for mapping in ports {
        let container: u16 = mapping.rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(container, port, "compose maps {mapping}");
    }

    assert_eq!(
        cusp["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    let postgres = &services["postgres"];
    assert!(postgres["image"].as_str().unwrap().starts_with("postgres:"));
    assert!(!postgres["healthcheck"]["test"].is_badvalue());
    let pg_env = str_map(&postgres["environment"]);
    assert!(pg_env["POSTGRES_PASSWORD"].contains("${"));
    assert!(!postgres["volumes"].is_badvalue());
    assert!(!docs[0]["volumes"]["pgdata"].is_badvalue());
}

// ---------------------------------------------------------------------------------------
// Kubernetes

fn k8s_objects() -> Vec<Yaml> {
    let kustomization = &yaml_docs("deploy/k8s/kustomization.yaml")[0];
    let mut objects = Vec::new();
    for resource in kustomization["resources"].as_vec().expect("resources") {
        let file = resource.as_str().unwrap();
        objects.extend(yaml_docs(&format!("deploy/k8s/{file}")));
    }
    objects
}

fn of_kind<'a>(objects: &'a [Yaml], kind: &str) -> &'a Yaml {
    let found: Vec<&Yaml> = objects
        .iter()
        .filter(|o| o["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "one {kind} expected");
    found[0]
}

#[tokio::test]
async fn the_kubernetes_manifests_agree_with_the_server() {
    let env = cusp_env();
    let objects = k8s_objects();
    let deployment = of_kind(&objects, "Deployment");
    let config_map = of_kind(&objects, "ConfigMap");
    let service = of_kind(&objects, "Service");

    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(2));
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let args: Vec<&str> = c["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut argv = vec!["cusp"];
    argv.extend(args);
    assert!(matches!(parse_cli(&argv).command, CliCommand::Serve(_)));

    // Non-secret settings come from the ConfigMap, all of it.
    let config_name = config_map["metadata"]["name"].as_str().unwrap();
    let env_from = c["envFrom"].as_vec().unwrap();
    assert!(
        env_from
            .iter()
            .any(|e| e["configMapRef"]["name"].as_str() == Some(config_name))
    );
    let config = str_map(&config_map["data"]);
    env.check_names("configmap.yaml", config.keys().map(String::as_str));
    for name in config.keys() {
        assert!(
            !env.secret.contains(name),
            "configmap.yaml holds the secret {name}"
        );
    }

    // Secrets come from the Secret, under their own names; none written here.
    let mut from_secret = BTreeSet::new();
    let mut optional_from_secret = BTreeSet::new();
    for var in c["env"].as_vec().unwrap() {
        let name = var["name"].as_str().unwrap();
        env.check_names("deployment.yaml", [name]);
        if let Some(value) = var["value"].as_str() {
            env.check_no_literal_secret("deployment.yaml", name, value);
            continue;
        }
        let secret = &var["valueFrom"]["secretKeyRef"];
        assert_eq!(secret["name"].as_str(), Some("cusp"), "{name}");
        assert_eq!(secret["key"].as_str(), Some(name));
        if secret["optional"].as_bool() == Some(true) {
            optional_from_secret.insert(name.to_owned());
        } else {
            from_secret.insert(name.to_owned());
        }
    }
    for required in ["SLACK_BOT_TOKEN", "DATABASE_URL"] {
        assert!(
            from_secret.contains(required),
            "{required} not from the Secret"
        );
    }
    // One transport or the other: each is optional alone, and both are offered.
    for transport in ["SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"] {
        assert!(
            optional_from_secret.contains(transport),
            "{transport} not offered (optionally) from the Secret"
        );
    }

    // Ports: what cusp listens on = containerPort = what the probes and Service target.
    let port = serve_port(&config);
    let ports = c["ports"].as_vec().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["containerPort"].as_i64(), Some(i64::from(port)));
    let port_name = ports[0]["name"].as_str().unwrap();
    let targets = |p: &Yaml| p.as_str() == Some(port_name) || p.as_i64() == Some(i64::from(port));
    let mut probe_paths = BTreeSet::new();
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert!(targets(&get["port"]), "{probe} port");
        probe_paths.insert(path.to_owned());
    }
    let service_ports = service["spec"]["ports"].as_vec().unwrap();
    assert!(service_ports.iter().all(|p| targets(&p["targetPort"])));
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );

    // Non-root, read-only root, bounded resources.
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert!(pod["securityContext"]["runAsUser"].as_i64().unwrap() > 0);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    for kind in ["requests", "limits"] {
        assert!(
            c["resources"][kind]["memory"].as_str().is_some(),
            "resources.{kind}.memory"
        );
    }

    assert_routed(&probe_paths).await;
}

// ---------------------------------------------------------------------------------------
// systemd

/// `[Service]` keys with every value (keys may repeat).
fn unit_section(text: &str, section: &str) -> BTreeMap<String, Vec<String>> {
    let mut current = String::new();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
        } else if current == section {
            let (k, v) = line.split_once('=').expect("key=value");
            keys.entry(k.trim().to_owned())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    keys
}

#[test]
fn the_systemd_unit_runs_cusp_sandboxed_on_sqlite() {
    let env = cusp_env();
    let text = read("deploy/cusp.service");
    let service = unit_section(&text, "Service");
    let one = |key: &str| -> &str {
        let values = service
            .get(key)
            .unwrap_or_else(|| panic!("cusp.service lacks {key}="));
        values.last().unwrap()
    };

    let argv: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/cusp");
    assert!(matches!(parse_cli(&argv).command, CliCommand::Serve(_)));

    let mut vars = BTreeMap::new();
    for assignment in service.get("Environment").into_iter().flatten() {
        let (k, v) = assignment.split_once('=').unwrap();
        vars.insert(k.to_owned(), v.to_owned());
    }
    env.check_names("cusp.service", vars.keys().map(String::as_str));
    for (name, value) in &vars {
        env.check_no_literal_secret("cusp.service", name, value);
    }
    assert!(one("EnvironmentFile").starts_with("/etc/cusp/"));
    let state = format!("/var/lib/{}/", one("StateDirectory"));
    assert!(
        vars["DATABASE_URL"]
            .strip_prefix("sqlite://")
            .is_some_and(|p| p.starts_with(&state)),
        "the SQLite file must live in the StateDirectory {state}"
    );
    assert_eq!(port_of(&vars["CUSP_ADDR"]), serve_port(&vars));

    let non_root =
        one("DynamicUser") == "yes" || service.get("User").is_some_and(|u| u[0] != "root");
    assert!(non_root, "runs as root");
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert!(
            service
                .get(key)
                .is_some_and(|v| v.iter().any(|v| v == value)),
            "cusp.service needs {key}={value}"
        );
    }
    // Long enough for a Slack call in flight to finish or time out.
    let stop: u64 = one("TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    assert!(
        stop > cusp::slack::web_api::SLACK_CALL_TIMEOUT.as_secs(),
        "TimeoutStopSec"
    );
}

// ---------------------------------------------------------------------------------------
// `cusp healthcheck`, the image's health probe

#[tokio::test]
async fn cusp_healthcheck_exits_zero_only_for_a_healthy_server() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let run = |args: Vec<String>, cusp_addr: Option<String>| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_cusp"));
            cmd.arg("healthcheck")
                .args(args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default());
            if let Some(a) = cusp_addr {
                cmd.env("CUSP_ADDR", a);
            }
            cmd.output().unwrap()
        })
    };
    let url = |path: &str| vec!["--url".to_owned(), format!("http://{addr}{path}")];

    // By default it asks /healthz on CUSP_ADDR, as in the image.
    let out = run(vec![], Some(format!("0.0.0.0:{}", addr.port())))
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/healthz"));
    let out = run(url("/readyz"), None).await.unwrap();
    assert!(out.status.success(), "{out:?}");

    let out = run(url("/no-such-route"), None).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unhealthy") && stderr.contains("/no-such-route"),
        "{stderr}"
    );

    server.abort();
    let _ = server.await;
    let out = run(url("/healthz"), None).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}
