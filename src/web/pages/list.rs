//! `/`: the conversations, newest first, paged and filtered; with `?q=`, the search
//! results. `/projects`: every project, linking to its conversations.

use super::{Section, blocking, encode, layout, time_from_rfc3339, time_from_secs, time_tag};
use crate::archive::schema::ConvRecord;
use crate::web::Shared;
use crate::web::search::{SearchError, SearchHit, SearchQuery, SearchResults};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Conversations per list page, and hits per search page.
pub const PAGE_SIZE: usize = 50;

/// The list page's parameters, all optional and read tolerantly.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListParams {
    /// Search words.
    pub q: Option<String>,
    /// 1-based page.
    pub page: Option<String>,
    /// Project name.
    pub project: Option<String>,
    /// `any`, `only`, `hide`.
    pub archived: Option<String>,
    /// `any`, `only`, `hide`.
    pub deleted: Option<String>,
}

/// Show all, only, or none of the conversations with a flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tri {
    /// Every conversation.
    #[default]
    Any,
    /// Only those with the flag.
    Only,
    /// Only those without it.
    Hide,
}

impl Tri {
    fn parse(s: Option<&str>) -> Self {
        match s {
            Some("only") => Tri::Only,
            Some("hide") => Tri::Hide,
            _ => Tri::Any,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Tri::Any => "any",
            Tri::Only => "only",
            Tri::Hide => "hide",
        }
    }
    fn keeps(self, flag: bool) -> bool {
        match self {
            Tri::Any => true,
            Tri::Only => flag,
            Tri::Hide => !flag,
        }
    }
    fn as_option(self) -> Option<bool> {
        match self {
            Tri::Any => None,
            Tri::Only => Some(true),
            Tri::Hide => Some(false),
        }
    }
}

/// The filters and page, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// Search words (trimmed, non-empty).
    pub q: Option<String>,
    /// 1-based page.
    pub page: usize,
    /// Project name.
    pub project: Option<String>,
    /// Archived conversations.
    pub archived: Tri,
    /// Conversations deleted on chatgpt.com.
    pub deleted: Tri,
}

impl Filters {
    /// Reads the parameters; anything unreadable means its default.
    pub fn from_params(p: &ListParams) -> Self {
        let nonempty = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            q: nonempty(&p.q),
            page: p
                .page
                .as_deref()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .filter(|&n| n >= 1)
                // Far beyond any archive; keeps `page * PAGE_SIZE` from overflowing.
                .map_or(1, |n| n.min(1_000_000)),
            project: nonempty(&p.project),
            archived: Tri::parse(p.archived.as_deref()),
            deleted: Tri::parse(p.deleted.as_deref()),
        }
    }

    fn keeps(&self, r: &ConvRecord) -> bool {
        self.archived.keeps(r.is_archived())
            && self.deleted.keeps(r.deleted_remotely)
            && self
                .project
                .as_deref()
                .is_none_or(|p| r.remote.project.as_deref() == Some(p))
    }

    /// `/?…` for these filters on `page`, leaving out defaults.
    pub fn url(&self, page: usize) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = &self.q {
            s.append_pair("q", q);
        }
        if let Some(p) = &self.project {
            s.append_pair("project", p);
        }
        if self.archived != Tri::Any {
            s.append_pair("archived", self.archived.as_str());
        }
        if self.deleted != Tri::Any {
            s.append_pair("deleted", self.deleted.as_str());
        }
        if page > 1 {
            s.append_pair("page", &page.to_string());
        }
        let q = s.finish();
        if q.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{q}")
        }
    }
}

/// One conversation in the list.
#[derive(Clone, Debug)]
pub struct Row {
    id: String,
    title: Option<String>,
    update_time: Option<f64>,
    messages: u32,
    project: Option<String>,
    archived: bool,
    deleted: bool,
}

impl Row {
    fn of(r: ConvRecord) -> Self {
        Self {
            archived: r.is_archived(),
            deleted: r.deleted_remotely,
            project: r.remote.project,
            id: r.summary.id,
            title: r.summary.title,
            update_time: r.summary.update_time.or(r.summary.create_time),
            messages: r.summary.message_count,
        }
    }
}

/// `GET /`.
pub(crate) async fn index(State(st): State<Arc<Shared>>, Query(p): Query<ListParams>) -> Response {
    blocking(move || render(&st, &Filters::from_params(&p))).await
}

/// The list or search page for `f`.
pub(crate) fn render(st: &Shared, f: &Filters) -> Response {
    if let Some(q) = &f.q {
        return search_page(st, f, q);
    }
    // One more than a page says whether an older page exists.
    let skip = (f.page - 1) * PAGE_SIZE;
    let mut rows = Vec::with_capacity(PAGE_SIZE + 1);
    let mut unreadable = 0usize;
    let mut matched = 0usize;
    for rec in st.archive.iter_newest_first() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("web viewer: a conversation record cannot be read: {e}");
                unreadable += 1;
                continue;
            }
        };
        if !f.keeps(&rec) {
            continue;
        }
        matched += 1;
        if matched > skip {
            rows.push(Row::of(rec));
            if rows.len() > PAGE_SIZE {
                break;
            }
        }
    }
    let older = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let filtered = f.project.is_some() || f.archived != Tri::Any || f.deleted != Tri::Any;
    let body = html! {
        h1 { "Conversations" }
        (filter_form(f))
        @if unreadable > 0 {
            p.notice { (unreadable) " conversation records could not be read; the log names them." }
        }
        @if rows.is_empty() {
            p.empty {
                @if filtered { "No conversation matches these filters." }
                @else if f.page > 1 { "No conversations on this page." }
                @else { "The archive holds no conversations yet. Import an export with `convos import`, or sync with `convos sync`." }
            }
        } @else {
            ol.convs {
                @for r in &rows { (row(r)) }
            }
        }
        (pager(f, older))
    };
    layout("Conversations", "", Section::Conversations, body).into_response()
}

fn row(r: &Row) -> Markup {
    html! {
        li.conv {
            a.conv-title href={ "/c/" (encode(&r.id)) } { (super::title_text(r.title.as_deref())) }
            div.conv-meta {
                (time_tag(r.update_time.and_then(time_from_secs)))
                span { (r.messages) " messages" }
                @if let Some(p) = &r.project {
                    a.badge.project href=(project_url(p)) { (p) }
                }
                @if r.archived { span.badge { "archived" } }
                @if r.deleted { span.badge.deleted { "deleted on chatgpt.com" } }
            }
        }
    }
}

fn project_url(p: &str) -> String {
    Filters {
        project: Some(p.to_owned()),
        page: 1,
        ..Filters::default()
    }
    .url(1)
}

fn filter_form(f: &Filters) -> Markup {
    let choice = |name: &'static str, label: &'static str, value: Tri| {
        html! {
            label {
                (label) " "
                select name=(name) {
                    option value="any" selected[value == Tri::Any] { "show" }
                    option value="hide" selected[value == Tri::Hide] { "hide" }
                    option value="only" selected[value == Tri::Only] { "only these" }
                }
            }
        }
    };
    let without_project = Filters {
        project: None,
        page: 1,
        ..f.clone()
    };
    html! {
        form.filters action="/" method="get" aria-label="Filters" {
            @if let Some(q) = &f.q { input type="hidden" name="q" value=(q); }
            @if let Some(p) = &f.project {
                input type="hidden" name="project" value=(p);
                span.chip {
                    "Project: " strong { (p) } " "
                    a href=(without_project.url(1)) aria-label="Remove the project filter" { "×" }
                }
            }
            (choice("archived", "Archived", f.archived))
            (choice("deleted", "Deleted on chatgpt.com", f.deleted))
            button type="submit" { "Apply" }
        }
    }
}

fn pager(f: &Filters, older: bool) -> Markup {
    html! {
        @if f.page > 1 || older {
            nav.pager aria-label="Pages" {
                @if f.page > 1 { a rel="prev" href=(f.url(f.page - 1)) { "← Newer" } }
                span { "Page " (f.page) }
                @if older { a rel="next" href=(f.url(f.page + 1)) { "Older →" } }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Search

fn search_page(st: &Shared, f: &Filters, q: &str) -> Response {
    let title = format!("Search: {q}");
    let Some(provider) = &st.search else {
        let body = html! {
            h1 { "Search" }
            p.notice {
                strong { "Search index not available." }
                " This viewer has no full-text index to ask. Search from a terminal with "
                code { "convos search WORDS" } "."
            }
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            layout(&title, q, Section::Conversations, body),
        )
            .into_response();
    };
    let query = SearchQuery {
        text: q.to_owned(),
        project: f.project.clone(),
        archived: f.archived.as_option(),
        deleted: f.deleted.as_option(),
        offset: (f.page - 1) * PAGE_SIZE,
        limit: PAGE_SIZE + 1,
    };
    let (status, body) = match provider.search(&query) {
        Ok(results) => (StatusCode::OK, results_body(f, q, results)),
        Err(e) => {
            let status = match e {
                SearchError::BadQuery(_) => StatusCode::BAD_REQUEST,
                SearchError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            let body = html! {
                h1 { "Search" }
                (filter_form(f))
                p.notice { (e.to_string()) }
            };
            (status, body)
        }
    };
    (status, layout(&title, q, Section::Conversations, body)).into_response()
}

fn results_body(f: &Filters, q: &str, mut results: SearchResults) -> Markup {
    let older = results.hits.len() > PAGE_SIZE;
    results.hits.truncate(PAGE_SIZE);
    html! {
        h1 { "Search" }
        p.summary {
            @match results.total {
                Some(1) => { "1 conversation matches " },
                Some(n) => { (n) " conversations match " },
                None => { "Conversations matching " },
            }
            q { (q) }
        }
        (filter_form(f))
        @if results.hits.is_empty() {
            p.empty { "Nothing matches. Fewer or other words may find it." }
        } @else {
            ol.convs.hits {
                @for h in &results.hits { (hit(h)) }
            }
        }
        (pager(f, older))
    }
}

fn hit(h: &SearchHit) -> Markup {
    let mut href = format!("/c/{}", encode(&h.conversation_id));
    if let Some(m) = &h.message_id {
        href.push_str(&format!("?node={}#m-{}", encode(m), encode(m)));
    }
    html! {
        li.conv.hit {
            a.conv-title href=(href) { (super::title_text(h.title.as_deref())) }
            div.conv-meta {
                (time_tag(h.update_time.as_deref().and_then(time_from_rfc3339)))
                @if let Some(r) = &h.role { span { (role_label(r)) } }
            }
            @if !h.snippet.is_empty() { p.snippet { (snippet(&h.snippet, &h.highlights)) } }
        }
    }
}

fn role_label(role: &str) -> &str {
    match role {
        "user" => "You",
        "assistant" => "ChatGPT",
        "tool" => "Tool",
        other => other,
    }
}

/// The snippet with its highlighted ranges in `<mark>`; ranges that overlap, run
/// backwards or cut a character are skipped.
pub fn snippet(text: &str, ranges: &[std::ops::Range<usize>]) -> Markup {
    let mut sorted: Vec<&std::ops::Range<usize>> = ranges.iter().collect();
    sorted.sort_by_key(|r| r.start);
    let mut pieces: Vec<(&str, bool)> = Vec::new();
    let mut at = 0;
    for r in sorted {
        if r.start < at || r.end <= r.start {
            continue;
        }
        let (Some(before), Some(marked)) = (text.get(at..r.start), text.get(r.start..r.end)) else {
            continue;
        };
        pieces.push((before, false));
        pieces.push((marked, true));
        at = r.end;
    }
    pieces.push((text.get(at..).unwrap_or(""), false));
    html! {
        @for (piece, marked) in pieces {
            @if marked { mark { (piece) } } @else { (piece) }
        }
    }
}

// ---------------------------------------------------------------------------------
// Projects

/// `GET /projects`.
pub(crate) async fn projects(State(st): State<Arc<Shared>>) -> Response {
    blocking(move || projects_page(&st)).await
}

fn projects_page(st: &Shared) -> Response {
    // name → (conversations, newest update)
    let mut projects: BTreeMap<String, (usize, Option<f64>)> = BTreeMap::new();
    for rec in st.archive.iter_newest_first() {
        let Ok(rec) = rec else { continue };
        if let Some(p) = rec.remote.project {
            let e = projects.entry(p).or_insert((0, rec.summary.update_time));
            e.0 += 1;
        }
    }
    let body = html! {
        h1 { "Projects" }
        @if projects.is_empty() {
            p.empty { "No archived conversation belongs to a project." }
        } @else {
            ul.projects {
                @for (name, (count, newest)) in &projects {
                    li {
                        a href=(project_url(name)) { (name) }
                        " "
                        span.count { (count) " conversations" }
                        @if let Some(t) = newest.and_then(time_from_secs) {
                            " · last " time datetime=(t.1) { (t.0) }
                        }
                    }
                }
            }
        }
    };
    layout("Projects", "", Section::Projects, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_tolerantly_and_round_trip() {
        let f = Filters::from_params(&ListParams {
            q: Some("  rust  async ".into()),
            page: Some("3".into()),
            project: Some("Home & <Garden>".into()),
            archived: Some("only".into()),
            deleted: Some("bogus".into()),
        });
        assert_eq!(f.q.as_deref(), Some("rust  async"));
        assert_eq!(f.page, 3);
        assert_eq!(f.archived, Tri::Only);
        assert_eq!(f.deleted, Tri::Any);
        let url = f.url(2);
        assert_eq!(
            url,
            "/?q=rust++async&project=Home+%26+%3CGarden%3E&archived=only&page=2"
        );
        for bad in ["0", "-1", "x", "99999999999999999999999"] {
            let f = Filters::from_params(&ListParams {
                page: Some(bad.into()),
                ..ListParams::default()
            });
            assert_eq!(f.page, 1, "{bad}");
        }
        assert_eq!(Filters::from_params(&ListParams::default()).url(1), "/");
    }

    #[test]
    fn snippets_mark_only_sound_ranges() {
        let s = snippet(
            "café <b>rust</b> and rust",
            &[22..26, 0..5, 3..4, 9..13, 30..40],
        );
        assert_eq!(
            s.into_string(),
            "<mark>café</mark> &lt;b&gt;<mark>rust</mark>&lt;/b&gt; and <mark>rust</mark>"
        );
        // A range inside a multi-byte character is skipped, not a panic.
        let s = snippet("é", &[std::ops::Range { start: 0, end: 1 }]);
        assert_eq!(s.into_string(), "é");
    }
}
