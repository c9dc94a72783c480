//! The request mixes the generator can send (one per [`ScenarioSpec`]), and
//! the signing of access tokens with the run's key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use authrealm_tokens::AccessClaims;
use authrealm_tokens::keyset::{KeyEntry, KeySetFile};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};

use crate::AUDIENCE;
use crate::error::{BenchError, Result};
use crate::job::ScenarioSpec;
use crate::load::Scenario;

fn request(
    method: Method,
    path: &str,
    host: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body)).unwrap_or_default()
}

/// Signs `n` distinct access tokens (`jti` `{tag}-{i}`) valid for an hour,
/// on all cores.
///
/// # Errors
/// [`BenchError::Signing`] when the key cannot sign.
pub fn sign_tokens(key: &KeyEntry, issuer: &str, tag: &str, n: usize) -> Result<Vec<String>> {
    let enc = key
        .encoding_key()
        .map_err(|e| BenchError::Signing(e.to_string()))?;
    let mut header = jsonwebtoken::Header::new(key.alg.jwt());
    header.kid = Some(key.kid.clone());
    let now = authrealm_tokens::unix_now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunks: Vec<Result<Vec<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|c| {
                let (enc, header) = (&enc, &header);
                s.spawn(move || {
                    (c * n / threads..(c + 1) * n / threads)
                        .map(|i| {
                            let claims = AccessClaims {
                                iss: issuer.to_owned(),
                                sub: format!("{tag}-user-{i}"),
                                aud: AUDIENCE.to_owned(),
                                exp: now + 3600,
                                iat: now,
                                nbf: now - 1,
                                jti: format!("{tag}-{i}"),
                                sid: format!("{tag}-sid-{i}"),
                                extra: serde_json::Map::new(),
                            };
                            jsonwebtoken::encode(header, &claims, enc)
                                .map_err(|e| BenchError::Signing(e.to_string()))
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Signing("signing thread panicked".into())))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(n);
    for c in chunks {
        all.extend(c?);
    }
    Ok(all)
}

/// Reads the active key of a `keyset.json`.
///
/// # Errors
/// When the file cannot be read or has no active key.
pub fn active_key(path: &std::path::Path) -> Result<KeyEntry> {
    let bytes = std::fs::read(path)
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    let set = KeySetFile::parse(&bytes).map_err(|e| BenchError::Signing(e.to_string()))?;
    set.active()
        .cloned()
        .ok_or_else(|| BenchError::Signing("the key set has no active key".into()))
}

/// Builds the scenario a job names (signing its tokens first, if it needs any).
///
/// # Errors
/// When tokens cannot be signed.
pub fn build(spec: &ScenarioSpec) -> Result<Arc<dyn Scenario>> {
    Ok(match spec {
        ScenarioSpec::Get { path, bearer } => Arc::new(Get {
            path: path.clone(),
            bearer: bearer.clone(),
        }),
        ScenarioSpec::FreshTokens {
            path,
            keyset,
            issuer,
            tokens,
            sends_each,
        } => {
            let key = active_key(keyset)?;
            let tag = authrealm_tokens::random_token(6)
                .map_err(|_| BenchError::Signing("no randomness".into()))?;
            Arc::new(FreshTokens {
                path: path.clone(),
                tokens: sign_tokens(&key, issuer, &tag, (*tokens).max(1))?,
                sends_each: (*sends_each).max(1),
                next: AtomicUsize::new(0),
                wrapped: AtomicBool::new(false),
            })
        }
        ScenarioSpec::Mint {
            credential,
            sub_prefix,
        } => Arc::new(Mint {
            credential: credential.clone(),
            sub_prefix: sub_prefix.clone(),
        }),
        ScenarioSpec::Refresh { credential } => Arc::new(Refresh {
            credential: credential.clone(),
        }),
        ScenarioSpec::Sign => Arc::new(Sign),
        ScenarioSpec::Argon2 => Arc::new(Argon2Hash),
        ScenarioSpec::Login {
            email_pattern,
            users,
            password,
        } => Arc::new(Login {
            email_pattern: email_pattern.clone(),
            users: *users,
            password: password.clone(),
            seed: AtomicUsize::new(0x9e37_79b9),
        }),
        ScenarioSpec::Register { tag, password } => Arc::new(Register {
            tag: tag.clone(),
            password: password.clone(),
        }),
    })
}

struct Get {
    path: String,
    bearer: Option<String>,
}
impl Scenario for Get {
    fn request(
        &self,
        _: usize,
        _: u64,
        host: &str,
        _: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        request(Method::GET, &self.path, host, self.bearer.as_deref(), None)
    }
}

struct FreshTokens {
    path: String,
    tokens: Vec<String>,
    sends_each: usize,
    next: AtomicUsize,
    wrapped: AtomicBool,
}
impl Scenario for FreshTokens {
    fn request(
        &self,
        _: usize,
        _: u64,
        host: &str,
        _: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) / self.sends_each;
        if i >= self.tokens.len() {
            self.wrapped.store(true, Ordering::Relaxed);
        }
        let token = self.tokens.get(i % self.tokens.len().max(1));
        request(
            Method::GET,
            &self.path,
            host,
            token.map(String::as_str),
            None,
        )
    }
    fn exhausted(&self) -> bool {
        self.wrapped.load(Ordering::Relaxed)
    }
}

struct Mint {
    credential: String,
    sub_prefix: String,
}
impl Scenario for Mint {
    fn request(
        &self,
        worker: usize,
        seq: u64,
        host: &str,
        _: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        // What OP sends at login: its user id (a UUID) and the email.
        let body = serde_json::json!({
            "sub": op_like_user_id(&self.sub_prefix, worker, seq),
            "claims": {"email": format!("user{seq}.{worker}@example.com")},
        });
        request(
            Method::POST,
            authrealm_tokens::api::PATH_MINT,
            host,
            Some(&self.credential),
            Some(&body),
        )
    }
}

/// A UUID-shaped user id, distinct per (run tag, connection, n).
fn op_like_user_id(tag: &str, worker: usize, seq: u64) -> String {
    let t = tag
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        t & 0xffff_ffff,
        (t >> 32) & 0xffff,
        worker & 0xfff,
        (seq >> 48) & 0xfff,
        seq & 0xffff_ffff_ffff
    )
}

fn refresh_token_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("refresh_token")?
        .as_str()
        .map(str::to_owned)
}

struct Refresh {
    credential: String,
}
impl Scenario for Refresh {
    fn setup(&self, worker: usize, host: &str) -> Option<Request<Full<Bytes>>> {
        let tag = authrealm_tokens::random_token(6).unwrap_or_default();
        let body = serde_json::json!({"sub": format!("refresher-{tag}-{worker}")});
        Some(request(
            Method::POST,
            authrealm_tokens::api::PATH_MINT,
            host,
            Some(&self.credential),
            Some(&body),
        ))
    }
    fn after_setup(&self, status: StatusCode, body: &[u8], state: &mut Option<String>) -> bool {
        *state = refresh_token_of(body);
        status.is_success() && state.is_some()
    }
    fn request(
        &self,
        _: usize,
        _: u64,
        host: &str,
        state: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        let body = serde_json::json!({"refresh_token": state.clone().unwrap_or_default()});
        request(
            Method::POST,
            authrealm_tokens::api::PATH_REFRESH,
            host,
            Some(&self.credential),
            Some(&body),
        )
    }
    fn check(&self, status: StatusCode, body: &[u8], state: &mut Option<String>) -> bool {
        match (status.is_success(), refresh_token_of(body)) {
            (true, Some(t)) => {
                *state = Some(t);
                true
            }
            _ => false,
        }
    }
}

struct Sign;
impl Scenario for Sign {
    fn request(
        &self,
        worker: usize,
        seq: u64,
        host: &str,
        _: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        let body = serde_json::json!({"sub": format!("signed-{worker}-{seq}")});
        request(Method::POST, "/sign", host, None, Some(&body))
    }
}

struct Argon2Hash;
impl Scenario for Argon2Hash {
    fn request(
        &self,
        _: usize,
        _: u64,
        host: &str,
        _: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        let body = serde_json::json!({"password": crate::PASSWORD});
        request(Method::POST, "/argon2", host, None, Some(&body))
    }
}

struct Login {
    email_pattern: String,
    users: u64,
    password: String,
    seed: AtomicUsize,
}
impl Scenario for Login {
    fn request(
        &self,
        _: usize,
        _: u64,
        host: &str,
        _: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        let email = if self.users == 0 {
            self.email_pattern.clone()
        } else {
            // A cheap, well-spread sequence (Weyl) over the seeded users.
            let x = self.seed.fetch_add(0x9e37_79b9, Ordering::Relaxed) as u64;
            let i = x.wrapping_mul(0x2545_f491_4f6c_dd1d) % self.users;
            self.email_pattern.replace("{i}", &i.to_string())
        };
        let body = serde_json::json!({"email": email, "password": self.password});
        request(Method::POST, "/api/v1/login", host, None, Some(&body))
    }
}

struct Register {
    tag: String,
    password: String,
}
impl Scenario for Register {
    fn request(
        &self,
        worker: usize,
        seq: u64,
        host: &str,
        _: &mut Option<String>,
    ) -> Request<Full<Bytes>> {
        let body = serde_json::json!({
            "email": format!("reg-{}-{worker}-{seq}@example.test", self.tag),
            "password": self.password,
        });
        request(Method::POST, "/api/v1/register", host, None, Some(&body))
    }
}
