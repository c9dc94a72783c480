//! A realm of real processes for the flow tests: the `auth-service` binary
//! with a key set in the operator's format, `main-project` replicas sharing
//! Postgres, and Redis between them (all from the test command's
//! environment).

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use authrealm_flow::Targets;
use authrealm_flow::processes::{Binaries, Part, Service, free_port, fresh_database};
use authrealm_runtime::env;
use authrealm_tokens::keyset::{FILE_NAME, KeyEntry, KeySetFile, KeyState, SigningAlgorithm};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The audience OP requires by default (the realm sets none).
pub const AUDIENCE: &str = "authrealm";

/// A variable of the test command, or a failure that says how to get it.
pub fn require_env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: run the tests with ./scripts/test"))
}

/// MA, the OP replicas, and the key set MA signs with.
pub struct Realm {
    _keys: tempfile::TempDir,
    /// The signing key MA uses (tests sign their own tokens with it).
    pub active_key: KeyEntry,
    pub ma: Service,
    pub ops: Vec<Service>,
}

impl Realm {
    /// The base URLs of the services.
    pub fn targets(&self) -> Targets {
        Targets {
            op: self.ops.iter().map(|s| s.url.clone()).collect(),
            ma: self.ma.url.clone(),
            op_metrics: self.ops.iter().map(|s| s.metrics_url.clone()).collect(),
            ma_metrics: self.ma.metrics_url.clone(),
        }
    }
}

/// What a test adds to the realm's processes.
#[derive(Default)]
pub struct Extras {
    /// More variables for MA.
    pub ma_env: Vec<(&'static str, String)>,
    /// More variables for every OP replica.
    pub op_env: Vec<(&'static str, String)>,
    /// Tell MA the first replica's URL as OP's public URL (the code flow's
    /// authorization, UserInfo and logout endpoints).
    pub op_public_url: bool,
}

/// Starts MA and `replicas` OP processes and waits until they are ready.
pub async fn start_realm(replicas: usize) -> TestResult<Realm> {
    start_realm_with(replicas, Extras::default()).await
}

/// [`start_realm`] with the test's own additions.
pub async fn start_realm_with(replicas: usize, extras: Extras) -> TestResult<Realm> {
    let database = fresh_database(&require_env("DATABASE_URL")?).await?;
    let redis = require_env("REDIS_URL")?;
    let bins = Binaries::build(false)?;
    let prefix = format!("flowtest:{}", authrealm_tokens::random_token(6)?);
    let credential = authrealm_tokens::random_token(32)?;

    // The key set in the format the operator writes into the Secret.
    let keys = tempfile::tempdir()?;
    let now = authrealm_tokens::unix_now();
    let active_key =
        KeyEntry::generate(SigningAlgorithm::EdDSA, "k1".into(), KeyState::Active, now)?;
    let set = KeySetFile::new(vec![
        active_key.clone(),
        KeyEntry::generate(SigningAlgorithm::EdDSA, "k2".into(), KeyState::Next, now)?,
    ]);
    std::fs::write(keys.path().join(FILE_NAME), set.to_json()?)?;

    // OP's ports first: MA may need to know where OP answers.
    let op_ports = (0..replicas)
        .map(|_| free_port())
        .collect::<Result<Vec<_>, _>>()?;
    let ma_port = free_port()?;
    let ma_url = format!("http://127.0.0.1:{ma_port}");
    let ready = Duration::from_secs(60);
    let mut ma_env = vec![
        (env::ISSUER, ma_url.clone()),
        (env::ma::KEYS_DIR, keys.path().display().to_string()),
        (env::SERVICE_CREDENTIAL, credential.clone()),
        (env::REDIS_URL, redis.clone()),
        (env::REDIS_PREFIX, prefix.clone()),
        (env::ma::REFRESH_GRACE, "1s".into()),
    ];
    if let (true, Some(port)) = (extras.op_public_url, op_ports.first()) {
        ma_env.push((env::ma::OP_PUBLIC_URL, format!("http://127.0.0.1:{port}")));
    }
    ma_env.extend(extras.ma_env);
    let ma = Service::start(
        &bins.auth_service,
        Part::AuthService,
        ma_port,
        &ma_env,
        ready,
    )
    .await?;
    let mut op_env = vec![
        (env::op::AUTH_SERVICE_URL, ma.internal_url.clone()),
        (
            env::op::JWKS_URL,
            format!("{ma_url}{}", authrealm_tokens::api::PATH_JWKS),
        ),
        (env::ISSUER, ma_url.clone()),
        (env::SERVICE_CREDENTIAL, credential.clone()),
        (env::op::DATABASE_URL, database.clone()),
        (env::REDIS_URL, redis.clone()),
        (env::REDIS_PREFIX, prefix.clone()),
    ];
    op_env.extend(extras.op_env);
    let mut ops = Vec::new();
    for port in op_ports {
        ops.push(
            Service::start(&bins.main_project, Part::MainProject, port, &op_env, ready).await?,
        );
    }
    Ok(Realm {
        _keys: keys,
        active_key,
        ma,
        ops,
    })
}
