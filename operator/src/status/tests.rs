//! Conditions from Deployments, readiness, progress, and transition times.

use super::*;
use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

fn deployment(available: Option<&str>, ready: i32) -> Deployment {
    Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            available_replicas: Some(ready),
            updated_replicas: Some(2),
            conditions: available.map(|s| {
                vec![DeploymentCondition {
                    type_: "Available".into(),
                    status: s.into(),
                    message: Some("Deployment does not have minimum availability.".into()),
                    ..DeploymentCondition::default()
                }]
            }),
            ..DeploymentStatus::default()
        }),
        ..Deployment::default()
    }
}

#[test]
fn deployment_availability_becomes_the_condition() {
    let ok = deployment_verdict(AUTH_SERVICE_READY, Some(&deployment(Some("True"), 2)));
    assert_eq!((ok.ok, ok.reason.as_str()), (Some(true), "Available"));
    assert_eq!(ok.message, "2/2 pods available, 2 updated");
    let down = deployment_verdict(AUTH_SERVICE_READY, Some(&deployment(Some("False"), 0)));
    assert_eq!(
        (down.ok, down.reason.as_str()),
        (Some(false), "Unavailable")
    );
    assert!(down.message.contains("0/2 pods available"));
    let new = deployment_verdict(MAIN_PROJECT_READY, Some(&deployment(None, 0)));
    assert_eq!(new.reason, "Progressing");
    assert_eq!(deployment_verdict(MAIN_PROJECT_READY, None).ok, None);
}

#[test]
fn scaling_up_serves_and_is_progressing_not_an_outage() {
    // 1 → 2 replicas: one pod serves, the second is starting.
    let mut scaling = deployment(Some("True"), 1);
    if let Some(s) = scaling.status.as_mut() {
        s.updated_replicas = Some(1);
    }
    let v = deployment_verdict(AUTH_SERVICE_READY, Some(&scaling));
    assert_eq!((v.ok, v.reason.as_str()), (Some(true), ROLLING_OUT));
    let parts = [
        Verdict::new(KEYS_READY, Some(true), "KeysPublished", "ok"),
        v,
    ];
    assert_eq!(ready_verdict(&parts).ok, Some(true));
    let p = progressing_verdict(&parts);
    assert_eq!((p.ok, p.reason.as_str()), (Some(true), ROLLING_OUT));
    assert!(
        p.message
            .starts_with("AuthServiceReady: 1/2 pods available")
    );
    // Settled: no longer progressing.
    let done = deployment_verdict(AUTH_SERVICE_READY, Some(&deployment(Some("True"), 2)));
    assert_eq!(progressing_verdict(&[done]).ok, Some(false));
    // Available but no pod at all (a Recreate in progress) is not serving.
    let none = deployment_verdict(AUTH_SERVICE_READY, Some(&deployment(Some("True"), 0)));
    assert_eq!(none.ok, Some(false));
}

#[test]
fn ready_names_the_first_part_that_is_not() {
    let parts = [
        Verdict::new(KEYS_READY, Some(true), "KeysPublished", "ok"),
        Verdict::new(
            REDIS_READY,
            Some(false),
            "Unavailable",
            "0/1 pods available",
        ),
        Verdict::new(AUTH_SERVICE_READY, Some(false), "Progressing", "x"),
    ];
    let r = ready_verdict(&parts);
    assert_eq!(r.ok, Some(false));
    assert_eq!(r.reason, "Unavailable");
    assert_eq!(r.message, "RedisReady: 0/1 pods available");
    assert_eq!(ready_verdict(&parts[..1]).ok, Some(true));
}

#[test]
fn transition_times_move_only_when_the_status_does() {
    let first = merge_conditions(
        &[],
        &[Verdict::new(READY, Some(false), "Progressing", "a")],
        "t1",
        Some(1),
    );
    let same = merge_conditions(
        &first,
        &[Verdict::new(READY, Some(false), "Unavailable", "b")],
        "t2",
        Some(2),
    );
    assert_eq!(same[0].last_transition_time, "t1");
    assert_eq!(same[0].reason, "Unavailable");
    let flipped = merge_conditions(
        &same,
        &[Verdict::new(READY, Some(true), "Ready", "c")],
        "t3",
        Some(2),
    );
    assert_eq!(flipped[0].last_transition_time, "t3");
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
}
