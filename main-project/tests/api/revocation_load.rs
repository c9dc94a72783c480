//! OP's load of the revocation list from a real Redis: several scan pages
//! of every kind (revoked `jti`s named with their `exp` and as named
//! before), next to keys of the prefix that are no entry MA writes
//! (not UTF-8, another type, an unreadable value). The odd keys are passed
//! over or kept a day; none stops the load, so the view becomes known.

use authrealm_tokens::revocation::RevocationKeys;
use main_project::revocation::Status;

use crate::helpers::{TestResult, canonical_id, claims, follow, random_suffix, require_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_over_many_pages_passes_odd_keys_over() -> TestResult {
    let url = require_env("REDIS_URL")?;
    let client = redis::Client::open(url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys = RevocationKeys::new(&format!("load-{}", random_suffix()?));
    let now = authrealm_tokens::unix_now();
    let until = now + 3600;
    let user = "550e8400-e29b-41d4-a716-446655440000";

    let mut pipe = redis::pipe();
    // As MA writes them now (named with the token's `exp`), and as it wrote
    // them before (the expiry only in the value).
    for n in 0..2_000 {
        pipe.set_ex(keys.jti(&canonical_id(n), now + 300), until, 3600)
            .ignore();
    }
    for n in 2_000..2_500 {
        pipe.set_ex(keys.legacy_jti(&canonical_id(n)), until, 3600)
            .ignore();
    }
    pipe.set_ex(keys.session("another issuer's sid"), until, 3600)
        .ignore()
        .set_ex(keys.not_before(user), now - 10, 3600)
        .ignore()
        // An unreadable value: kept a day rather than dropped.
        .set_ex(keys.legacy_jti("odd-value"), "soon", 3600)
        .ignore()
        // Not UTF-8, another type at an entry's name, another key: passed over.
        .set_ex(
            [keys.legacy_jti("").as_bytes(), &[0xff, 0xfe][..]].concat(),
            until,
            3600,
        )
        .ignore()
        .hset(keys.legacy_jti("a-hash"), "f", "v")
        .ignore()
        // A name whose `exp` is no number.
        .set_ex(
            format!("{}:revoked:jti-exp:soon:a-name", keys.prefix()),
            until,
            3600,
        )
        .ignore()
        .rpush(keys.not_before("a-list"), "1")
        .ignore()
        .set_ex(format!("{}:revoked:other:x", keys.prefix()), until, 3600)
        .ignore();
    pipe.query_async::<()>(&mut conn).await?;

    let f = follow(client, keys).await?;
    let view = &f.view;

    assert_eq!(view.counts(), [2_501, 1, 1]);
    let old = now - 60;
    for n in [0, 999, 1_000, 1_999, 2_000, 2_499] {
        assert_eq!(
            view.check(&claims(&canonical_id(n), "s", "u", old)),
            Status::Revoked
        );
    }
    assert_eq!(
        view.check(&claims(&canonical_id(2_500), "s", "u", old)),
        Status::Valid
    );
    assert_eq!(
        view.check(&claims("odd-value", "s", "u", old)),
        Status::Revoked
    );
    assert_eq!(
        view.check(&claims("j", "another issuer's sid", "u", old)),
        Status::Revoked
    );
    assert_eq!(view.check(&claims("j", "s", user, old)), Status::Revoked);
    assert_eq!(view.check(&claims("j", "s", user, now)), Status::Valid);
    assert_eq!(
        view.check(&claims("a-hash", "s", "a-list", old)),
        Status::Valid
    );
    assert_eq!(view.check(&claims("a-name", "s", "u", old)), Status::Valid);
    Ok(())
}
