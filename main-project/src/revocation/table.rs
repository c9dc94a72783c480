//! A compact map from revoked ids to small values, laid out for the
//! revocation view's sizes: a million live `jti`s must fit in about 64 bytes
//! each and be looked up on every request.
//!
//! MA's `jti`s and `sid`s are 16 random bytes in base64url (22 characters)
//! and OP's user ids are lower-case UUIDs; those are kept as their 16 bytes
//! inline (a map entry of 16 bytes + the value, no heap string). Any other id
//! (another issuer's format) goes to a map of boxed strings. Each form decodes
//! and re-encodes exactly, so the view can write its entries back to Redis
//! under the very key MA used.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One id in its most compact form.
enum Key<'a> {
    /// 22 characters of canonical base64url: 16 bytes.
    Base64([u8; 16]),
    /// A lower-case hyphenated UUID: 16 bytes.
    Uuid([u8; 16]),
    /// Anything else, as text.
    Text(&'a str),
}

fn base64_bytes(id: &str) -> Option<[u8; 16]> {
    if id.len() != 22 {
        return None;
    }
    // The estimate for 22 characters is 18 bytes; a canonical one decodes to 16.
    let mut buf = [0u8; 18];
    match URL_SAFE_NO_PAD.decode_slice(id, &mut buf) {
        Ok(16) => {
            let mut out = [0u8; 16];
            out.copy_from_slice(buf.get(..16)?);
            Some(out)
        }
        _ => None,
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let b = id.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = b.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let hi = hex_value(*digits.next()?)?;
        let lo = hex_value(*digits.next()?)?;
        *byte = (hi << 4) | lo;
    }
    Some(out)
}

fn key(id: &str) -> Key<'_> {
    if let Some(b) = base64_bytes(id) {
        Key::Base64(b)
    } else if let Some(b) = uuid_bytes(id) {
        Key::Uuid(b)
    } else {
        Key::Text(id)
    }
}

/// Ids mapped to a small `Copy` value.
#[derive(Debug)]
pub struct Table<V> {
    base64: HashMap<[u8; 16], V>,
    uuid: HashMap<[u8; 16], V>,
    text: HashMap<Box<str>, V>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            base64: HashMap::new(),
            uuid: HashMap::new(),
            text: HashMap::new(),
        }
    }
}

impl<V: Copy> Table<V> {
    /// The value of `id`, if present.
    pub fn get(&self, id: &str) -> Option<V> {
        match key(id) {
            Key::Base64(b) => self.base64.get(&b).copied(),
            Key::Uuid(b) => self.uuid.get(&b).copied(),
            Key::Text(t) => self.text.get(t).copied(),
        }
    }

    /// Inserts `value` for `id`, or combines it with the present one.
    pub fn upsert(&mut self, id: &str, value: V, combine: impl Fn(V, V) -> V) {
        let merge = |slot: &mut V| *slot = combine(*slot, value);
        match key(id) {
            Key::Base64(b) => self.base64.entry(b).and_modify(merge).or_insert(value),
            Key::Uuid(b) => self.uuid.entry(b).and_modify(merge).or_insert(value),
            Key::Text(t) => self.text.entry(t.into()).and_modify(merge).or_insert(value),
        };
    }

    /// Keeps the entries whose value passes `keep`.
    pub fn retain(&mut self, keep: impl Fn(&V) -> bool) {
        self.base64.retain(|_, v| keep(v));
        self.uuid.retain(|_, v| keep(v));
        self.text.retain(|_, v| keep(v));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.base64.len() + self.uuid.len() + self.text.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry with its id written exactly as it was inserted.
    pub fn for_each(&self, mut f: impl FnMut(String, V)) {
        for (b, v) in &self.base64 {
            f(URL_SAFE_NO_PAD.encode(b), *v);
        }
        for (b, v) in &self.uuid {
            f(crate::ids::uuid_text(b), *v);
        }
        for (t, v) in &self.text {
            f(t.to_string(), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_form_round_trips_and_is_found() -> Result<(), Box<dyn std::error::Error>> {
        let mut t = Table::<u32>::default();
        let mut ids = vec![
            "550e8400-e29b-41d4-a716-446655440000".to_owned(),
            // Upper-case UUIDs and non-canonical base64 stay text, so they
            // are written back exactly as they came.
            "550E8400-E29B-41D4-A716-446655440000".to_owned(),
            "AAAAAAAAAAAAAAAAAAAAAB".to_owned(),
            "some-other-issuer's id".to_owned(),
            String::new(),
        ];
        for _ in 0..50 {
            ids.push(authrealm_tokens::random_token(16)?);
            ids.push(crate::ids::new_id()?);
        }
        for (i, id) in ids.iter().enumerate() {
            t.upsert(id, u32::try_from(i)?, u32::max);
        }
        assert_eq!(t.len(), ids.len());
        assert_eq!(t.text.len(), 4);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.get(id), Some(u32::try_from(i)?), "{id}");
        }
        let mut back = Vec::new();
        t.for_each(|id, _| back.push(id));
        back.sort();
        ids.sort();
        assert_eq!(back, ids);
        assert_eq!(t.get("not-there"), None);
        Ok(())
    }

    #[test]
    fn upsert_combines_and_retain_drops() {
        let mut t = Table::<u32>::default();
        let id = "0123456789abcdefghijkl";
        t.upsert(id, 10, u32::max);
        t.upsert(id, 5, u32::max);
        assert_eq!(t.get(id), Some(10));
        t.retain(|v| *v > 10);
        assert_eq!(t.get(id), None);
        assert_eq!(t.len(), 0);
    }
}
