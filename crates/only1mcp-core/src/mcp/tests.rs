use serde_json::value::RawValue;

use super::*;

#[test]
fn versions_belong_to_their_era() {
    assert_eq!(Era::of("2026-07-28"), Some(Era::Modern));
    assert_eq!(Era::of("2025-03-26"), Some(Era::Legacy));
    assert_eq!(Era::of("1900-01-01"), None);
    assert_eq!(negotiate_legacy("2025-06-18"), "2025-06-18");
    assert_eq!(negotiate_legacy("2099-01-01"), "2025-11-25");
}

#[test]
fn merged_capabilities_are_the_union_with_list_changed() {
    let a: ServerCapabilities =
        serde_json::from_str(r#"{"tools":{},"logging":{},"experimental":{"x":{}}}"#).unwrap();
    let b: ServerCapabilities =
        serde_json::from_str(r#"{"resources":{"subscribe":true},"prompts":{"listChanged":false}}"#)
            .unwrap();
    let merged = ServerCapabilities::merge([&a, &b]);
    assert_eq!(
        serde_json::to_string(&merged).unwrap(),
        r#"{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"logging":{}}"#
    );
}

#[test]
fn request_meta_reads_modern_keys() {
    let params = serde_json::value::to_raw_value(&serde_json::json!({
        "name": "x",
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
            "progressToken": 5
        }
    }))
    .unwrap();
    let meta = request_meta(Some(&params)).unwrap();
    assert_eq!(meta.protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(
        meta.client_capabilities.unwrap().get(),
        r#"{"sampling":{}}"#
    );
    assert_eq!(meta.progress_token.unwrap().get(), "5");
    assert!(request_meta(None).unwrap().protocol_version.is_none());
}

#[test]
fn request_meta_reads_trace_context_and_ignores_it_when_not_a_string() {
    let params = serde_json::value::to_raw_value(&serde_json::json!({
        "_meta": {
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": "rojo=00f067aa0ba902b7"
        }
    }))
    .unwrap();
    let meta = request_meta(Some(&params)).unwrap();
    assert_eq!(
        meta.traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(meta.tracestate.as_deref(), Some("rojo=00f067aa0ba902b7"));
    let odd = serde_json::value::to_raw_value(&serde_json::json!({
        "_meta": {"traceparent": {"not": ["a string"]}, "tracestate": 7, "progressToken": 1}
    }))
    .unwrap();
    let meta = request_meta(Some(&odd)).unwrap();
    assert!(meta.traceparent.is_none() && meta.tracestate.is_none());
    assert_eq!(meta.progress_token.unwrap().get(), "1");
}

#[test]
fn list_pages_keep_items_raw() {
    let result = serde_json::value::RawValue::from_string(
        r#"{"tools":[{"name":"a","x":{"deep":[1,2.50]}}],"nextCursor":"c2","ttlMs":100}"#
            .to_owned(),
    )
    .unwrap();
    let page = ListPage::parse(ListKind::Tools, &result).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0]["x"].get(), r#"{"deep":[1,2.50]}"#);
    assert_eq!(page.next_cursor.as_deref(), Some("c2"));
    assert_eq!(page.ttl_ms, Some(100));
}

#[test]
fn modern_params_add_meta_and_keep_the_rest() {
    let params = RawValue::from_string(
        r#"{"name":"t","arguments":{"x":1.0},"_meta":{"progressToken":3}}"#.to_owned(),
    )
    .unwrap();
    let caps = RawValue::from_string("{}".to_owned()).unwrap();
    let info = RawValue::from_string(r#"{"name":"g","version":"1"}"#.to_owned()).unwrap();
    let out = modern_params(Some(&params), &caps, &info).unwrap().unwrap();
    assert_eq!(
        out.get(),
        r#"{"name":"t","arguments":{"x":1.0},"_meta":{"progressToken":3,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"g","version":"1"}}}"#
    );
    let back = legacy_params(Some(&out)).unwrap().unwrap();
    assert_eq!(
        back.get(),
        r#"{"name":"t","arguments":{"x":1.0},"_meta":{"progressToken":3}}"#
    );
}

#[test]
fn legacy_params_leave_plain_params_untouched() {
    let params = RawValue::from_string(r#"{"a": 1}"#.to_owned()).unwrap();
    assert_eq!(
        legacy_params(Some(&params)).unwrap().unwrap().get(),
        r#"{"a": 1}"#
    );
    assert!(legacy_params(None).unwrap().is_none());
    let only_meta = RawValue::from_string(
        r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#.to_owned(),
    )
    .unwrap();
    assert_eq!(
        legacy_params(Some(&only_meta)).unwrap().unwrap().get(),
        "{}"
    );
}

/// `param_string` reads what `params_object` + `string_field` read, on
/// params of every shape.
#[test]
fn param_string_reads_like_the_object_path() {
    let cases = [
        r#"{"name":"echo__echo","arguments":{"name":"inner"}}"#,
        r#"{"arguments":{"text":"x"},"name":"a\"b\u00e9"}"#,
        r#"{"name":1}"#,
        r#"{"name":null}"#,
        r#"{"name":"first","name":"last"}"#,
        r#"{"uri":"file:///x"}"#,
        r#"{}"#,
        r#"[1,2]"#,
        r#""name""#,
    ];
    for case in cases {
        let raw = RawValue::from_string(case.to_owned()).unwrap();
        let via_object = params_object(Some(&raw))
            .ok()
            .and_then(|object| string_field(&object, "name"));
        assert_eq!(param_string(Some(&raw), "name"), via_object, "{case}");
    }
    assert_eq!(param_string(None, "name"), None);
}

const KEYS: &[&str] = &["a", "b", "name", "_meta", r"n\u0061me", r#"q\"k"#];
const VALUES: &[&str] = &["1", r#""x""#, r#"{"k":[1,2]}"#, "null", r#""\"é\"""#, "[]"];

/// A raw object's members as plain pairs, to compare.
fn pairs(object: &RawObject) -> Vec<(String, String)> {
    object
        .iter()
        .map(|(k, v)| (k.clone(), v.get().to_owned()))
        .collect()
}

/// An object of `picks.len()` members drawn from the pieces above (repeated
/// and escaped keys included).
fn object_from(picks: &[(u8, u8)]) -> Box<RawValue> {
    let members: Vec<String> = picks
        .iter()
        .map(|&(k, v)| {
            format!(
                "\"{}\":{}",
                KEYS[usize::from(k) % KEYS.len()],
                VALUES[usize::from(v) % VALUES.len()]
            )
        })
        .collect();
    RawValue::from_string(format!("{{{}}}", members.join(","))).unwrap()
}

/// `Members` reads and rewrites an object exactly as a `RawObject` does:
/// the same members, and byte-identical output after the same edits.
#[quickcheck_macros::quickcheck]
#[expect(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn members_edit_like_a_raw_object(picks: Vec<(u8, u8)>, edit: u8) -> bool {
    let raw = object_from(&picks);
    let mut members = Members::parse(Some(&raw)).unwrap();
    let mut object = params_object(Some(&raw)).unwrap();
    if pairs(&members.to_object()) != pairs(&object) {
        return false;
    }
    if members.get("name").map(RawValue::get) != object.get("name").map(|v| v.get())
        || members.string("name") != string_field(&object, "name")
    {
        return false;
    }
    match edit % 3 {
        0 => {
            members.set_string("name", "back\"end");
            set_string_field(&mut object, "name", "back\"end");
        }
        1 => {
            members.remove("a");
            object.shift_remove("a");
        }
        _ => {
            let value = RawValue::from_string("{\"new\":true}".to_owned()).unwrap();
            members.set("_meta", value.clone());
            object.insert("_meta".to_owned(), value);
        }
    }
    members.to_raw().unwrap().get() == to_raw_object(&object).unwrap().get()
}

/// `Named` reads the name `Members` reads and writes the params `Members`
/// writes after the same rename, whichever way it reads them: byte for byte
/// where the text is compact and no key repeats, and as the same JSON
/// otherwise (the text around the name is kept as it came).
#[quickcheck_macros::quickcheck]
#[expect(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn named_renames_as_members_do(picks: Vec<(u8, u8)>, spaced: bool) -> bool {
    let compact = object_from(&picks);
    let raw = if spaced {
        let text = compact.get().replace(':', " :\n ").replace(',', "\t, ");
        RawValue::from_string(format!(" {text}\r\n")).unwrap()
    } else {
        compact
    };
    let mut members = Members::parse(Some(&raw)).unwrap();
    let Some(named) = Named::parse(Some(&raw)).unwrap() else {
        return members.string("name").is_none();
    };
    if members.string("name").as_deref() != Some(named.name()) {
        return false;
    }
    members.set_string("name", "back\"end");
    let expected = members.to_raw().unwrap();
    let renamed = named.renamed("back\"end").unwrap();
    let keys: Vec<u8> = picks.iter().map(|&(k, _)| k % 6).collect();
    let repeated = (1..keys.len()).any(|i| keys[..i].contains(&keys[i]));
    let as_json = |raw: &RawValue| serde_json::from_str::<serde_json::Value>(raw.get()).unwrap();
    // Every `name` in the text is renamed, whichever one a backend reads.
    let names_renamed = all_members(renamed.get())
        .iter()
        .filter(|(key, _)| key == "name")
        .all(|(_, value)| value == r#""back\"end""#);
    names_renamed
        && as_json(&renamed) == as_json(&expected)
        && (spaced || repeated || renamed.get() == expected.get())
}

/// Every top-level member of an object as (key, raw value), repeated keys
/// included, in order.
fn all_members(text: &str) -> Vec<(String, String)> {
    struct All;

    impl<'de> serde::de::Visitor<'de> for All {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, &RawValue>()? {
                all.push((key, value.get().to_owned()));
            }
            Ok(all)
        }
    }

    serde::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_str(text), All)
        .unwrap()
}

#[test]
fn named_answers_what_members_answer_for_odd_params() {
    for case in [r#"{"name":1}"#, r#"{"a":"name"}"#, "{}", r#"{"name":null}"#] {
        let raw = RawValue::from_string(case.to_owned()).unwrap();
        assert!(Named::parse(Some(&raw)).unwrap().is_none(), "{case}");
    }
    for case in ["[1,2]", "1", r#""name""#, "null"] {
        let raw = RawValue::from_string(case.to_owned()).unwrap();
        let error = Named::parse(Some(&raw)).unwrap_err();
        assert_eq!(error.code, code::INVALID_PARAMS, "{case}");
    }
    assert!(Named::parse(None).unwrap().is_none());
    let raw = RawValue::from_string(r#"{"name":"a\u00e9\"b","x":[]}"#.to_owned()).unwrap();
    assert_eq!(
        Named::parse(Some(&raw)).unwrap().unwrap().name(),
        "a\u{e9}\"b"
    );
}

#[test]
fn members_fold_repeated_keys_in_large_objects_too() {
    // Above the linear limit the repeated keys are found by hashing.
    let picks: Vec<(u8, u8)> = (0..200u8).map(|i| (i % 7, i % 5)).collect();
    let raw = object_from(&picks);
    let members = Members::parse(Some(&raw)).unwrap();
    let object = params_object(Some(&raw)).unwrap();
    assert_eq!(pairs(&members.to_object()), pairs(&object));
    assert_eq!(
        members.to_raw().unwrap().get(),
        to_raw_object(&object).unwrap().get()
    );
}

#[test]
fn members_refuse_what_params_object_refuses() {
    for case in ["[1,2]", "1", r#""name""#, "null"] {
        let raw = RawValue::from_string(case.to_owned()).unwrap();
        let error = Members::parse(Some(&raw)).unwrap_err();
        assert_eq!(error.code, code::INVALID_PARAMS, "{case}");
        assert!(params_object(Some(&raw)).is_err(), "{case}");
    }
    assert!(Members::parse(None).unwrap().is_empty());
}

/// The shortcut of `request_meta` (no `_meta` in the text) answers what the
/// full parse answers.
#[test]
fn request_meta_without_meta_text_is_the_default() {
    for case in [
        r#"{"name":"x","arguments":{}}"#,
        r#"{"\u005fmeta":{"progressToken":7}}"#,
        r#"{"_meta":{"progressToken":7}}"#,
        r#"{"arguments":{"_meta":1}}"#,
        "{}",
    ] {
        let raw = RawValue::from_string(case.to_owned()).unwrap();
        let full = serde_json::from_str::<WithMeta>(case)
            .map(|w| w.meta.unwrap_or_default())
            .unwrap();
        assert_eq!(
            request_meta(Some(&raw))
                .unwrap()
                .progress_token
                .map(|t| t.get().to_owned()),
            full.progress_token.map(|t| t.get().to_owned()),
            "{case}"
        );
    }
}

#[test]
fn edit_meta_names_a_malformed_meta() {
    let raw = RawValue::from_string(r#"{"name":"x","_meta":5}"#.to_owned()).unwrap();
    let error = edit_meta(Some(&raw), |_| {}).unwrap_err();
    assert_eq!(error.code, code::INVALID_PARAMS);
    assert!(
        error.message.starts_with("Invalid _meta"),
        "{}",
        error.message
    );
    // A well-formed one keeps every other member and its place.
    let raw = RawValue::from_string(r#"{"_meta":{"a":1,"b":2},"name":"x"}"#.to_owned()).unwrap();
    let edited = edit_meta(Some(&raw), |meta| meta.remove("a"))
        .unwrap()
        .unwrap();
    assert_eq!(edited.get(), r#"{"_meta":{"b":2},"name":"x"}"#);
    let emptied = edit_meta(Some(&edited), |meta| meta.remove("b"))
        .unwrap()
        .unwrap();
    assert_eq!(emptied.get(), r#"{"name":"x"}"#);
}
