use quickcheck::{Arbitrary, Gen, TestResult};
use quickcheck_macros::quickcheck;

use super::*;

#[test]
fn joins_and_splits_with_the_default_separator() {
    let ns = Namespace::default();
    assert_eq!(ns.join("fs", "read_file"), "fs__read_file");
    assert_eq!(ns.split("fs__read_file"), Some(("fs", "read_file")));
    // A tool name may contain the separator itself.
    assert_eq!(ns.split("fs__a__b"), Some(("fs", "a__b")));
    assert_eq!(ns.split("plain"), None);
}

#[test]
fn refuses_bad_separators_and_ids() {
    assert_eq!(Namespace::new(""), Err(NamingError::EmptySeparator));
    assert!(matches!(
        Namespace::new("::"),
        Err(NamingError::BadSeparator(_))
    ));
    let ns = Namespace::default();
    assert!(ns.check_server_id("my-server_1").is_ok());
    assert_eq!(ns.check_server_id(""), Err(NamingError::EmptyServerId));
    assert!(matches!(
        ns.check_server_id("a b"),
        Err(NamingError::BadServerId(_))
    ));
    // Contains the separator, or ends with part of it: not splittable.
    assert!(matches!(
        ns.check_server_id("a__b"),
        Err(NamingError::AmbiguousServerId { .. })
    ));
    assert!(matches!(
        ns.check_server_id("a_"),
        Err(NamingError::AmbiguousServerId { .. })
    ));
    let dot = Namespace::new(".").unwrap();
    assert!(dot.check_server_id("a_").is_ok());
}

/// A short string over an alphabet that often contains separator characters.
#[derive(Debug, Clone)]
struct Name(String);

impl Arbitrary for Name {
    fn arbitrary(g: &mut Gen) -> Self {
        let alphabet = ['a', 'b', '_', '-', '.', '1'];
        let len = usize::arbitrary(g) % 8;
        Self((0..len).map(|_| *g.choose(&alphabet).unwrap()).collect())
    }
}

#[quickcheck]
#[allow(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn split_undoes_join(server: Name, tool: Name, separator: Name) -> TestResult {
    let Ok(ns) = Namespace::new(&separator.0) else {
        return TestResult::discard();
    };
    if ns.check_server_id(&server.0).is_err() {
        return TestResult::discard();
    }
    let joined = ns.join(&server.0, &tool.0);
    TestResult::from_bool(ns.split(&joined) == Some((server.0.as_str(), tool.0.as_str())))
}

#[test]
fn aliases_are_portable_deterministic_and_keep_a_readable_start() {
    let long = format!("github__{}", "create_or_update_file_contents_".repeat(3));
    let alias = tool_alias(&long, 0);
    assert!(is_portable_tool_name(&alias), "{alias}");
    assert_eq!(alias.len(), MAX_TOOL_NAME);
    assert!(alias.starts_with("github__create_or_update_file_contents_"));
    assert_eq!(alias, tool_alias(&long, 0), "same name, same alias");
    assert_ne!(alias, tool_alias(&long, 1), "the salt changes the hash");
    let dotted = tool_alias("fs__read.file", 0);
    assert!(dotted.starts_with("fs__read_file_"), "{dotted}");
    assert!(is_portable_tool_name(&dotted));
    assert!(!is_portable_tool_name("fs__read.file"));
    assert!(!is_portable_tool_name(""));
    assert!(is_portable_tool_name(&"a".repeat(64)));
    assert!(!is_portable_tool_name(&"a".repeat(65)));
}

#[quickcheck]
#[allow(
    clippy::needless_pass_by_value,
    reason = "quickcheck passes owned values"
)]
fn every_alias_is_portable(name: String, salt: u32) -> bool {
    is_portable_tool_name(&tool_alias(&name, salt))
}
