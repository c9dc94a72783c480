//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator
//! replicas never reconcile at once. Each attempt reads the Lease and writes
//! it back with its `resourceVersion` (optimistic concurrency): of two
//! replicas racing, the API server accepts one write and answers the other
//! with 409 Conflict. Time is a parameter of every decision.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease name (the Helm chart grants access to `authrealm-operator-leader`).
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub duration: Duration,
}

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease until at least `now + duration`.
    Leading,
    /// Someone else holds a valid lease.
    Following {
        /// The current holder.
        holder: String,
    },
    /// Another replica wrote the lease between our read and write.
    Conflict,
}

/// What to do with a Lease as read at `now` (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Create it: nobody ever held it.
    Create(Lease),
    /// Write it back (renewal or takeover), guarded by its resourceVersion.
    Replace(Lease),
    /// Leave it: another holder's lease is still valid.
    Wait {
        /// The current holder.
        holder: String,
    },
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// Decides what to do with the Lease `current` (absent when `None`) at `now`.
#[must_use]
pub fn decide(current: Option<&Lease>, cfg: &LeaseConfig, now: Timestamp) -> Decision {
    let Some(lease) = current else {
        return Decision::Create(Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(secs(cfg.duration)),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        });
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let mut next = lease.clone();
    let mut new_spec = spec.clone();
    new_spec.renew_time = Some(MicroTime(now));
    new_spec.lease_duration_seconds = Some(secs(cfg.duration));
    if holder == cfg.identity {
        next.spec = Some(new_spec);
        return Decision::Replace(next);
    }
    let valid_for = SignedDuration::from_secs(i64::from(
        spec.lease_duration_seconds.unwrap_or(secs(cfg.duration)),
    ));
    let expired = spec
        .renew_time
        .as_ref()
        .is_none_or(|t| t.0.checked_add(valid_for).is_ok_and(|end| end <= now));
    if holder.is_empty() || expired {
        new_spec.holder_identity = Some(cfg.identity.clone());
        new_spec.acquire_time = Some(MicroTime(now));
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        next.spec = Some(new_spec);
        return Decision::Replace(next);
    }
    Decision::Wait { holder }
}

/// One acquire-or-renew attempt against the API server.
///
/// # Errors
/// API failures other than a lost race (409), which is [`Attempt::Conflict`].
pub async fn try_lead(
    api: &Api<Lease>,
    cfg: &LeaseConfig,
    now: Timestamp,
) -> Result<Attempt, kube::Error> {
    let current = api.get_opt(&cfg.name).await?;
    let written = match decide(current.as_ref(), cfg, now) {
        Decision::Wait { holder } => return Ok(Attempt::Following { holder }),
        Decision::Create(l) => api.create(&PostParams::default(), &l).await,
        Decision::Replace(l) => api.replace(&cfg.name, &PostParams::default(), &l).await,
    };
    match written {
        Ok(_) => Ok(Attempt::Leading),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Conflict),
        Err(e) => Err(e),
    }
}

/// Gives the lease up on shutdown so another replica takes over at once.
///
/// # Errors
/// API failures; a lease held by someone else is left alone.
pub async fn release(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    api.replace(&cfg.name, &PostParams::default(), &lease)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: &str) -> LeaseConfig {
        LeaseConfig {
            name: "authrealm-operator-leader".into(),
            identity: id.into(),
            duration: Duration::from_secs(15),
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn spec_of(d: &Decision) -> Option<LeaseSpec> {
        match d {
            Decision::Create(l) | Decision::Replace(l) => l.spec.clone(),
            Decision::Wait { .. } => None,
        }
    }

    #[test]
    fn a_missing_lease_is_created_held_by_us() {
        let d = decide(None, &cfg("a"), at(100));
        assert!(matches!(d, Decision::Create(_)));
        let s = spec_of(&d).unwrap_or_default();
        assert_eq!(s.holder_identity.as_deref(), Some("a"));
        assert_eq!(s.lease_duration_seconds, Some(15));
    }

    #[test]
    fn a_valid_lease_of_another_replica_is_left_until_it_expires() {
        let Decision::Create(mut lease) = decide(None, &cfg("a"), at(100)) else {
            unreachable!()
        };
        lease.metadata.resource_version = Some("7".into());
        assert_eq!(
            decide(Some(&lease), &cfg("b"), at(114)),
            Decision::Wait { holder: "a".into() }
        );
        // Expired: b takes over, counting a transition, keeping the resourceVersion guard.
        let d = decide(Some(&lease), &cfg("b"), at(115));
        let Decision::Replace(taken) = &d else {
            unreachable!("{d:?}")
        };
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("7"));
        let s = spec_of(&d).unwrap_or_default();
        assert_eq!(s.holder_identity.as_deref(), Some("b"));
        assert_eq!(s.lease_transitions, Some(1));
        assert_eq!(s.acquire_time, Some(MicroTime(at(115))));
        // The holder renews without a transition.
        let d = decide(Some(&lease), &cfg("a"), at(110));
        let s = spec_of(&d).unwrap_or_default();
        assert_eq!(s.renew_time, Some(MicroTime(at(110))));
        assert_eq!(s.lease_transitions, Some(0));
        assert_eq!(s.acquire_time, Some(MicroTime(at(100))));
    }

    #[test]
    fn the_charts_empty_lease_is_taken_at_once() {
        // The chart creates the Lease (so helm uninstall removes it) without a spec.
        let mut lease = Lease::default();
        lease.metadata.name = Some("authrealm-operator-leader".into());
        lease.metadata.resource_version = Some("1".into());
        let d = decide(Some(&lease), &cfg("a"), at(100));
        assert!(matches!(d, Decision::Replace(_)), "{d:?}");
        let s = spec_of(&d).unwrap_or_default();
        assert_eq!(s.holder_identity.as_deref(), Some("a"));
        assert_eq!(s.renew_time, Some(MicroTime(at(100))));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let Decision::Create(mut lease) = decide(None, &cfg("a"), at(100)) else {
            unreachable!()
        };
        if let Some(s) = lease.spec.as_mut() {
            s.holder_identity = None;
        }
        let s = spec_of(&decide(Some(&lease), &cfg("b"), at(101))).unwrap_or_default();
        assert_eq!(s.holder_identity.as_deref(), Some("b"));
    }
}
