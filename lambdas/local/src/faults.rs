//! Fault and latency injection on `POST @connections`, for tests and benchmarks.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What the management API does to posts before answering them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Added to every post.
    pub latency: Duration,
    /// A further random latency, uniform in `[0, jitter)`.
    pub jitter: Duration,
    /// Share of posts answered 429 (`LimitExceededException`), from 0 to 1.
    pub throttle_rate: f64,
    /// Share of posts answered 500, from 0 to 1.
    pub error_rate: f64,
    /// Posts per second accepted; more are answered 429 (a token bucket with one second of
    /// burst), like API Gateway's account throttle.
    pub requests_per_second: Option<u32>,
    /// Never fire `$disconnect` when a socket closes, as API Gateway may not: the store keeps
    /// the connection until a push gets a 410 and prunes it.
    pub lose_disconnects: bool,
    /// Share of connections, from 0 to 1, whose client does not read (its buffer is full):
    /// every post to them is answered 429, as API Gateway answers a slow client. Which ones
    /// is a fixed function of the connection ID ([`Faults::is_slow`]).
    pub slow_connections: f64,
}

impl Faults {
    /// Whether `connection` is one of the [`slow_connections`](Self::slow_connections).
    pub fn is_slow(&self, connection: &str) -> bool {
        if self.slow_connections <= 0.0 {
            return false;
        }
        // FNV-1a: stable across runs, so a test can name the slow ones.
        let hash = connection
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        ((hash % 1_000_000) as f64) < self.slow_connections * 1_000_000.0
    }
}

/// What to answer a post with, when a fault is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    Throttled,
    ServerError,
}

/// [`Faults`] with the state a throttle needs.
#[derive(Debug)]
pub struct FaultInjector {
    faults: Faults,
    bucket: Mutex<(f64, Instant)>,
}

impl FaultInjector {
    pub fn new(faults: Faults) -> Self {
        let burst = f64::from(faults.requests_per_second.unwrap_or(0));
        Self {
            faults,
            bucket: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits the injected latency, then decides whether the post to `connection` fails.
    pub async fn apply(&self, connection: &str) -> Option<Injected> {
        let delay = self.faults.latency + self.faults.jitter.mul_f64(fastrand::f64());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.faults.is_slow(connection) {
            return Some(Injected::Throttled);
        }
        if fastrand::f64() < self.faults.throttle_rate {
            return Some(Injected::Throttled);
        }
        if fastrand::f64() < self.faults.error_rate {
            return Some(Injected::ServerError);
        }
        if let Some(rate) = self.faults.requests_per_second {
            let mut bucket = self.bucket.lock().ok()?;
            let now = Instant::now();
            let rate = f64::from(rate);
            bucket.0 = (bucket.0 + now.duration_since(bucket.1).as_secs_f64() * rate).min(rate);
            bucket.1 = now;
            if bucket.0 < 1.0 {
                return Some(Injected::Throttled);
            }
            bucket.0 -= 1.0;
        }
        None
    }
}
