use quickcheck_macros::quickcheck;

use super::*;

#[track_caller]
fn single(input: &str) -> Message {
    match parse(input.as_bytes()) {
        Ok(Frame::Single(message)) => message,
        other => panic!("expected one message, got {other:?}"),
    }
}

#[track_caller]
fn invalid_code(input: &str) -> (Option<Id>, i64) {
    match parse(input.as_bytes()) {
        Err(invalid) => (invalid.id, invalid.error.code),
        Ok(Frame::Single(m)) => panic!("expected an error, got {m:?}"),
        Ok(Frame::Batch(b)) => panic!("expected an error, got a batch {b:?}"),
    }
}

#[test]
fn request_keeps_params_byte_for_byte() {
    let input = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"b":1.50,"a":[ 1, 2 ]}}}"#;
    let Message::Request(req) = single(input) else {
        panic!("not a request")
    };
    assert_eq!(req.id, Id::Number(7));
    assert_eq!(req.method, "tools/call");
    assert_eq!(
        req.params.unwrap().get(),
        r#"{"name":"x","arguments":{"b":1.50,"a":[ 1, 2 ]}}"#
    );
}

#[test]
fn key_order_does_not_matter() {
    let Message::Request(req) = single(r#"{"method":"ping","id":"a","jsonrpc":"2.0"}"#) else {
        panic!("not a request")
    };
    assert_eq!(req.id, Id::String("a".into()));
}

#[test]
fn notification_has_no_id() {
    assert!(matches!(
        single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        Message::Notification(n) if n.method == "notifications/initialized"
    ));
}

#[test]
fn responses_with_result_and_error() {
    assert!(matches!(
        single(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        Message::Response(Response {
            id: Some(Id::Number(1)),
            outcome: Ok(_)
        })
    ));
    let Message::Response(res) =
        single(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#)
    else {
        panic!("not a response")
    };
    assert_eq!(res.id, None);
    assert_eq!(res.outcome.unwrap_err().code, -32700);
}

#[test]
fn not_json_is_a_parse_error() {
    assert_eq!(invalid_code("{not json"), (None, code::PARSE_ERROR));
    assert_eq!(invalid_code(""), (None, code::PARSE_ERROR));
}

#[test]
fn wrong_version_is_an_invalid_request_with_the_id() {
    assert_eq!(
        invalid_code(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#),
        (Some(Id::Number(3)), code::INVALID_REQUEST)
    );
    assert_eq!(
        invalid_code(r#"{"id":3,"method":"ping"}"#),
        (Some(Id::Number(3)), code::INVALID_REQUEST)
    );
}

#[test]
fn non_objects_and_bad_ids_are_invalid_requests() {
    assert_eq!(invalid_code("42"), (None, code::INVALID_REQUEST));
    assert_eq!(
        invalid_code(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#),
        (None, code::INVALID_REQUEST)
    );
    assert_eq!(
        invalid_code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
        (None, code::INVALID_REQUEST)
    );
    assert_eq!(invalid_code("[]"), (None, code::INVALID_REQUEST));
}

#[test]
fn batch_keeps_valid_and_invalid_entries() {
    let Ok(Frame::Batch(entries)) = parse(
        br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"foo":1},{"jsonrpc":"2.0","method":"n"}]"#,
    ) else {
        panic!("not a batch")
    };
    assert_eq!(entries.len(), 3);
    assert!(matches!(entries[0], Ok(Message::Request(_))));
    assert!(matches!(&entries[1], Err(e) if e.error.code == code::INVALID_REQUEST));
    assert!(matches!(entries[2], Ok(Message::Notification(_))));
}

#[test]
fn serializes_compactly_with_version_first() {
    let res = Message::Response(Response::error(
        None,
        ErrorObject::new(code::PARSE_ERROR, "Parse error"),
    ));
    assert_eq!(
        String::from_utf8(res.to_vec()).unwrap(),
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
    );
}

/// [`Message::to_vec`] writes what the `Serialize` implementation does, for
/// every kind of message.
#[quickcheck]
#[allow(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn written_messages_serialize_as_the_general_path_does(n: i64, s: String, text: String) -> bool {
    let raw = serde_json::value::to_raw_value(&serde_json::json!({"content": [{"text": &text}]}))
        .unwrap();
    let ids = [Id::Number(n), Id::String(s.into())];
    let mut messages = vec![
        Message::Notification(Notification {
            method: text.clone(),
            params: Some(raw.clone()),
        }),
        Message::Notification(Notification {
            method: text.clone(),
            params: None,
        }),
        Message::Response(Response::error(None, ErrorObject::new(-1, text.clone()))),
    ];
    for id in ids {
        messages.push(Message::Request(Request {
            id: id.clone(),
            method: text.clone(),
            params: Some(raw.clone()),
        }));
        messages.push(Message::Request(Request {
            id: id.clone(),
            method: text.clone(),
            params: None,
        }));
        messages.push(Message::Response(Response::result(id.clone(), raw.clone())));
        messages.push(Message::Response(Response::error(
            Some(id),
            ErrorObject::new(n, text.clone()),
        )));
    }
    messages
        .iter()
        .all(|m| m.to_vec() == serde_json::to_vec(m).unwrap())
}

#[quickcheck]
fn number_ids_round_trip(n: i64) -> bool {
    round_trip(&Id::Number(n))
}

#[quickcheck]
#[allow(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn string_ids_round_trip(s: String) -> bool {
    round_trip(&Id::String(s.into()))
}

fn round_trip(id: &Id) -> bool {
    let out = Message::Request(Request {
        id: id.clone(),
        method: "m".to_owned(),
        params: None,
    })
    .to_vec();
    match parse(&out) {
        Ok(Frame::Single(Message::Request(req))) => req.id == *id,
        _ => false,
    }
}

/// Pieces of JSON-RPC frames, valid and not, for the property below.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\"jsonrpc\"",
    "\"2.0\"",
    "\"1.0\"",
    "\"id\"",
    "1",
    "-7",
    "1.5",
    "null",
    "true",
    "\"s\\u0041\"",
    "\"method\"",
    "\"tools/call\"",
    "\"params\"",
    "{}",
    "{\"a\":[1,{\"b\":\"\\n\"}]}",
    "\"result\"",
    "\"error\"",
    "{\"code\":-32601,\"message\":\"x\"}",
    "\"extra\"",
    "\"\\\"",
];

/// The one-pass fast path of `parse` decides exactly as the general
/// two-pass path, on every frame built from the pieces above (valid
/// messages, duplicate keys, bad ids, trailing bytes, broken JSON).
#[quickcheck]
fn the_fast_path_decides_like_the_general_one(picks: Vec<u8>, object: bool) -> bool {
    let mut text = String::from(if object { "{" } else { "" });
    for pick in picks {
        text.push_str(PIECES[usize::from(pick) % PIECES.len()]);
    }
    let fast = format!("{:?}", parse(text.as_bytes()));
    let general = format!("{:?}", parse_two_pass(text.as_bytes()));
    fast == general
}

#[test]
fn the_fast_path_decides_like_the_general_one_on_known_frames() {
    for frame in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
        r#"  {"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":"a","result":{"content":[]}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m"} x"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m""#,
        r#"{"id":1,"method":"m"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","result":{}}"#,
    ] {
        assert_eq!(
            format!("{:?}", parse(frame.as_bytes())),
            format!("{:?}", parse_two_pass(frame.as_bytes())),
            "{frame}"
        );
    }
}

/// The integer shortcut for ids reads each JSON number as the `Id`
/// deserializer does, and refuses what it refuses.
#[test]
fn integer_ids_read_as_the_deserializer_reads_them() {
    for raw in [
        "0",
        "-0",
        "7",
        "-7",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "-9223372036854775809",
        "1e2",
        "1.0",
        "-1.5",
    ] {
        let frame = format!(r#"{{"jsonrpc":"2.0","id":{raw},"method":"m"}}"#);
        let general = serde_json::from_str::<Id>(raw).ok();
        let parsed = match parse(frame.as_bytes()) {
            Ok(Frame::Single(Message::Request(req))) => Some(req.id),
            Err(invalid) => {
                assert_eq!(invalid.error.code, code::INVALID_REQUEST, "{raw}");
                None
            }
            Ok(other) => panic!("{raw}: {other:?}"),
        };
        assert_eq!(parsed, general, "{raw}");
    }
}
