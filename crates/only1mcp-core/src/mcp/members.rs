//! [`Members`]: a JSON object read in one pass without copying its values.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde::ser::{SerializeMap as _, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::RawObject;
use crate::jsonrpc::{ErrorObject, code};

/// Above this many members, repeated keys are found with a hash map rather
/// than by comparing each key with every other.
const LINEAR_DEDUP: usize = 32;

/// The members of a JSON object, borrowed from its text: keys unescaped only
/// where they need it, values as raw JSON, in order. A repeated key keeps its
/// first position and its last value, as in a [`RawObject`], so both read
/// and rewrite the same text the same way; reading and rewriting one member
/// here copies nothing else.
#[derive(Debug, Clone, Default)]
pub struct Members<'a> {
    members: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
}

impl<'a> Members<'a> {
    /// The members of request params (absent params give no members). Params
    /// that are not an object are an invalid-params error.
    pub fn parse(params: Option<&'a RawValue>) -> Result<Self, ErrorObject> {
        let Some(raw) = params else {
            return Ok(Self::default());
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let members = de
            .deserialize_map(MembersVisitor)
            .and_then(|members| de.end().map(|()| members))
            .map_err(|e| {
                ErrorObject::new(
                    code::INVALID_PARAMS,
                    format!("Invalid params: expected an object ({e})"),
                )
            })?;
        Ok(Self { members })
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.position(key).map(|i| &*self.members[i].1)
    }

    /// The string value of `key` (`None` if absent or not a string).
    pub fn string(&self, key: &str) -> Option<String> {
        serde_json::from_str(self.get(key)?.get()).ok()
    }

    /// Sets `key` to `value`, in place if present, else last.
    pub fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.position(key) {
            Some(i) => self.members[i].1 = Cow::Owned(value),
            None => self
                .members
                .push((Cow::Owned(key.to_owned()), Cow::Owned(value))),
        }
    }

    /// Sets `key` to the JSON string `value`.
    pub fn set_string(&mut self, key: &str, value: &str) {
        if let Ok(raw) = serde_json::value::to_raw_value(value) {
            self.set(key, raw);
        }
    }

    /// Removes `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.members.remove(i);
        }
    }

    /// Keeps the members whose key passes `keep`, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.members.retain(|(key, _)| keep(key));
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The object as raw JSON: keys escaped, values written as they came.
    pub fn to_raw(&self) -> Result<Box<RawValue>, ErrorObject> {
        serde_json::value::to_raw_value(self)
            .map_err(|e| ErrorObject::new(code::INTERNAL_ERROR, format!("serialize: {e}")))
    }

    /// The members as an owned [`RawObject`].
    pub fn to_object(&self) -> RawObject {
        self.members
            .iter()
            .map(|(key, value)| (key.clone().into_owned(), value.clone().into_owned()))
            .collect()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.members.iter().position(|(k, _)| k == key)
    }
}

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (key, value) in &self.members {
            map.serialize_entry(key.as_ref(), value.as_ref())?;
        }
        map.end()
    }
}

/// Folds the repeated keys of a long member list: the first position, the
/// last value.
fn dedup_hashed<'a>(
    members: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
) -> Vec<(Cow<'a, str>, Cow<'a, RawValue>)> {
    let mut out: Vec<(Cow<'a, str>, Cow<'a, RawValue>)> = Vec::with_capacity(members.len());
    let mut seen: HashMap<Cow<'a, str>, usize> = HashMap::with_capacity(members.len());
    for (key, value) in members {
        match seen.get(&key) {
            Some(&i) => out[i].1 = value,
            None => {
                seen.insert(key.clone(), out.len());
                out.push((key, value));
            }
        }
    }
    out
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Cow<'de, str>, Cow<'de, RawValue>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Cow<'de, RawValue>)> =
            Vec::with_capacity(map.size_hint().unwrap_or(4));
        // Repeated keys fold as they come while the list is short; a long
        // one is folded once at the end, by hashing.
        let mut long = false;
        while let Some(Key(key)) = map.next_key()? {
            let value = Cow::Borrowed(map.next_value::<&'de RawValue>()?);
            long |= members.len() >= LINEAR_DEDUP;
            let earlier = if long {
                None
            } else {
                members.iter_mut().find(|(k, _)| *k == key)
            };
            match earlier {
                Some(slot) => slot.1 = value,
                None => members.push((key, value)),
            }
        }
        Ok(if long { dedup_hashed(members) } else { members })
    }
}

/// An object key, borrowed from the text unless it has escapes (serde's own
/// `Cow<str>` always copies).
pub(super) struct Key<'de>(pub(super) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

        deserializer.deserialize_str(KeyVisitor)
    }
}
