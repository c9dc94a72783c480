//! The one Redis record of a session (`P:s:{16 bytes of sid}`): a byte
//! string, so a live session costs one key and about its own size. The
//! store's Lua scripts read and write the same layout; this module writes
//! it for new sessions and reads it back in tests and tools.
//!
//! Layout (big-endian):
//!
//! | bytes | field |
//! | ---: | --- |
//! | 4 | created (unix seconds) |
//! | 4 | when the newest refresh token expires |
//! | 16 | that token's digest (zeros: the session has no refresh token) |
//! | 2 + 2 + 2 | lengths of client, `sub`, claims |
//! | … | client (empty for OP's own sessions), `sub`, claims (JSON) |
//! | 20 each | spent tokens: digest (16) and expiry (4), oldest first |
//!
//! Times are unsigned 32-bit seconds (valid until 2106). A `sub` that is a
//! UUID in its canonical form (lowercase, hyphenated: what OP's user ids
//! are) is kept as its 16 bytes, with the length [`UUID_SUB`].

use crate::error::{Error, Result};
use crate::opaque::Digest;

/// Bytes before the client: created, expiry, digest, three lengths.
pub const HEADER_LEN: usize = 30;

/// Bytes per spent token.
pub const SPENT_LEN: usize = 20;

/// The `sub` length that means "a canonical UUID, as its 16 bytes".
pub const UUID_SUB: u16 = u16::MAX;

/// A session record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the session was created.
    pub created: i64,
    /// When its newest refresh token expires.
    pub exp: i64,
    /// That token's digest; `None`: no refresh token.
    pub current: Option<Digest>,
    /// The OAuth client; empty for OP's sessions.
    pub client: String,
    /// The user.
    pub sub: String,
    /// Extra claims, JSON.
    pub claims_json: String,
    /// Spent tokens (digest, expiry), oldest first.
    pub spent: Vec<(Digest, i64)>,
}

fn time(t: i64) -> Result<[u8; 4]> {
    u32::try_from(t)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::StoreProtocol(format!("time {t} does not fit a session record")))
}

fn len(s: &str) -> Result<[u8; 2]> {
    u16::try_from(s.len())
        .map(u16::to_be_bytes)
        .map_err(|_| Error::StoreProtocol("a session field is too long to record".into()))
}

/// Encodes a record.
///
/// # Errors
/// [`Error::StoreProtocol`] for a time outside 1970–2106 or a field over
/// 65 535 bytes (`sub` and client ids are far shorter).
pub fn encode(r: &Record) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(
        HEADER_LEN + r.client.len() + r.sub.len() + r.claims_json.len() + SPENT_LEN * r.spent.len(),
    );
    out.extend_from_slice(&time(r.created)?);
    out.extend_from_slice(&time(r.exp)?);
    out.extend_from_slice(&r.current.unwrap_or_default());
    let uuid = authrealm_tokens::uuid::parse(&r.sub);
    out.extend_from_slice(&len(&r.client)?);
    match uuid {
        Some(_) => out.extend_from_slice(&UUID_SUB.to_be_bytes()),
        None => out.extend_from_slice(&len(&r.sub)?),
    }
    out.extend_from_slice(&len(&r.claims_json)?);
    out.extend_from_slice(r.client.as_bytes());
    match &uuid {
        Some(b) => out.extend_from_slice(b),
        None => out.extend_from_slice(r.sub.as_bytes()),
    }
    out.extend_from_slice(r.claims_json.as_bytes());
    for (digest, exp) in &r.spent {
        out.extend_from_slice(digest);
        out.extend_from_slice(&time(*exp)?);
    }
    Ok(out)
}

/// Decodes a record; `None` for bytes that are not one.
#[must_use]
pub fn decode(bytes: &[u8]) -> Option<Record> {
    let u32_at = |at: usize| -> Option<i64> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(i64::from(u32::from_be_bytes(b)))
    };
    let u16_at = |at: usize| -> Option<usize> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(usize::from(u16::from_be_bytes(b)))
    };
    let created = u32_at(0)?;
    let exp = u32_at(4)?;
    let current: Digest = bytes.get(8..24)?.try_into().ok()?;
    let (cl, sl, ml) = (u16_at(24)?, u16_at(26)?, u16_at(28)?);
    let mut at = HEADER_LEN;
    let mut field = |n: usize| -> Option<String> {
        let s = std::str::from_utf8(bytes.get(at..at + n)?).ok()?.to_owned();
        at += n;
        Some(s)
    };
    let client = field(cl)?;
    let sub = if sl == usize::from(UUID_SUB) {
        let b: [u8; 16] = bytes.get(at..at + 16)?.try_into().ok()?;
        at += 16;
        authrealm_tokens::uuid::text(&b)
    } else {
        field(sl)?
    };
    let mut field = |n: usize| -> Option<String> {
        let s = std::str::from_utf8(bytes.get(at..at + n)?).ok()?.to_owned();
        at += n;
        Some(s)
    };
    let claims_json = field(ml)?;
    let rest = bytes.get(at..)?;
    if rest.len() % SPENT_LEN != 0 {
        return None;
    }
    let spent = rest
        .chunks_exact(SPENT_LEN)
        .map(|c| {
            let d: Digest = c[..16].try_into().ok()?;
            let e: [u8; 4] = c[16..].try_into().ok()?;
            Some((d, i64::from(u32::from_be_bytes(e))))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Record {
        created,
        exp,
        current: (current != [0; 16]).then_some(current),
        client,
        sub,
        claims_json,
        spent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            created: 1_800_000_000,
            exp: 1_802_592_000,
            current: Some([3; 16]),
            client: "app".into(),
            sub: "0b6f5c5e-8a4e-4c1a-9f7e-2d8a1b0c9e11".into(),
            claims_json: r#"{"email":"ana@example.com"}"#.into(),
            spent: vec![([1; 16], 1_801_000_000), ([2; 16], 1_801_500_000)],
        }
    }

    #[test]
    fn records_read_back_what_was_written() -> Result<()> {
        let r = sample();
        let bytes = encode(&r)?;
        assert_eq!(
            bytes.len(),
            HEADER_LEN + 3 + 16 + 27 + 2 * SPENT_LEN,
            "the layout documented above (the UUID as its 16 bytes)"
        );
        assert_eq!(decode(&bytes), Some(r));
        let none = Record {
            current: None,
            spent: Vec::new(),
            client: String::new(),
            ..sample()
        };
        assert_eq!(decode(&encode(&none)?), Some(none));
        // Any other `sub` is kept as it is, including UUID look-alikes.
        for sub in [
            "alice",
            "0B6F5C5E-8A4E-4C1A-9F7E-2D8A1B0C9E11",
            "0b6f5c5e8a4e4c1a9f7e2d8a1b0c9e11",
            "0b6f5c5e-8a4e-4c1a-9f7e-2d8a1b0c9e1g",
            "0b6f5c5e-8a4e-4c1a-9f7e+2d8a1b0c9e11",
            "ü-not-ascii",
        ] {
            let r = Record {
                sub: sub.into(),
                ..sample()
            };
            assert_eq!(decode(&encode(&r)?), Some(r), "{sub}");
        }
        Ok(())
    }

    #[test]
    fn an_op_session_fits_a_small_allocation() -> Result<()> {
        // What OP's login records: a UUID and the email claim.
        let r = Record {
            client: String::new(),
            spent: Vec::new(),
            ..sample()
        };
        assert!(encode(&r)?.len() <= 80, "{}", encode(&r)?.len());
        Ok(())
    }

    #[test]
    fn out_of_range_values_are_refused_and_garbage_does_not_decode() -> Result<()> {
        assert!(
            encode(&Record {
                exp: i64::from(u32::MAX) + 1,
                ..sample()
            })
            .is_err()
        );
        assert!(
            encode(&Record {
                created: -1,
                ..sample()
            })
            .is_err()
        );
        let bytes = encode(&sample())?;
        for cut in 0..bytes.len() {
            // Every shorter prefix is either not a record or a record with
            // fewer spent tokens (cut at an entry boundary).
            if let Some(r) = decode(&bytes[..cut]) {
                assert!(r.spent.len() < 2);
            }
        }
        assert_eq!(decode(&[0xff; 7]), None);
        Ok(())
    }
}
