use super::*;

#[derive(Debug, PartialEq)]
enum Got {
    El(usize, String),
    Bad(usize, Option<u64>, Option<String>),
}

fn read_all_with(input: &[u8], buf: usize) -> (Vec<Got>, Option<String>) {
    let mut r = ArrayReader::new(io::BufReader::with_capacity(buf, input), 1 << 20);
    let mut out = Vec::new();
    while let Some(item) = r.next().expect("readable") {
        out.push(match item {
            Item::Element {
                index,
                bytes,
                offset,
            } => {
                assert_eq!(
                    &input[offset as usize..offset as usize + bytes.len()],
                    &bytes[..]
                );
                Got::El(index, String::from_utf8(bytes).expect("utf8"))
            }
            Item::Malformed {
                index,
                resumed_at,
                hint,
                ..
            } => Got::Bad(index, resumed_at, hint),
        });
    }
    (out, r.trailing().map(str::to_owned))
}

fn read_all(input: &[u8]) -> Vec<Got> {
    let small = read_all_with(input, 7).0;
    let big = read_all_with(input, 64 * 1024).0;
    assert_eq!(small, big, "buffer size must not matter");
    big
}

fn el(i: usize, s: &str) -> Got {
    Got::El(i, s.to_owned())
}

#[test]
fn elements_verbatim_with_bom_whitespace_and_tricky_strings() {
    let input =
        "\u{FEFF} [ {\"id\":\"a\",\"t\":\"}]\\\"{[\"} ,\n{\"id\":\"b\",\"x\":[1,{\"y\":[]}]} ]  ";
    assert_eq!(
        read_all(input.as_bytes()),
        vec![
            el(1, "{\"id\":\"a\",\"t\":\"}]\\\"{[\"}"),
            el(2, "{\"id\":\"b\",\"x\":[1,{\"y\":[]}]}")
        ]
    );
}

#[test]
fn empty_array_and_scalars() {
    assert!(read_all(b"[]").is_empty());
    assert!(read_all(b" [ ] ").is_empty());
    assert_eq!(
        read_all(b"[1, \"s\", null,{}]"),
        vec![el(1, "1"), el(2, "\"s\""), el(3, "null"), el(4, "{}")]
    );
}

#[test]
fn not_an_array() {
    let mut r = ArrayReader::new(&b"  "[..], 100);
    assert!(matches!(r.next(), Err(StreamError::Empty)));
    let mut r = ArrayReader::new(&b"{\"id\":1}"[..], 100);
    assert!(matches!(
        r.next(),
        Err(StreamError::NotAnArray("an object"))
    ));
    let mut r = ArrayReader::new(&b"PK\x03\x04"[..], 100);
    assert!(matches!(r.next(), Err(StreamError::NotAnArray(_))));
}

#[test]
fn truncated_file_reports_the_cut_element() {
    let got = read_all(b"[{\"id\":\"a\"},{\"conversation_id\":\"b\",\"mapping\":{\"x\"");
    assert_eq!(
        got,
        vec![
            el(1, "{\"id\":\"a\"}"),
            Got::Bad(2, None, Some("conversation_id \"b\"".into()))
        ]
    );
    let (got, trailing) = read_all_with(b"[{\"id\":\"a\"}  ", 64);
    assert_eq!(got, vec![el(1, "{\"id\":\"a\"}")]);
    assert!(
        trailing
            .expect("note")
            .contains("before the array is closed")
    );
}

#[test]
fn unbalanced_element_resynchronises_on_the_next_conversation() {
    // Element 2 lacks a closing brace, so it swallows element 3 until the mismatch.
    let input = br#"[{"id":"a","mapping":{}},{"id":"b","mapping":{"n":{"parts":[{"x":1},{"y":2}]},{"title":"c","mapping":{}},{"id":"d","mapping":{}}]"#;
    let got = read_all(input);
    assert_eq!(got[0], el(1, r#"{"id":"a","mapping":{}}"#));
    assert!(
        matches!(&got[1], Got::Bad(2, Some(_), Some(h)) if h.contains("\"b\"")),
        "{got:?}"
    );
    assert_eq!(got[2], el(3, r#"{"title":"c","mapping":{}}"#));
    assert_eq!(got[3], el(4, r#"{"id":"d","mapping":{}}"#));
    assert_eq!(got.len(), 4);
}

#[test]
fn garbage_between_elements_is_skipped() {
    let input = br#"[{"id":"a"} garbage ,{"id":"b","mapping":{}}]"#;
    let got = read_all(input);
    assert_eq!(got[0], el(1, r#"{"id":"a"}"#));
    assert!(matches!(got[1], Got::Bad(2, Some(_), None)), "{got:?}");
    assert_eq!(got[2], el(2, r#"{"id":"b","mapping":{}}"#));
}

#[test]
fn oversized_elements_are_rejected() {
    let big = format!(
        "[{{\"id\":\"x\",\"p\":\"{}\"}},{{\"id\":\"y\",\"mapping\":{{}}}}]",
        "a".repeat(300)
    );
    let mut r = ArrayReader::new(big.as_bytes(), 100);
    assert!(matches!(
        r.next().expect("ok"),
        Some(Item::Malformed { index: 1, .. })
    ));
    assert!(matches!(
        r.next().expect("ok"),
        Some(Item::Element { index: 2, .. })
    ));
}

#[test]
fn a_single_object_reads_as_one_element_when_allowed() {
    let input = b"\xEF\xBB\xBF {\"id\":\"one\",\"mapping\":{}}\n";
    let mut r = ArrayReader::new(&input[..], 1 << 20).allow_single_object();
    match r.next().expect("ok") {
        Some(Item::Element {
            index: 1, bytes, ..
        }) => assert_eq!(bytes, b"{\"id\":\"one\",\"mapping\":{}}"),
        other => panic!("{other:?}"),
    }
    assert!(r.next().expect("ok").is_none());
    let mut r = ArrayReader::new(&b"{\"id\":\"one\",\"map"[..], 1 << 20).allow_single_object();
    assert!(matches!(
        r.next().expect("ok"),
        Some(Item::Malformed { .. })
    ));
}
