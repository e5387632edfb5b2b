//! Batch writes and reads, retrying the entries DynamoDB leaves unprocessed.

use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, WriteRequest};
use wspush_ports::StoreError;

use super::DynamoDbStore;
use super::errors::{build_error, store_error};
use super::items::Item;

/// `BatchWriteItem` takes at most 25 requests.
pub(super) const BATCH_WRITE_MAX: usize = 25;
/// `BatchGetItem` takes at most 100 keys.
pub(super) const BATCH_GET_MAX: usize = 100;
/// Attempts at a batch's unprocessed items before giving up.
pub(super) const BATCH_ATTEMPTS: u32 = 8;

impl DynamoDbStore {
    /// Deletes the items with these keys, in batches of 25 (see [`batch_write`](Self::batch_write)).
    pub(super) async fn batch_delete(
        &self,
        keys: impl IntoIterator<Item = Item>,
    ) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    /// Writes `requests` in batches of 25, retrying unprocessed items with backoff.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE_MAX) {
            until_processed("BatchWriteItem", chunk.to_vec(), |pending| async move {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(store_error)?;
                let unprocessed = output
                    .unprocessed_items()
                    .and_then(|items| items.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                Ok((unprocessed, Vec::<Item>::new()))
            })
            .await?;
        }
        Ok(())
    }

    /// Reads the items with these keys, retrying unprocessed keys with backoff.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let items = until_processed("BatchGetItem", chunk.to_vec(), |pending| async move {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                let items = output
                    .responses()
                    .and_then(|responses| responses.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                let unprocessed = output
                    .unprocessed_keys()
                    .and_then(|keys| keys.get(&self.table))
                    .map(|keys| keys.keys().to_vec())
                    .unwrap_or_default();
                Ok((unprocessed, items))
            })
            .await?;
            found.extend(items);
        }
        Ok(found)
    }
}

/// Calls `batch` with `pending` until it reports nothing unprocessed, backing off between
/// calls, for at most [`BATCH_ATTEMPTS`] calls. Returns what the calls returned.
pub(super) async fn until_processed<T, R, F, Fut>(
    operation: &str,
    mut pending: Vec<T>,
    mut batch: F,
) -> Result<Vec<R>, StoreError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Vec<R>), StoreError>>,
{
    let mut results = Vec::new();
    let mut attempt = 0;
    while !pending.is_empty() {
        if attempt > 0 {
            if attempt >= BATCH_ATTEMPTS {
                return Err(StoreError::Throttled(
                    format!(
                        "{} entries still unprocessed after {BATCH_ATTEMPTS} {operation} attempts",
                        pending.len()
                    )
                    .into(),
                ));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        attempt += 1;
        let (unprocessed, done) = batch(pending).await?;
        results.extend(done);
        pending = unprocessed;
    }
    Ok(results)
}

pub(super) fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(25).saturating_mul(2u32.saturating_pow(attempt));
    ceiling.min(Duration::from_secs(2)).mul_f64(fastrand::f64())
}
