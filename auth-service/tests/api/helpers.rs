//! Starts an auth-service on port 0 with a fresh Redis prefix (or the memory
//! store) and a manual clock, and talks to it over real HTTP.

use std::time::Duration;

use auth_service::{Clock, Config};
use authrealm_tokens::api::{self, TokenPair};
use authrealm_tokens::{JwkSet, Verifier, VerifierConfig};
use serde_json::{Value, json};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Which store the service under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

/// The Redis of the test command; a test that needs it fails without it.
pub fn redis_url() -> TestResult<String> {
    std::env::var("REDIS_URL").map_err(|_| {
        "REDIS_URL is not set: run the tests with ./scripts/test (it starts Redis and exports REDIS_URL)"
            .into()
    })
}

pub fn err(msg: impl Into<String>) -> Box<dyn std::error::Error + Send + Sync> {
    msg.into().into()
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub credential: String,
    pub clock: Clock,
    pub config: Config,
    pub redis: Option<redis::Client>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A config for tests: port 0, manual-clock friendly, a random credential
/// and (for Redis) a random key prefix.
pub fn test_config(backend: Backend) -> TestResult<Config> {
    let mut config = Config::local()?;
    config.listen = "127.0.0.1:0".parse()?;
    config.service_credential = Some(authrealm_tokens::ServiceCredential::generate()?);
    if backend == Backend::Redis {
        config.redis_url = Some(redis_url()?.into());
        config.redis_prefix = format!("test-{}", authrealm_tokens::random_token(9)?);
    }
    config.keys_poll_interval = Duration::from_millis(100);
    Ok(config)
}

pub async fn spawn(backend: Backend) -> TestResult<TestApp> {
    spawn_with(
        test_config(backend)?,
        Clock::manual(authrealm_tokens::unix_now()),
    )
    .await
}

pub async fn spawn_with(mut config: Config, clock: Clock) -> TestResult<TestApp> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    config.issuer = format!("http://{addr}");
    let credential = config
        .service_credential
        .as_ref()
        .map(|c| c.expose().to_owned())
        .ok_or_else(|| err("test config has no credential"))?;
    let redis = match &config.redis_url {
        Some(url) => Some(redis::Client::open(url.expose())?),
        None => None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // The server runs until the `TestApp` is dropped.
    drop(tokio::spawn(auth_service::serve_with_clock(
        config.clone(),
        clock.clone(),
        listener,
        async move {
            let _ = rx.await;
        },
    )));
    let app = TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        credential,
        clock,
        config,
        redis,
        shutdown: Some(tx),
    };
    // Ready once it answers.
    for _ in 0..100 {
        if app.get("/healthz").await.is_ok() {
            return Ok(app);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(err("auth-service did not start"))
}

impl TestApp {
    pub async fn get(&self, path: &str) -> TestResult<reqwest::Response> {
        Ok(self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?)
    }

    /// POSTs raw bytes with an optional `Authorization` value.
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        auth: Option<&str>,
    ) -> TestResult<(u16, Value)> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| err(format!("non-JSON answer {text:?}: {e}")))?
        };
        Ok((status, value))
    }

    /// POSTs JSON with the service credential.
    pub async fn post(&self, path: &str, body: &Value) -> TestResult<(u16, Value)> {
        let bearer = format!("Bearer {}", self.credential);
        self.post_raw(path, serde_json::to_vec(body)?, Some(&bearer))
            .await
    }

    pub async fn mint(&self, sub: &str) -> TestResult<TokenPair> {
        let (status, body) = self
            .post(
                api::PATH_MINT,
                &json!({ "sub": sub, "claims": { "email": format!("{sub}@example.test") } }),
            )
            .await?;
        if status != 200 {
            return Err(err(format!("mint answered {status}: {body}")));
        }
        Ok(serde_json::from_value(body)?)
    }

    pub async fn refresh(&self, token: &str) -> TestResult<(u16, Value)> {
        self.post(api::PATH_REFRESH, &json!({ "refresh_token": token }))
            .await
    }

    pub async fn refresh_ok(&self, token: &str) -> TestResult<TokenPair> {
        let (status, body) = self.refresh(token).await?;
        if status != 200 {
            return Err(err(format!("refresh answered {status}: {body}")));
        }
        Ok(serde_json::from_value(body)?)
    }

    pub async fn introspect_active(&self, token: &str) -> TestResult<bool> {
        let (status, body) = self
            .post(api::PATH_INTROSPECT, &json!({ "token": token }))
            .await?;
        if status != 200 {
            return Err(err(format!("introspect answered {status}: {body}")));
        }
        Ok(body["active"] == json!(true))
    }

    pub async fn jwks(&self) -> TestResult<JwkSet> {
        Ok(self.get(api::PATH_JWKS).await?.json().await?)
    }

    pub async fn verifier(&self) -> TestResult<Verifier> {
        let (v, skipped) = Verifier::new(
            &self.jwks().await?,
            VerifierConfig {
                issuer: self.base.clone(),
                audience: self.config.audience.clone(),
                leeway_secs: 0,
            },
        );
        if !skipped.is_empty() {
            return Err(err(format!("unusable keys in JWKS: {skipped:?}")));
        }
        Ok(v)
    }

    /// The value of one metric sample (`name{labels}` exactly as exposed), 0 when absent.
    pub async fn metric(&self, sample: &str) -> TestResult<f64> {
        let text = self.get("/metrics").await?.text().await?;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(sample)
                && let Some(v) = rest.strip_prefix(' ')
            {
                return Ok(v.trim().parse()?);
            }
        }
        Ok(0.0)
    }

    pub async fn redis_conn(&self) -> TestResult<redis::aio::MultiplexedConnection> {
        let client = self
            .redis
            .as_ref()
            .ok_or_else(|| err("this test needs the Redis backend"))?;
        Ok(client.get_multiplexed_async_connection().await?)
    }

    pub fn prefix(&self) -> &str {
        &self.config.redis_prefix
    }
}

/// Asserts an error answer's status and code.
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "unexpected answer {}", got.1);
    assert_eq!(
        got.1["error"]["code"],
        json!(code),
        "unexpected answer {}",
        got.1
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {}",
        got.1
    );
}

/// A verifier's view of the revocations the service publishes: the memory
/// store's feed (`GET /v1/revocations`) or the Redis channel plus a scan of
/// the revocation keys, as OP follows each.
pub struct Follower {
    source: Source,
    buf: Vec<u8>,
}

enum Source {
    Feed(reqwest::Response),
    Redis(redis::aio::PubSub),
}

/// What a revocation names: its kind and id.
pub type Revoked = (authrealm_tokens::revocation::RevocationKind, String);

fn named(e: &authrealm_tokens::revocation::RevocationEvent) -> Revoked {
    (e.kind, e.id.clone())
}

impl TestApp {
    /// Starts following revocations; returns the follower and every
    /// revocation in force when it started.
    pub async fn follow(&self) -> TestResult<(Follower, Vec<Revoked>)> {
        use authrealm_tokens::api::FeedLine;
        use authrealm_tokens::revocation::RevocationKeys;
        match &self.redis {
            None => {
                let resp = self
                    .client
                    .get(format!("{}{}", self.base, api::PATH_REVOCATION_FEED))
                    .header("authorization", format!("Bearer {}", self.credential))
                    .send()
                    .await?;
                if resp.status() != 200 {
                    return Err(err(format!("revocation feed answered {}", resp.status())));
                }
                let mut f = Follower {
                    source: Source::Feed(resp),
                    buf: Vec::new(),
                };
                let mut snapshot = Vec::new();
                loop {
                    match f.next_line().await? {
                        FeedLine::Revocation(e) => snapshot.push(named(&e)),
                        FeedLine::Synced => return Ok((f, snapshot)),
                        FeedLine::Ping => {}
                    }
                }
            }
            Some(client) => {
                let keys = RevocationKeys::new(self.prefix());
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(keys.channel()).await?;
                let mut conn = self.redis_conn().await?;
                let mut snapshot = Vec::new();
                for pattern in [
                    keys.jti_pattern(),
                    keys.session_pattern(),
                    keys.not_before_pattern(),
                ] {
                    let found: Vec<String> = redis::cmd("KEYS")
                        .arg(&pattern)
                        .query_async(&mut conn)
                        .await?;
                    for k in found {
                        let (kind, id) = keys
                            .classify(&k)
                            .ok_or_else(|| err(format!("{k} is no revocation entry")))?;
                        snapshot.push((kind, id.to_owned()));
                    }
                }
                Ok((
                    Follower {
                        source: Source::Redis(pubsub),
                        buf: Vec::new(),
                    },
                    snapshot,
                ))
            }
        }
    }
}

impl Follower {
    async fn next_line(&mut self) -> TestResult<authrealm_tokens::api::FeedLine> {
        let Source::Feed(resp) = &mut self.source else {
            return Err(err("not a feed follower"));
        };
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Ok(serde_json::from_slice(&line)?);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
                .await
                .map_err(|_| err("no line from the revocation feed in 30 s"))??
                .ok_or_else(|| err("the revocation feed ended"))?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next revocation published (pings skipped).
    pub async fn next(&mut self) -> TestResult<Revoked> {
        use authrealm_tokens::api::FeedLine;
        use futures::StreamExt as _;
        if let Source::Redis(pubsub) = &mut self.source {
            let msg = tokio::time::timeout(Duration::from_secs(30), pubsub.on_message().next())
                .await
                .map_err(|_| err("no revocation published in 30 s"))?
                .ok_or_else(|| err("subscription closed"))?;
            let e: authrealm_tokens::revocation::RevocationEvent =
                serde_json::from_slice(msg.get_payload_bytes())?;
            return Ok(named(&e));
        }
        loop {
            match self.next_line().await? {
                FeedLine::Revocation(e) => return Ok(named(&e)),
                FeedLine::Ping => {}
                FeedLine::Synced => return Err(err("a second `synced` on one feed")),
            }
        }
    }
}

/// Instantiates each named test (an `async fn(Backend)` in scope) once
/// per store.
#[macro_export]
macro_rules! both_stores_in {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> $crate::helpers::TestResult {
                    super::$name($crate::helpers::Backend::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> $crate::helpers::TestResult {
                    super::$name($crate::helpers::Backend::Redis).await
                }
            )*
        }
    };
}
