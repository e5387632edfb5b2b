//! Credentials for the lean transport: resolved once from the SDK's provider chain, kept
//! as a signing identity, and refreshed before they expire.
//!
//! A post reads the cached identity (a reference-counted clone under a read lock). Five
//! minutes before the expiry one caller refreshes while the others wait for it; if the
//! refresh fails while the old credentials are still valid, they are used for another ten
//! seconds before the next try, so an instance-metadata hiccup slows nothing.

use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;

/// How long before the expiry credentials are refreshed.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// How long still-valid credentials are used after a failed refresh before the next try.
const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Cached {
    identity: Identity,
    /// When to refresh (`None`: never; credentials from the environment do not expire).
    refresh_at: Option<SystemTime>,
    /// When they stop working.
    expires_at: Option<SystemTime>,
}

impl Cached {
    fn new(credentials: Credentials) -> Self {
        let expires_at = credentials.expiry();
        Self {
            refresh_at: expires_at.map(|expiry| {
                expiry
                    .checked_sub(REFRESH_BEFORE_EXPIRY)
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            }),
            expires_at,
            identity: credentials.into(),
        }
    }

    fn fresh_at(&self, now: SystemTime) -> bool {
        self.refresh_at.is_none_or(|refresh_at| now < refresh_at)
    }

    fn valid_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|expires_at| now < expires_at)
    }
}

/// The signing identity, cached.
pub(super) struct CredentialsCache {
    provider: SharedCredentialsProvider,
    current: RwLock<Option<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsCache")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl CredentialsCache {
    pub(super) fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<Cached> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, cached: Cached) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(cached);
    }

    /// The identity to sign with now.
    pub(super) async fn identity(&self) -> Result<Identity, CredentialsError> {
        let now = SystemTime::now();
        if let Some(cached) = self.cached().filter(|cached| cached.fresh_at(now)) {
            return Ok(cached.identity);
        }
        let _refreshing = self.refreshing.lock().await;
        // Another caller may have refreshed while this one waited.
        let now = SystemTime::now();
        let cached = self.cached();
        if let Some(cached) = cached.clone().filter(|cached| cached.fresh_at(now)) {
            return Ok(cached.identity);
        }
        match self.provider.provide_credentials().await {
            Ok(credentials) => {
                let fresh = Cached::new(credentials);
                self.store(fresh.clone());
                Ok(fresh.identity)
            }
            Err(error) => match cached.filter(|cached| cached.valid_at(now)) {
                Some(mut still_valid) => {
                    tracing::warn!(%error, "refreshing the credentials failed; the current ones are still valid");
                    let retry_at = now + RETRY_REFRESH_AFTER;
                    still_valid.refresh_at = Some(
                        still_valid
                            .expires_at
                            .map_or(retry_at, |expires_at| retry_at.min(expires_at)),
                    );
                    self.store(still_valid.clone());
                    Ok(still_valid.identity)
                }
                None => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::provider::future;

    use super::*;

    /// Credentials that expire `lifetime` after each call, or fail once they are exhausted.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Option<Duration>,
        succeed_first: usize,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call >= self.succeed_first {
                return future::ProvideCredentials::ready(Err(CredentialsError::provider_error(
                    "metadata service unreachable",
                )));
            }
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{call}"),
                "secret",
                None,
                self.lifetime.map(|lifetime| SystemTime::now() + lifetime),
                "test",
            )))
        }
    }

    fn cache(
        lifetime: Option<Duration>,
        succeed_first: usize,
    ) -> (CredentialsCache, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            lifetime,
            succeed_first,
        });
        (CredentialsCache::new(provider), calls)
    }

    fn access_key(identity: &Identity) -> String {
        identity
            .data::<Credentials>()
            .expect("credentials")
            .access_key_id()
            .to_owned()
    }

    #[tokio::test]
    async fn credentials_without_expiry_are_resolved_once() {
        let (cache, calls) = cache(None, usize::MAX);

        for _ in 0..100 {
            assert_eq!(
                access_key(&cache.identity().await.expect("identity")),
                "AKID0"
            );
        }

        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_within_five_minutes_of_expiry_are_refreshed() {
        let (cache, calls) = cache(Some(Duration::from_secs(60)), usize::MAX);

        let first = access_key(&cache.identity().await.expect("identity"));
        let second = access_key(&cache.identity().await.expect("identity"));

        assert_eq!((first.as_str(), second.as_str()), ("AKID0", "AKID1"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_still_valid_credentials_and_waits_before_retrying() {
        let (cache, calls) = cache(Some(Duration::from_secs(120)), 1);

        let first = access_key(&cache.identity().await.expect("identity"));
        let kept = access_key(&cache.identity().await.expect("still valid"));
        let again = access_key(&cache.identity().await.expect("still valid"));

        assert_eq!(
            (first.as_str(), kept.as_str(), again.as_str()),
            ("AKID0", "AKID0", "AKID0")
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one failed refresh, then a pause"
        );
    }

    #[tokio::test]
    async fn no_credentials_at_all_is_an_error() {
        let (cache, _) = cache(None, 0);

        let error = cache.identity().await.unwrap_err();

        assert!(
            format!("{error:?}").contains("metadata service unreachable"),
            "{error:?}"
        );
    }
}
