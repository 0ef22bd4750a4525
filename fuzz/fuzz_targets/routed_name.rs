//! Fuzzes the tool-name rewrite of routed calls (`mcp::Named`) with any
//! valid JSON: it must never panic, and it must read and rewrite the params
//! as the general path (`mcp::Members`) does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use only1mcp_core::mcp::{Members, Named};
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<&RawValue>(data) else {
        return;
    };
    let named = Named::parse(Some(raw));
    let members = Members::parse(Some(raw));
    let (named, mut members) = match (named, members) {
        (Ok(Some(named)), Ok(members)) => (named, members),
        (Ok(None), Ok(members)) => {
            assert!(members.string("name").is_none(), "{}", raw.get());
            return;
        }
        (Err(_), Err(_)) => return,
        (named, members) => panic!("{named:?} / {members:?} for {}", raw.get()),
    };
    assert_eq!(members.string("name").as_deref(), Some(named.name()));
    let renamed = named.renamed("new\"name").unwrap();
    members.set_string("name", "new\"name");
    let expected = members.to_raw().unwrap();
    // The same members, read the same way: keys, and values as their text.
    let members = |raw: &RawValue| -> Vec<(String, String)> {
        Members::parse(Some(raw))
            .unwrap()
            .to_object()
            .into_iter()
            .map(|(key, value)| (key, value.get().to_owned()))
            .collect()
    };
    assert_eq!(members(&renamed), members(&expected), "{}", raw.get());
});
