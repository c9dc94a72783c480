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

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One id in its most compact form: `Key<&str>` to look one up, [`Id`]
/// (owning its text) to insert one decoded ahead of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<T> {
    /// 22 characters of canonical base64url: 16 bytes.
    Base64([u8; 16]),
    /// A lower-case hyphenated UUID: 16 bytes.
    Uuid([u8; 16]),
    /// Anything else, as text.
    Text(T),
}

/// An id decoded into the table's form once, outside any lock (a scan
/// decodes a page of ids before it merges them).
pub type Id = Key<Box<str>>;

impl<'a> Key<&'a str> {
    /// `id` in its compact form, borrowing it when it has none.
    #[must_use]
    pub fn of(id: &'a str) -> Self {
        if let Some(b) = base64_bytes(id) {
            Key::Base64(b)
        } else if let Some(b) = authrealm_tokens::uuid::parse(id) {
            Key::Uuid(b)
        } else {
            Key::Text(id)
        }
    }
}

impl Id {
    /// Decodes `id`.
    #[must_use]
    pub fn parse(id: &str) -> Self {
        match Key::of(id) {
            Key::Base64(b) => Key::Base64(b),
            Key::Uuid(b) => Key::Uuid(b),
            Key::Text(t) => Key::Text(t.into()),
        }
    }
}

/// The base64url alphabet's value of each byte; `INVALID` for the others.
const BASE64URL: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};
const INVALID: u8 = 0xff;

/// 16 bytes from exactly 22 characters of canonical unpadded base64url (the
/// 4 bits left over in the last character zero), as `URL_SAFE_NO_PAD`
/// decodes them; `None` for anything else. Every id of a scan passes here,
/// so it is a table look-up per character rather than a general decoder.
fn base64_bytes(id: &str) -> Option<[u8; 16]> {
    let chars: &[u8; 22] = id.as_bytes().try_into().ok()?;
    let mut six = [0u8; 22];
    for (v, c) in six.iter_mut().zip(chars) {
        *v = BASE64URL[usize::from(*c)];
        if *v == INVALID {
            return None;
        }
    }
    if six[21] & 0x0f != 0 {
        return None;
    }
    let mut out = [0u8; 16];
    for (bytes, quad) in out.chunks_exact_mut(3).zip(six.chunks_exact(4)) {
        let n = quad.iter().fold(0u32, |n, v| (n << 6) | u32::from(*v));
        for (b, shift) in bytes.iter_mut().zip([16, 8, 0]) {
            *b = (n >> shift) as u8;
        }
    }
    out[15] = (six[20] << 2) | (six[21] >> 4);
    Some(out)
}

/// The maps of a [`Table`]: hashbrown with its default (foldhash) hasher,
/// seeded per process. Every request looks up three ids, and a keyed
/// SipHash of each would be most of the look-up's cost; the ids inserted
/// come from MA's revocations, not from whoever sends a request.
type HashMap<K, V> = hashbrown::HashMap<K, V>;

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
        // An empty table (often the case for some kind of revocation)
        // answers without decoding or hashing the id.
        if self.is_empty() {
            return None;
        }
        match Key::of(id) {
            Key::Base64(b) => self.base64.get(&b).copied(),
            Key::Uuid(b) => self.uuid.get(&b).copied(),
            Key::Text(t) => self.text.get(t).copied(),
        }
    }

    /// Inserts `value` for `id`, or combines it with the present one.
    pub fn upsert(&mut self, id: &str, value: V, combine: impl Fn(V, V) -> V) {
        let _ = self.upsert_key(Key::of(id), value, combine);
    }

    /// [`Table::upsert`] of an id in its compact form already; returns the
    /// value it had before, if any.
    pub fn upsert_key<T: Into<Box<str>>>(
        &mut self,
        id: Key<T>,
        value: V,
        combine: impl Fn(V, V) -> V,
    ) -> Option<V> {
        let mut before = None;
        let merge = |slot: &mut V| {
            before = Some(*slot);
            *slot = combine(*slot, value);
        };
        match id {
            Key::Base64(b) => self.base64.entry(b).and_modify(merge).or_insert(value),
            Key::Uuid(b) => self.uuid.entry(b).and_modify(merge).or_insert(value),
            Key::Text(t) => self.text.entry(t.into()).and_modify(merge).or_insert(value),
        };
        before
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
            f(authrealm_tokens::uuid::text(b), *v);
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

    /// What the general decoder says of `id`: 16 bytes from 22 characters of
    /// canonical base64url, or nothing.
    fn reference(id: &str) -> Option<[u8; 16]> {
        if id.len() != 22 {
            return None;
        }
        URL_SAFE_NO_PAD.decode(id).ok()?.try_into().ok()
    }

    #[test]
    fn the_base64_decoder_takes_only_canonical_ids() {
        assert_eq!(base64_bytes("AAAAAAAAAAAAAAAAAAAAAA"), Some([0; 16]));
        assert_eq!(base64_bytes("_____________________w"), Some([0xff; 16]));
        // The four bits past the 16th byte must be zero.
        assert_eq!(base64_bytes("_____________________x"), None);
        assert_eq!(base64_bytes("AAAAAAAAAAAAAAAAAAAAAB"), None);
        // Standard base64's characters, padding, other lengths, multi-byte text.
        for odd in [
            "AAAAAAAAAAAAAAAAAAAA+A",
            "AAAAAAAAAAAAAAAAAAAA/A",
            "AAAAAAAAAAAAAAAAAAAA==",
            "AAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAé",
            "",
        ] {
            assert_eq!(base64_bytes(odd), None, "{odd}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_base64_decoder_agrees_with_the_general_one(
            id in "[A-Za-z0-9_=+/-]{22}|.{0,30}",
            bytes in proptest::array::uniform16(proptest::prelude::any::<u8>()),
        ) {
            proptest::prop_assert_eq!(base64_bytes(&id), reference(&id));
            let encoded = URL_SAFE_NO_PAD.encode(bytes);
            proptest::prop_assert_eq!(base64_bytes(&encoded), Some(bytes));
            proptest::prop_assert_eq!(Id::parse(&encoded), Key::Base64(bytes));
        }
    }

    #[test]
    fn an_id_decoded_ahead_is_found_by_its_text() {
        let mut t = Table::<u32>::default();
        let ids = [
            "AAAAAAAAAAAAAAAAAAAAAQ",
            "550e8400-e29b-41d4-a716-446655440000",
            "550E8400-E29B-41D4-A716-446655440000",
            "an id of another shape",
        ];
        for id in ids {
            t.upsert_key(Id::parse(id), 7, u32::max);
            t.upsert(id, 5, u32::max);
        }
        assert_eq!(t.len(), ids.len());
        for id in ids {
            assert_eq!(t.get(id), Some(7), "{id}");
        }
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
