//! The CLI's own commands: validate, init, list.

use std::process::Output;

use only1mcp_test_support::{self as support, config, examples_config};

use crate::init;

fn only1mcp(args: &[&str], dir: &std::path::Path) -> Output {
    support::run_cli(args, dir)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn validate_accepts_a_good_config() {
    init();
    let good = config("servers:\n  a:\n    command: x\n  b:\n    command: y\n");
    let out = only1mcp(&["validate", "only1mcp.yaml"], good.dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "only1mcp.yaml: valid (2 servers: a, b)\n");
}

#[test]
fn validate_names_every_bad_field() {
    init();
    let bad = config(
        "naming:\n  separator: \"\"\nsecurity:\n  allowed_commands: [npx]\nservers:\n  a:\n    command: bash\n  b:\n    command: \"\"\n",
    );
    let out = only1mcp(&["validate", "only1mcp.yaml"], bad.dir.path());
    assert_eq!(out.status.code(), Some(78));
    // The resolved path of `bash` depends on the machine.
    insta::with_settings!({filters => vec![(r#""bash" \(/\S+\)"#, "\"bash\" ([path])")]}, {
        insta::assert_snapshot!("validate_bad_fields", stderr(&out));
    });

    let typo = config("servers:\n  a:\n    comand: x\n");
    let out = only1mcp(&["validate", "--json", "only1mcp.yaml"], typo.dir.path());
    assert_eq!(out.status.code(), Some(78));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    let problem = json["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("unknown field")
            && problem.contains("comand")
            && problem.contains("servers.a"),
        "{problem}"
    );
}

#[test]
fn init_writes_a_config_that_validates() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let out = only1mcp(&["init"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = only1mcp(&["validate", "only1mcp.yaml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "only1mcp.yaml: valid (2 servers: files, time)\n"
    );
    // A second init does not overwrite the user's file.
    let out = only1mcp(&["init"], dir.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
}

#[test]
fn list_prints_servers_and_tools_as_tables() {
    init();
    let config = examples_config("", "naming:\n  prefix: on-conflict\n");
    let out = only1mcp(
        &["list", "--config", config.path.to_str().unwrap()],
        config.dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!("list_on_conflict", stdout(&out));
}

#[test]
fn claude_desktop_config_is_imported() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claude_desktop_config.json");
    let json = serde_json::json!({
        "mcpServers": {
            "echo": {"command": support::example_server("only1mcp-echo-server")},
        }
    });
    std::fs::write(&path, json.to_string()).unwrap();
    let out = only1mcp(
        &["list", "--json", "--config", path.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["tools"].as_array().unwrap().len(), 6, "{listing}");
}

#[test]
fn without_a_config_here_the_users_config_dir_is_used() {
    init();
    let cwd = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    let dir = user.path().join("only1mcp");
    std::fs::create_dir(&dir).unwrap();
    let echo = support::example_server("only1mcp-echo-server");
    std::fs::write(
        dir.join("only1mcp.yaml"),
        format!("servers:\n  mine:\n    command: '{}'\n", echo.display()),
    )
    .unwrap();
    let out = support::run_cli_with(
        &["list", "--json"],
        cwd.path(),
        &[("XDG_CONFIG_HOME", user.path().to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = listing["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6, "{listing}");
    assert!(
        names.iter().all(|name| name.starts_with("mine__")),
        "{names:?}"
    );
}
