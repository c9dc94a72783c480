//! One page of a reload from Redis: the keys a SCAN found, what each
//! key's name says (kind, id, and for a revoked `jti` its token's `exp`),
//! the values read for the others (MGET, or GET + PTTL for not-before
//! entries), and the page merged into the view. Odd keys and values — not
//! UTF-8, another type, an unreadable time — are passed over or kept a
//! day, never a failure of the page.

use authrealm_tokens::revocation::{RevocationKeys, RevocationKind};
use redis::aio::MultiplexedConnection;

use super::table::Id;
use super::{Entry, RevocationView};

/// Keys asked for in one SCAN round trip (and values in one MGET). Small
/// enough that Redis still has a page's keys in its caches when their
/// values are asked for (a page of 10 000 cost Redis about 15 % more CPU
/// for the same keys), and that neither command holds Redis up for long.
const SCAN_PAGE: usize = 1_000;
/// How long a scanned entry without a readable expiry is kept.
const UNKNOWN_LIFE_SECS: i64 = 86_400;

/// One SCAN page: the next cursor (0 at the end) and the keys found, as
/// bytes (a key is not necessarily UTF-8).
pub(super) async fn scan_page(
    conn: &mut MultiplexedConnection,
    pattern: &str,
    cursor: u64,
) -> redis::RedisResult<(u64, Vec<Vec<u8>>)> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_PAGE)
        .query_async(conn)
        .await
}

/// A key a scan found, sorted by how its value is read.
struct Found {
    /// The key as Redis holds it.
    key: Vec<u8>,
    kind: RevocationKind,
    id: Id,
    /// For a revoked `jti` named with it: the token's `exp` (no value to read).
    exp: Option<i64>,
}

/// The key's kind and id decoded, or `None` for a key that is no
/// revocation entry (another key the pattern matches, or not UTF-8: MA
/// writes none such).
fn classify(keys: &RevocationKeys, key: Vec<u8>) -> Option<Found> {
    let text = std::str::from_utf8(&key).ok()?;
    let named = keys.read_key(text)?;
    let (kind, exp) = (named.kind, named.exp);
    let id = Id::parse(named.id);
    Some(Found { key, kind, id, exp })
}

/// A Unix time as MA writes it (decimal seconds), if it is one.
fn unix_secs(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The entry of a `jti` / `sid` key whose value is `value`: the time after
/// which it may be forgotten (a day from `now` if the value is unreadable).
fn expiring_entry(found: Found, value: &[u8], now: i64) -> Entry {
    let expires = unix_secs(value).unwrap_or(now + UNKNOWN_LIFE_SECS);
    Entry {
        kind: found.kind,
        id: found.id,
        at: expires,
        expires,
    }
}

/// The entry of a revoked `jti` named with its token's `exp`: kept as long
/// as this OP would still accept the token.
fn named_entry(found: Found, exp: i64, leeway: i64) -> Entry {
    let expires = exp.saturating_add(leeway.max(0));
    Entry {
        kind: found.kind,
        id: found.id,
        at: expires,
        expires,
    }
}

/// The entry of a not-before key: its value is the time itself, its TTL
/// (`pttl` milliseconds, negative without one) says when it goes.
fn not_before_entry(found: Found, value: &[u8], pttl: i64, now: i64) -> Entry {
    let expires = if pttl > 0 {
        now.saturating_add(pttl / 1000 + 1)
    } else {
        now + UNKNOWN_LIFE_SECS
    };
    Entry {
        kind: RevocationKind::User,
        id: found.id,
        at: unix_secs(value).unwrap_or(now),
        expires,
    }
}

/// Reads the values of one SCAN page and merges them into `view`; returns
/// how many entries were new to it. Keys that are no revocation entry are passed
/// over, and so are keys that expired meanwhile. A revoked `jti` named with
/// its token's `exp` needs no read: it is kept until `exp` plus `leeway`.
/// Otherwise MA writes each `jti` / `sid` entry with its forget-after time
/// as the value; a not-before entry's value is the time itself and its TTL
/// says when it goes.
pub(super) async fn read_page(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
    view: &RevocationView,
    page: Vec<Vec<u8>>,
    now: i64,
    leeway: i64,
) -> redis::RedisResult<usize> {
    let (mut expiring, mut users) = (Vec::new(), Vec::new());
    let mut named = Vec::with_capacity(page.len());
    for found in page.into_iter().filter_map(|key| classify(keys, key)) {
        if let Some(exp) = found.exp {
            named.push(named_entry(found, exp, leeway));
        } else if found.kind == RevocationKind::User {
            users.push(found);
        } else {
            expiring.push(found);
        }
    }
    let mut entries = named;
    entries.reserve(expiring.len() + users.len());
    if !expiring.is_empty() {
        let mut mget = redis::cmd("MGET");
        for found in &expiring {
            mget.arg(found.key.as_slice());
        }
        let values: Vec<Option<Vec<u8>>> = mget.query_async(conn).await?;
        entries.extend(
            expiring
                .into_iter()
                .zip(values)
                .filter_map(|(found, value)| Some(expiring_entry(found, &value?, now))),
        );
    }
    if !users.is_empty() {
        let mut pipe = redis::pipe();
        for found in &users {
            pipe.get(found.key.as_slice()).pttl(found.key.as_slice());
        }
        // One key of another type (WRONGTYPE) is passed over, not the page.
        let replies: Vec<redis::RedisResult<redis::Value>> =
            pipe.ignore_errors().query_async(conn).await?;
        let mut replies = replies.into_iter();
        for found in users {
            let (Some(value), Some(pttl)) = (replies.next(), replies.next()) else {
                break;
            };
            let Ok(redis::Value::BulkString(value)) = value else {
                continue; // expired meanwhile, or not MA's
            };
            let pttl = match pttl {
                Ok(redis::Value::Int(ms)) => ms,
                _ => -1,
            };
            entries.push(not_before_entry(found, &value, pttl, now));
        }
    }
    Ok(view.merge_entries(entries))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn found(keys: &RevocationKeys, key: &[u8]) -> Option<Found> {
        classify(keys, key.to_vec())
    }

    #[test]
    fn keys_are_sorted_by_kind_with_their_ids_decoded() {
        let k = RevocationKeys::new("realm");
        let jti = "AAAAAAAAAAAAAAAAAAAAAQ";
        let f = found(&k, k.legacy_jti(jti).as_bytes());
        assert!(
            matches!(&f, Some(Found { kind: RevocationKind::Jti, id: Id::Base64(_), key, exp: None }) if key == k.legacy_jti(jti).as_bytes()),
            "{:?}",
            f.map(|f| (f.kind, f.id))
        );
        // Named with its token's `exp`: nothing to read, kept `leeway` past it.
        let f = found(&k, k.jti(jti, NOW + 300).as_bytes());
        assert!(matches!(
            &f,
            Some(Found { kind: RevocationKind::Jti, id: Id::Base64(_), exp: Some(e), .. }) if *e == NOW + 300
        ));
        let e = f.map(|f| named_entry(f, NOW + 300, 60));
        assert_eq!(e.map(|e| (e.at, e.expires)), Some((NOW + 360, NOW + 360)));
        let user = "550e8400-e29b-41d4-a716-446655440000";
        let f = found(&k, k.not_before(user).as_bytes()).map(|f| (f.kind, f.id));
        assert!(matches!(f, Some((RevocationKind::User, Id::Uuid(_)))));
        // Another issuer's id shape, an empty id: kept as text.
        for id in ["some other id", "", "ü/ß\u{0}"] {
            let f = found(&k, k.session(id).as_bytes()).map(|f| (f.kind, f.id));
            assert_eq!(f, Some((RevocationKind::Session, Id::Text(id.into()))));
        }
    }

    #[test]
    fn keys_that_are_no_entry_are_passed_over() {
        let k = RevocationKeys::new("realm");
        let mut not_utf8 = k.legacy_jti("").into_bytes();
        not_utf8.extend_from_slice(&[0xff, 0xfe, b'x']);
        for key in [
            not_utf8.as_slice(),
            k.generation().as_bytes(),
            b"realm:revoked:other:x",
            b"realm:revoked:jti",
            b"realm:notbeforex",
            b"other:revoked:jti:AAAAAAAAAAAAAAAAAAAAAQ",
            b"realm",
            b"",
            &[0xff; 64],
        ] {
            assert!(found(&k, key).is_none(), "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn values_are_read_as_ma_writes_them_and_odd_ones_get_a_day() {
        assert_eq!(unix_secs(b"1800000300"), Some(1_800_000_300));
        assert_eq!(unix_secs(b"-5"), Some(-5));
        for odd in [
            &b""[..],
            b" 1800000300",
            b"1800000300\n",
            b"18e8",
            b"99999999999999999999",
            b"\xff\xfe",
            b"null",
        ] {
            assert_eq!(unix_secs(odd), None, "{}", String::from_utf8_lossy(odd));
        }
        let k = RevocationKeys::new("realm");
        let entry = |value: &[u8]| {
            found(&k, k.legacy_jti("j").as_bytes()).map(|f| expiring_entry(f, value, NOW))
        };
        assert_eq!(
            entry(b"1800000300").map(|e| (e.at, e.expires)),
            Some((1_800_000_300, 1_800_000_300))
        );
        let day = NOW + UNKNOWN_LIFE_SECS;
        assert_eq!(entry(b"soon").map(|e| (e.at, e.expires)), Some((day, day)));
    }

    #[test]
    fn a_not_before_entry_lives_as_long_as_its_ttl() {
        let k = RevocationKeys::new("realm");
        let entry = |value: &[u8], pttl: i64| {
            found(&k, k.not_before("u").as_bytes())
                .map(|f| not_before_entry(f, value, pttl, NOW))
                .map(|e| (e.kind, e.at, e.expires))
        };
        let user = RevocationKind::User;
        assert_eq!(
            entry(b"1799999000", 1_500),
            Some((user, 1_799_999_000, NOW + 2))
        );
        // No TTL (-1), gone meanwhile (-2): kept a day.
        let day = NOW + UNKNOWN_LIFE_SECS;
        assert_eq!(entry(b"1799999000", -1), Some((user, 1_799_999_000, day)));
        assert_eq!(entry(b"1799999000", -2), Some((user, 1_799_999_000, day)));
        // An unreadable time revokes what is older than now; the largest TTL fits.
        assert_eq!(
            entry(b"x", i64::MAX),
            Some((user, NOW, NOW + i64::MAX / 1000 + 1))
        );
    }

    proptest! {
        #[test]
        fn no_key_or_value_makes_a_page_panic(
            key in proptest::collection::vec(any::<u8>(), 0..80),
            tail in ".{0,40}",
            value in proptest::collection::vec(any::<u8>(), 0..24),
            pttl in any::<i64>(),
        ) {
            let k = RevocationKeys::new("p");
            let made = |name: &str| [name.as_bytes(), tail.as_bytes()].concat();
            for key in [
                key,
                made("p:revoked:jti:"),
                made("p:revoked:jti-exp:"),
                k.not_before(&tail).into_bytes(),
            ] {
                if let Some(f) = classify(&k, key) {
                    let kind = f.kind;
                    let e = match f.exp {
                        Some(exp) => named_entry(f, exp, pttl),
                        None if kind == RevocationKind::User => {
                            not_before_entry(f, &value, pttl, NOW)
                        }
                        None => expiring_entry(f, &value, NOW),
                    };
                    prop_assert_eq!(e.kind, kind);
                }
            }
        }
    }
}
