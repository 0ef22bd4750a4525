//! Hot swap of a changed server (ADR 0014): the server being called has its
//! own config changed under load. Make before break: the new backend starts
//! beside the old one, which serves until the new one is ready; a
//! replacement that fails to start leaves the old one serving. Break before
//! make (opt-in): calls in the gap wait for the new backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use only1mcp_test_support::{self as support, Gateway, HttpGateway, config};
use serde_json::{Value, json};

use crate::init;

/// How the echo server is configured: which program, its arguments, its
/// environment, and anything else under its entry.
#[derive(Debug, Clone)]
struct Echo {
    command: PathBuf,
    name: String,
    env: Vec<(String, String)>,
    extra: String,
    /// `defaults.startup_timeout`: short where a hanging replacement must
    /// fail fast, the default elsewhere (a loaded machine starts slowly).
    startup: &'static str,
}

impl Echo {
    fn new(generation: u32) -> Self {
        Self {
            command: support::example_server("only1mcp-echo-server"),
            name: "echo-0".to_owned(),
            env: vec![("SWAP_GEN".to_owned(), generation.to_string())],
            extra: String::new(),
            startup: "10s",
        }
    }

    fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The whole config file: the echo server and a start-up timeout short
    /// enough for a hanging replacement to fail fast.
    fn yaml(&self) -> String {
        let mut text = format!(
            "defaults:\n  startup_timeout: {}\nservers:\n  echo:\n    command: {}\n    args: [\"--name\", {:?}]\n    env:\n",
            self.startup,
            support::quote(&self.command),
            self.name,
        );
        for (key, value) in &self.env {
            text.push_str(&format!(
                "      {key}: {}\n",
                support::quote(Path::new(value))
            ));
        }
        text.push_str(&self.extra);
        text
    }
}

/// Clients keeping calls to `echo__echo` in flight over Streamable HTTP
/// until stopped (or a bound on calls and time), each checking its answer.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Outcome>>,
}

/// What one client saw.
#[derive(Debug, Default)]
struct Outcome {
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

/// The most calls one client makes, and the longest it runs.
const MAX_CALLS: usize = 200_000;
const MAX_RUN: Duration = Duration::from_secs(120);

impl Load {
    fn start(url: &str, clients: usize) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let workers = (0..clients)
            .map(|client| {
                let (http, url, meta) = (http.clone(), url.to_owned(), meta.clone());
                let (stop, answered) = (stop.clone(), answered.clone());
                tokio::spawn(async move {
                    let mut outcome = Outcome::default();
                    let began = Instant::now();
                    for call in 0..MAX_CALLS {
                        if stop.load(Ordering::SeqCst) || began.elapsed() > MAX_RUN {
                            break;
                        }
                        let text = format!("client {client} call {call}");
                        let sent = Instant::now();
                        let res = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("accept", "application/json, text/event-stream")
                            .header("mcp-protocol-version", "2026-07-28")
                            .header("mcp-method", "tools/call")
                            .header("mcp-name", "echo__echo")
                            .body(json!({"jsonrpc": "2.0", "id": call, "method": "tools/call", "params": {"name": "echo__echo", "arguments": {"text": text}, "_meta": meta}}).to_string())
                            .send()
                            .await;
                        let body = match res {
                            Ok(res) => res.json::<Value>().await.map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        outcome.latencies.push(sent.elapsed());
                        match body {
                            Ok(body) if body["result"]["content"][0]["text"] == text.as_str() => {}
                            Ok(body) => outcome.failures.push(body.to_string()),
                            Err(e) => outcome.failures.push(e),
                        }
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    outcome
                })
            })
            .collect();
        Self {
            stop,
            answered,
            workers,
        }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// Waits until `more` calls beyond those answered now are answered.
    async fn wait_for_more(&self, more: usize) {
        let target = self.answered() + more;
        let deadline = Instant::now() + support::WAIT;
        while self.answered() < target {
            assert!(Instant::now() < deadline, "the load stalled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Outcome::default();
        for worker in self.workers {
            let outcome = worker.await.unwrap();
            all.latencies.extend(outcome.latencies);
            all.failures.extend(outcome.failures);
        }
        all.latencies.sort_unstable();
        all
    }
}

/// The `q` quantile of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(label: &str, outcome: &Outcome) -> String {
    let l = &outcome.latencies;
    format!(
        "{label}: {} calls, {} failed, p50 {:?}, p99 {:?}, max {:?}",
        l.len(),
        outcome.failures.len(),
        quantile(l, 0.5),
        quantile(l, 0.99),
        l[l.len() - 1],
    )
}

/// The gateway's "Config reloaded" lines that contain `needle`.
fn reloads_with(log: &str, needle: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("Config reloaded") && line.contains(needle))
        .count()
}

/// Waits until `count` reloads containing `needle` have been logged.
async fn wait_for_reloads(log: impl Fn() -> String, needle: &str, count: usize) {
    let deadline = Instant::now() + support::WAIT;
    loop {
        let text = log();
        if reloads_with(&text, needle) >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "reload {count} ({needle}) was not applied:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `echo__env` of the serving echo backend over HTTP.
async fn env_of(url: &str, name: &str) -> String {
    let res: Value = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo__env")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo__env", "arguments": {"name": name}, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{res}"))
        .to_owned()
}

/// Ten changes to the config of the server being called (its arguments, its
/// environment, once its command path), each applied before the next,
/// while eight clients keep calling it: not one call fails, and the last
/// config is the one serving. The latencies with and without the reloads
/// are printed (docs/performance.md has the release figures).
#[tokio::test]
async fn the_called_server_changed_ten_times_under_load_fails_no_call() {
    init();
    let mut echo = Echo::new(0);
    let cfg = config(&echo.yaml());
    // The same program under another path.
    let link = cfg
        .dir
        .path()
        .join(format!("echo-copy{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(&echo.command, &link).unwrap();
    let gw = HttpGateway::start(&cfg.path);
    let url = gw.mcp_url();
    let log = || gw.log();
    wait_for_reloads(&log, "", 0).await;

    let baseline = Load::start(&url, 8);
    baseline.wait_for_more(4000).await;
    let baseline = baseline.finish().await;
    assert!(baseline.failures.is_empty(), "{:?}", baseline.failures);

    let load = Load::start(&url, 8);
    load.wait_for_more(200).await;
    let before = load.answered();
    for n in 1..=10u32 {
        match n {
            5 => echo.command = link.clone(),
            n if n % 2 == 0 => echo.env[0].1 = n.to_string(),
            n => echo.name = format!("echo-{n}"),
        }
        std::fs::write(&cfg.path, echo.yaml()).unwrap();
        wait_for_reloads(&log, r#"stopped=["echo"]"#, n as usize).await;
        // Calls are answered between the swaps.
        load.wait_for_more(50).await;
    }
    let during = load.answered() - before;
    let outcome = load.finish().await;
    assert!(
        outcome.failures.is_empty(),
        "{} calls failed, the first: {:?}\n{}",
        outcome.failures.len(),
        outcome.failures.first(),
        gw.log()
    );
    assert!(during > 0);
    // No replacement failed, and the last config is the one serving.
    assert_eq!(reloads_with(&gw.log(), r#"kept_previous=["echo"]"#), 0);
    assert_eq!(env_of(&url, "SWAP_GEN").await, "10");
    // A measurement for docs/performance.md, not an assertion.
    #[expect(clippy::print_stderr, reason = "the test reports what it measured")]
    {
        eprintln!("{}", summary("without reloads", &baseline));
        eprintln!("{}", summary("during 10 swaps", &outcome));
    }
}

/// Replacements that cannot start (a command that does not exist, one that
/// exits at start-up, one that never finishes its start-up) leave the
/// running backend serving under load, and each reload says so; the admin
/// API and `only1mcp status` show why. The next change is tried again, and
/// a good one replaces the server.
#[tokio::test]
async fn a_replacement_that_fails_to_start_leaves_the_old_one_serving() {
    init();
    let echo = Echo {
        startup: "2s",
        ..Echo::new(0)
    };
    let cfg = config(&echo.yaml());
    let gw = HttpGateway::start(&cfg.path);
    let url = gw.mcp_url();
    let log = || gw.log();
    wait_for_reloads(&log, "", 0).await;
    let load = Load::start(&url, 8);
    load.wait_for_more(200).await;

    let never = cfg.dir.path().join("never-created");
    let bad = [
        Echo {
            command: cfg.dir.path().join("no-such-server"),
            ..echo.clone()
        },
        echo.clone()
            .with_env("ONLY1MCP_EXAMPLE_START_AFTER", never.to_str().unwrap()),
        echo.clone().with_env("ONLY1MCP_EXAMPLE_STARTUP_FAIL", "1"),
    ];
    let mut last = None;
    for (n, config) in bad.into_iter().enumerate() {
        // Each attempt is told apart by its arguments (in the spawn line).
        let name = format!("bad-{n}");
        let config = Echo {
            name: name.clone(),
            ..config
        };
        std::fs::write(&cfg.path, config.yaml()).unwrap();
        last = Some(config);
        let deadline = Instant::now() + support::WAIT;
        loop {
            let text = gw.log();
            if let Some(at) = text.find(&format!("{name:?}"))
                && reloads_with(&text[at..], r#"kept_previous=["echo"]"#) > 0
            {
                break;
            }
            assert!(Instant::now() < deadline, "{name} was not refused:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        load.wait_for_more(50).await;
    }
    assert!(
        gw.log()
            .contains("The changed server's replacement failed to start")
    );

    // The same file saved again changes nothing and tries nothing; SIGHUP
    // tries again (the cause may lie outside the config).
    let attempts = |text: &str| text.matches(r#""bad-2"]"#).count();
    let unchanged = |text: &str| text.matches("Config file event without a change").count();
    let seen = unchanged(&gw.log());
    std::fs::write(&cfg.path, last.unwrap().yaml()).unwrap();
    let deadline = Instant::now() + support::WAIT;
    while unchanged(&gw.log()) == seen {
        assert!(Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(attempts(&gw.log()), 1, "{}", gw.log());
    let refused = reloads_with(&gw.log(), r#"kept_previous=["echo"]"#);
    gw.hangup();
    wait_for_reloads(&log, r#"kept_previous=["echo"]"#, refused + 1).await;
    assert_eq!(attempts(&gw.log()), 2, "{}", gw.log());

    // The admin API and `only1mcp status` say why the change is not applied.
    let admin = gw.admin_url();
    let token = gw.admin_token();
    let servers: Value = reqwest::Client::new()
        .get(format!("{admin}/servers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &servers["servers"][0];
    assert_eq!(entry["status"], "ready", "{servers}");
    let reason = entry["replace_failed"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the new config failed to start"),
        "{servers}"
    );
    let (key, value) = gw.admin_env();
    let status = support::run_cli_with(
        &["status", "--admin", &admin],
        cfg.dir.path(),
        &[(key, &value)],
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        printed.contains("echo: runs on its previous config: the new config failed to start"),
        "{printed}"
    );

    let outcome = load.finish().await;
    assert!(
        outcome.failures.is_empty(),
        "{} calls failed, the first: {:?}\n{}",
        outcome.failures.len(),
        outcome.failures.first(),
        gw.log()
    );
    // The old one answers: its environment is the first config's.
    assert_eq!(env_of(&url, "SWAP_GEN").await, "0");

    // A good change is applied, and nothing is pending any more.
    std::fs::write(&cfg.path, Echo::new(1).yaml()).unwrap();
    wait_for_reloads(&log, r#"stopped=["echo"]"#, 1).await;
    assert_eq!(env_of(&url, "SWAP_GEN").await, "1");
    let servers: Value = reqwest::Client::new()
        .get(format!("{admin}/servers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        servers["servers"][0].get("replace_failed").is_none(),
        "{servers}"
    );
}

/// A server that asks for break-before-make is stopped before its
/// replacement starts; a call that arrives in the gap waits for the new
/// backend and is answered by it, instead of failing as an unknown tool.
#[test]
fn break_before_make_calls_in_the_gap_wait_for_the_new_backend() {
    init();
    let mut echo = Echo::new(0);
    echo.extra = "    swap: break-before-make\n".to_owned();
    let cfg = config(&echo.yaml());
    let mut gateway = Gateway::start(&cfg.path, &[]);
    gateway.initialize();
    gateway.wait_for_log("Watching the config file");
    let old = gateway.children();
    assert_eq!(old.len(), 1);

    // The new backend waits for a file before it serves.
    let go = cfg.dir.path().join("go");
    let mut next = echo.with_env("ONLY1MCP_EXAMPLE_START_AFTER", go.to_str().unwrap());
    next.env[0].1 = "1".to_owned();
    std::fs::write(&cfg.path, next.yaml()).unwrap();
    gateway.wait_for_log("waiting for");
    // The old process was stopped before the new one started.
    assert!(!gateway.children().contains(&old[0]), "{}", gateway.log());
    let log = gateway.log();
    let stopped = log
        .find("The previous backend stopped; starting its replacement")
        .unwrap_or_else(|| panic!("{log}"));
    let waiting = log.find("waiting for").unwrap();
    assert!(stopped < waiting, "{log}");

    // In the gap: the call waits, then the new backend answers it.
    let id = gateway.send_request(
        "tools/call",
        json!({"name": "echo__env", "arguments": {"name": "SWAP_GEN"}}),
    );
    std::fs::write(&go, "").unwrap();
    let answer = gateway.response(&id);
    assert_eq!(support::text(&answer), "1", "{answer}");
}

/// A swap whose new backend lists the same tools sends no `list_changed`;
/// one whose tools differ sends one, and a tool the new version lacks is
/// then unknown.
#[test]
fn a_swap_tells_clients_only_when_the_tools_changed() {
    init();
    let echo = Echo::new(0);
    let cfg = config(&echo.yaml());
    let mut gateway = Gateway::start(&cfg.path, &[]);
    gateway.initialize();
    gateway.wait_for_log("Watching the config file");

    std::fs::write(&cfg.path, Echo::new(1).yaml()).unwrap();
    gateway.wait_for_log(r#"stopped=["echo"]"#);
    assert_eq!(
        support::text(&gateway.call_tool("echo__env", json!({"name": "SWAP_GEN"}))),
        "1"
    );

    // The same server id, another program: arith's tools replace echo's.
    let arith = Echo {
        command: support::example_server("only1mcp-arith-server"),
        ..Echo::new(2)
    };
    std::fs::write(&cfg.path, arith.yaml()).unwrap();
    gateway.wait_for_notification("notifications/tools/list_changed");
    assert_eq!(
        support::text(&gateway.call_tool("echo__add", json!({"a": 2, "b": 3}))),
        "5"
    );
    let gone = gateway.call_tool("echo__echo", json!({"text": "x"}));
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
    // Only the second swap changed the list: the first sent nothing, so no
    // other list_changed arrived before this one.
    let more: Vec<&Value> = gateway
        .notifications
        .iter()
        .filter(|n| n["method"] == "notifications/tools/list_changed")
        .collect();
    assert!(more.is_empty(), "{more:?}");
}
