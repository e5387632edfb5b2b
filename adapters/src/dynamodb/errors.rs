//! SDK errors mapped onto the port's [`StoreError`], keeping each as the cause.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use wspush_ports::StoreError;

/// A `ValidationException` on a resumed read means the cursor was not one of ours.
pub(super) fn cursor_error<E>(resumed: bool, error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if resumed && error.code() == Some("ValidationException") {
        return StoreError::InvalidCursor(
            error
                .message()
                .unwrap_or("the starting key is invalid")
                .to_owned(),
        );
    }
    store_error(error)
}

/// Maps an SDK error onto the port's errors, keeping it as the cause.
pub(super) fn store_error<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const THROTTLING: [&str; 4] = [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
    ];
    let (status, transport) = crate::aws::failed_answer(&error);
    if error.code().is_some_and(|code| THROTTLING.contains(&code)) {
        StoreError::Throttled(Box::new(error))
    } else if transport || status.is_some_and(|status| status >= 500) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Unknown(anyhow::Error::new(error).context("DynamoDB request failed"))
    }
}

pub(super) fn build_error(error: BuildError) -> StoreError {
    StoreError::Unknown(anyhow::Error::new(error).context("building a DynamoDB request"))
}
