//! `only1mcp import`: each client's own config file (fixtures in `import/`,
//! written from each client's documented format) imports to the expected
//! YAML (the `.snap` beside it), `--install` points the client at the
//! gateway and `--undo` restores the file byte for byte, and a real MCP
//! client sees the imported servers' tools through the gateway.

use std::path::{Path, PathBuf};

use only1mcp_test_support::{self as support, python_client_in};
use serde_json::{Value, json};

use crate::init;

/// Each client's fixture: the folder under `import/` and the file's path
/// as the client names it.
const FIXTURES: &[(&str, &str)] = &[
    ("claude-desktop", "claude_desktop_config.json"),
    ("claude-code", ".mcp.json"),
    ("cursor", "mcp.json"),
    ("vscode", ".vscode/mcp.json"),
    ("windsurf", "mcp_config.json"),
    ("zed", "settings.json"),
];

fn fixture(client: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/import")
        .join(client)
        .join(file)
}

/// A project folder holding a copy of the client's fixture, and its path.
fn planted(client: &str, file: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(fixture(client, file), &path).unwrap();
    (dir, path)
}

/// Runs `only1mcp ARGS…` in `dir` with a home of its own (no real client
/// config is ever read or written).
fn import(dir: &Path, args: &[&str]) -> (std::process::Output, String, String) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let config = home.join(".config");
    let out = support::run_cli_with(
        args,
        dir,
        &[
            ("HOME", home.to_str().unwrap()),
            ("XDG_CONFIG_HOME", config.to_str().unwrap()),
        ],
    );
    let real = dir.canonicalize().unwrap();
    let redact = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .replace(real.to_str().unwrap(), "[DIR]")
            .replace(dir.to_str().unwrap(), "[DIR]")
    };
    let (stdout, stderr) = (redact(&out.stdout), redact(&out.stderr));
    (out, stdout, stderr)
}

#[test]
fn each_clients_config_imports_to_the_expected_yaml() {
    init();
    for (client, file) in FIXTURES {
        let (dir, path) = planted(client, file);
        let (out, stdout, stderr) =
            import(dir.path(), &["import", "--from", path.to_str().unwrap()]);
        assert!(out.status.success(), "{client}: {stdout}{stderr}");
        let yaml = std::fs::read_to_string(dir.path().join("only1mcp.yaml"))
            .unwrap()
            .replace(
                dir.path().canonicalize().unwrap().to_str().unwrap(),
                "[DIR]",
            )
            .replace(dir.path().to_str().unwrap(), "[DIR]");
        let validated = support::run_cli(&["validate", "only1mcp.yaml"], dir.path());
        assert!(validated.status.success(), "{client}: {validated:?}");
        insta::with_settings!({
            snapshot_path => "import",
            prepend_module_to_snapshot => false,
            snapshot_suffix => "",
        }, {
            insta::assert_snapshot!(*client, format!("{yaml}\n# stdout\n{stdout}\n# stderr\n{stderr}"));
        });
    }
}

/// The servers object of a client config that holds `name`, read as JSON
/// with comments.
fn servers_holding(path: &Path, name: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let root = jsonc_parser::cst::CstRootNode::parse(&text, &Default::default()).unwrap();
    let value = root.to_serde_value().unwrap();
    for key in ["mcpServers", "servers", "context_servers"] {
        if let Some(servers) = value.get(key).and_then(Value::as_object)
            && servers.contains_key(name)
        {
            return servers.clone();
        }
    }
    panic!("no servers object holds {name} in {text}");
}

#[test]
fn install_points_each_client_at_the_gateway_and_undo_restores_it_byte_for_byte() {
    init();
    for (client, file) in FIXTURES {
        let (dir, path) = planted(client, file);
        let original = std::fs::read(&path).unwrap();
        let (out, stdout, stderr) = import(
            dir.path(),
            &["import", "--from", path.to_str().unwrap(), "--install"],
        );
        assert!(out.status.success(), "{client}: {stdout}{stderr}");
        let servers = servers_holding(&path, "only1mcp");
        let entry = &servers["only1mcp"];
        assert_eq!(
            entry["args"],
            json!([
                "start",
                "--stdio",
                "--config",
                dir.path().canonicalize().unwrap().join("only1mcp.yaml")
            ]),
            "{client}: {entry}"
        );
        assert!(
            Path::new(entry["command"].as_str().unwrap()).is_absolute(),
            "{client}: {entry}"
        );
        let backups: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".only1mcp-backup-"))
            .collect();
        assert_eq!(backups.len(), 1, "{client}: {backups:?}");
        assert_eq!(std::fs::read(&backups[0]).unwrap(), original, "{client}");
        // Importing again finds only the gateway's own entry (and what it
        // cannot run): nothing more to add.
        let (again, stdout, _) = import(dir.path(), &["import", "--from", path.to_str().unwrap()]);
        assert!(again.status.success());
        assert!(stdout.contains("added 0 servers"), "{client}: {stdout}");

        let (out, stdout, stderr) = import(
            dir.path(),
            &["import", "--from", path.to_str().unwrap(), "--undo"],
        );
        assert!(out.status.success(), "{client}: {stdout}{stderr}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "{client}: {stdout}"
        );
        assert!(!backups[0].exists(), "{client}: the backup is removed");
    }
}

#[test]
fn install_keeps_the_rest_of_a_settings_file_comments_included() {
    init();
    let (dir, path) = planted("zed", "settings.json");
    let (out, stdout, stderr) = import(
        dir.path(),
        &["import", "--from", path.to_str().unwrap(), "--install"],
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let text = std::fs::read_to_string(&path).unwrap();
    for kept in [
        "// Zed settings",
        "\"theme\": \"One Dark\"",
        "\"vim_mode\": false,",
        "// Installed by an extension: no command of its own.",
        "\"mcp-server-github\": {",
    ] {
        assert!(text.contains(kept), "{kept:?} lost:\n{text}");
    }
    let servers = servers_holding(&path, "only1mcp");
    let names: Vec<&str> = servers.keys().map(String::as_str).collect();
    assert_eq!(names, ["mcp-server-github", "only1mcp"], "{text}");
}

#[test]
fn undo_leaves_a_client_config_changed_since_the_install_alone() {
    init();
    let (dir, path) = planted("cursor", "mcp.json");
    let (out, ..) = import(
        dir.path(),
        &["import", "--from", path.to_str().unwrap(), "--install"],
    );
    assert!(out.status.success());
    std::fs::write(&path, "{\"mcpServers\": {}}\n").unwrap();
    let (out, _, stderr) = import(
        dir.path(),
        &["import", "--from", path.to_str().unwrap(), "--undo"],
    );
    assert!(!out.status.success());
    assert!(
        stderr.contains("mcp.json: no longer launches only1mcp")
            && stderr.contains("its backup is"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"mcpServers\": {}}\n"
    );
}

#[test]
fn the_known_clients_files_are_found_merged_and_renamed_and_dry_run_writes_nothing() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".vscode")).unwrap();
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        (path, text.to_owned())
    };
    let files = [
        write(
            home.join(".config/Claude/claude_desktop_config.json"),
            r#"{"mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]}}}"#,
        ),
        write(
            home.join(".claude.json"),
            &serde_json::to_string_pretty(&json!({
                "numStartups": 12,
                "mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]}},
                "projects": {
                    project.canonicalize().unwrap().to_str().unwrap(): {
                        "allowedTools": [],
                        "mcpServers": {"memory": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}}
                    },
                    "/somewhere/else": {"mcpServers": {"other": {"command": "other-server"}}}
                }
            }))
            .unwrap(),
        ),
        write(
            home.join(".cursor/mcp.json"),
            r#"{"mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"]}}}"#,
        ),
        write(
            project.join(".vscode/mcp.json"),
            r#"{"servers": {"git": {"type": "stdio", "command": "uvx", "args": ["mcp-server-git"]}}}"#,
        ),
    ];
    let listing = || {
        let mut all = Vec::new();
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(at) = stack.pop() {
            for entry in std::fs::read_dir(&at).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    all.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        all.sort();
        all
    };
    let env = [("HOME", home.to_str().unwrap()), ("XDG_CONFIG_HOME", "")];
    let before = listing();
    let dry = support::run_cli_with(&["import", "--install", "--dry-run"], &project, &env);
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{dry:?}");
    assert!(stdout.contains("+++ b/only1mcp.yaml"), "{stdout}");
    assert!(stdout.contains("+  filesystem-cursor:"), "{stdout}");
    assert!(stdout.contains("+    \"only1mcp\": {"), "{stdout}");
    assert_eq!(listing(), before, "--dry-run wrote something");

    let out = support::run_cli_with(&["import", "--install"], &project, &env);
    assert!(out.status.success(), "{out:?}");
    let config = support::run_cli(&["validate", "--json", "only1mcp.yaml"], &project);
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(
        config["servers"],
        json!(["filesystem", "filesystem-cursor", "git", "memory"]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same server in two clients is one server of the gateway.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("filesystem-claude-code"), "{stderr}");
    // Claude Code launches the gateway once (from the user scope); its
    // project scope only loses what moved, and other projects keep theirs.
    let claude: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[1].0).unwrap()).unwrap();
    assert_eq!(claude["numStartups"], 12);
    let user: Vec<&String> = claude["mcpServers"].as_object().unwrap().keys().collect();
    assert_eq!(user, ["only1mcp"]);
    let here = &claude["projects"][project.canonicalize().unwrap().to_str().unwrap()];
    assert_eq!(here["mcpServers"], json!({}));
    assert_eq!(
        claude["projects"]["/somewhere/else"]["mcpServers"]["other"]["command"],
        "other-server"
    );

    let out = support::run_cli_with(&["import", "--undo"], &project, &env);
    assert!(out.status.success(), "{out:?}");
    for (path, text) in &files {
        assert_eq!(
            &std::fs::read_to_string(path).unwrap(),
            text,
            "{}",
            path.display()
        );
    }
}

#[test]
fn import_merges_into_an_existing_config_keeping_its_text() {
    init();
    let (dir, path) = planted("claude-desktop", "claude_desktop_config.json");
    let existing = "# my gateway\nnaming:\n  separator: \"__\"\n\nservers:\n  # the database\n  sqlite:\n    command: uvx\n    args: [\"mcp-server-sqlite\", \"--db-path\", \"/Users/me/test.db\"]\n  github:\n    command: gh-mcp\n";
    std::fs::write(dir.path().join("only1mcp.yaml"), existing).unwrap();
    let (out, stdout, stderr) = import(dir.path(), &["import", "--from", path.to_str().unwrap()]);
    assert!(out.status.success(), "{stdout}{stderr}");
    let merged = std::fs::read_to_string(dir.path().join("only1mcp.yaml")).unwrap();
    assert!(merged.starts_with(existing), "{merged}");
    assert!(
        stdout.contains("added 2 servers (filesystem, github-claude-desktop)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("mcpServers.github: imported as servers.github-claude-desktop"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_config_or_client_file_stops_the_import_naming_the_file_and_field() {
    init();
    let (dir, path) = planted("cursor", "mcp.json");
    std::fs::write(
        dir.path().join("only1mcp.yaml"),
        "servers:\n  a:\n    comand: x\n",
    )
    .unwrap();
    let (out, _, stderr) = import(dir.path(), &["import", "--from", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("only1mcp.yaml: invalid"), "{stderr}");
    assert!(stderr.contains("comand"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("only1mcp.yaml")).unwrap(),
        "servers:\n  a:\n    comand: x\n"
    );
    std::fs::remove_file(dir.path().join("only1mcp.yaml")).unwrap();
    std::fs::write(&path, "{\"mcpServers\": {\"a\": {\"command\": \"x\",,,}").unwrap();
    let (out, _, stderr) = import(dir.path(), &["import", "--from", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr.contains("mcp.json: not JSON"), "{stderr}");
    assert!(!dir.path().join("only1mcp.yaml").exists());
    std::fs::write(
        &path,
        "{\"mcpServers\": {\"a\": {\"args\": \"-y\"}, \"b\": {\"command\": \"b-server\"}}}",
    )
    .unwrap();
    let (out, stdout, stderr) = import(dir.path(), &["import", "--from", path.to_str().unwrap()]);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("mcp.json: mcpServers.a.args: must be a list of strings; left out"),
        "{stderr}"
    );
    assert!(stdout.contains("added 1 server (b)"), "{stdout}");
}

#[test]
fn a_claude_config_imported_serves_both_npm_servers_to_the_python_sdk() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("note.txt"), "moved in").unwrap();
    let shared = shared.canonicalize().unwrap();
    let claude = dir.path().join("claude_desktop_config.json");
    std::fs::write(
        &claude,
        serde_json::to_string_pretty(&json!({
            "mcpServers": {
                "everything": {"command": support::npm_bin("mcp-server-everything")},
                "filesystem": {"command": support::npm_bin("mcp-server-filesystem"), "args": [shared]},
            }
        }))
        .unwrap(),
    )
    .unwrap();
    let (out, stdout, stderr) = import(dir.path(), &["import", "--from", claude.to_str().unwrap()]);
    assert!(out.status.success(), "{stdout}{stderr}");
    let exe = support::gateway_bin().to_string_lossy().into_owned();
    let out = python_client_in(
        dir.path(),
        "legacy",
        &["--", &exe, "start", "--stdio", "--config", "only1mcp.yaml"],
        &json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "everything__echo", "arguments": {"message": "hi"}},
            {"op": "call_tool", "name": "filesystem__read_text_file", "arguments": {"path": shared.join("note.txt")}},
        ]),
        &[],
    );
    let names: Vec<&str> = out["results"][0]
        .as_array()
        .unwrap_or_else(|| panic!("no tool list: {out}"))
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    for expected in [
        "everything__echo",
        "everything__get-sum",
        "filesystem__read_text_file",
        "filesystem__list_directory",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(out["results"][1]["content"][0]["text"], "Echo: hi", "{out}");
    assert_eq!(out["results"][2]["content"][0]["text"], "moved in", "{out}");
}
