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
