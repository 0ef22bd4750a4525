use super::*;

fn server(command: &str, args: &[&str]) -> ServerConfig {
    ServerConfig {
        command: command.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        enabled: true,
        ..ServerConfig::default()
    }
}

const YAML: &str = "\
# My gateway.
naming:
  separator: \"__\"

servers:
  # The files server.
  files:
    command: npx   # from npm
    args: [\"-y\", \"server-filesystem\"]

  time:
    command: uvx
    env:
      TZ: UTC
# Logging comes last.
logging:
  level: info
";

#[test]
fn yaml_add_appends_to_the_servers_block() {
    let mut with_env = server("/bin/echo-server", &["--loud"]);
    with_env.env.insert("A_B".to_owned(), "x y".to_owned());
    let out = edit_yaml(YAML, Edit::Upsert("echo", &with_env)).unwrap();
    assert_eq!(
        out,
        YAML.replace(
            "      TZ: UTC\n",
            "      TZ: UTC\n  echo:\n    command: \"/bin/echo-server\"\n    args: [\"--loud\"]\n    env:\n      A_B: \"x y\"\n",
        )
    );
}

#[test]
fn yaml_replace_and_remove_touch_only_the_entry() {
    let mut disabled = server("npx", &["-y", "server-filesystem"]);
    disabled.enabled = false;
    let out = edit_yaml(YAML, Edit::Upsert("files", &disabled)).unwrap();
    assert_eq!(
        out,
        YAML.replace(
            "    command: npx   # from npm\n    args: [\"-y\", \"server-filesystem\"]\n",
            "    command: \"npx\"\n    args: [\"-y\", \"server-filesystem\"]\n    enabled: false\n",
        )
    );
    let out = edit_yaml(YAML, Edit::Remove("time")).unwrap();
    assert_eq!(
        out,
        YAML.replace("  time:\n    command: uvx\n    env:\n      TZ: UTC\n", "")
    );
    assert!(edit_yaml(YAML, Edit::Remove("nope")).is_err());
}

#[test]
fn yaml_without_servers_gets_a_block_and_flow_style_is_refused() {
    let out = edit_yaml(
        "naming:\n  prefix: always",
        Edit::Upsert("a", &server("x", &[])),
    )
    .unwrap();
    assert_eq!(
        out,
        "naming:\n  prefix: always\n\nservers:\n  a:\n    command: \"x\"\n"
    );
    let out = edit_yaml("servers: {}\n", Edit::Upsert("a", &server("x", &[]))).unwrap();
    assert_eq!(out, "servers:\n  a:\n    command: \"x\"\n");
    assert!(edit_yaml("servers: {a: {command: x}}\n", Edit::Remove("a")).is_err());
}

#[test]
fn yaml_keys_that_would_change_meaning_are_quoted() {
    assert_eq!(yaml_key_text("echo-1"), "echo-1");
    assert_eq!(yaml_key_text("yes"), "\"yes\"");
    assert_eq!(yaml_key_text("123"), "\"123\"");
    assert_eq!(yaml_key_text("X-Api-Key"), "X-Api-Key");
    assert_eq!(yaml_key_text("a b"), "\"a b\"");
}

#[test]
fn toml_keeps_comments_outside_the_entry() {
    let toml = "# Top.\n[naming]\nseparator = \"__\"\n\n# Files.\n[servers.files]\ncommand = \"npx\"\n\n[servers.time]\ncommand = \"uvx\"\n";
    let out = edit_toml(toml, Edit::Upsert("files", &server("node", &["a.js"]))).unwrap();
    assert_eq!(
        out,
        "# Top.\n[naming]\nseparator = \"__\"\n\n# Files.\n[servers.files]\ncommand = \"node\"\nargs = [\"a.js\"]\n\n[servers.time]\ncommand = \"uvx\"\n"
    );
    let out = edit_toml(&out, Edit::Remove("time")).unwrap();
    assert_eq!(
        out,
        "# Top.\n[naming]\nseparator = \"__\"\n\n# Files.\n[servers.files]\ncommand = \"node\"\nargs = [\"a.js\"]\n"
    );
    let out = edit_toml("", Edit::Upsert("a", &server("x", &[]))).unwrap();
    assert_eq!(out, "[servers.a]\ncommand = \"x\"\n");
}

#[test]
fn json_keeps_claude_desktop_entries_in_their_format() {
    let json = r#"{"mcpServers": {"fs": {"command": "npx"}}}"#;
    let mut added = server("uvx", &["mcp-server-time"]);
    added.enabled = false;
    let out = edit_json(json, Edit::Upsert("time", &added)).unwrap();
    let value: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"mcpServers": {
            "fs": {"command": "npx"},
            "time": {"command": "uvx", "args": ["mcp-server-time"], "disabled": true}
        }})
    );
    let out = edit_json(&out, Edit::Remove("fs")).unwrap();
    assert!(!out.contains("\"fs\""), "{out}");
}

#[test]
fn entries_under_mcp_servers_are_left_to_the_user() {
    let yaml = "mcpServers:\n  fs:\n    command: npx\nservers:\n  a:\n    command: x\n";
    let err = edit_yaml(yaml, Edit::Upsert("fs", &server("npx", &[]))).unwrap_err();
    assert_eq!(err, "fs is defined under mcpServers; edit it by hand");
    assert!(edit_yaml(yaml, Edit::Remove("a")).is_ok());
    let toml = "[mcpServers.fs]\ncommand = \"npx\"\n";
    assert!(edit_toml(toml, Edit::Remove("fs")).is_err());
}

#[cfg(unix)]
#[test]
fn writing_keeps_a_symlinked_config_a_link_and_ignores_planted_temp_names() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let target = real.join("only1mcp.yaml");
    std::fs::write(&target, YAML).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("only1mcp.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // The temp name the old code used, planted as a symlink to another file.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    for planted in [
        dir.path().join(".only1mcp.yaml.only1mcp-tmp"),
        real.join(".only1mcp.yaml.only1mcp-tmp"),
    ] {
        std::os::unix::fs::symlink(&victim, planted).unwrap();
    }

    persist(&link, Edit::Remove("time")).unwrap();

    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(!written.contains("uvx"), "{written}");
    assert!(written.contains("files:"), "{written}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let leftovers: Vec<_> = std::fs::read_dir(&real)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
