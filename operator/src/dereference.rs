//! The dereference step: what the cluster holds that the build needs — the
//! values of the Secrets the realm names (as checksums), the current key
//! set, and the generated-once credential and Redis password (existing, or
//! new when absent). What is missing or unusable comes back as a
//! [`Blocked`] value; the operator never invents a value for a Secret the
//! user named, and never overwrites one it generated.

use authrealm_tokens::ServiceCredential;
use authrealm_tokens::keyset::{FILE_NAME, KeySetFile};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use crate::children::{
    CREDENTIAL_KEY, Names, REDIS_PASSWORD_KEY, ROTATE_HANDLED_ANNOTATION, SESSION_COOKIE_KEY_KEY,
    sha256_hex,
};
use crate::context::Context;
use crate::crd::SecretKeyRef;
use crate::error::Error;
use crate::propagation::{self, Observed};
use crate::status::{self, Blocked};
use crate::validate::ValidRealm;

/// Shortest session-cookie key OP accepts.
const SESSION_COOKIE_KEY_MIN: usize = 32;

/// What the cluster holds for a realm.
#[derive(Debug, Clone)]
pub struct Found {
    /// SHA-256 of the referenced Postgres URL (empty without one).
    pub database_checksum: String,
    /// SHA-256 of the referenced external Redis URL (empty without one).
    pub redis_checksum: String,
    /// The current key set and its exact bytes, when the Secret exists.
    pub keys: Option<(KeySetFile, Vec<u8>)>,
    /// The rotate-keys annotation value already served, if any.
    pub rotate_handled: Option<String>,
    /// The service credential (existing, or generated now).
    pub credential: String,
    /// OP's session-cookie key (existing, or generated now).
    pub session_cookie_key: String,
    /// The managed Redis password (existing, or generated now); `None` with external Redis.
    pub redis_password: Option<String>,
    /// Which keys the auth-service replicas serve.
    pub observed: Observed,
}

/// Reads what `realm` needs from the cluster, in a fixed order: the
/// referenced Secrets, the key Secret, the credential, the Redis password.
///
/// # Errors
/// API failures and a failing random source; a missing or unusable Secret is
/// `Ok(Err(Blocked))`.
pub async fn dereference(
    ctx: &Context,
    realm: &ValidRealm,
) -> Result<Result<Found, Blocked>, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &realm.namespace);
    let names = Names::new(&realm.name);
    let blocked = |reason, message, part| {
        Ok(Err(Blocked {
            reason,
            message,
            part,
        }))
    };

    let mut sums = [String::new(), String::new()];
    for (field, r, part) in realm.referenced_secrets() {
        match referenced_value(&secrets, r).await? {
            Ok(v) => {
                let slot = usize::from(field == "spec.redis.external");
                sums[slot] = sha256_hex(&[&v]);
            }
            Err((reason, message)) => {
                return blocked(reason, format!("{message} ({field})"), Some(part));
            }
        }
    }
    let [database_checksum, redis_checksum] = sums;

    let key_secret = secrets.get_opt(&names.keys()).await?;
    let rotate_handled = key_secret
        .as_ref()
        .and_then(|s| s.annotations().get(ROTATE_HANDLED_ANNOTATION).cloned());
    let keys = match key_secret.as_ref().map(|s| data(s, FILE_NAME)) {
        None => None,
        Some(Some(bytes)) => match KeySetFile::parse(&bytes) {
            Ok(file) => Some((file, bytes)),
            Err(e) => {
                let message = format!(
                    "Secret {} holds an invalid key set ({e}); the operator never overwrites it: fix it or delete it to start a new key set",
                    names.keys()
                );
                return blocked("KeySetInvalid", message, Some(status::KEYS_READY));
            }
        },
        Some(None) => {
            let message = format!(
                "Secret {} has no {FILE_NAME}: delete it to start a new key set",
                names.keys()
            );
            return blocked("KeySetInvalid", message, Some(status::KEYS_READY));
        }
    };

    // One read of the credential Secret for both of its keys.
    let credential_secret = secrets.get_opt(&names.credential()).await?;
    let credential = match value_of(credential_secret.as_ref(), CREDENTIAL_KEY) {
        Some(v) if ServiceCredential::new(&v).is_ok() => v,
        Some(_) => {
            let message = format!(
                "Secret {} has no usable {CREDENTIAL_KEY} (16 characters at least); the operator never replaces it: delete it to generate a new one",
                names.credential()
            );
            return blocked("SecretInvalid", message, None);
        }
        None => ServiceCredential::generate()
            .map_err(|_| Error::Random)?
            .expose()
            .to_owned(),
    };
    // OP's browser-session key lives beside the credential. A Secret written
    // before OP had browser sessions has none: one is generated (nothing
    // signed with it exists yet). A value too short to be a key is replaced
    // the same way: it only ends browser sessions, never API sessions.
    let session_cookie_key = match value_of(credential_secret.as_ref(), SESSION_COOKIE_KEY_KEY) {
        Some(v) if v.len() >= SESSION_COOKIE_KEY_MIN => v,
        _ => authrealm_tokens::random_token(32).map_err(|_| Error::Random)?,
    };
    let redis_password = if realm.managed_redis() {
        match generated_value(&secrets, &names.redis_secret(), REDIS_PASSWORD_KEY).await? {
            Some(v) if !v.is_empty() => Some(v),
            Some(_) => {
                let message = format!(
                    "Secret {} has no {REDIS_PASSWORD_KEY}; delete it to generate a new one",
                    names.redis_secret()
                );
                return blocked("SecretInvalid", message, Some(status::REDIS_READY));
            }
            None => Some(authrealm_tokens::random_token(32).map_err(|_| Error::Random)?),
        }
    } else {
        None
    };

    let observed = propagation::observe(ctx, realm).await?;
    Ok(Ok(Found {
        observed,
        database_checksum,
        redis_checksum,
        keys,
        rotate_handled,
        credential,
        session_cookie_key,
        redis_password,
    }))
}

fn data(s: &Secret, key: &str) -> Option<Vec<u8>> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
}

/// The value of a referenced Secret key, or why it is not there.
async fn referenced_value(
    secrets: &Api<Secret>,
    r: &SecretKeyRef,
) -> Result<Result<Vec<u8>, (&'static str, String)>, Error> {
    let Some(s) = secrets.get_opt(&r.name).await? else {
        return Ok(Err((
            "SecretNotFound",
            format!("Secret {:?} was not found", r.name),
        )));
    };
    let value = data(&s, &r.key).or_else(|| {
        s.string_data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|v| v.clone().into_bytes())
    });
    Ok(match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err((
            "SecretKeyNotFound",
            format!("Secret {:?} has no key {:?}", r.name, r.key),
        )),
    })
}

/// The value of a generated Secret's key: `None` when the Secret is absent,
/// empty when it exists without the key.
async fn generated_value(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    Ok(value_of(secrets.get_opt(name).await?.as_ref(), key))
}

/// `key` of a Secret that exists (empty when it lacks the key); `None`
/// when there is no Secret.
fn value_of(secret: Option<&Secret>, key: &str) -> Option<String> {
    secret.map(|s| {
        data(s, key)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    })
}
