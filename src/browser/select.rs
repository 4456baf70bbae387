//! Choosing the chatgpt.com cookies out of the rows a store gave: domain priority,
//! expiry, chunk joining and newest-wins, the same for every browser.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

/// The next-auth session cookie of chatgpt.com.
pub(crate) const SESSION_COOKIE: &str = "__Secure-next-auth.session-token";

/// Companion cookies worth sending along with the session, in the order they are returned.
pub(crate) const OTHER_COOKIES: [&str; 3] = ["oai-did", "cf_clearance", "_account"];

/// Hosts read from the stores, best first: chatgpt.com, then the old chat.openai.com.
pub(crate) const HOSTS: [&str; 4] = [
    "chatgpt.com",
    ".chatgpt.com",
    "chat.openai.com",
    ".chat.openai.com",
];

/// Priority of a cookie host: 0 for chatgpt.com, 1 for the chat.openai.com fallback.
pub(crate) fn host_tier(host: &str) -> Option<u8> {
    match host.strip_prefix('.').unwrap_or(host) {
        "chatgpt.com" => Some(0),
        "chat.openai.com" => Some(1),
        _ => None,
    }
}

/// Whether a cookie of this name is one [`pick`] may use (so readers skip the rest early).
pub(crate) fn is_wanted_name(name: &str) -> bool {
    name == SESSION_COOKIE || chunk_index(name).is_some() || OTHER_COOKIES.contains(&name)
}

/// `Some(n)` for the chunk `__Secure-next-auth.session-token.n`.
fn chunk_index(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(SESSION_COOKIE)?.strip_prefix('.')?;
    // Only plain decimal digits: `u32::from_str` would also take a leading `+`.
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// One cookie row as read from a store, value already decrypted.
pub(crate) struct RawCookie {
    /// The cookie's host / domain field, e.g. `.chatgpt.com`.
    pub host: String,
    /// The cookie's name.
    pub name: String,
    /// The cookie's value.
    pub value: SecretString,
    /// When it expires; `None` for a session cookie (kept until the browser closes).
    pub expires: Option<DateTime<Utc>>,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// When the browser last sent it.
    pub last_access: Option<DateTime<Utc>>,
    /// The cookie jar inside the store (Firefox containers); chunks are never mixed across jars.
    pub jar: String,
}

/// What a store reader hands to [`pick`].
#[derive(Default)]
pub(crate) struct StoreRead {
    /// The chatgpt.com / chat.openai.com cookies of wanted names.
    pub cookies: Vec<RawCookie>,
    /// Set when a session cookie existed but could not be decrypted (the reason, no secrets).
    pub undecryptable_session: Option<String>,
}

/// The session (and companions) chosen from one store.
pub(crate) struct Candidate {
    /// 0 for chatgpt.com, 1 for chat.openai.com.
    pub tier: u8,
    /// The joined session token.
    pub session_token: SecretString,
    /// Companion cookies by name.
    pub others: Vec<(String, SecretString)>,
    /// Creation time of the session cookie (newest chunk).
    pub created: Option<DateTime<Utc>>,
    /// Last access time of the session cookie (newest chunk).
    pub last_access: Option<DateTime<Utc>>,
}

impl Candidate {
    /// Bigger is better: chatgpt.com over chat.openai.com, then newest creation, then newest access.
    pub fn rank(
        &self,
    ) -> (
        std::cmp::Reverse<u8>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    ) {
        (std::cmp::Reverse(self.tier), self.created, self.last_access)
    }
}

/// Picks the best live session from a store's cookies, or `None` if there is none.
pub(crate) fn pick(cookies: Vec<RawCookie>, now: DateTime<Utc>) -> Option<Candidate> {
    // (tier, jar) -> cookies of that host group and jar.
    let mut groups: BTreeMap<(u8, String), Vec<RawCookie>> = BTreeMap::new();
    for c in cookies {
        let Some(tier) = host_tier(&c.host) else {
            continue;
        };
        if c.expires.is_some_and(|e| e <= now) {
            continue;
        }
        groups.entry((tier, c.jar.clone())).or_default().push(c);
    }

    groups
        .into_iter()
        .filter_map(|((tier, _), group)| pick_in_group(tier, &group))
        .max_by_key(Candidate::rank)
}

/// Picks the session of one host group and jar.
fn pick_in_group(tier: u8, group: &[RawCookie]) -> Option<Candidate> {
    let whole = newest(group.iter().filter(|c| c.name == SESSION_COOKIE)).map(Session::from_one);
    let chunked = join_chunks(group);
    let session = match (whole, chunked) {
        (Some(w), Some(c)) => {
            // Both forms can linger when the token changed size; the newer one is current.
            if (c.created, c.last_access) > (w.created, w.last_access) {
                c
            } else {
                w
            }
        }
        (w, c) => w.or(c)?,
    };

    let others = OTHER_COOKIES
        .iter()
        .filter_map(|name| {
            newest(group.iter().filter(|c| c.name == *name))
                .map(|c| ((*name).to_owned(), c.value.clone()))
        })
        .collect();

    Some(Candidate {
        tier,
        session_token: session.token,
        others,
        created: session.created,
        last_access: session.last_access,
    })
}

struct Session {
    token: SecretString,
    created: Option<DateTime<Utc>>,
    last_access: Option<DateTime<Utc>>,
}

impl Session {
    fn from_one(c: &RawCookie) -> Session {
        Session {
            token: c.value.clone(),
            created: c.created,
            last_access: c.last_access,
        }
    }
}

/// Joins `.0`, `.1`, ... in index order; `None` if there are no chunks or one is missing.
fn join_chunks(group: &[RawCookie]) -> Option<Session> {
    let mut by_index: BTreeMap<u32, Vec<&RawCookie>> = BTreeMap::new();
    for c in group {
        if let Some(i) = chunk_index(&c.name) {
            by_index.entry(i).or_default().push(c);
        }
    }
    if by_index.is_empty() {
        return None;
    }
    // A gap means part of the token is gone; a partial token would only fail later.
    if by_index.keys().copied().ne(0..by_index.len() as u32) {
        tracing::debug!(
            chunks = by_index.len(),
            "session cookie chunks are not contiguous; ignoring them"
        );
        return None;
    }
    let chosen: Vec<&RawCookie> = by_index
        .values()
        .filter_map(|chunks| newest(chunks.iter().copied()))
        .collect();
    // Sized up front so no reallocation leaves copies of the token behind.
    let len = chosen.iter().map(|c| c.value.expose_secret().len()).sum();
    let mut token = String::with_capacity(len);
    let mut created = None;
    let mut last_access = None;
    for c in chosen {
        token.push_str(c.value.expose_secret());
        created = created.max(c.created);
        last_access = last_access.max(c.last_access);
    }
    Some(Session {
        token: SecretString::from(token),
        created,
        last_access,
    })
}

fn newest<'a>(cookies: impl Iterator<Item = &'a RawCookie>) -> Option<&'a RawCookie> {
    cookies.max_by_key(|c| (c.created, c.last_access))
}

/// Turns decrypted/raw value bytes into a secret string; `None` (bytes wiped) if not UTF-8.
pub(crate) fn secret_from_utf8(mut bytes: Zeroizing<Vec<u8>>) -> Option<SecretString> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(s) => Some(SecretString::from(s)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            None
        }
    }
}
