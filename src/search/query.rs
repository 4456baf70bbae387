//! What a user asks for: the query syntax (`words`, `"exact phrases"`, `-excluded`,
//! `prefix*`) and the filters, read and checked before any index is touched, so bad
//! input is a usage error and never a scan.

use super::tokenize::{self, is_cjk};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;

/// Why a query or a filter cannot be used (a usage error: exit code 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing but spaces.
    #[error("nothing to search for: give one or more words")]
    Empty,
    /// Every word is a stop word or has no letters or digits.
    #[error(
        "nothing searchable in {query:?}: {} too common or {} no letters or digits; add a more \
         specific word",
        if ignored.len() == 1 { "it is" } else { "its words are" },
        if ignored.len() == 1 { "has" } else { "have" }
    )]
    NothingSearchable {
        /// The query as given.
        query: String,
        /// The words that were dropped.
        ignored: Vec<String>,
    },
    /// Only `-excluded` words.
    #[error("a search needs at least one word to find, not only -excluded ones")]
    OnlyExclusions,
    /// A `"` without its closing one.
    #[error("unbalanced quote in the query: close the phrase with a second \"")]
    UnbalancedQuote,
    /// Longer than [`MAX_QUERY_BYTES`].
    #[error("the query is {bytes} bytes long; the limit is {MAX_QUERY_BYTES}")]
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// A control character (newline, tab, escape…).
    #[error(
        "the query contains a control character ({code}) at character {at}; remove it \
         (queries are one line of text)"
    )]
    ControlCharacter {
        /// `U+000A`…
        code: String,
        /// Position in characters, from 1.
        at: usize,
    },
    /// A `--since`/`--until` value that is not a date.
    #[error(
        "cannot read the date {value:?}: use YYYY-MM-DD, YYYY-MM, YYYY, or an RFC 3339 time \
         such as 2024-05-01T12:00:00Z"
    )]
    BadDate {
        /// The value given.
        value: String,
    },
    /// `--since` after `--until`.
    #[error("--since {since} is after --until {until}: nothing can match")]
    EmptyRange {
        /// The since value.
        since: String,
        /// The until value.
        until: String,
    },
    /// A role other than user, assistant or tool.
    #[error("unknown role {0:?}: use user, assistant or tool")]
    BadRole(String),
}

/// One thing to find (or exclude), analysed into index terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Element {
    /// A single term.
    Term(String),
    /// Terms at relative positions (a quoted phrase, or a word that splits, like
    /// `e-mail` or a CJK word).
    Phrase(Vec<(usize, String)>),
    /// Terms at relative positions, the last of which is a prefix.
    Prefix(Vec<(usize, String)>),
}

impl Element {
    /// Every term it names (the prefix included).
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        let v: Vec<&str> = match self {
            Element::Term(t) => vec![t.as_str()],
            Element::Phrase(ts) | Element::Prefix(ts) => {
                ts.iter().map(|(_, t)| t.as_str()).collect()
            }
        };
        v.into_iter()
    }
}

/// A parsed query: elements every matching message holds, and elements no matching
/// conversation holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    text: String,
    include: Vec<Element>,
    exclude: Vec<Element>,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A raw item of the query text.
enum Item {
    Word(String),
    Phrase(String),
    Prefix(String),
}

impl Query {
    /// Parses query text: words (every one must be in the message or the title),
    /// `"exact phrases"`, `-excluded` words or phrases (no result's conversation holds
    /// them), and `prefix*`. Matching ignores case and diacritics.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong { bytes: text.len() });
        }
        if let Some((at, c)) = text.chars().enumerate().find(|(_, c)| c.is_control()) {
            return Err(QueryError::ControlCharacter {
                code: format!("U+{:04X}", c as u32),
                at: at + 1,
            });
        }
        let (include, exclude) = split_items(text)?;
        let mut analyzer = tokenize::text_analyzer();
        let mut prefix_analyzer = tokenize::prefix_analyzer();
        let mut ignored = Vec::new();
        let mut analyse = |items: Vec<(Item, String)>| {
            let mut out = Vec::new();
            for (item, shown) in items {
                match analyse_item(&item, &mut analyzer, &mut prefix_analyzer) {
                    Some(e) => out.push(e),
                    None => ignored.push(shown),
                }
            }
            out
        };
        let include = analyse(include);
        let exclude = analyse(exclude);
        if include.is_empty() {
            if !exclude.is_empty() {
                return Err(QueryError::OnlyExclusions);
            }
            if ignored.is_empty() {
                return Err(QueryError::Empty);
            }
            return Err(QueryError::NothingSearchable {
                query: text.trim().to_owned(),
                ignored,
            });
        }
        Ok(Query {
            text: text.trim().to_owned(),
            include,
            exclude,
        })
    }

    /// Parses the words of a command line. The shell has already removed the quotes
    /// around an argument, so an argument with spaces (and no `"` of its own) is a
    /// phrase: `convos search "exact phrase" other`.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Query, QueryError> {
        let mut text = String::new();
        for a in args {
            let a = a.as_ref().trim();
            if a.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            if a.contains(char::is_whitespace) && !a.contains('"') {
                let (sign, rest) = match a.strip_prefix('-') {
                    Some(rest) => ("-", rest),
                    None => ("", a),
                };
                text.push_str(sign);
                text.push('"');
                text.push_str(rest);
                text.push('"');
            } else {
                text.push_str(a);
            }
        }
        Query::parse(&text)
    }

    /// What every matching message holds (in its text or its conversation's title).
    pub fn include(&self) -> &[Element] {
        &self.include
    }

    /// What no matching conversation holds.
    pub fn exclude(&self) -> &[Element] {
        &self.exclude
    }
}

/// Splits query text into included and excluded items, each with the text to show
/// when it turns out to hold nothing searchable.
type Items = Vec<(Item, String)>;

fn split_items(text: &str) -> Result<(Items, Items), QueryError> {
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut negate = false;
        if first == '-' || first == '+' {
            chars.next();
            negate = first == '-';
        }
        let item = if chars.next_if_eq(&'"').is_some() {
            let mut phrase = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => phrase.push(c),
                    None => return Err(QueryError::UnbalancedQuote),
                }
            }
            // `"…"*` asks nothing more than the phrase.
            while chars.next_if_eq(&'*').is_some() {}
            let shown = format!("\"{phrase}\"");
            (Item::Phrase(phrase), shown)
        } else {
            let mut word = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
                word.push(c);
            }
            if word.chars().all(|c| c == '-' || c == '+') {
                // A lone sign, or a `--`.
                continue;
            }
            let shown = word.clone();
            match word.strip_suffix('*') {
                Some(stem) => (Item::Prefix(stem.trim_end_matches('*').to_owned()), shown),
                None => (Item::Word(word), shown),
            }
        };
        if negate {
            exclude.push(item);
        } else {
            include.push(item);
        }
    }
    Ok((include, exclude))
}

/// Turns an item into index terms; `None` when nothing in it is searchable.
fn analyse_item(
    item: &Item,
    analyzer: &mut tantivy::tokenizer::TextAnalyzer,
    prefix_analyzer: &mut tantivy::tokenizer::TextAnalyzer,
) -> Option<Element> {
    let (terms, prefix) = match item {
        Item::Word(w) | Item::Phrase(w) => (tokenize::terms(analyzer, w), false),
        Item::Prefix(w) => (tokenize::terms(prefix_analyzer, w), true),
    };
    let first = terms.first()?.0;
    let mut terms: Vec<(usize, String)> = terms.into_iter().map(|(p, t)| (p - first, t)).collect();
    if prefix {
        return Some(Element::Prefix(terms));
    }
    if terms.len() > 1 {
        return Some(Element::Phrase(terms));
    }
    let (_, term) = terms.pop()?;
    // A lone CJK character is indexed only inside bigrams: find it as their start.
    let mut cs = term.chars();
    if let (Some(c), None) = (cs.next(), cs.next())
        && is_cjk(c)
    {
        return Some(Element::Prefix(vec![(0, term)]));
    }
    Some(Element::Term(term))
}

/// Message roles a search can be limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// What the user wrote.
    User,
    /// What the model answered.
    Assistant,
    /// Tool output (browsing, code execution…).
    Tool,
}

impl Role {
    /// The role as stored in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" => Ok(Role::Tool),
            _ => Err(QueryError::BadRole(s.to_owned())),
        }
    }
}

/// Conditions on the messages a search returns, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// Only messages of this role.
    pub role: Option<Role>,
    /// Only messages written at or after this time (epoch seconds).
    pub since: Option<i64>,
    /// Only messages written before this time (epoch seconds).
    pub until: Option<i64>,
    /// Only conversations of this project (its name, ignoring case and accents).
    pub project: Option<String>,
    /// Only conversations or messages of this model slug (ignoring case).
    pub model: Option<String>,
    /// Only archived (`true`) or only not archived (`false`) conversations.
    pub archived: Option<bool>,
    /// Only conversations deleted on chatgpt.com (`true`) or only the others (`false`).
    pub deleted: Option<bool>,
}

impl Filters {
    /// Sets `since` and `until` from user text (see [`since`] and [`until`]), checking
    /// that the range is not empty.
    pub fn with_dates(
        mut self,
        since_text: Option<&str>,
        until_text: Option<&str>,
    ) -> Result<Self, QueryError> {
        self.since = since_text.map(since).transpose()?;
        self.until = until_text.map(until).transpose()?;
        if let (Some(s), Some(u)) = (self.since, self.until)
            && s >= u
        {
            return Err(QueryError::EmptyRange {
                since: since_text.unwrap_or_default().to_owned(),
                until: until_text.unwrap_or_default().to_owned(),
            });
        }
        Ok(self)
    }
}

/// The start of a date given as `YYYY`, `YYYY-MM`, `YYYY-MM-DD` (UTC, like the dates
/// convos prints) or an RFC 3339 time, as epoch seconds: `--since 2024-05` means from
/// the first of May 2024.
pub fn since(text: &str) -> Result<i64, QueryError> {
    parse_date(text).map(|(start, _)| start)
}

/// The end of a date, exclusive, as epoch seconds: `--until 2024-05` includes all of
/// May 2024; an RFC 3339 time includes that second.
pub fn until(text: &str) -> Result<i64, QueryError> {
    parse_date(text).map(|(_, end)| end)
}

/// A date's (start, exclusive end) in epoch seconds.
fn parse_date(text: &str) -> Result<(i64, i64), QueryError> {
    let bad = || QueryError::BadDate {
        value: text.to_owned(),
    };
    let t = text.trim();
    if t.contains('T') || t.contains(' ') {
        let dt = DateTime::parse_from_rfc3339(t).map_err(|_| bad())?;
        let s = dt.timestamp();
        return Ok((s, s + 1));
    }
    let parts: Vec<&str> = t.split('-').collect();
    let num = |s: &str, digits: usize| -> Option<u32> {
        (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let day = |y: u32, m: u32, d: u32| {
        NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
            .map(|d| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)))
    };
    let (start, end) = match parts.as_slice() {
        [y] => {
            let y = num(y, 4).ok_or_else(bad)?;
            (day(y, 1, 1), day(y + 1, 1, 1))
        }
        [y, m] => {
            let (y, m) = (num(y, 4).ok_or_else(bad)?, num(m, 2).ok_or_else(bad)?);
            let start = day(y, m, 1);
            let end = start.and_then(|s| {
                let (ny, nm) = if s.month() == 12 {
                    (y + 1, 1)
                } else {
                    (y, m + 1)
                };
                day(ny, nm, 1)
            });
            (start, end)
        }
        [y, m, d] => {
            let (y, m, d) = (
                num(y, 4).ok_or_else(bad)?,
                num(m, 2).ok_or_else(bad)?,
                num(d, 2).ok_or_else(bad)?,
            );
            let start = day(y, m, d);
            (start, start.map(|s| s + chrono::Duration::days(1)))
        }
        _ => return Err(bad()),
    };
    match (start, end) {
        (Some(s), Some(e)) => Ok((s.timestamp(), e.timestamp())),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Element {
        Element::Term(s.to_owned())
    }

    fn at(terms: &[(usize, &str)]) -> Vec<(usize, String)> {
        terms.iter().map(|(p, t)| (*p, (*t).to_owned())).collect()
    }

    #[test]
    fn syntax_elements() {
        let q = Query::parse(r#"  Red "big the fox" -cat dog* e-mail +Plus -"old news" the"#)
            .expect("query");
        assert_eq!(
            q.include(),
            [
                t("red"),
                Element::Phrase(at(&[(0, "big"), (2, "fox")])),
                Element::Prefix(at(&[(0, "dog")])),
                Element::Phrase(at(&[(0, "e"), (1, "mail")])),
                t("plus"),
            ]
        );
        assert_eq!(
            q.exclude(),
            [t("cat"), Element::Phrase(at(&[(0, "old"), (1, "news")]))]
        );
        // Stop words vanish from prefixes' stems only when they are not the stem.
        assert_eq!(
            Query::parse("the*").expect("q").include(),
            [Element::Prefix(at(&[(0, "the")]))]
        );
        assert_eq!(
            Query::parse("新").expect("q").include(),
            [Element::Prefix(at(&[(0, "新")]))]
        );
        assert_eq!(
            Query::parse("\"new york\"* - --").expect("q").include(),
            [Element::Phrase(at(&[(0, "new"), (1, "york")]))]
        );
    }

    #[test]
    fn nothing_searchable_names_the_dropped_words() {
        let e = Query::parse("the \"of a\" --").expect_err("stop words");
        assert_eq!(
            e,
            QueryError::NothingSearchable {
                query: "the \"of a\" --".into(),
                ignored: vec!["the".into(), "\"of a\"".into()],
            }
        );
        assert!(e.to_string().contains("too common"), "{e}");
        // Exactly at the limit is fine.
        let edge = format!("{}x", "ab ".repeat(341));
        assert_eq!(edge.len(), MAX_QUERY_BYTES);
        assert!(Query::parse(&edge).is_ok());
    }

    fn utc(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).expect("time").timestamp()
    }

    #[test]
    fn dates_cover_whole_days_months_and_years() {
        assert_eq!(since("2024"), Ok(utc("2024-01-01T00:00:00Z")));
        assert_eq!(until("2024"), Ok(utc("2025-01-01T00:00:00Z")));
        assert_eq!(since("2024-02"), Ok(utc("2024-02-01T00:00:00Z")));
        assert_eq!(until("2024-02"), Ok(utc("2024-03-01T00:00:00Z")));
        assert_eq!(until("2024-12"), Ok(utc("2025-01-01T00:00:00Z")));
        assert_eq!(since("2024-02-29"), Ok(utc("2024-02-29T00:00:00Z")));
        assert_eq!(until("2024-02-29"), Ok(utc("2024-03-01T00:00:00Z")));
        assert_eq!(
            since("2024-05-01T12:00:00+02:00"),
            Ok(utc("2024-05-01T10:00:00Z"))
        );
        assert_eq!(
            until("2024-05-01T10:00:00Z"),
            Ok(utc("2024-05-01T10:00:01Z"))
        );
        for bad in [
            "2023-02-29",
            "2024-1-01",
            "20240101",
            "2024-01-01T25:00:00Z",
            "May",
        ] {
            assert!(
                matches!(since(bad), Err(QueryError::BadDate { .. })),
                "{bad}"
            );
        }
    }
}
