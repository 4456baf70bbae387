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

/// Reads `input` on its own thread (a backstop: quadratic work on these inputs takes
/// minutes) and checks that no byte was examined more than a few times.
fn read_linear(input: Vec<u8>) -> Vec<Got> {
    let len = input.len() as u64;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for buf in [7, 64 * 1024] {
            let mut r = ArrayReader::new(io::BufReader::with_capacity(buf, &input[..]), 1 << 30);
            let mut got = Vec::new();
            while let Some(item) = r.next().expect("readable") {
                got.push(match item {
                    Item::Element {
                        index,
                        offset,
                        bytes,
                    } => {
                        assert_eq!(&input[offset as usize..][..bytes.len()], &bytes[..]);
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
            let _ = tx.send((got, r.bytes_scanned()));
        }
    });
    let wait = std::time::Duration::from_secs(60);
    let (small, scanned_small) = rx.recv_timeout(wait).expect("read in one pass");
    let (big, scanned_big) = rx.recv_timeout(wait).expect("read in one pass");
    assert_eq!(small, big, "buffer size must not matter");
    for scanned in [scanned_small, scanned_big] {
        assert!(
            scanned <= 3 * len,
            "{scanned} bytes examined for {len}: not linear"
        );
    }
    big
}

/// About 2 MB of a repeated pattern, between a prefix and a suffix.
fn hostile(prefix: &str, unit: &str, suffix: &str) -> (Vec<u8>, usize) {
    let n = 2_000_000 / unit.len();
    let mut s = String::with_capacity(prefix.len() + n * unit.len() + suffix.len());
    s.push_str(prefix);
    for _ in 0..n {
        s.push_str(unit);
    }
    s.push_str(suffix);
    (s.into_bytes(), n)
}

#[test]
fn hostile_resync_input_is_reported_in_one_pass() {
    // The issue's file: every `,{"id":0` is a candidate that never closes.
    let (input, _) = hostile("[{]", r#",{"id":0"#, "");
    assert_eq!(read_linear(input), vec![Got::Bad(1, None, None)]);
    // The same ending in a bracket that fails them all at once.
    let (input, _) = hostile("[{]", r#",{"id":0"#, "}");
    assert_eq!(read_linear(input), vec![Got::Bad(1, None, None)]);
    // Nested as deep as it goes, and commas that start nothing.
    let (input, _) = hostile(r#"[{],{"id":"#, "[", "");
    assert_eq!(read_linear(input), vec![Got::Bad(1, None, None)]);
    let (input, _) = hostile("[{]", ", ", r#",{"id":"x","mapping":{}}]"#);
    let start = input.len() as u64 - 24;
    assert_eq!(
        read_linear(input),
        vec![
            Got::Bad(1, Some(start), None),
            el(2, r#"{"id":"x","mapping":{}}"#)
        ]
    );
    // A candidate in the string of the one before, again and again: each proves the
    // one before is not JSON.
    let (input, _) = hostile("[{]", r#",{"id":"a"#, "");
    assert_eq!(read_linear(input), vec![Got::Bad(1, None, None)]);
}

#[test]
fn conversations_inside_a_damaged_stretch_are_recovered_in_one_pass() {
    // Open candidates, each holding a complete conversation, all failed by the last
    // bracket: every conversation is recovered, once.
    let conv = r#"{"id":"r","mapping":{}}"#;
    let (input, n) = hostile("[{]", &format!(r#",{{"id":[,{conv}"#), "}");
    let got = read_linear(input);
    assert_eq!(got.len(), n + 1);
    assert!(matches!(got[0], Got::Bad(1, Some(_), None)), "{:?}", got[0]);
    assert!(
        got[1..]
            .iter()
            .enumerate()
            .all(|(i, g)| *g == el(i + 2, conv))
    );
    // The same where the enclosing objects are not candidates but the failed element.
    let conv = r#"{"title":"c","mapping":{}}"#;
    let (input, n) = hostile(r#"[{"a":["#, &format!(r#",{conv},{{"zz":["#), "}");
    let got = read_linear(input);
    assert_eq!(got.len(), n + 1);
    assert!(
        got[1..]
            .iter()
            .enumerate()
            .all(|(i, g)| *g == el(i + 2, conv))
    );
    // Conversations nested in conversations: the outermost is the one.
    let (input, n) = hostile("[{]", r#",{"mapping":[0"#, "");
    let mut input = input;
    for _ in 0..n {
        input.extend_from_slice(b"]}");
    }
    input.push(b']');
    let got = read_linear(input.clone());
    assert_eq!(got.len(), 2);
    let whole = String::from_utf8(input[4..input.len() - 1].to_vec()).expect("utf8");
    assert_eq!(got[1], el(2, &whole));
}

#[test]
fn objects_of_a_damaged_conversation_are_not_taken_for_conversations() {
    // b lacks a closing brace. Its attachment list holds `,{"id":…}` objects: they are
    // not conversations (no mapping), so reading resumes with c, and what follows c is
    // read as usual (the `]` after the list does not end the array).
    let input = br#"[{"id":"a","mapping":{}},{"id":"b","mapping":{"n":{"message":{"metadata":{"attachments":[{"id":"file-1"},{"id":"file-2","name":"x"}]}}}},{"id":"c","mapping":{}},{"id":"d","mapping":{}}]"#;
    let got = read_all(input);
    assert_eq!(got[0], el(1, r#"{"id":"a","mapping":{}}"#));
    assert!(
        matches!(&got[1], Got::Bad(2, Some(_), Some(h)) if h.contains("\"b\"")),
        "{got:?}"
    );
    assert_eq!(got[2], el(3, r#"{"id":"c","mapping":{}}"#));
    assert_eq!(got[3], el(4, r#"{"id":"d","mapping":{}}"#));
    assert_eq!(got.len(), 4);
}

#[test]
fn a_second_damaged_conversation_met_while_resynchronising_is_reported_too() {
    // b's mapping is an unclosed array holding c; the `}` after c fails b. While still
    // resynchronising, d fails as well: both are reported, c and e are read.
    let input = br#"[{"id":"a","mapping":{}},{"id":"b","mapping":[,{"id":"c","mapping":{}}},{"id":"d","mapping":{"x":]},{"id":"e","mapping":{}}]"#;
    let text = String::from_utf8_lossy(input);
    let at = |s: &str| text.find(s).expect("in the input") as u64;
    let got = read_all(input);
    assert_eq!(
        got,
        vec![
            el(1, r#"{"id":"a","mapping":{}}"#),
            Got::Bad(2, Some(at(r#"{"id":"c""#)), Some(r#"id "b""#.into())),
            el(3, r#"{"id":"c","mapping":{}}"#),
            Got::Bad(4, Some(at(r#"{"id":"e""#)), Some(r#"id "d""#.into())),
            el(5, r#"{"id":"e","mapping":{}}"#),
        ]
    );
}

#[test]
fn the_gate_hears_of_every_byte_held_before_it_is() {
    let input = br#"[{"id":"a","mapping":{"x":"0123456789"}},{"id":"b","mapping":{]},{"id":"c","mapping":{}}]"#;
    let seen = std::cell::RefCell::new(Vec::new());
    let mut r = ArrayReader::new(io::BufReader::with_capacity(8, &input[..]), 1 << 20)
        .with_gate(|n| seen.borrow_mut().push(n));
    let mut sizes = Vec::new();
    while let Some(item) = r.next().expect("readable") {
        if let Item::Element { bytes, .. } = item {
            sizes.push(bytes.len());
        }
    }
    assert_eq!(sizes, [39, 23]);
    let seen = seen.into_inner();
    // Announced as it grew, never less than an element it handed out.
    assert!(seen.windows(2).any(|w| w[1] > w[0]), "{seen:?}");
    assert!(seen.contains(&39), "{seen:?}");
    assert!(seen.iter().any(|&n| n >= 23), "{seen:?}");
}

#[test]
fn hints_show_titles_decoded_as_a_person_reads_them() {
    // An export written with ASCII escapes (as real 2024 exports are).
    let escaped = br#"{"title": "LCP\u6307\u6807 \"quoted\" \\ back\nslash", "mapping": {"#;
    assert_eq!(
        hint_of(escaped).as_deref(),
        Some(r#"title "LCP指标 "quoted" \ back slash""#)
    );
    // Raw UTF-8 reads the same; control characters never reach a terminal.
    assert_eq!(
        hint_of("{\"title\":\"LCP指标\\u001b[31m\"}".as_bytes()).as_deref(),
        Some(r#"title "LCP指标[31m""#)
    );
    let long = format!(r#"{{"title":"{}"}}"#, "\\u00e9".repeat(200));
    assert_eq!(
        hint_of(long.as_bytes()),
        Some(format!("title \"{}\"", "é".repeat(80)))
    );
    // No closing quote in what was read, or not a string: no hint.
    assert_eq!(hint_of(br#"{"title":"cut off"#), None);
    assert_eq!(hint_of(br#"{"title":null,"id":7}"#), None);
}
