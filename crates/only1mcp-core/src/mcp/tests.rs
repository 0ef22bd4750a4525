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
