use super::*;

async fn read_all(input: &[u8], max: usize) -> Vec<Line> {
    let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(4, input), max);
    let mut out = Vec::new();
    while let Some(line) = reader.next_line().await.unwrap() {
        out.push(line);
    }
    out
}

#[tokio::test]
async fn splits_lines_across_buffer_boundaries() {
    assert_eq!(
        read_all(b"hello\nworld!\r\n\nlast", 100).await,
        vec![
            Line::Data(b"hello".to_vec()),
            Line::Data(b"world!".to_vec()),
            Line::Data(b"last".to_vec()),
        ]
    );
}

#[tokio::test]
async fn an_oversized_line_is_skipped_and_reading_goes_on() {
    assert_eq!(
        read_all(b"ok\n0123456789abc\nnext\n", 8).await,
        vec![
            Line::Data(b"ok".to_vec()),
            Line::TooLong {
                len: 13,
                id: None,
                method: false
            },
            Line::Data(b"next".to_vec()),
        ]
    );
}

/// The id of an oversized answer is found before or after its large
/// member, in the kept prefix or in the bytes skipped after it.
#[tokio::test]
async fn an_oversized_line_reports_its_top_level_id_wherever_it_stands() {
    let big = "x\\\"y{[".repeat(40);
    let cases = [
        (
            format!(r#"{{"jsonrpc":"2.0","id":7,"result":{{"text":"{big}"}}}}"#),
            Some(Id::Number(7)),
            false,
        ),
        (
            format!(
                r#"{{"result":{{"content":[{{"id":1,"text":"{big}"}}]}},"jsonrpc":"2.0","id" : "s-1" }}"#
            ),
            Some(Id::String("s-1".into())),
            false,
        ),
        (
            format!(r#"{{"jsonrpc":"2.0","method":"notifications/message","params":"{big}"}}"#),
            None,
            true,
        ),
        (
            format!(r#"{{"jsonrpc":"2.0","id":null,"error":{{"message":"{big}"}}}}"#),
            None,
            false,
        ),
        (format!(r#"["{big}",{{"id":3}}]"#), None, false),
    ];
    for (line, id, method) in cases {
        for max in [8, 60, line.len() - 1] {
            let input = format!("{line}\nnext\n");
            let got = read_all(input.as_bytes(), max).await;
            assert_eq!(
                got,
                vec![
                    Line::TooLong {
                        len: line.len(),
                        id: id.clone(),
                        method
                    },
                    Line::Data(b"next".to_vec()),
                ],
                "max {max}: {line}"
            );
        }
    }
}

#[test]
fn a_nested_id_is_not_the_envelopes() {
    let mut scan = EnvelopeScan::default();
    scan.feed(br#"{"result":{"id":5,"items":[{"id":6}]},"#);
    scan.feed(br#""id":9}"#);
    assert_eq!(scan.id(), Some(Id::Number(9)));
    let mut scan = EnvelopeScan::default();
    scan.feed(br#"{"result":{"id":5}, "jsonrpc":"2.0"}"#);
    assert_eq!(scan.id(), None);
}

async fn log_lines(input: &[u8], max: usize) -> Vec<(String, bool)> {
    let mut lines = LogLines::new(tokio::io::BufReader::with_capacity(3, input), max);
    let mut out = Vec::new();
    while let Some((line, cut)) = lines.next_line().await.unwrap() {
        out.push((String::from_utf8_lossy(line).into_owned(), cut));
    }
    out
}

#[tokio::test]
async fn log_lines_are_cut_at_the_cap_and_bad_utf8_is_kept_as_replacement() {
    assert_eq!(
        log_lines(
            b"short\r\n\n0123456789abcdef\nbad \xff\xfe byte\nexactly8\nlast",
            8
        )
        .await,
        vec![
            ("short".to_owned(), false),
            ("01234567".to_owned(), true),
            ("bad \u{fffd}\u{fffd} b".to_owned(), true),
            ("exactly8".to_owned(), false),
            ("last".to_owned(), false),
        ]
    );
}

/// A line far over the cap costs the cap, not its length: the reader hands
/// out the cut line before the rest has even been written.
#[tokio::test]
async fn a_cut_log_line_comes_before_its_end_arrives() {
    use tokio::io::AsyncWriteExt;
    let (mut tx, rx) = tokio::io::duplex(64);
    let mut lines = LogLines::new(tokio::io::BufReader::new(rx), 16);
    let (cut_seen, rest) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        tx.write_all(&[b'a'; 32]).await.unwrap();
        rest.await.unwrap();
        tx.write_all(&[b'b'; 1000]).await.unwrap();
        tx.write_all(b"\nnext\n").await.unwrap();
    });
    let (line, cut) = lines.next_line().await.unwrap().unwrap();
    assert_eq!((line, cut), (&[b'a'; 16][..], true));
    cut_seen.send(()).unwrap();
    assert_eq!(
        lines.next_line().await.unwrap(),
        Some((&b"next"[..], false))
    );
    writer.await.unwrap();
    assert_eq!(lines.next_line().await.unwrap(), None);
}
