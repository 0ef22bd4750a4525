use super::*;

fn server(command: &str) -> ServerConfig {
    ServerConfig {
        command: command.to_owned(),
        enabled: true,
        ..ServerConfig::default()
    }
}

#[track_caller]
fn check(config: &Config, expect: &[&str]) {
    let got: Vec<String> = match config.validate() {
        Ok(()) => Vec::new(),
        Err(Invalid(problems)) => problems.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(got, expect);
}

#[test]
fn a_good_config_is_valid() {
    let mut config = Config::default();
    config
        .servers
        .insert("echo".to_owned(), server("only1mcp-echo-server"));
    check(&config, &[]);
}

#[test]
fn every_problem_names_its_field() {
    let mut config = Config::default();
    config.naming.separator = "::".to_owned();
    config.servers.insert("empty".to_owned(), server("  "));
    let mut bad = server("x");
    bad.tools.deny = vec!["[".to_owned()];
    bad.request_timeout = Some(Duration::ZERO);
    config.servers.insert("bad id".to_owned(), bad);
    config.http.read_timeout = Duration::from_secs(u64::MAX);
    check(
        &config,
        &[
            "naming.separator: the separator \"::\" may only contain ASCII letters, digits, '_', '-' and '.'",
            "http.read_timeout: must be greater than zero and at most 24h",
            "servers.bad id.request_timeout: must be greater than zero",
            "servers.bad id.tools.deny[0]: unclosed character class; missing ']'",
            "servers.empty.command: must not be empty (or set url)",
        ],
    );
}

#[test]
fn server_ids_must_split_back() {
    let mut config = Config::default();
    config.servers.insert("a__b".to_owned(), server("x"));
    check(
        &config,
        &[
            "servers.a__b: the server id \"a__b\" contains or ends with part of the separator \"__\", so its names could not be split back",
        ],
    );
}

#[test]
fn env_expansion() {
    let lookup = |name: &str| (name == "HOME").then(|| "/home/me".to_owned());
    assert_eq!(expand_env("${HOME}/x", lookup).unwrap(), "/home/me/x");
    assert_eq!(
        expand_env("cost $$5 and $x", lookup).unwrap(),
        "cost $5 and $x"
    );
    assert_eq!(
        expand_env("${NOPE}", lookup),
        Err(MissingVar("NOPE".to_owned()))
    );
    assert_eq!(expand_env("${unclosed", lookup).unwrap(), "${unclosed");
}

#[test]
fn durations_are_human_readable() {
    let config: Config = serde_json::from_str(
        r#"{"defaults":{"request_timeout":"5s"},"servers":{"a":{"command":"x","request_timeout":"250ms"}}}"#,
    )
    .unwrap();
    assert_eq!(config.defaults.request_timeout, Duration::from_secs(5));
    assert_eq!(
        config.request_timeout(&config.servers["a"]),
        Duration::from_millis(250)
    );
}

#[test]
fn unknown_keys_are_refused() {
    let err = serde_json::from_str::<Config>(r#"{"servers":{"a":{"command":"x","comand":"y"}}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `comand`"), "{err}");
}

#[test]
fn mcp_servers_are_imported() {
    let mut config: Config = serde_json::from_str(
        r#"{"servers":{"a":{"command":"x"}},
            "mcpServers":{"fs":{"command":"npx","args":["-y","pkg"],"env":{"K":"v"}},
                          "a":{"command":"dup"},
                          "web":{"type":"http","url":"http://127.0.0.1:9/mcp"},
                          "odd":{"type":"carrier-pigeon"}}}"#,
    )
    .unwrap();
    let err = config.absorb_mcp_servers().unwrap_err();
    assert_eq!(
        err.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "mcpServers.a: duplicate server id: servers.a is defined too",
            "mcpServers.odd.type: unknown transport \"carrier-pigeon\" (expected stdio, http, sse or websocket)",
        ]
    );
    assert_eq!(config.servers["fs"].args, ["-y", "pkg"]);
    assert_eq!(config.servers["fs"].env["K"], "v");
    assert!(config.servers["fs"].enabled);
    assert_eq!(
        Config::url_transport(&config.servers["web"]),
        Some(UrlTransport::StreamableHttp)
    );
    config.validate().unwrap();
}

#[test]
fn admin_needs_a_real_token_and_its_own_port() {
    let mut config = Config::default();
    config.admin.token = Some("  ".to_owned());
    config.admin.listen = config.http.listen;
    check(
        &config,
        &[
            "admin.token: must be at least 16 characters (remove it to have one generated)",
            "admin.listen: 127.0.0.1:7331 is http.listen too; the admin API needs its own port",
        ],
    );
}

#[test]
fn admin_token_and_state_key_are_not_in_debug_output() {
    let mut config = Config::default();
    config.admin.token = Some("hunter2".to_owned());
    config.security.state_key = Some("correct horse battery staple 12345".to_owned());
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("battery"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn limits_out_of_range_are_named() {
    let mut config = Config::default();
    config.limits.max_batch = 0;
    config.limits.max_subscriptions = 65_537;
    config.limits.max_in_flight = 0;
    config.limits.max_queued_bytes = 1024;
    config.limits.max_sessions = 0;
    config.limits.replay_bytes = 0;
    config.limits.session_idle_timeout = Duration::from_millis(500);
    check(
        &config,
        &[
            "limits.max_batch: must be between 1 and 4096",
            "limits.max_subscriptions: must be between 1 and 65536",
            "limits.max_in_flight: must be between 1 and 65536",
            "limits.max_queued_bytes: must be between 65536 and 1073741824",
            "limits.max_sessions: must be between 1 and 1000000",
            "limits.replay_bytes: must be between 1024 and 67108864",
            "limits.session_idle_timeout: must be between 1s and 7days",
        ],
    );
    config.limits = LimitsConfig {
        max_batch: 4096,
        max_subscriptions: 1,
        max_in_flight: 1,
        max_queued_bytes: 65536,
        max_sessions: 1,
        session_idle_timeout: Duration::from_secs(1),
        replay_bytes: 1024,
    };
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn http_connection_bounds_are_checked() {
    let mut config = Config::default();
    assert_eq!(config.http.max_connections, 512);
    config.http.max_connections = 0;
    config.http.max_connections_per_peer = 2;
    config.http.shutdown_timeout = Duration::from_secs(3601);
    check(
        &config,
        &[
            "http.max_connections: must be between 1 and 1000000",
            "http.max_connections_per_peer: must be between 1 and http.max_connections",
            "http.shutdown_timeout: must be at most 1h",
        ],
    );
    config.http.max_connections = 2;
    config.http.shutdown_timeout = Duration::ZERO;
    assert_eq!(config.validate(), Ok(()));
}
