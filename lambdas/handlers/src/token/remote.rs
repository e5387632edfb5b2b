//! When a JWKS given by URL is read again: after its TTL, or when a token names a key it does
//! not hold (the provider rotated its keys), never more often than a minimum interval, and
//! by one caller at a time, so that a burst of tokens with an unknown `kid` (or forged ones)
//! costs the identity provider one request per interval.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use wspush_ports::RemoteDocument;

/// How often a JWKS given by URL is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksRefresh {
    /// Keys older than this are read again at the next `$connect` (default 1 hour).
    pub ttl: Duration,
    /// Never read again sooner than this after the last read (default 30 s).
    pub min_interval: Duration,
}

impl Default for JwksRefresh {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            min_interval: Duration::from_secs(30),
        }
    }
}

/// Where a verifier's keys come from, and when they were read.
pub(crate) struct RemoteKeys {
    source: Arc<dyn RemoteDocument>,
    refresh: JwksRefresh,
    /// When the keys were last read successfully, and when a read was last tried.
    reads: Mutex<Reads>,
    /// Held while reading, so that concurrent callers do not read twice.
    reading: tokio::sync::Mutex<()>,
}

#[derive(Clone, Copy)]
struct Reads {
    succeeded: Instant,
    tried: Instant,
}

impl RemoteKeys {
    /// Keys just read from `source`.
    pub(crate) fn new(source: Arc<dyn RemoteDocument>, refresh: JwksRefresh) -> Self {
        let now = Instant::now();
        Self {
            source,
            refresh,
            reads: Mutex::new(Reads {
                succeeded: now,
                tried: now,
            }),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// Where the keys are read from.
    pub(crate) fn location(&self) -> String {
        self.source.location()
    }

    fn reads(&self) -> Reads {
        *self.reads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the keys are older than the TTL.
    pub(crate) fn is_stale(&self) -> bool {
        self.reads().succeeded.elapsed() >= self.refresh.ttl
    }

    /// Reads the document again and hands it to `install` (which says whether it held
    /// usable keys), unless it was read or tried within the minimum interval, or the keys
    /// changed since the caller looked (`changed_since_caller`, checked once the read lock is
    /// held: the read another caller just made counts). `wait` waits for a read in progress;
    /// without it the call returns at once when one runs. Whether the keys are new. A failed
    /// read is logged and counts as a try.
    pub(crate) async fn reread(
        &self,
        why: &str,
        wait: bool,
        changed_since_caller: impl Fn() -> bool,
        install: impl FnOnce(String) -> bool,
    ) -> bool {
        let _reading = if wait {
            self.reading.lock().await
        } else {
            match self.reading.try_lock() {
                Ok(guard) => guard,
                Err(_) => return false,
            }
        };
        if changed_since_caller() {
            return true;
        }
        if self.reads().tried.elapsed() < self.refresh.min_interval {
            return false;
        }
        let now = Instant::now();
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tried = now;
        tracing::info!(jwks = %self.location(), why, "reading the JWKS again");
        match self.source.fetch().await {
            Ok(document) => {
                // Installed while the read lock is held, so that a caller let in after us
                // sees the new keys.
                let installed = install(document);
                if installed {
                    self.reads
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .succeeded = now;
                }
                installed
            }
            Err(error) => {
                tracing::warn!(
                    error = %error.with_causes(),
                    "reading the JWKS again failed; keeping the keys held"
                );
                false
            }
        }
    }
}
