//! The built-in default config: what `only1mcp start` serves with no config
//! file, from the binary alone.

use only1mcp_test_support::{self as support, python_client_in};
use serde_json::json;

use crate::init;

#[test]
fn a_copied_binary_alone_serves_its_example_servers_with_no_config() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let exe = dir
        .path()
        .join(format!("only1mcp{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(support::gateway_bin(), &exe).unwrap();
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(beside, [exe.file_name().unwrap()], "the binary is alone");
    let exe = exe.to_string_lossy().into_owned();
    let out = python_client_in(
        dir.path(),
        "legacy",
        &["--", &exe, "start", "--stdio"],
        &json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "arith__add", "arguments": {"a": 2, "b": 3}},
            {"op": "call_tool", "name": "echo__reverse", "arguments": {"text": "gateway"}},
        ]),
        &[],
    );
    let names: Vec<&str> = out["results"][0]
        .as_array()
        .unwrap_or_else(|| panic!("no tool list: {out}"))
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    for expected in ["arith__add", "arith__divide", "echo__echo", "echo__reverse"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(out["results"][1]["content"][0]["text"], "5", "{out}");
    assert_eq!(out["results"][2]["content"][0]["text"], "yawetag", "{out}");
}

#[test]
fn the_example_server_subcommand_is_hidden_from_help() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let help = support::run_cli(&["--help"], dir.path());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("start"), "{help}");
    assert!(!help.contains("example-server"), "{help}");
}

#[test]
fn bash_loads_the_completion_script_and_it_knows_the_subcommands() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let script = support::run_cli(&["completions", "bash"], dir.path());
    assert!(script.status.success(), "{script:?}");
    let path = dir.path().join("only1mcp.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    // Load it into a real bash and ask for the words after `only1mcp im`.
    let probe = format!(
        "source {}; complete -p only1mcp; COMP_WORDS=(only1mcp im); COMP_CWORD=1; COMP_LINE='only1mcp im'; COMP_POINT=11; _only1mcp only1mcp im only1mcp; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    #[allow(
        clippy::disallowed_methods,
        reason = "a real bash loads the completion script"
    )]
    let out = std::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &probe])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("-F _only1mcp only1mcp"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "import"), "{stdout}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = support::run_cli(&["completions", shell], dir.path());
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
}

#[test]
fn the_man_page_is_roff_naming_every_command() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let out = support::run_cli(&["man"], dir.path());
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH only1mcp"),
        "{page}"
    );
    for command in ["start", "import", "doctor", "completions"] {
        assert!(
            page.contains(command),
            "{command} missing from the man page"
        );
    }
    assert!(
        !page.contains("example\\-server"),
        "hidden commands stay hidden"
    );
}
