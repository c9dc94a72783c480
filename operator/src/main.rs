//! `authrealm-operator`: serves `/metrics` and `/healthz`, waits to lead
//! through the Lease, then reconciles every `AuthRealm` in the cluster until
//! SIGTERM (releasing the Lease) or until it loses the Lease (exit 1, so the
//! pod restarts as a follower and two replicas never reconcile at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use operator::Context;
use operator::children::Names;
use operator::clients::{REALM_LABEL, REALM_NAMESPACE_LABEL, realm_of};
use operator::crd::{AuthClient, AuthRealm};
use operator::events::Publisher;
use operator::leader::{self, Attempt, LeaseConfig};
use operator::metrics::Metrics;
use operator::reconcile::{self, FIELD_MANAGER};
use operator::server::{AppState, app};
use operator::validate::Defaults;
use tracing::{error, info, warn};

/// Command-line flags; each also reads an environment variable.
#[derive(Parser, Debug, Clone)]
#[command(name = "authrealm-operator", version, about)]
struct Config {
    /// Address of the `/metrics` and `/healthz` server.
    #[arg(
        long,
        env = "AUTHREALM_OPERATOR_LISTEN",
        default_value = "0.0.0.0:8082"
    )]
    listen: SocketAddr,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "AUTHREALM_LEASE_NAME",
        default_value = "authrealm-operator-leader"
    )]
    lease_name: String,
    /// Namespace of the Lease (the operator's own; the chart sets it from the pod).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// This replica's identity in the Lease (the chart sets the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How long a Lease holds without renewal, e.g. `15s`; renewed every third of it.
    #[arg(long, env = "AUTHREALM_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// Run without leader election (a single replica, or local development).
    #[arg(long, env = "AUTHREALM_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Log format: `text` or `json`.
    #[arg(long, env = authrealm_runtime::env::LOG_FORMAT, value_enum, default_value = "json")]
    log_format: authrealm_runtime::LogFormat,
    /// The auth-service image of realms that do not pin one (the chart sets
    /// the version it ships).
    #[arg(long, env = "AUTHREALM_AUTH_SERVICE_IMAGE", default_value = operator::crd::DEFAULT_AUTH_SERVICE_IMAGE, value_parser = parse_image)]
    auth_service_image: String,
    /// The main-project image of realms that do not pin one.
    #[arg(long, env = "AUTHREALM_MAIN_PROJECT_IMAGE", default_value = operator::crd::DEFAULT_MAIN_PROJECT_IMAGE, value_parser = parse_image)]
    main_project_image: String,
    /// Apply the AuthRealm CRD this operator was built with when it starts
    /// leading (so an upgrade brings its CRD); `false` when the CRD is managed elsewhere.
    #[arg(long, env = "AUTHREALM_MANAGE_CRD", default_value_t = true, action = clap::ArgAction::Set)]
    manage_crd: bool,
    /// Watch only these namespaces (comma-separated); empty = every namespace.
    /// With a list, the operator needs Roles in those namespaces only.
    #[arg(long, env = "AUTHREALM_WATCH_NAMESPACES", value_delimiter = ',', value_parser = parse_namespace)]
    watch_namespaces: Vec<String>,
}

fn parse_image(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(format!(
            "{s:?} is not an image reference such as authrealm/auth-service:0.1.0"
        ));
    }
    Ok(s.to_owned())
}

fn parse_namespace(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a namespace name (lowercase letters, digits and '-')"
        ))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = authrealm_runtime::options::duration(s)?;
    if d < Duration::from_secs(3) {
        return Err(format!("{s:?} is too short: use at least 3s"));
    }
    Ok(d)
}

/// Realms a Secret concerns: the ones naming it in their spec, and the one
/// whose generated Secret it is.
fn realms_for_secret(
    realms: &Store<AuthRealm>,
    s: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<AuthRealm>> {
    let ns = s.namespace();
    let name = s.name_any();
    realms
        .state()
        .into_iter()
        .filter(|r| r.namespace() == ns)
        .filter(|r| {
            let names = Names::new(&r.name_any());
            let spec = &r.spec;
            spec.database
                .postgres
                .as_ref()
                .is_some_and(|p| p.name == name)
                || spec.redis.external.as_ref().is_some_and(|e| e.name == name)
                || [names.keys(), names.credential(), names.redis_secret()].contains(&name)
        })
        .map(|r| ObjectRef::from_obj(&*r))
        .collect()
}

/// The controller of realms in `namespace` (every namespace when `None`),
/// with the Deployments it owns and the Secrets realms name, and its cache.
fn controller(
    client: &Client,
    namespace: Option<&str>,
) -> (Controller<AuthRealm>, Store<AuthRealm>) {
    let controller = Controller::new(
        namespaced_or_all::<AuthRealm>(client, namespace),
        watcher::Config::default().any_semantic(),
    );
    let store = controller.store();
    let secret_store = store.clone();
    let controller = controller
        .owns(
            namespaced_or_all::<Deployment>(client, namespace),
            watcher::Config::default().labels("app.kubernetes.io/managed-by=authrealm-operator"),
        )
        .watches(
            namespaced_or_all::<PartialObjectMeta<Secret>>(client, namespace),
            watcher::Config::default(),
            move |s| realms_for_secret(&secret_store, &s),
        );
    (controller, store)
}

fn namespaced_or_all<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The clients controller of realms in `namespace`: it runs the clients
/// step per realm, woken by the realm, by any `AuthClient` naming it (in
/// every watched namespace: clients may live elsewhere), and by the client
/// and registry Secrets it writes.
fn clients_controller(
    client: &Client,
    namespace: Option<&str>,
    watched: &[String],
) -> Controller<AuthRealm> {
    let mut controller = Controller::new(
        namespaced_or_all::<AuthRealm>(client, namespace),
        watcher::Config::default().any_semantic(),
    );
    let client_scopes: Vec<Option<&str>> = if watched.is_empty() {
        vec![None]
    } else {
        watched.iter().map(|n| Some(n.as_str())).collect()
    };
    // Only realms this controller reconciles (another scope's would be
    // reported as not found).
    let mine = namespace.map(str::to_owned);
    let realm_ref = move |ns: &str, name: &str| {
        mine.as_deref()
            .is_none_or(|m| m == ns)
            .then(|| ObjectRef::<AuthRealm>::new(name).within(ns))
    };
    for scope in client_scopes {
        let to_realm = realm_ref.clone();
        controller = controller.watches(
            namespaced_or_all::<AuthClient>(client, scope),
            watcher::Config::default(),
            move |c| {
                let (ns, name) = realm_of(&c);
                to_realm(&ns, &name)
            },
        );
        let to_realm = realm_ref.clone();
        controller = controller.watches(
            namespaced_or_all::<PartialObjectMeta<Secret>>(client, scope),
            watcher::Config::default().labels(REALM_LABEL),
            move |s| {
                let labels = s.labels();
                to_realm(labels.get(REALM_NAMESPACE_LABEL)?, labels.get(REALM_LABEL)?)
            },
        );
    }
    controller
}

/// A controller's outcome for one object, kept only to log its error (the
/// controllers reconcile different kinds, so their outcomes differ in type).
fn outcome<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// The `AuthClient`s of one scope, checked for a realm that is not there;
/// woken again when a realm they name changes or goes away.
fn orphan_clients_controller(client: &Client, namespace: Option<&str>) -> Controller<AuthClient> {
    let controller = Controller::new(
        namespaced_or_all::<AuthClient>(client, namespace),
        watcher::Config::default(),
    );
    let clients = controller.store();
    controller.watches(
        namespaced_or_all::<AuthRealm>(client, namespace),
        watcher::Config::default(),
        move |realm| {
            let key = (realm.namespace().unwrap_or_default(), realm.name_any());
            clients
                .state()
                .into_iter()
                .filter(|c| realm_of(c) == key)
                .map(|c| ObjectRef::from_obj(&*c))
                .collect::<Vec<_>>()
        },
    )
}

/// Renews the Lease every third of its duration; returns when it is lost
/// (another holder, or no successful renewal for a whole duration).
async fn hold_lease(api: Api<Lease>, cfg: LeaseConfig) -> anyhow::Error {
    let mut last_ok = Instant::now();
    loop {
        tokio::time::sleep(cfg.duration / 3).await;
        match leader::try_lead(&api, &cfg, jiff::Timestamp::now()).await {
            Ok(Attempt::Leading) => last_ok = Instant::now(),
            Ok(other) => return anyhow::anyhow!("lost the leader Lease: {other:?}"),
            Err(e) => warn!(error = %e, "cannot renew the leader Lease"),
        }
        if last_ok.elapsed() >= cfg.duration {
            return anyhow::anyhow!("could not renew the leader Lease for {:?}", cfg.duration);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    authrealm_runtime::logging::init(config.log_format);

    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let metrics = Metrics::new().context("cannot register metrics")?;
    let identity = config
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("authrealm-operator-{}", std::process::id()));

    // One controller for the whole cluster, or one per watched namespace.
    let scopes: Vec<Option<String>> = if config.watch_namespaces.is_empty() {
        vec![None]
    } else {
        config.watch_namespaces.iter().cloned().map(Some).collect()
    };
    let (controllers, stores): (Vec<_>, Vec<_>) = scopes
        .iter()
        .map(|ns| controller(&client, ns.as_deref()))
        .unzip();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    info!(addr = %config.listen, "serving /metrics and /healthz");
    let router = app(AppState {
        metrics: metrics.clone(),
        realms: stores,
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            error!(error = %e, "metrics server stopped");
        }
    });

    // Wait to lead.
    let lease_api: Api<Lease> = match &config.lease_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    };
    let lease = LeaseConfig {
        name: config.lease_name.clone(),
        identity: identity.clone(),
        duration: config.lease_duration,
    };
    if !config.no_leader_election {
        info!(lease = %lease.name, %identity, "waiting to become the leader");
        loop {
            tokio::select! {
                () = authrealm_runtime::shutdown::signal() => return Ok(()),
                r = leader::try_lead(&lease_api, &lease, jiff::Timestamp::now()) => match r {
                    Ok(Attempt::Leading) => break,
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "cannot read or write the leader Lease"),
                },
            }
            tokio::time::sleep(lease.duration / 3).await;
        }
        info!(%identity, "leading");
    }
    if config.manage_crd {
        operator::upgrade::apply_crd(client.clone()).await.context(
            "cannot apply the AuthRealm CRD (grant patch on customresourcedefinitions/authrealms.authrealm.io, or run with --manage-crd=false when the CRD is managed elsewhere)",
        )?;
        operator::upgrade::apply_client_crd(client.clone()).await.context(
            "cannot apply the AuthClient CRD (grant patch on customresourcedefinitions/authclients.authrealm.io, or run with --manage-crd=false when the CRD is managed elsewhere)",
        )?;
        info!("applied the AuthRealm and AuthClient CRDs");
    }

    let events = Publisher::new(client.clone(), FIELD_MANAGER, &identity);
    let mut ctx = Context::new(client.clone(), events, metrics);
    ctx.watch_namespaces.clone_from(&config.watch_namespaces);
    ctx.defaults = Defaults {
        auth_service_image: config.auth_service_image.clone(),
        main_project_image: config.main_project_image.clone(),
        operator_namespace: config.lease_namespace.clone(),
    };
    let ctx = Arc::new(ctx);
    let runs = controllers.into_iter().map(|c| {
        c.run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
            .map(outcome)
            .boxed()
    });
    let client_runs = scopes.iter().map(|ns| {
        clients_controller(&client, ns.as_deref(), &config.watch_namespaces)
            .run(
                operator::clients::reconcile::reconcile,
                operator::clients::reconcile::error_policy,
                ctx.clone(),
            )
            .map(outcome)
            .boxed()
    });
    let orphan_runs = scopes.iter().map(|ns| {
        orphan_clients_controller(&client, ns.as_deref())
            .run(
                operator::clients::orphans::reconcile,
                operator::clients::orphans::error_policy,
                ctx.clone(),
            )
            .map(outcome)
            .boxed()
    });
    let runs = runs.chain(client_runs).chain(orphan_runs);
    let run = futures::stream::select_all(runs).for_each(|r| async move {
        if let Err(e) = r {
            warn!(error = %e, "controller");
        }
    });
    let lost = async {
        if config.no_leader_election {
            std::future::pending::<anyhow::Error>().await
        } else {
            hold_lease(lease_api.clone(), lease.clone()).await
        }
    };
    tokio::select! {
        () = run => bail!("the controller stopped"),
        e = lost => {
            error!(error = %e, "stopping: no longer the leader");
            Err(e)
        }
        () = authrealm_runtime::shutdown::signal() => {
            info!("shutting down");
            if !config.no_leader_election
                && let Err(e) = leader::release(&lease_api, &lease).await
            {
                warn!(error = %e, "cannot release the leader Lease");
            }
            Ok(())
        }
    }
}
