//! Node-level union of conversation versions: nodes an archived version has and a
//! newer one lacks are kept (verbatim) beside the newer JSON, so nothing once
//! archived is lost while the stored document stays exactly what ChatGPT sent last.

use crate::model::loose::{Key, reject_others};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Mapping entries (node id, verbatim node JSON) in input order.
type Entries<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

#[derive(Deserialize, Default)]
#[serde(default)]
struct MappingOnly<'a> {
    #[serde(borrow, deserialize_with = "entries")]
    mapping: Entries<'a>,
}

/// The mapping entries of a conversation document.
fn conversation_entries(doc: &[u8]) -> Result<Entries<'_>, serde_json::Error> {
    serde_json::from_slice::<MappingOnly<'_>>(doc).map(|m| m.mapping)
}

/// The entries of a bare node object (the retained-nodes document).
fn object_entries(doc: &[u8]) -> Result<Entries<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    entries(&mut de)
}

/// Retained nodes after replacing `old` (with its retained `old_extra`) by the newer
/// `new`: every old node whose id `new` lacks. `None` when there are none.
pub fn retained_after_replace(
    old: &[u8],
    old_extra: Option<&[u8]>,
    new: &[u8],
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let new_keys: HashSet<Cow<'_, str>> = conversation_entries(new)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut kept = conversation_entries(old)?;
    if let Some(extra) = old_extra {
        kept.extend(object_entries(extra)?);
    }
    Ok(encode(
        kept.into_iter().filter(|(k, _)| !new_keys.contains(k)),
    ))
}

/// Retained nodes after seeing the older `incoming`: the current retained nodes plus
/// any incoming node neither `current` nor its retained nodes have. `None` when
/// nothing changes.
pub fn retained_after_older(
    current: &[u8],
    current_extra: Option<&[u8]>,
    incoming: &[u8],
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let mut known: HashSet<Cow<'_, str>> = conversation_entries(current)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut extra = match current_extra {
        Some(e) => object_entries(e)?,
        None => Vec::new(),
    };
    known.extend(extra.iter().map(|(k, _)| k.clone()));
    let before = extra.len();
    extra.extend(
        conversation_entries(incoming)?
            .into_iter()
            .filter(|(k, _)| !known.contains(k)),
    );
    if extra.len() == before {
        return Ok(None);
    }
    Ok(encode(extra.into_iter()))
}

/// The stored document with the top-level keys it lacks and `incoming` has added at its
/// end, verbatim and in `incoming`'s order (the stored bytes are kept as they are).
/// `None` when it lacks none. For two copies of one version: a batch answer carries no
/// `default_model_slug`, a detail fetched later does.
pub fn with_missing_keys(
    stored: &[u8],
    incoming: &[u8],
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let have: HashSet<Cow<'_, str>> = object_entries(stored)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut seen = HashSet::new();
    let missing: Vec<_> = object_entries(incoming)?
        .into_iter()
        .filter(|(k, _)| !have.contains(k) && seen.insert(k.clone()))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    // The stored document is an object (it parsed as one): splice before its `}`.
    let end = stored
        .iter()
        .rposition(|&b| b == b'}')
        .ok_or_else(|| serde::de::Error::custom("not an object"))?;
    let mut out = Vec::with_capacity(stored.len() + 64 * missing.len());
    out.extend_from_slice(&stored[..end]);
    let mut first = have.is_empty();
    for (k, v) in missing {
        if !first {
            out.push(b',');
        }
        first = false;
        // A string always serializes.
        out.extend(serde_json::to_vec(k.as_ref()).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.extend_from_slice(&stored[end..]);
    Ok(Some(out))
}

/// Writes entries as one JSON object, first occurrence of a key winning.
fn encode<'a>(entries: impl Iterator<Item = (Cow<'a, str>, &'a RawValue)>) -> Option<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut out = Vec::from(&b"{"[..]);
    for (k, v) in entries {
        if !seen.insert(k.clone()) {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        // A string always serializes.
        out.extend(serde_json::to_vec(k.as_ref()).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.push(b'}');
    (!seen.is_empty()).then_some(out)
}

fn entries<'de, D: Deserializer<'de>>(d: D) -> Result<Entries<'de>, D::Error> {
    d.deserialize_any(EntriesVisitor)
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            out.push((k.0, v));
        }
        Ok(out)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(Vec::new(); bool, num, str, unit, seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_nodes_the_newer_version_lacks() {
        let old = br#"{"mapping":{"a":{"x":1},"b":{"x":2}}}"#;
        let extra = br#"{"z":{"x":0}}"#;
        let new = br#"{"mapping":{"a":{"x":9},"c":{"x":3}}}"#;
        let kept = retained_after_replace(old, Some(extra), new).expect("ok");
        assert_eq!(kept.as_deref(), Some(&br#"{"b":{"x":2},"z":{"x":0}}"#[..]));
        assert_eq!(retained_after_replace(new, None, new).expect("ok"), None);
    }

    #[test]
    fn an_equal_version_adds_only_the_keys_the_stored_copy_lacks() {
        let stored = br#"{"id":"c","mapping":{"a":{}},"title":"T"} "#;
        let batch = br#"{"title":"other","default_model_slug":"gpt-5","id":"c","x":[1,{"y":2}]}"#;
        let merged = with_missing_keys(stored, batch)
            .expect("ok")
            .expect("keys added");
        assert_eq!(
            merged,
            br#"{"id":"c","mapping":{"a":{}},"title":"T","default_model_slug":"gpt-5","x":[1,{"y":2}]} "#
        );
        assert_eq!(with_missing_keys(&merged, batch).expect("ok"), None);
        assert_eq!(with_missing_keys(&merged, stored).expect("ok"), None);
        assert_eq!(
            with_missing_keys(b"{}", br#"{"a":1}"#)
                .expect("ok")
                .as_deref(),
            Some(&br#"{"a":1}"#[..])
        );
        assert!(with_missing_keys(b"[1]", br#"{"a":1}"#).is_err());
    }

    #[test]
    fn older_versions_add_only_unseen_nodes() {
        let cur = br#"{"mapping":{"a":{},"b":{}}}"#;
        let older = br#"{"mapping":{"a":{},"gone":{"t":"old"}}}"#;
        let kept = retained_after_older(cur, None, older).expect("ok");
        assert_eq!(kept.as_deref(), Some(&br#"{"gone":{"t":"old"}}"#[..]));
        let again = retained_after_older(cur, kept.as_deref(), older).expect("ok");
        assert_eq!(again, None);
    }
}
