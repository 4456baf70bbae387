use super::*;
use crate::render::filename::attachment_file_name;
use serde_json::Value;

// ---- builders ----

fn msg(role: &str, content_type: &str, text: &str) -> MessageView {
    MessageView {
        id: Some(format!("m-{role}-{content_type}")),
        role: role.to_owned(),
        author_name: None,
        recipient: Some("all".to_owned()),
        content_type: content_type.to_owned(),
        text: text.to_owned(),
        create_time: None,
        model: None,
        attachments: Vec::new(),
        language: None,
        channel: None,
        node_id: "n".to_owned(),
        raw_content: None,
        thought_summaries: Vec::new(),
        thinking_secs: None,
        url: None,
        page_title: None,
        citations: Vec::new(),
        canvas: None,
        report: None,
    }
}

fn tool(name: &str, content_type: &str, text: &str) -> MessageView {
    MessageView {
        author_name: Some(name.to_owned()),
        ..msg("tool", content_type, text)
    }
}

fn call(recipient: &str, language: Option<&str>, text: &str) -> MessageView {
    MessageView {
        recipient: Some(recipient.to_owned()),
        language: language.map(str::to_owned),
        ..msg("assistant", "code", text)
    }
}

fn thoughts(pairs: &[(&str, &str)]) -> MessageView {
    let list: Vec<Value> = pairs
        .iter()
        .map(|(s, c)| serde_json::json!({"summary": s, "content": c}))
        .collect();
    let raw = serde_json::json!({"content_type": "thoughts", "thoughts": list});
    MessageView {
        raw_content: Some(raw.to_string()),
        thought_summaries: pairs.iter().map(|(s, _)| (*s).to_owned()).collect(),
        ..msg(
            "assistant",
            "thoughts",
            &pairs
                .iter()
                .map(|(_, c)| *c)
                .collect::<Vec<_>>()
                .join("\n\n"),
        )
    }
}

fn recap(text: &str, secs: f64) -> MessageView {
    MessageView {
        thinking_secs: Some(secs),
        ..msg("assistant", "reasoning_recap", text)
    }
}

fn attachment(name: Option<&str>, id: &str, mime: Option<&str>, stored: bool) -> AttachmentView {
    AttachmentView {
        name: name.map(str::to_owned),
        file_id: id.to_owned(),
        mime_type: mime.map(str::to_owned),
        sha256: stored.then(|| "ab".repeat(32)),
        kind: "file".to_owned(),
    }
}

fn conv(title: Option<&str>, messages: Vec<MessageView>) -> ConversationView {
    ConversationView {
        id: "6650a1b2-0000-4000-8000-000000000001".to_owned(),
        title: title.map(str::to_owned),
        create_time: Some("2024-05-01T14:03:07.123456Z".to_owned()),
        update_time: Some("2024-05-02T09:00:00Z".to_owned()),
        model: Some("gpt-4o".to_owned()),
        gizmo_id: None,
        project: None,
        is_archived: false,
        deleted_remotely: false,
        node_count: 0,
        messages,
    }
}

/// Links every attachment into `files/` under its attachment file name.
struct DirLinks;
impl AttachmentLinks for DirLinks {
    fn link(&self, a: &AttachmentView) -> Option<String> {
        a.sha256
            .as_ref()
            .map(|_| format!("files/{}", attachment_file_name(a)))
    }
}

// ---- a tiny YAML check for the subset the front matter uses ----

/// Unescapes a YAML double-quoted scalar, rejecting anything malformed: a raw
/// quote, a raw control character or line break, an unknown escape.
fn yaml_unquote(v: &str) -> Result<String, String> {
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| format!("not double-quoted: {v}"))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Err(format!("unescaped quote in {v}")),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                return Err(format!("raw control {c:?} in {v}"));
            }
            '\\' => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                    out.push(char::from_u32(code).ok_or("bad code point")?);
                }
                other => return Err(format!("bad escape {other:?} in {v}")),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The front matter's `key → value` lines, checking its framing and that every
/// line is a single `key: value`.
fn front_matter(doc: &str) -> Vec<(String, String)> {
    let mut lines = doc.lines();
    assert_eq!(lines.next(), Some("---"), "front matter opens the document");
    let mut fields = Vec::new();
    for line in lines.by_ref() {
        if line == "---" {
            return fields;
        }
        let (k, v) = line.split_once(": ").expect("key: value line");
        assert!(
            k.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "bad key {k:?}"
        );
        fields.push((k.to_owned(), v.to_owned()));
    }
    panic!("front matter never closed");
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every line mentioning `needle` sits inside a blockquote (a folded callout).
fn only_folded(doc: &str, needle: &str) {
    let hits: Vec<&str> = doc.lines().filter(|l| l.contains(needle)).collect();
    assert!(!hits.is_empty(), "{needle:?} missing from:\n{doc}");
    for l in hits {
        assert!(
            l.starts_with('>'),
            "{needle:?} leaks unfolded: {l:?}\n{doc}"
        );
    }
}

/// The callout starting at the line `header`, as its lines.
fn callout_lines<'a>(doc: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = doc.lines().skip_while(|l| *l != header);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {header:?} in:\n{doc}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with('>')))
        .collect()
}

// ---- front matter ----

#[test]
fn front_matter_is_valid_yaml_for_nasty_titles() {
    let titles = [
        "He said \"hi\": #1",
        "line one\nline two\r\nthree",
        "- leading dash",
        "# hash first",
        "tab\there and a back\\slash",
        "'single' & *star* {brace} [list]",
        "odd \u{7f}\u{85}\u{2028}\u{2029}\u{feff}\u{1} chars",
        "",
        "emoji 🙂 and 日本語",
        "key: value # comment",
    ];
    for title in titles {
        let doc = render(&conv(Some(title), vec![]), &NoLinks);
        let fields = front_matter(&doc);
        let raw = field(&fields, "title").expect("title field");
        assert_eq!(
            yaml_unquote(raw).as_deref(),
            Ok(title),
            "round trip of {title:?}"
        );
        for key in ["id", "model", "url"] {
            let v = field(&fields, key).expect(key);
            yaml_unquote(v).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }
}

#[test]
fn front_matter_fields() {
    let mut c = conv(Some("T"), vec![]);
    let doc = render(&c, &NoLinks);
    let f = front_matter(&doc);
    assert_eq!(
        field(&f, "id"),
        Some("\"6650a1b2-0000-4000-8000-000000000001\"")
    );
    assert_eq!(field(&f, "created"), Some("2024-05-01T14:03:07.123456Z"));
    assert_eq!(field(&f, "updated"), Some("2024-05-02T09:00:00Z"));
    assert_eq!(field(&f, "model"), Some("\"gpt-4o\""));
    assert_eq!(
        field(&f, "url"),
        Some("\"https://chatgpt.com/c/6650a1b2-0000-4000-8000-000000000001\"")
    );
    assert_eq!(field(&f, "tags"), Some("[chatgpt]"));
    for absent in ["project", "gizmo_id", "archived", "deleted_remotely"] {
        assert_eq!(field(&f, absent), None, "{absent} only when set");
    }

    c.project = Some("Trip: \"Japan\"".to_owned());
    c.gizmo_id = Some("g-abc".to_owned());
    c.is_archived = true;
    c.deleted_remotely = true;
    c.create_time = Some("not a time: really".to_owned());
    c.id = "a b/c".to_owned();
    let doc = render(&c, &NoLinks);
    let f = front_matter(&doc);
    assert_eq!(
        yaml_unquote(field(&f, "project").unwrap_or_default()).as_deref(),
        Ok("Trip: \"Japan\"")
    );
    assert_eq!(field(&f, "gizmo_id"), Some("\"g-abc\""));
    assert_eq!(field(&f, "archived"), Some("true"));
    assert_eq!(field(&f, "deleted_remotely"), Some("true"));
    assert_eq!(field(&f, "created"), Some("\"not a time: really\""));
    assert_eq!(
        field(&f, "url"),
        Some("\"https://chatgpt.com/c/a%20b%2Fc\"")
    );
}

#[test]
fn heading_falls_back_and_escapes() {
    let doc = render(&conv(None, vec![]), &NoLinks);
    assert!(doc.contains("\n# Untitled conversation\n"), "{doc}");
    assert!(!front_matter(&doc).iter().any(|(k, _)| k == "title"));

    let doc = render(&conv(Some("   "), vec![]), &NoLinks);
    assert!(doc.contains("\n# Untitled conversation\n"), "{doc}");

    let doc = render(&conv(Some("Learn #rust\nin [[C#]]"), vec![]), &NoLinks);
    assert!(
        doc.contains("\n# Learn \\#rust in \\[\\[C\\#\\]\\]\n"),
        "{doc}"
    );
}

// ---- fences ----

#[test]
fn fences_outgrow_backtick_runs_inside() {
    assert_eq!(fenced("py", "x = 1\n"), "```py\nx = 1\n```");
    assert_eq!(fenced("md", "a ``` b"), "````md\na ``` b\n````");
    assert_eq!(fenced("md", "`````"), "``````md\n`````\n``````");
    assert_eq!(fenced("text", ""), "```text\n```");
}

#[test]
fn code_tool_call_with_fences_inside_survives() {
    let code = "s = '''\n```python\nprint(1)\n```\n'''\r\nprint(s)";
    let doc = render(
        &conv(
            Some("t"),
            vec![
                msg("user", "text", "go"),
                call("python", Some("unknown"), code),
            ],
        ),
        &NoLinks,
    );
    let lines = callout_lines(&doc, "> [!example]- Python");
    assert_eq!(lines[1], "> ````python", "{doc}");
    assert_eq!(
        lines[2..6],
        ["> s = '''", "> ```python", "> print(1)", "> ```"]
    );
    assert_eq!(lines.last(), Some(&"> ````"));
    assert!(!doc.contains('\r'));
}

#[test]
fn code_language_defaults_and_sanitises() {
    let m = call("web.run", Some("unknown"), "{}");
    assert_eq!(code_language(&m), "text");
    let m = call("python", None, "1");
    assert_eq!(code_language(&m), "python");
    let m = call("x", Some("json"), "{}");
    assert_eq!(code_language(&m), "json");
    let m = call("x", Some("we`ird lang"), "{}");
    assert_eq!(code_language(&m), "weird");
}

#[test]
fn unclosed_fence_in_visible_text_is_closed() {
    let doc = render(
        &conv(
            Some("t"),
            vec![
                msg(
                    "assistant",
                    "text",
                    "Here:\n````rust\nfn main() {\n```\nstill code",
                ),
                msg("user", "text", "next"),
            ],
        ),
        &NoLinks,
    );
    assert!(doc.contains("still code\n````\n\n## You\n"), "{doc}");

    assert_eq!(unclosed_fence("```\na\n```"), None);
    assert_eq!(unclosed_fence("1. x\n   ```sh\n   ls\n   ```\n"), None);
    assert_eq!(unclosed_fence("~~~\na"), Some("~~~".to_owned()));
    assert_eq!(unclosed_fence("inline ``` only"), None);
    assert_eq!(
        unclosed_fence("```a`b"),
        None,
        "not a fence: backtick in info"
    );
}

// ---- folding ----

#[test]
fn thinking_folds_into_one_callout_with_every_line_prefixed() {
    let doc = render(
        &conv(
            Some("t"),
            vec![
                msg("user", "text", "question"),
                thoughts(&[("Plan", "thought 1\nline two\n\nnew para"), ("Plan", "")]),
                // Silent tool chatter between thoughts does not split the callout.
                MessageView {
                    recipient: Some("web.run".to_owned()),
                    ..msg("assistant", "text", "")
                },
                tool("web.run", "text", ""),
                thoughts(&[("Check", "thought 2"), ("Wrap up", "")]),
                recap("Thought for 29s", 29.0),
                msg("assistant", "text", "answer"),
            ],
        ),
        &NoLinks,
    );
    let lines = callout_lines(&doc, "> [!abstract]- Thought for 29s");
    assert_eq!(
        lines[1..],
        [
            "> **Plan**",
            ">",
            "> thought 1",
            "> line two",
            ">",
            "> new para",
            ">",
            "> **Check**",
            ">",
            "> thought 2",
            ">",
            "> **Wrap up**",
        ],
        "{doc}"
    );
    assert_eq!(doc.matches("[!abstract]").count(), 1, "{doc}");
    assert_eq!(doc.matches("## ChatGPT").count(), 1, "{doc}");
    assert!(doc.contains("> **Wrap up**\n\nanswer\n"), "{doc}");
}

/// A thinking run as Markdown.
fn thinking_md(run: &[MessageView]) -> Option<String> {
    thinking_block(run).map(|b| block_markdown(&b, &NoLinks))
}

#[test]
fn thinking_titles() {
    let alone = thinking_md(&[recap("Thought for 47s", 47.0)]);
    assert_eq!(alone.as_deref(), Some("> [!abstract]- Thought for 47s"));
    let secs_only = thinking_md(&[MessageView {
        thinking_secs: Some(12.4),
        ..thoughts(&[("S", "c")])
    }]);
    assert!(secs_only.is_some_and(|b| b.starts_with("> [!abstract]- Thought for 12s\n")));
    let untimed = thinking_md(&[thoughts(&[("S", "c")])]);
    assert!(untimed.is_some_and(|b| b.starts_with("> [!abstract]- Thoughts\n")));
    assert_eq!(thinking_md(&[thoughts(&[])]), None, "empty thoughts vanish");
    // Without raw content the view's fields still show.
    let fallback = MessageView {
        raw_content: None,
        ..thoughts(&[("Sum", "body")])
    };
    let b = thinking_md(&[fallback]).unwrap_or_default();
    assert!(b.contains("> **Sum**") && b.contains("> body"), "{b}");
}

#[test]
fn hidden_content_never_leaks_unfolded() {
    let quote = MessageView {
        url: Some("https://example.com/p".to_owned()),
        page_title: Some("Example Page".to_owned()),
        ..tool(
            "browser",
            "tether_quote",
            "QUOTED page text\n# not a heading",
        )
    };
    let webpage = MessageView {
        url: Some("file-abc".to_owned()),
        page_title: None,
        ..tool("web.run", "sonic_webpage", "SONIC text")
    };
    let unknown = MessageView {
        raw_content: Some(
            r#"{"content_type":"model_editable_context","model_set_context":"MEMORY note"}"#
                .to_owned(),
        ),
        ..msg("assistant", "model_editable_context", "")
    };
    let doc = render(
        &conv(
            Some("t"),
            vec![
                MessageView {
                    raw_content: None,
                    ..msg("system", "text", "SYSTEM prompt")
                },
                msg("user", "text", "hi"),
                thoughts(&[("THOUGHT head", "THOUGHT body")]),
                call("python", Some("python"), "PYCODE = 1"),
                tool("python", "execution_output", "EXEC out"),
                MessageView {
                    recipient: Some("bio".to_owned()),
                    ..msg("assistant", "text", "MEMORY write")
                },
                tool("bio", "text", "TOOLREPLY updated"),
                tool("browser", "tether_browsing_display", "BROWSE results"),
                quote,
                webpage,
                tool("container.exec", "system_error", "ERRTEXT boom"),
                unknown,
                msg("assistant", "text", "VISIBLE answer"),
            ],
        ),
        &NoLinks,
    );
    for needle in [
        "SYSTEM prompt",
        "THOUGHT head",
        "THOUGHT body",
        "PYCODE",
        "EXEC out",
        "MEMORY write",
        "TOOLREPLY",
        "BROWSE results",
        "QUOTED page",
        "not a heading",
        "SONIC text",
        "ERRTEXT",
        "MEMORY note",
    ] {
        only_folded(&doc, needle);
    }
    assert!(doc.contains("\nVISIBLE answer\n"), "{doc}");
    for header in [
        "> [!info]- System message",
        "> [!example]- Python",
        "> [!example]- Python output",
        "> [!example]- Tool call: bio",
        "> [!note]- Tool: bio",
        "> [!quote]- Browsing results",
        "> [!quote]- Example Page",
        "> [!quote]- file-abc",
        "> [!failure]- container.exec error",
        "> [!info]- model_editable_context (raw)",
    ] {
        assert!(
            doc.lines().any(|l| l == header),
            "missing {header:?} in:\n{doc}"
        );
    }
    assert!(doc.contains("> Source: <https://example.com/p>\n"), "{doc}");
    assert!(doc.contains("> Source: `file-abc`\n"), "{doc}");
    let raw = callout_lines(&doc, "> [!info]- model_editable_context (raw)");
    assert_eq!(raw[1], "> ```json");
    assert!(raw.contains(&"> {"), "pretty-printed: {raw:?}");
    // The system message sits before any heading, folded.
    let first_heading = doc.find("\n## ").unwrap_or(doc.len());
    assert!(doc[..first_heading].contains("> [!info]- System message"));
}

#[test]
fn empty_messages_and_tool_chatter_are_omitted() {
    let empty_call = MessageView {
        recipient: Some("web.run".to_owned()),
        ..msg("assistant", "code", "")
    };
    let doc = render(
        &conv(
            Some("t"),
            vec![
                msg("system", "text", ""),
                msg("user", "text", "q"),
                empty_call,
                tool("web.run", "text", "  "),
                msg("assistant", "text", ""),
                // An unknown type with nothing at all to show.
                msg("assistant", "computer_output", ""),
            ],
        ),
        &NoLinks,
    );
    assert!(!doc.contains("## ChatGPT"), "{doc}");
    assert!(!doc.contains("> [!"), "{doc}");
    assert!(doc.ends_with("## You\n\nq\n"), "{doc}");
}

// ---- citations ----

#[test]
fn citation_markers_become_bracketed_refs() {
    let text = "Paris is big.\u{E200}cite\u{E202}turn0search0\u{E202}turn1news2\u{E201} \
                See\u{E200}filecite\u{E202}turn0file0\u{E201}(x). \
                Visit \u{E200}entity\u{E202}[\"city\",\"Paris\",\"capital\"]\u{E201} now.\
                \u{E200}image_group\u{E202}{\"query\":[\"a\"]}\u{E201}\
                \u{E200}cite\u{E201} Old 【6†source】 stays. Broken \u{E200}cite tail";
    let out = clean_text(text);
    assert_eq!(
        out,
        "Paris is big.\\[turn0search0, turn1news2\\] See\\[turn0file0\\](x). \
         Visit Paris now. Old 【6†source】 stays. Broken \u{E200}cite tail"
    );
    let doc = render(
        &conv(Some("t"), vec![msg("assistant", "text", text)]),
        &NoLinks,
    );
    assert!(
        !doc.contains('\u{E201}') && !doc.contains('\u{E202}'),
        "{doc}"
    );
    assert!(doc.contains("\\[turn0search0, turn1news2\\]"));
}

// ---- attachments ----

#[test]
fn attachments_link_or_show_placeholder() {
    let user = MessageView {
        attachments: vec![
            attachment(
                Some("my photo (1).png"),
                "file-img",
                Some("image/png"),
                true,
            ),
            attachment(
                Some("report.pdf"),
                "file-pdf",
                Some("application/pdf"),
                true,
            ),
            attachment(Some("notes_v2*.txt"), "file-missing", None, false),
            attachment(None, "file_00ab", None, false),
            attachment(Some("kept.csv"), "file-kept", None, true),
        ],
        ..msg("user", "multimodal_text", "look")
    };
    let generated = MessageView {
        attachments: vec![attachment(None, "file_gen", Some("image/webp"), true)],
        ..tool("internal_tool", "multimodal_text", "")
    };
    let c = conv(Some("t"), vec![user.clone(), generated]);
    let doc = render(&c, &DirLinks);
    assert!(
        doc.contains("\n![my photo (1).png](<files/file-img-my photo (1).png>)\n"),
        "{doc}"
    );
    assert!(
        doc.contains("\n[report.pdf](files/file-pdf-report.pdf)\n"),
        "{doc}"
    );
    assert!(
        doc.contains("\n*(attachment not archived: notes\\_v2\\*.txt — file-missing)*\n"),
        "{doc}"
    );
    assert!(
        doc.contains("\n*(attachment not archived: file\\_00ab)*\n"),
        "{doc}"
    );
    assert!(
        doc.contains("\n[kept.csv](files/file-kept-kept.csv)\n"),
        "{doc}"
    );
    // User files come before the text, as in the ChatGPT UI.
    assert!(doc.find("report.pdf").unwrap_or(usize::MAX) < doc.find("\nlook\n").unwrap_or(0));
    // A generated image from a tool is shown, not folded.
    assert!(
        doc.contains("\n![file\\_gen](files/file_gen.webp)\n"),
        "{doc}"
    );

    let doc = render(&conv(Some("t"), vec![user]), &NoLinks);
    assert!(
        doc.contains("*(attachment archived, not linked here: report.pdf — file-pdf)*"),
        "{doc}"
    );
}

#[test]
fn link_destinations_are_wrapped_when_needed() {
    assert_eq!(link_destination("a/b.png"), "a/b.png");
    assert_eq!(link_destination("a b.png"), "<a b.png>");
    assert_eq!(link_destination("a(1).png"), "<a(1).png>");
    assert_eq!(link_destination("a<b>.png"), "<a\\<b\\>.png>");
}

// ---- a whole conversation ----

#[test]
fn full_conversation_reads_naturally() {
    let t = |s: &str| Some(format!("2024-05-01T14:{s}Z"));
    let user = MessageView {
        create_time: t("03:07"),
        ..msg("user", "text", "Plot **y = x²**, please.")
    };
    let code = MessageView {
        create_time: t("03:10"),
        model: Some("gpt-4o".to_owned()),
        ..call("python", Some("python"), "import matplotlib\nplt.plot(x)")
    };
    let output = tool("python", "execution_output", "\n<<ImageDisplayed>>");
    let answer = MessageView {
        model: Some("gpt-4o".to_owned()),
        ..msg(
            "assistant",
            "text",
            "Here it is:\n\n```python\nplt.show()\n```\n\nDone.\u{E200}cite\u{E202}turn0search0\u{E201}",
        )
    };
    let follow = MessageView {
        create_time: t("05:00"),
        ..msg("user", "text", "Thanks!")
    };
    let c = conv(
        Some("Plotting: y = x²"),
        vec![user, code, output, answer, follow],
    );
    let doc = render(&c, &NoLinks);
    let expected = [
        "---",
        "id: \"6650a1b2-0000-4000-8000-000000000001\"",
        "title: \"Plotting: y = x²\"",
        "created: 2024-05-01T14:03:07.123456Z",
        "updated: 2024-05-02T09:00:00Z",
        "model: \"gpt-4o\"",
        "url: \"https://chatgpt.com/c/6650a1b2-0000-4000-8000-000000000001\"",
        "tags: [chatgpt]",
        "---",
        "",
        "# Plotting: y = x²",
        "",
        "## You",
        "*2024-05-01 14:03 UTC*",
        "",
        "Plot **y = x²**, please.",
        "",
        "## ChatGPT",
        "*2024-05-01 14:03 UTC · gpt-4o*",
        "",
        "> [!example]- Python",
        "> ```python",
        "> import matplotlib",
        "> plt.plot(x)",
        "> ```",
        "",
        "> [!example]- Python output",
        "> ```text",
        "> <<ImageDisplayed>>",
        "> ```",
        "",
        "Here it is:",
        "",
        "```python",
        "plt.show()",
        "```",
        "",
        "Done.\\[turn0search0\\]",
        "",
        "## You",
        "*2024-05-01 14:05 UTC*",
        "",
        "Thanks!",
    ];
    assert_eq!(doc.lines().collect::<Vec<_>>(), expected, "{doc}");
    assert!(doc.ends_with("Thanks!\n"));
    assert_eq!(render(&c, &NoLinks), doc, "deterministic");
}

#[test]
fn unknown_roles_get_their_own_heading() {
    let doc = render(
        &conv(
            Some("t"),
            vec![msg("critic", "text", "hm"), msg("assistant", "text", "ok")],
        ),
        &NoLinks,
    );
    assert!(
        doc.contains("\n## Critic\n\nhm\n\n## ChatGPT\n\nok\n"),
        "{doc}"
    );
}

// ---- what the reader saw (issue 11) ----

use crate::model::canvas::Canvas;
use crate::model::citations::{Citation, Source};
use crate::model::research::Report;

const CITE0: &str = "\u{E200}cite\u{E202}turn0search0\u{E201}";

fn answer_with_citations(text: &str, citations: Vec<Citation>) -> MessageView {
    MessageView {
        citations,
        ..msg("assistant", "text", text)
    }
}

fn reference(matched: &str, start: usize, alt: &str) -> Citation {
    Citation {
        matched_text: Some(matched.to_owned()),
        start: Some(start),
        end: Some(start + 1),
        kind: "grouped_webpages".to_owned(),
        alt: Some(alt.to_owned()),
        sources: vec![Source {
            title: Some("Paris".to_owned()),
            url: "https://en.wikipedia.org/wiki/Paris".to_owned(),
            attribution: Some("Wikipedia".to_owned()),
        }],
        legacy: false,
    }
}

#[test]
fn citations_render_as_their_links_and_blank_references_change_nothing() {
    let text = format!("Paris is the capital of France.{CITE0} It is big.");
    let footnote = Citation {
        matched_text: Some(" ".to_owned()),
        start: Some(60),
        end: Some(60),
        kind: "sources_footnote".to_owned(),
        sources: vec![Source {
            title: Some("Paris facts".to_owned()),
            url: "https://facts.example/paris".to_owned(),
            attribution: Some("Facts".to_owned()),
        }],
        ..Citation::default()
    };
    let m = answer_with_citations(
        &text,
        vec![
            reference(
                CITE0,
                31,
                "([Wikipedia](https://en.wikipedia.org/wiki/Paris))",
            ),
            footnote,
        ],
    );
    let doc = render(&conv(Some("t"), vec![m.clone()]), &NoLinks);
    assert!(
        doc.contains(
            "\nParis is the capital of France. ([Wikipedia](https://en.wikipedia.org/wiki/Paris)) It is big.\n"
        ),
        "{doc}"
    );
    assert!(!doc.contains("turn0search0"), "{doc}");
    let sources = callout_lines(&doc, "> [!quote]- Sources");
    assert_eq!(
        sources[1..],
        ["> - [Paris facts](https://facts.example/paris) · Facts"]
    );
    // The Export text keeps the markers; only what a reader sees resolves them.
    assert_eq!(m.text, text);
    assert_eq!(
        display_text(&m),
        "Paris is the capital of France. ([Wikipedia](https://en.wikipedia.org/wiki/Paris)) It is big."
    );
}

#[test]
fn legacy_citations_link_the_cited_page() {
    let text = "Rain is likely【11†source】.";
    let m = answer_with_citations(
        text,
        vec![Citation {
            start: Some(14),
            end: Some(25),
            kind: "tether_og".to_owned(),
            sources: vec![Source {
                title: Some("Forecast".to_owned()),
                url: "https://www.weather.example/today".to_owned(),
                attribution: None,
            }],
            legacy: true,
            ..Citation::default()
        }],
    );
    assert_eq!(
        message_markdown(&m, &NoLinks),
        "Rain is likely ([weather.example](https://www.weather.example/today \"Forecast\"))."
    );
}

fn canvas_call(
    recipient: &str,
    json: &str,
    name: Option<&str>,
    doc_type: Option<&str>,
) -> MessageView {
    let mut canvas = Canvas::parse(recipient, json).expect("a canvas call");
    if canvas.name.is_none() {
        canvas.name = name.map(str::to_owned);
        canvas.doc_type = doc_type.map(str::to_owned);
    }
    MessageView {
        canvas: Some(canvas),
        ..call(recipient, Some("json"), json)
    }
}

#[test]
fn canvas_documents_show_under_their_names() {
    let code = canvas_call(
        "canmore.create_textdoc",
        r#"{"name":"fizz_buzz","type":"code/python","content":"for i in range(1, 4):\n    print(i)"}"#,
        None,
        None,
    );
    let prose = canvas_call(
        "canmore.create_textdoc",
        "{\"name\":\"Trip plan\",\"type\":\"document\",\"content\":\"# Rome\\n\\n## Day 1\\nColosseum\"}",
        None,
        None,
    );
    let rewrite = canvas_call(
        "canmore.update_textdoc",
        r#"{"updates":[{"pattern":".*","multiple":false,"replacement":"for i in range(5):\n    print(i)"}]}"#,
        Some("fizz_buzz"),
        Some("code/python"),
    );
    let partial = canvas_call(
        "canmore.update_textdoc",
        r###"{"updates":[{"pattern":"Colosseum","multiple":true,"replacement":"Forum"},{"pattern":"## Day 2.*","replacement":""}]}"###,
        Some("Trip plan"),
        Some("document"),
    );
    let doc = render(
        &conv(
            Some("t"),
            vec![msg("user", "text", "write"), code, prose, rewrite, partial],
        ),
        &NoLinks,
    );
    let expected = "\n### fizz\\_buzz\n\n```python\nfor i in range(1, 4):\n    print(i)\n```\n\n\
                    ### Trip plan\n\n#### Rome\n\n##### Day 1\nColosseum\n\n\
                    ### fizz\\_buzz (edited)\n\n```python\nfor i in range(5):\n    print(i)\n```\n\n\
                    ### Trip plan (edited)\n\nReplaced every match of `Colosseum` with:\n\nForum\n\n\
                    Removed `## Day 2.*`.\n";
    assert!(doc.contains(expected), "{doc}");
    assert!(!doc.contains("\\n"), "no literal escapes: {doc}");
    assert!(!doc.contains("Tool call: canmore"), "{doc}");
}

#[test]
fn a_thought_with_only_a_summary_still_shows() {
    let doc = render(
        &conv(
            Some("t"),
            vec![
                msg("user", "text", "q"),
                thoughts(&[("Thinking longer for a better answer", "")]),
                recap("Thought for 8s", 8.0),
                msg("assistant", "text", "a"),
            ],
        ),
        &NoLinks,
    );
    let lines = callout_lines(&doc, "> [!abstract]- Thought for 8s");
    assert_eq!(
        lines[1..],
        ["> **Thinking longer for a better answer**"],
        "{doc}"
    );
}

#[test]
fn citable_code_output_is_folded_like_other_output() {
    let doc = render(
        &conv(
            Some("t"),
            vec![
                msg("user", "text", "list"),
                call("container.exec", Some("json"), r#"{"cmd":["ls"]}"#),
                tool("container.exec", "citable_code_output", "a.txt\nb.txt"),
                msg("assistant", "text", "Two files."),
            ],
        ),
        &NoLinks,
    );
    let lines = callout_lines(&doc, "> [!example]- container.exec output");
    assert_eq!(
        lines[1..],
        ["> ```text", "> a.txt", "> b.txt", "> ```"],
        "{doc}"
    );
    only_folded(&doc, "b.txt");
}

#[test]
fn screenshots_fold_with_their_page_and_recordings_are_named() {
    let shot = AttachmentView {
        kind: "image_asset_pointer".to_owned(),
        ..attachment(None, "file_00shot", None, true)
    };
    let screenshot = MessageView {
        url: Some("https://shop.example/cart".to_owned()),
        page_title: Some("Cart".to_owned()),
        attachments: vec![shot],
        ..tool("computer", "computer_output", "")
    };
    let bare = MessageView {
        attachments: vec![AttachmentView {
            kind: "image_asset_pointer".to_owned(),
            ..attachment(None, "file_00bare", None, false)
        }],
        ..tool("computer", "computer_output", "")
    };
    let voice = MessageView {
        attachments: vec![
            AttachmentView {
                kind: "audio_asset_pointer".to_owned(),
                ..attachment(None, "file_00aud", Some("audio/wav"), true)
            },
            AttachmentView {
                kind: "video_container_asset_pointer".to_owned(),
                ..attachment(None, "file_00vid", Some("video/mp4"), false)
            },
        ],
        ..msg("user", "multimodal_text", "what is this?")
    };
    let doc = render(&conv(Some("t"), vec![voice, screenshot, bare]), &DirLinks);
    let lines = callout_lines(&doc, "> [!example]- Screenshot: Cart");
    assert_eq!(
        lines[1..],
        [
            "> Page: <https://shop.example/cart>",
            ">",
            "> ![file\\_00shot](files/file_00shot)",
        ],
        "{doc}"
    );
    let lines = callout_lines(&doc, "> [!example]- Screenshot");
    assert_eq!(lines[1..], ["> *(attachment not archived: file\\_00bare)*"]);
    assert!(
        doc.contains("\n[Voice recording (wav)](files/file_00aud.wav)\n"),
        "{doc}"
    );
    assert!(
        doc.contains("\n*(attachment not archived: Video recording (mp4) — file\\_00vid)*\n"),
        "{doc}"
    );
    // Screenshots are not listed a second time outside their fold.
    assert_eq!(doc.matches("file\\_00shot").count(), 1, "{doc}");
}

#[test]
fn a_research_report_is_a_document_not_json() {
    let report = MessageView {
        report: Some(Report {
            text: format!("# Solar in 2025\n\nCapacity grew.{CITE0}\n\n## Outlook\n\nMore."),
            citations: vec![reference(CITE0, 30, "([IEA](https://iea.example/r))")],
        }),
        ..tool("research_kickoff_tool", "code", r#"{"session_id":"abc"}"#)
    };
    let doc = render(
        &conv(
            Some("t"),
            vec![msg("user", "text", "research"), report.clone()],
        ),
        &NoLinks,
    );
    assert!(
        doc.contains(
            "\n### Solar in 2025\n\nCapacity grew. ([IEA](https://iea.example/r))\n\n#### Outlook\n\nMore.\n"
        ),
        "{doc}"
    );
    assert!(!doc.contains("session_id"), "{doc}");
    assert!(display_text(&report).starts_with("# Solar in 2025\n\nCapacity grew. ([IEA]"));
}

#[test]
fn message_headings_sit_below_the_turn_headings() {
    let answer = "# Guide\n\nIntro\n\n## Install\n\n```sh\n# not a heading\n```\n\n### Notes\nDone";
    let doc = render(
        &conv(
            Some("t"),
            vec![
                msg("user", "text", "how?"),
                msg("assistant", "text", answer),
            ],
        ),
        &NoLinks,
    );
    assert!(
        doc.contains(
            "\n## ChatGPT\n\n### Guide\n\nIntro\n\n#### Install\n\n```sh\n# not a heading\n```\n\n##### Notes\nDone\n"
        ),
        "{doc}"
    );
    let outside_code = doc.replace("```sh\n# not a heading\n```", "");
    let h1: Vec<&str> = outside_code
        .lines()
        .filter(|l| l.starts_with("# "))
        .collect();
    assert_eq!(h1, ["# t"], "one H1: the title");
}

#[test]
fn pieces_cover_every_message_once_and_join_thinking_runs() {
    let msgs = vec![
        msg("system", "text", "sys"),
        msg("user", "text", "q"),
        thoughts(&[("Plan", "p")]),
        MessageView {
            recipient: Some("web.run".to_owned()),
            ..msg("assistant", "text", "")
        },
        recap("Thought for 3s", 3.0),
        msg("assistant", "text", "a"),
        tool("web.run", "text", ""),
        msg("critic", "text", "hm"),
    ];
    let ps = pieces(&msgs);
    let sizes: Vec<usize> = ps.iter().map(|p| p.messages.len()).collect();
    assert_eq!(sizes, [1, 1, 3, 1, 1, 1]);
    assert_eq!(sizes.iter().sum::<usize>(), msgs.len());
    let speakers: Vec<Speaker<'_>> = ps.iter().map(|p| p.speaker).collect();
    assert_eq!(
        speakers,
        [
            Speaker::System,
            Speaker::User,
            Speaker::Assistant,
            Speaker::Assistant,
            Speaker::Assistant,
            Speaker::Other("critic"),
        ]
    );
    assert!(matches!(
        ps[2].blocks.as_slice(),
        [Block::Folded(Folded {
            fold: Fold::Thinking,
            ..
        })]
    ));
    assert!(ps[4].blocks.is_empty(), "silent tool reply: no blocks");
    assert_eq!(ps[3].blocks, [Block::Text("a".to_owned())]);
    assert!(matches!(
        ps[0].blocks.as_slice(),
        [Block::Folded(Folded {
            fold: Fold::System,
            ..
        })]
    ));
}
