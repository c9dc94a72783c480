//! The clock every time-dependent decision reads: the system clock in
//! production, a manual one in tests so expiry and grace windows are tested
//! without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Unix seconds, from the system or from a value tests move by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that only moves when told to.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start` (Unix seconds).
    #[must_use]
    pub fn manual(start: i64) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(start)))
    }

    /// The current time in Unix seconds.
    #[must_use]
    pub fn now(&self) -> i64 {
        match self {
            Self::System => crate::unix_now(),
            Self::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward by `secs`; the system clock ignores it.
    pub fn advance(&self, secs: i64) {
        if let Self::Manual(t) = self {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}
