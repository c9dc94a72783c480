//! argon2id hashing and verification on a bounded blocking pool (a slot per
//! core, a bounded wait queue, then 503 `busy`), and the dummy hash that
//! makes "no such user" cost the same as "wrong password". Each slot reuses
//! one argon2 memory buffer (19 MiB at the OWASP parameters): hashes never
//! allocate it anew, so a login burst cannot grow the heap beyond slots ×
//! buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::metrics::Metrics;

/// argon2id hashing on a bounded blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    slots: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait_timeout: Duration,
    dummy_hash: String,
    /// Argon2 memory buffers, one per slot, reused by every hash.
    buffers: std::sync::Mutex<Vec<Vec<Block>>>,
    metrics: Metrics,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.inner.params.m_cost())
            .field("t_cost", &self.inner.params.t_cost())
            .field("slots", &self.inner.slots.available_permits())
            .finish_non_exhaustive()
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

impl PasswordHasher {
    /// A hasher with `slots` concurrent hashes, `max_waiting` queued requests
    /// and argon2id parameters `memory_kib`/`iterations` (parallelism 1).
    ///
    /// # Errors
    /// [`Error::Hash`] for invalid parameters.
    pub fn new(
        slots: usize,
        max_waiting: usize,
        wait_timeout: Duration,
        memory_kib: u32,
        iterations: u32,
        metrics: Metrics,
    ) -> Result<Self, Error> {
        let params = Params::new(memory_kib, iterations, 1, None).map_err(|_| Error::Hash)?;
        let mut buffer = vec![Block::default(); params.block_count()];
        // The dummy hash has the same parameters, so verifying against it costs the same.
        let dummy_hash =
            hash_blocking(&params, b"authrealm-dummy-password-for-timing", &mut buffer)?;
        let slots = slots.max(1);
        let mut buffers = Vec::with_capacity(slots);
        buffers.push(buffer);
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                slots: Semaphore::new(slots),
                waiting: AtomicUsize::new(0),
                max_waiting,
                wait_timeout,
                dummy_hash,
                buffers: std::sync::Mutex::new(buffers),
                metrics,
            }),
        })
    }

    /// Runs `work` on the blocking pool once a slot is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Params, &mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        let m = &inner.metrics;
        let permit = match inner.slots.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                // Join the queue only if it has room.
                let prev = inner.waiting.fetch_add(1, Ordering::AcqRel);
                if prev >= inner.max_waiting {
                    inner.waiting.fetch_sub(1, Ordering::AcqRel);
                    m.hash_rejected.inc();
                    return Err(Error::Busy);
                }
                m.hash_queue_depth.inc();
                let got = tokio::time::timeout(inner.wait_timeout, inner.slots.acquire()).await;
                inner.waiting.fetch_sub(1, Ordering::AcqRel);
                m.hash_queue_depth.dec();
                match got {
                    Ok(Ok(p)) => p,
                    _ => {
                        m.hash_rejected.inc();
                        return Err(Error::Busy);
                    }
                }
            }
        };
        m.hash_in_flight.inc();
        let pool = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || {
            // A slot is held, so a buffer is free unless this is the slot's first use.
            let taken = pool.buffers.lock().ok().and_then(|mut b| b.pop());
            let mut buffer =
                taken.unwrap_or_else(|| vec![Block::default(); pool.params.block_count()]);
            let out = work(&pool.params, &mut buffer);
            if let Ok(mut b) = pool.buffers.lock() {
                b.push(buffer);
            }
            out
        })
        .await;
        m.hash_in_flight.dec();
        drop(permit);
        result.map_err(|_| Error::Hash)
    }

    /// Hashes a new password (PHC string with a fresh random salt).
    ///
    /// # Errors
    /// [`Error::Busy`] when no slot frees up in time, [`Error::Hash`] when hashing fails.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        self.run(move |params, buffer| hash_blocking(params, password.as_bytes(), buffer))
            .await?
    }

    /// Verifies `password` against a stored hash, or against the dummy hash
    /// when `stored` is `None` (unknown user): the same work either way, and
    /// the dummy never matches.
    ///
    /// # Errors
    /// [`Error::Busy`] when no slot frees up in time, [`Error::Hash`] when hashing fails.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Error> {
        let dummy = stored.is_none();
        let hash = stored.unwrap_or_else(|| self.inner.dummy_hash.clone());
        let ok = self
            .run(move |_, buffer| verify_blocking(password.as_bytes(), &hash, buffer))
            .await?;
        Ok(ok && !dummy)
    }
}

fn hash_blocking(params: &Params, password: &[u8], buffer: &mut [Block]) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Random)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2(params)
        .hash_password_into_with_memory(password, &salt, &mut out, buffer)
        .map_err(|_| Error::Hash)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|_| Error::Hash)?,
        salt: Some(Salt::new(&salt).map_err(|_| Error::Hash)?),
        hash: Some(Output::new(&out).map_err(|_| Error::Hash)?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC string, with the stored hash's own
/// parameters; the slot's buffer is used when they match the current ones.
/// The outputs are compared in constant time (`Output`'s equality).
fn verify_blocking(password: &[u8], stored: &str, buffer: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&hash),
        Algorithm::try_from(hash.algorithm.as_str()),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = if buffer.len() == params.block_count() {
        argon.hash_password_into_with_memory(password, salt, &mut out, buffer.as_mut_slice())
    } else {
        // A hash made with other parameters: its own (temporary) memory.
        argon.hash_password_into(password, salt, &mut out)
    };
    computed.is_ok() && Output::new(&out).is_ok_and(|o| &o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_interoperate_with_the_standard_argon2_api_and_other_parameters()
    -> Result<(), Box<dyn std::error::Error>> {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = PasswordHasher::new(1, 4, Duration::from_secs(30), 19_456, 2, Metrics::new()?)?;
        // Ours verify with the reference implementation's own verifier ...
        let ours = h
            .hash("tangerine-oboe-42".into())
            .await
            .map_err(|e| format!("{e:?}"))?;
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(19_456, 2, 1, None)?,
        );
        assert!(
            reference
                .verify_password(b"tangerine-oboe-42", ours.as_str())
                .is_ok()
        );
        assert!(
            reference
                .verify_password(b"tangerine-oboe-43", ours.as_str())
                .is_err()
        );
        // ... and a hash made elsewhere with stronger parameters verifies here.
        let stronger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32_768, 3, 1, None)?,
        )
        .hash_password_with_salt(b"tangerine-oboe-42", b"0123456789abcdef")?
        .to_string();
        for _ in 0..2 {
            assert!(
                h.verify("tangerine-oboe-42".into(), Some(stronger.clone()))
                    .await
                    .map_err(|e| format!("{e:?}"))?
            );
            assert!(
                !h.verify("tangerine-oboe-4".into(), Some(stronger.clone()))
                    .await
                    .map_err(|e| format!("{e:?}"))?
            );
        }
        // A garbled stored hash never verifies.
        assert!(
            !h.verify(
                "tangerine-oboe-42".into(),
                Some("$argon2id$v=19$garbage".into())
            )
            .await
            .map_err(|e| format!("{e:?}"))?
        );
        Ok(())
    }

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() -> Result<(), Box<dyn std::error::Error>> {
        let m = Metrics::new()?;
        let h = PasswordHasher::new(2, 4, Duration::from_secs(30), 19_456, 2, m)?;
        let stored = h
            .hash("tangerine-oboe-42".into())
            .await
            .map_err(|e| format!("{e:?}"))?;
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            h.verify("tangerine-oboe-42".into(), Some(stored.clone()))
                .await
                .map_err(|e| format!("{e:?}"))?
        );
        assert!(
            !h.verify("tangerine-oboe-43".into(), Some(stored))
                .await
                .map_err(|e| format!("{e:?}"))?
        );
        // The dummy never matches, not even its own password.
        assert!(
            !h.verify("authrealm-dummy-password-for-timing".into(), None)
                .await
                .map_err(|e| format!("{e:?}"))?
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_beyond_slots_and_queue_is_refused_not_buffered()
    -> Result<(), Box<dyn std::error::Error>> {
        let m = Metrics::new()?;
        // One slot, one queue place: of 8 simultaneous hashes some must be refused.
        let h = PasswordHasher::new(1, 1, Duration::from_secs(60), 19_456, 2, m.clone())?;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                h.hash("tangerine-oboe-42".into()).await
            }));
        }
        let (mut ok, mut busy) = (0u64, 0u64);
        for t in tasks {
            match t.await? {
                Ok(_) => ok += 1,
                Err(Error::Busy) => busy += 1,
                Err(e) => return Err(e.into()),
            }
        }
        assert!(ok >= 1 && busy >= 1, "ok={ok} busy={busy}");
        assert_eq!(ok + busy, 8);
        assert_eq!(m.hash_rejected.get(), busy);
        assert_eq!(m.hash_queue_depth.get(), 0);
        Ok(())
    }
}
