//! The reconciler as its pipeline: validate → dereference → build (pure) →
//! apply → status, then events. Also the error policy (backoff per realm).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{info, instrument, warn};

use crate::children::{self, Inputs};
use crate::context::Context;
use crate::crd::AuthRealm;
use crate::dereference::dereference;
use crate::error::Error;
use crate::events::{self, Kind, Note};
use crate::metrics::result;
use crate::status::{self, Outcome};
use crate::validate::validate;
use crate::{apply, rotation, upgrade};

pub use crate::apply::FIELD_MANAGER;
pub use crate::status::{BLOCKED_REQUEUE, MAX_REQUEUE};

fn realm_key(realm: &AuthRealm) -> String {
    format!(
        "{}/{}",
        realm.namespace().unwrap_or_default(),
        realm.name_any()
    )
}

/// Reconciles one realm. Errors are retried by [`error_policy`].
///
/// # Errors
/// API failures and key-generation failures. A bad spec or a missing Secret is
/// not an error: it is reported in status and waits for a change.
#[instrument(skip_all, fields(realm = %realm_key(&realm)))]
pub async fn reconcile(realm: Arc<AuthRealm>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let outcome = pipeline(&realm, &ctx).await;
    let label = outcome.as_ref().map_or(result::ERROR, |(label, _)| label);
    ctx.metrics.observe(label, started.elapsed().as_secs_f64());
    if outcome.is_ok()
        && let Ok(mut f) = ctx.failures.lock()
    {
        f.remove(&realm_key(&realm));
    }
    outcome.map(|(_, action)| action)
}

/// The five steps; returns the metrics label and when to come back.
async fn pipeline(realm: &AuthRealm, ctx: &Context) -> Result<(&'static str, Action), Error> {
    realm.namespace().ok_or(Error::NoNamespace)?;
    let now = ctx.now();
    let outcome = match validate(realm, &ctx.defaults) {
        Err(invalid) => Outcome::Blocked(invalid.into()),
        Ok(mut valid) => match dereference(ctx, &valid).await? {
            Err(blocked) => Outcome::Blocked(blocked),
            Ok(found) => {
                let images = realm.status.as_ref().and_then(|s| s.images.as_ref());
                let standing = upgrade::plan(&mut valid, images, &ctx.rollouts, now);
                let keys = rotation::plan(&valid, &found, now)?;
                let built = children::build(
                    &valid,
                    Inputs {
                        keyset_json: &keys.keyset_json,
                        rotate_handled: keys.handled.as_deref(),
                        credential: &found.credential,
                        session_cookie_key: &found.session_cookie_key,
                        redis_password: found.redis_password.as_deref(),
                        database_checksum: &found.database_checksum,
                        redis_checksum: &found.redis_checksum,
                    },
                );
                let deployments = apply::children(ctx, &valid.namespace, &built).await?;
                let standing = upgrade::observe(&valid, &standing, &deployments, &ctx.rollouts);
                Outcome::applied(&valid, keys.step, keys.propagation, deployments, standing)
            }
        },
    };
    let new_status = status::build(realm, &outcome, now);
    if realm.status.as_ref() != Some(&new_status) {
        if let Outcome::Blocked(b) = &outcome {
            warn!(reason = b.reason, message = %b.message, "realm blocked");
        }
        apply::status(ctx, realm, &new_status).await?;
    }
    for note in events::notes(realm.status.as_ref(), &new_status, &outcome) {
        ctx.events.publish(realm, &note, now).await;
    }
    if let Outcome::Applied(a) = &outcome
        && !a.keys.events.is_empty()
    {
        info!(events = ?a.keys.events, "signing keys changed");
    }
    Ok((outcome.result(), outcome.requeue(now)))
}

/// Requeues a failed realm with exponential backoff (5 s doubling to 5 min),
/// independently of every other realm, and says why in a Warning event.
pub fn error_policy(realm: Arc<AuthRealm>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = realm_key(&realm);
    let delay = ctx.failed(&key);
    warn!(realm = %key, error = %error, retry_in = ?delay, "reconcile failed");
    let note = Note::new(Kind::Warning, "ReconcileFailed", error.to_string());
    tokio::spawn(async move {
        let now = ctx.now();
        ctx.events.publish(&realm, &note, now).await;
    });
    Action::requeue(delay)
}

/// Delay after the `n`th consecutive failure.
#[must_use]
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(10));
    Duration::from_secs(secs.min(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
