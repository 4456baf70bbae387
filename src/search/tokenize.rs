//! How text becomes search terms, the same for indexing and for queries.
//!
//! Words come from Unicode word segmentation (UAX #29), split further at the
//! punctuation UAX #29 keeps inside words, so `config.toml`, `snake_case` and `don't`
//! are found by their parts. Runs of CJK characters (Han, Hiragana, Katakana, Hangul),
//! which carry no spaces between words, become overlapping bigrams, as Lucene's CJK
//! analyzer does. Tokens are then lower-cased and their diacritics folded (`Café` and
//! `cafe` match), tokens of 80 bytes or more (base64, hashes run together) dropped, and
//! for full-text fields the English stop words dropped.
//!
//! Plain ASCII words skip the segmentation tables: they are most of what people write
//! to ChatGPT, and the index is built at import speed.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RawTokenizer, RemoveLongFilter, StopWordFilter, TextAnalyzer,
    Token, TokenStream, Tokenizer,
};
use unicode_segmentation::UnicodeSegmentation;

/// Name of the full-text analyzer in the index's tokenizer manager.
pub const TEXT: &str = "convos_text";
/// Name of the analyzer for exact, case- and accent-insensitive keywords (project, model).
pub const KEYWORD: &str = "convos_keyword";

/// Tokens this long or longer are dropped: nobody searches for them, and they bloat
/// the term dictionary.
const MAX_TOKEN_BYTES: usize = 80;

/// The English stop words Lucene's `EnglishAnalyzer` drops (tantivy's own list).
/// Only English: other languages' lists hold words that are meaningful in English.
pub const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// The full-text analyzer: words and CJK bigrams, lower-cased, folded, stop words out.
pub fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .build()
}

/// The same without the stop-word filter, for the stem of a `prefix*` query (`the*`
/// must still find `theory`).
pub fn prefix_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The keyword analyzer: the whole value as one term, lower-cased and folded.
pub fn keyword_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(RemoveLongFilter::limit(256))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Runs `analyzer` over `text`, returning (position, term) pairs.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(t) = stream.next() {
        out.push((t.position, t.text.clone()));
    }
    out
}

/// Whether `c` belongs to a script written without spaces between words, whose runs
/// are indexed as bigrams: Han, Hiragana, Katakana, and Hangul.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF        // Hangul Jamo
        | 0x2E80..=0x2FDF      // CJK and Kangxi radicals
        | 0x3005 | 0x3007      // 々 〇
        | 0x3021..=0x3029      // Hangzhou numerals
        | 0x3038..=0x303B
        | 0x3040..=0x30FF      // Hiragana, Katakana (with ー)
        | 0x3130..=0x318F      // Hangul compatibility Jamo
        | 0x31F0..=0x31FF      // Katakana phonetic extensions
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xA960..=0xA97F      // Hangul Jamo extended A
        | 0xAC00..=0xD7FF      // Hangul syllables, Jamo extended B
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFF66..=0xFF9F      // half-width Katakana
        | 0xFFA0..=0xFFDC      // half-width Hangul
        | 0x20000..=0x3134F // CJK extensions B–G
    )
}

/// Punctuation that UAX #29 keeps inside a word (its MidLetter, MidNum, MidNumLet and
/// ExtendNumLet classes) outside ASCII; words are split there, as at ASCII punctuation.
fn is_inner_punctuation(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}'
            | '\u{0387}'
            | '\u{055F}'
            | '\u{05F4}'
            | '\u{2027}'
            | '\u{FE13}'
            | '\u{FE55}'
            | '\u{FF1A}'
            | '\u{037E}'
            | '\u{0589}'
            | '\u{060C}'
            | '\u{060D}'
            | '\u{066C}'
            | '\u{07F8}'
            | '\u{2044}'
            | '\u{FE10}'
            | '\u{FE14}'
            | '\u{FE50}'
            | '\u{FE54}'
            | '\u{FF0C}'
            | '\u{FF1B}'
            | '\u{2018}'
            | '\u{2019}'
            | '\u{2024}'
            | '\u{FE52}'
            | '\u{FF07}'
            | '\u{FF0E}'
            | '\u{202F}'
            | '\u{203F}'
            | '\u{2040}'
            | '\u{2054}'
            | '\u{FE33}'
            | '\u{FE34}'
            | '\u{FE4D}'..='\u{FE4F}' | '\u{FF3F}'
    )
}

/// Characters left out of a word's term without splitting it: combining diacritics
/// (text in decomposed form, so `cafe\u{301}` matches `café`) and invisible format
/// characters (soft hyphens, zero-width spaces and joiners, byte-order marks).
fn is_dropped(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x00AD | 0x200B..=0x200F | 0x2060..=0x2064 | 0xFEFF)
}

/// One token found in the text: its byte range and, when it is not the plain slice,
/// its own text.
#[derive(Clone, Debug)]
struct Span {
    from: usize,
    to: usize,
    text: Option<String>,
}

/// The word tokenizer (see the module docs); filters do the rest.
#[derive(Clone, Default)]
pub struct WordTokenizer {
    spans: Vec<Span>,
    token: Token,
}

/// The token stream of [`WordTokenizer`].
pub struct WordStream<'a> {
    text: &'a str,
    spans: std::slice::Iter<'a, Span>,
    token: &'a mut Token,
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.spans.clear();
        segment(text, &mut self.spans);
        self.token.reset();
        WordStream {
            text,
            spans: self.spans.iter(),
            token: &mut self.token,
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        let Some(span) = self.spans.next() else {
            return false;
        };
        self.token.position = self.token.position.wrapping_add(1);
        self.token.offset_from = span.from;
        self.token.offset_to = span.to;
        self.token.text.clear();
        match &span.text {
            Some(t) => self.token.text.push_str(t),
            None => self.token.text.push_str(&self.text[span.from..span.to]),
        }
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// Splits `text` into token spans.
fn segment(text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let mut i = 0;
    while i < len {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            let start = i;
            while i < len && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if i == len || bytes[i] < 0x80 {
                out.push(Span {
                    from: start,
                    to: i,
                    text: None,
                });
                continue;
            }
            i = start;
        } else if b < 0x80 {
            i += 1;
            continue;
        }
        // A word with non-ASCII characters: the span up to the next ASCII space or
        // punctuation (ASCII bytes are always character boundaries).
        let start = i;
        while i < len && (bytes[i] >= 0x80 || bytes[i].is_ascii_alphanumeric()) {
            i += 1;
        }
        segment_unicode(&text[start..i], start, out);
    }
}

/// Splits a span of non-ASCII text (with ASCII letters and digits) by UAX #29.
fn segment_unicode(span: &str, base: usize, out: &mut Vec<Span>) {
    let mut cjk: Vec<(usize, char)> = Vec::new();
    // The word being built: start, end, text.
    let mut word: Option<(usize, usize, String)> = None;
    for (off, seg) in span.split_word_bound_indices() {
        let has_alnum = seg.chars().any(char::is_alphanumeric);
        for (co, c) in seg.char_indices() {
            let at = base + off + co;
            if is_cjk(c) {
                flush_word(&mut word, out);
                if cjk.last().is_some_and(|&(o, p)| o + p.len_utf8() != at) {
                    flush_cjk(&mut cjk, out);
                }
                cjk.push((at, c));
                continue;
            }
            flush_cjk(&mut cjk, out);
            if !has_alnum || is_inner_punctuation(c) {
                flush_word(&mut word, out);
                continue;
            }
            let end = at + c.len_utf8();
            let w = word.get_or_insert_with(|| (at, at, String::new()));
            w.1 = end;
            if !is_dropped(c) {
                w.2.push(c);
            }
        }
        // A segment boundary ends a word (UAX #29 found two words there).
        flush_word(&mut word, out);
    }
    flush_cjk(&mut cjk, out);
}

fn flush_word(word: &mut Option<(usize, usize, String)>, out: &mut Vec<Span>) {
    if let Some((from, to, text)) = word.take()
        && text.chars().any(char::is_alphanumeric)
    {
        out.push(Span {
            from,
            to,
            text: Some(text),
        });
    }
}

/// Emits a CJK run as bigrams (a single character on its own).
fn flush_cjk(run: &mut Vec<(usize, char)>, out: &mut Vec<Span>) {
    match run.len() {
        0 => {}
        1 => {
            let (at, c) = run[0];
            out.push(Span {
                from: at,
                to: at + c.len_utf8(),
                text: Some(c.to_string()),
            });
        }
        _ => {
            for pair in run.windows(2) {
                let (a, ca) = pair[0];
                let (b, cb) = pair[1];
                let mut text = String::with_capacity(8);
                text.push(ca);
                text.push(cb);
                out.push(Span {
                    from: a,
                    to: b + cb.len_utf8(),
                    text: Some(text),
                });
            }
        }
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        terms(&mut text_analyzer(), text)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    #[test]
    fn ascii_words_are_lowercased_and_split_at_punctuation() {
        assert_eq!(
            words("Edit config.toml, then run `cargo build` in the_dir!"),
            ["edit", "config", "toml", "run", "cargo", "build", "dir"]
        );
    }

    #[test]
    fn diacritics_fold_composed_and_decomposed() {
        assert_eq!(words("Café naïve RÉSUMÉ"), ["cafe", "naive", "resume"]);
        assert_eq!(words("cafe\u{301} co\u{AD}operate"), ["cafe", "cooperate"]);
        assert_eq!(words("Straße Ærø"), ["strasse", "aero"]);
    }

    #[test]
    fn cjk_runs_become_bigrams_with_offsets() {
        let toks: Vec<(usize, String)> = terms(&mut text_analyzer(), "日本語を勉強 x 猫");
        let texts: Vec<&str> = toks.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["日本", "本語", "語を", "を勉", "勉強", "x", "猫"]);
        // Consecutive positions, so a bigram sequence is a phrase.
        let pos: Vec<usize> = toks.iter().map(|(p, _)| *p).collect();
        assert_eq!(pos, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            words("한국어를 배워요"),
            ["한국", "국어", "어를", "배워", "워요"]
        );
        // Full-width punctuation breaks a run.
        assert_eq!(words("東京、大阪"), ["東京", "大阪"]);
    }

    #[test]
    fn mixed_scripts_and_inner_punctuation() {
        assert_eq!(words("iPhone的价格"), ["iphone", "的价", "价格"]);
        assert_eq!(words("l’homme dit·es"), ["l", "homme", "dit", "es"]);
        assert_eq!(words("Привет, мир"), ["привет", "мир"]);
        // Devanagari keeps its virama and vowel signs inside the word.
        assert_eq!(words("हिन्दी भाषा"), ["हिन्दी", "भाषा"]);
    }

    #[test]
    fn stop_words_and_long_tokens_are_dropped_but_keep_positions() {
        let toks = terms(&mut text_analyzer(), "the war and the peace");
        assert_eq!(toks, [(1, "war".to_owned()), (4, "peace".to_owned())]);
        assert!(words(&"x".repeat(200)).is_empty());
        assert!(words("🙂 — …").is_empty());
        // The prefix analyzer keeps stop words.
        assert_eq!(
            terms(&mut prefix_analyzer(), "The"),
            [(0, "the".to_owned())]
        );
    }

    #[test]
    fn keyword_is_whole_lowercased_and_folded() {
        assert_eq!(
            terms(&mut keyword_analyzer(), "Café Plans 2024"),
            [(0, "cafe plans 2024".to_owned())]
        );
    }
}
