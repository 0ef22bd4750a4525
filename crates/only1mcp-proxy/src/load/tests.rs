use super::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn templates_load_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = load_file(&write(&dir, "a.yaml", STARTER_YAML)).unwrap();
    let toml = load_file(&write(
        &dir,
        "a.toml",
        include_str!("../../../../config-templates/solo.toml"),
    ))
    .unwrap();
    assert_eq!(yaml, toml);
    assert_eq!(yaml.servers["time"].tools.allow, ["*_time"]);
}

#[test]
fn claude_desktop_json_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "claude_desktop_config.json",
        r#"{"mcpServers":{"fs":{"command":"npx","args":["-y","@modelcontextprotocol/server-filesystem","/tmp"]}}}"#,
    );
    let config = load_file(&path).unwrap();
    assert_eq!(config.servers["fs"].command, "npx");
}

#[test]
fn unknown_keys_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.yaml", "servers:\n  a:\n    comand: x\n");
    let err = load_file(&path).unwrap_err().to_string();
    assert!(err.contains("comand"), "{err}");
    assert!(err.contains("servers.a"), "{err}");
}

#[test]
fn rule_violations_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad.toml",
        "[naming]\nseparator = \"\"\n[servers.a]\ncommand = \"\"\n",
    );
    let err = load_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("naming.separator: the separator must not be empty"),
        "{err}"
    );
    assert!(
        err.contains("servers.a.command: must not be empty"),
        "{err}"
    );
}

#[test]
fn built_in_default_has_the_two_example_servers() {
    let config = finish(Figment::from(Yaml::string(&built_in_yaml())), None).unwrap();
    assert_eq!(config.servers.keys().collect::<Vec<_>>(), ["arith", "echo"]);
    let program = Path::new("/opt/only one/only1mcp");
    let config = finish(
        Figment::from(Yaml::string(&built_in_yaml_for(program))),
        None,
    )
    .unwrap();
    assert_eq!(config.servers["echo"].command, program.to_str().unwrap());
    assert_eq!(config.servers["echo"].args, ["example-server", "echo"]);
    assert_eq!(config.servers["arith"].args, ["example-server", "arith"]);
}

#[test]
fn tls_files_must_exist_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(&dir, "key.pem", "not a key");
    let path = write(
        &dir,
        "tls.yaml",
        &format!(
            "http:\n  tls:\n    cert: {}\n    key: {}\n",
            dir.path().join("missing.pem").display(),
            key.display()
        ),
    );
    let err = load_file(&path).unwrap_err().to_string();
    assert!(err.contains("http.tls.cert"), "{err}");
    assert!(err.contains("http.tls.key"), "{err}");
}

#[test]
fn include_dir_merges_server_files_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    write(
        &dir,
        "conf.d/10-time.yaml",
        "servers:\n  time:\n    command: uvx\n",
    );
    write(
        &dir,
        "conf.d/20-fs.json",
        r#"{"mcpServers":{"fs":{"command":"npx"}}}"#,
    );
    write(&dir, "conf.d/README.txt", "not a config");
    let main = write(
        &dir,
        "only1mcp.yaml",
        "include_dir: conf.d\nservers:\n  a:\n    command: x\n",
    );
    let config = load_file(&main).unwrap();
    assert_eq!(
        config.servers.keys().collect::<Vec<_>>(),
        ["a", "fs", "time"]
    );
    write(&dir, "conf.d/30-dup.toml", "[servers.a]\ncommand = \"y\"\n");
    let err = load_file(&main).unwrap_err().to_string();
    assert!(err.contains("servers.a: defined again in"), "{err}");
}

/// An executable file `name` in `dir`.
#[cfg(unix)]
fn program(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn allowed_commands_compare_the_files_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("trusted");
    let attacker = dir.path().join("attacker");
    let node = program(&trusted, "node");
    let fake = program(&attacker, "node");
    let link = dir.path().join("node-link");
    std::os::unix::fs::symlink(&node, &link).unwrap();
    let mut config = Config::default();
    config.security.allowed_commands = vec![node.to_string_lossy().into_owned()];
    let server = |command: &Path, path: Option<&Path>| config::ServerConfig {
        command: command.to_string_lossy().into_owned(),
        env: path
            .map(|p| [("PATH".to_owned(), p.to_string_lossy().into_owned())].into())
            .unwrap_or_default(),
        enabled: true,
        ..config::ServerConfig::default()
    };
    // By its path, through a symlink, and by its bare name on the server's PATH.
    config.servers.insert("by_path".into(), server(&node, None));
    config.servers.insert("by_link".into(), server(&link, None));
    config
        .servers
        .insert("by_name".into(), server(Path::new("node"), Some(&trusted)));
    check_commands(&config).unwrap();
    // The same file name elsewhere is another program.
    config.servers.insert("fake".into(), server(&fake, None));
    config.servers.insert(
        "fake_by_name".into(),
        server(Path::new("node"), Some(&attacker)),
    );
    config
        .servers
        .insert("missing".into(), server(&dir.path().join("nothing"), None));
    let problems: Vec<String> = check_commands(&config)
        .unwrap_err()
        .0
        .iter()
        .map(|p| p.field.clone())
        .collect();
    assert_eq!(
        problems,
        [
            "servers.fake.command",
            "servers.fake_by_name.command",
            "servers.missing.command"
        ]
    );
}
