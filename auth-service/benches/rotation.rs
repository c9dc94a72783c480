//! Micro-benchmark of refresh rotation: one atomic rotation per iteration,
//! against Redis (`REDIS_URL`, as `./scripts/bench` sets it) and in memory.

use auth_service::opaque::{Presented, new_refresh};
use auth_service::store::memory::MemoryStore;
use auth_service::store::redis::RedisStore;
use auth_service::store::{NewSession, RotateOutcome, Rotation, Store, Successor};
use criterion::{Criterion, criterion_group, criterion_main};

fn token() -> String {
    authrealm_tokens::random_token(32).unwrap_or_default()
}

/// The benchmark's one session.
const SID: &str = "YmVuY2gtc2Vzc2lvbi0wMQ";

fn refresh() -> (String, [u8; 16]) {
    new_refresh(SID).unwrap_or_default()
}

/// A session whose refresh chain the benchmark walks.
struct Chain {
    current: String,
}

async fn start(store: &Store, now: i64) -> Chain {
    let (first, digest) = refresh();
    let session = NewSession {
        sid: SID,
        sub: "bench-user",
        claims_json: "{}",
        client: "",
        refresh_digest: Some(digest),
        refresh_exp: now + 3600,
        now,
    };
    let _ = store.create_session(&session).await;
    Chain { current: first }
}

async fn step(store: &Store, chain: &mut Chain, now: i64) -> bool {
    let (next, new_digest) = refresh();
    let successor = Successor {
        refresh_token: next.clone(),
        jti: "bench-jti".into(),
        iat: now,
        exp: now + 300,
        kid: "k".into(),
        refresh_exp: now + 3600,
        scope: None,
    };
    let Ok(successor_json) = serde_json::to_string(&successor) else {
        return false;
    };
    let Some(presented) = Presented::parse(&chain.current) else {
        return false;
    };
    let rotation = Rotation {
        sid: SID,
        presented: &presented,
        client: "",
        new_digest,
        successor_json: &successor_json,
        refresh_exp: now + 3600,
        now,
        grace_secs: 10,
        revoke_ttl: 360,
    };
    let rotated = matches!(store.rotate(&rotation).await, Ok(RotateOutcome::Rotated(_)));
    chain.current = next;
    rotated
}

fn rotation(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let now = authrealm_tokens::unix_now();
    let mut stores = vec![("memory", Store::Memory(MemoryStore::new()))];
    match std::env::var("REDIS_URL") {
        Ok(url) => {
            match rt.block_on(async { RedisStore::connect(&url, &format!("bench:{}", token())) }) {
                Ok(r) => stores.push(("redis", Store::Redis(r))),
                Err(e) => eprintln!("rotation/redis skipped: cannot connect: {e}"),
            }
        }
        Err(_) => eprintln!("rotation/redis skipped: REDIS_URL is not set (run ./scripts/bench)"),
    }
    for (name, store) in &stores {
        let mut chain = rt.block_on(start(store, now));
        c.bench_function(&format!("rotation/{name}"), |b| {
            b.iter(|| rt.block_on(step(store, &mut chain, now)))
        });
    }
}

criterion_group!(benches, rotation);
criterion_main!(benches);
