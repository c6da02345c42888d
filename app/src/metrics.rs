//! What the app spends waiting on AWS, counted inside the process: every SDK
//! call's time on the wire (an SDK interceptor around each HTTP attempt) and
//! the DynamoDB items each read returns. A benchmark subtracts the wait from
//! a request's wall time to get the app's own time, whatever the emulator or
//! AWS takes to answer.
//!
//! The counters are process-wide and only ever grow; read two [`snapshot`]s
//! around a request and subtract. They cost two atomic adds per call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_smithy_types::config_bag::{Storable, StoreReplace};

static AWS_CALLS: AtomicU64 = AtomicU64::new(0);
static AWS_WAIT_NANOS: AtomicU64 = AtomicU64::new(0);
static DYNAMODB_ITEMS_READ: AtomicU64 = AtomicU64::new(0);

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// HTTP attempts sent to AWS (S3, DynamoDB, Cognito); presigning sends none.
    pub aws_calls: u64,
    /// Time between sending each attempt and receiving its response.
    pub aws_wait: Duration,
    /// Items DynamoDB read for the app (`ScannedCount` of queries, items got).
    pub dynamodb_items_read: u64,
}

impl std::ops::Sub for Snapshot {
    type Output = Self;
    fn sub(self, before: Self) -> Self {
        Self {
            aws_calls: self.aws_calls.saturating_sub(before.aws_calls),
            aws_wait: self.aws_wait.saturating_sub(before.aws_wait),
            dynamodb_items_read: self
                .dynamodb_items_read
                .saturating_sub(before.dynamodb_items_read),
        }
    }
}

/// The counters now.
pub fn snapshot() -> Snapshot {
    Snapshot {
        aws_calls: AWS_CALLS.load(Ordering::Relaxed),
        aws_wait: Duration::from_nanos(AWS_WAIT_NANOS.load(Ordering::Relaxed)),
        dynamodb_items_read: DYNAMODB_ITEMS_READ.load(Ordering::Relaxed),
    }
}

/// Counts items a DynamoDB read returned.
pub fn items_read(count: usize) {
    DYNAMODB_ITEMS_READ.fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
}

fn record_wait(wait: Duration) {
    AWS_CALLS.fetch_add(1, Ordering::Relaxed);
    AWS_WAIT_NANOS.fetch_add(
        u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// When the current attempt was handed to the HTTP client.
#[derive(Debug, Clone, Copy)]
struct SentAt(Instant);

impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Times each attempt on the wire; added to every SDK client the app builds.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitTimer;

impl aws_sdk_dynamodb::config::Intercept for WaitTimer {
    fn name(&self) -> &'static str {
        "cloudalbum::metrics::WaitTimer"
    }

    fn read_before_transmit(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(SentAt(Instant::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(SentAt(at)) = cfg.load::<SentAt>() {
            record_wait(at.elapsed());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_subtract_to_what_happened_between() {
        let before = snapshot();
        record_wait(Duration::from_millis(3));
        items_read(24);
        let delta = snapshot() - before;
        // Other tests may count at the same time: at least ours is there.
        assert!(delta.aws_calls >= 1);
        assert!(delta.aws_wait >= Duration::from_millis(3));
        assert!(delta.dynamodb_items_read >= 24);
        assert_eq!(before - snapshot(), Snapshot::default());
    }
}
