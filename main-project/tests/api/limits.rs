//! Login failure limits under concurrency (shared by replicas through Redis)
//! and the bounded password-hashing pool.

use serde_json::json;

use crate::helpers::{Api, Mode, TestResult, metric_value, op_config, stack_with, start_op};

async fn parallel_wrong_logins_are_limited(mode: Mode) -> TestResult {
    let st = stack_with(mode, |c| {
        c.login_max_failures = 5;
        c.ip_failure_factor = 10;
    })
    .await?;
    let reg = st
        .api
        .register("erin@example.com", "tangerine-oboe-42")
        .await?;
    assert_eq!(reg.status, 201);
    // With Redis the limit is shared: half of the attempts go to a second replica.
    let apis = if mode == Mode::PostgresRedis {
        let mut c = op_config(&st.env, &st.ma);
        c.login_max_failures = 5;
        c.ip_failure_factor = 10;
        let op2 = start_op(c).await?;
        let api2 = Api::new(&op2.base);
        (vec![st.api.clone(), api2], Some(op2))
    } else {
        (vec![st.api.clone()], None)
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let api = apis.0[i % apis.0.len()].clone();
        tasks.push(tokio::spawn(async move {
            api.login("erin@example.com", "wrong-password-000").await
        }));
    }
    let (mut unauthorized, mut limited) = (0, 0);
    for t in tasks {
        let r = t.await??;
        match (r.status, r.code()) {
            (401, "invalid_credentials") => unauthorized += 1,
            (429, "too_many_attempts") => {
                let secs: u64 = r.retry_after.as_deref().ok_or("no Retry-After")?.parse()?;
                assert!((1..=900).contains(&secs), "{secs}");
                limited += 1;
            }
            other => return Err(format!("unexpected answer {other:?}").into()),
        }
    }
    assert_eq!((unauthorized, limited), (5, 15));
    // Locked: even the right password is refused until the window ends.
    let r = st
        .api
        .login("erin@example.com", "tangerine-oboe-42")
        .await?;
    assert_eq!((r.status, r.code()), (429, "too_many_attempts"));
    // Another account from the same address is still fine (the IP limit is 10x here).
    let other = st
        .api
        .register("fred@example.com", "tangerine-oboe-42")
        .await?;
    assert_eq!(other.status, 201);
    assert_eq!(
        st.api
            .login("fred@example.com", "tangerine-oboe-42")
            .await?
            .status,
        200
    );
    let mut lockouts = 0;
    for api in &apis.0 {
        lockouts += metric_value(&api.metrics().await?, "authrealm_op_login_lockouts_total")?;
    }
    assert_eq!(lockouts, 16);
    Ok(())
}

both_modes!(parallel_wrong_logins_are_limited: parallel_wrong_logins_are_limited_postgres_redis, parallel_wrong_logins_are_limited_sqlite_memory);

async fn the_ip_limit_spans_accounts(mode: Mode) -> TestResult {
    let st = stack_with(mode, |c| {
        c.login_max_failures = 3;
        c.ip_failure_factor = 2;
    })
    .await?;
    let mut codes = Vec::new();
    for i in 0..7 {
        let r = st
            .api
            .login(&format!("nobody{i}@example.com"), "wrong-password-000")
            .await?;
        codes.push(r.status);
    }
    assert_eq!(codes, vec![401, 401, 401, 401, 401, 401, 429]);
    Ok(())
}

/// Behind a proxy (`AUTHREALM_TRUST_FORWARDED_FOR`), the client address is the
/// last `X-Forwarded-For` entry, the one the proxy appended: entries the
/// client made up in front of it do not give it a fresh limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn made_up_forwarded_for_entries_do_not_escape_the_ip_limit() -> TestResult {
    let st = stack_with(Mode::SqliteMemory, |c| {
        c.login_max_failures = 3;
        c.ip_failure_factor = 2;
        c.trust_forwarded_for = true;
    })
    .await?;
    // Wrong logins for fresh emails, each with these X-Forwarded-For lines.
    let codes = |lines: fn(usize) -> Vec<String>| {
        let api = st.api.clone();
        async move {
            let mut codes = Vec::new();
            for i in 0..7 {
                let mut r = api.http.post(format!("{}/api/v1/login", api.base));
                for line in lines(i) {
                    r = r.header("x-forwarded-for", line);
                }
                let body = json!({"email": format!("nobody{i}@example.com"), "password": "wrong-password-000"});
                codes.push(r.json(&body).send().await?.status().as_u16());
            }
            TestResult::Ok(codes)
        }
    };
    let locked_on_the_seventh = vec![401, 401, 401, 401, 401, 401, 429];
    // The client's own entries come first on the line the proxy appended to.
    let made_up = codes(|i| vec![format!("10.9.8.{i}, 203.0.113.7")]).await?;
    assert_eq!(made_up, locked_on_the_seventh);
    // Another client behind the same proxy is not affected.
    assert_eq!(codes(|_| vec!["203.0.113.8".to_owned()]).await?[0], 401);
    // A proxy that adds its own header line instead of appending to the
    // client's: the client's made-up line comes first and must not count.
    let two_lines = codes(|i| vec![format!("10.7.7.{i}"), "203.0.113.9".to_owned()]).await?;
    assert_eq!(two_lines, locked_on_the_seventh);
    Ok(())
}

both_modes!(the_ip_limit_spans_accounts: the_ip_limit_spans_accounts_postgres_redis, the_ip_limit_spans_accounts_sqlite_memory);

async fn a_login_burst_gets_503_not_unbounded_queues(mode: Mode) -> TestResult {
    // One hashing slot, no queue: concurrent logins beyond one are refused at once.
    let st = stack_with(mode, |c| {
        c.hash_concurrency = 1;
        c.hash_queue = 0;
        c.login_max_failures = 1000;
        c.argon2_memory_kib = 65_536;
        c.argon2_iterations = 3;
    })
    .await?;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let api = st.api.clone();
        tasks.push(tokio::spawn(async move {
            api.post(
                "/api/v1/register",
                &json!({ "email": format!("burst{i}@example.com"), "password": "tangerine-oboe-42" }),
                None,
            )
            .await
        }));
    }
    let (mut created, mut busy) = (0u64, 0u64);
    for t in tasks {
        let r = t.await??;
        match (r.status, r.code()) {
            (201, _) => created += 1,
            (503, "busy") => {
                assert!(r.retry_after.is_some());
                busy += 1;
            }
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    assert!(created >= 1 && busy >= 1, "created={created} busy={busy}");
    let db = st.env.database()?;
    assert_eq!(
        u64::try_from(db.count_users().await?)?,
        created,
        "a refused registration was stored"
    );
    let m = st.api.metrics().await?;
    assert_eq!(
        metric_value(&m, "authrealm_op_argon2_rejected_total")?,
        busy
    );
    Ok(())
}

both_modes!(a_login_burst_gets_503_not_unbounded_queues: a_login_burst_gets_503_not_unbounded_queues_postgres_redis, a_login_burst_gets_503_not_unbounded_queues_sqlite_memory);
