//! Tolerant field deserializers. ChatGPT data has no schema and its types drift
//! (ids as numbers, `null` where a list was, objects where a string was), so every
//! field reads what it can and treats anything else as absent instead of failing
//! the whole conversation.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A string borrowed from the input when it has no escapes.
pub type Str<'a> = Cow<'a, str>;

/// Reads a string (numbers become their decimal text); anything else is `None`.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Str<'de>>, D::Error> {
    d.deserialize_any(StringVisitor)
}

/// Reads a boolean; anything else is `None`.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(BoolVisitor)
}

/// Reads a number (int or float); anything else is `None`.
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(NumberVisitor)
}

/// Reads an array of strings, skipping non-string elements; anything else is empty.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Str<'de>>, D::Error> {
    d.deserialize_any(StringListVisitor)
}

/// Reads a `T` when the value is an object; anything else is `None`.
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    d.deserialize_any(ObjectVisitor(std::marker::PhantomData))
}

/// Reads an array of objects as `T`s, skipping elements that are not objects.
pub fn object_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    d.deserialize_any(ObjectListVisitor(std::marker::PhantomData))
}

/// A map key (or any string) borrowed where possible.
pub struct Key<'a>(pub Str<'a>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

/// Drains a sequence so the parser stays in step, for values we do not want.
pub(crate) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Drains a map so the parser stays in step, for values we do not want.
pub(crate) fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the scalar and compound `visit_*` methods that mean "not this type",
/// each answering `$val` (and draining compound values so the parser stays in step).
macro_rules! reject_others {
    ($val:expr; $($skip:ident),*) => {
        $(reject_others!(@one $skip, $val);)*
    };
    (@one bool, $val:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> { Ok($val) }
    };
    (@one num, $val:expr) => {
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> { Ok($val) }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> { Ok($val) }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> { Ok($val) }
    };
    (@one str, $val:expr) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> { Ok($val) }
    };
    (@one unit, $val:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> { Ok($val) }
        fn visit_none<E>(self) -> Result<Self::Value, E> { Ok($val) }
    };
    (@one seq, $val:expr) => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            $crate::model::loose::drain_seq(seq)?;
            Ok($val)
        }
    };
    (@one map, $val:expr) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            $crate::model::loose::drain_map(map)?;
            Ok($val)
        }
    };
}

pub(crate) use reject_others;

struct StringVisitor;

impl<'de> Visitor<'de> for StringVisitor {
    type Value = Option<Str<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(None; bool, unit, seq, map);
}

struct BoolVisitor;

impl<'de> Visitor<'de> for BoolVisitor {
    type Value = Option<bool>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(None; num, str, unit, seq, map);
}

struct NumberVisitor;

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.is_finite().then_some(v))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(None; bool, str, unit, seq, map);
}

struct StringListVisitor;

impl<'de> Visitor<'de> for StringListVisitor {
    type Value = Vec<Str<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(LooseString)? {
            if let Some(s) = item {
                out.push(s);
            }
        }
        Ok(out)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(Vec::new(); bool, num, str, unit, map);
}

/// A `DeserializeSeed` for one loose string element.
struct LooseString;

impl<'de> de::DeserializeSeed<'de> for LooseString {
    type Value = Option<Str<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        string(d)
    }
}

struct ObjectVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(None; bool, num, str, unit, seq);
}

struct ObjectListVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for ObjectListVisitor<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(LooseObject::<T>(std::marker::PhantomData))? {
            if let Some(v) = item {
                out.push(v);
            }
        }
        Ok(out)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(Vec::new(); bool, num, str, unit, map);
}

/// A `DeserializeSeed` for one loose object element.
struct LooseObject<T>(std::marker::PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> de::DeserializeSeed<'de> for LooseObject<T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        object(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Probe<'a> {
        #[serde(borrow, deserialize_with = "string")]
        s: Option<Str<'a>>,
        #[serde(deserialize_with = "boolean")]
        b: Option<bool>,
        #[serde(deserialize_with = "number")]
        n: Option<f64>,
        #[serde(borrow, deserialize_with = "string_list")]
        l: Vec<Str<'a>>,
    }

    #[test]
    fn wrong_types_read_as_absent() {
        let p: Probe = serde_json::from_str(r#"{"s":{"x":[1,2]},"b":"yes","n":"1","l":"abc"}"#)
            .expect("tolerated");
        assert!(p.s.is_none() && p.b.is_none() && p.n.is_none() && p.l.is_empty());
        let p: Probe =
            serde_json::from_str(r#"{"s":12,"b":true,"n":1,"l":["a",1,null,"b"]}"#).expect("ok");
        assert_eq!(p.s.as_deref(), Some("12"));
        assert_eq!(p.b, Some(true));
        assert_eq!(p.n, Some(1.0));
        assert_eq!(p.l, vec!["a", "1", "b"]);
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let input = r#"{"s":"plain","l":["a\nb"]}"#;
        let p: Probe = serde_json::from_str(input).expect("ok");
        assert!(matches!(p.s, Some(Cow::Borrowed("plain"))));
        assert!(matches!(p.l[0], Cow::Owned(_)));
    }
}
