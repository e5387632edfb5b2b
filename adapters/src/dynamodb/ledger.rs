//! The [`RequestLedger`] port on the store's table: one item per request.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use wspush_domain::{RequestId, Timestamp};
use wspush_ports::{Claim, RequestLedger, StoreError};

use super::DynamoDbStore;
use super::errors::store_error;
use super::items::{
    CLAIMED, COMPLETED, PK, STATE, UNTIL_MS, millis, number, request_item, request_key, string,
};

#[async_trait]
impl RequestLedger for DynamoDbStore {
    async fn claim(
        &self,
        id: &RequestId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(request_item(id, CLAIMED, lease_until)))
            .condition_expression("attribute_not_exists(#pk) OR #until <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#until", UNTIL_MS)
            .expression_attribute_values(":now", number(now.unix_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Claim::Claimed),
            Err(error) => error,
        };
        let held = match error.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => failed.item().cloned(),
            _ => return Err(store_error(error)),
        };
        // The old item comes back with the failure; read it if this endpoint does not send it.
        let held = match held {
            Some(item) => Some(item),
            None => self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(request_key(id)))
                .consistent_read(true)
                .send()
                .await
                .map_err(store_error)?
                .item()
                .cloned(),
        };
        let Some(held) = held else {
            // Released in between by a delivery that failed: it is for a retry to claim.
            return Ok(Claim::InProgress { until: now });
        };
        let until = millis(&held, UNTIL_MS)?;
        Ok(match string(&held, STATE)? {
            COMPLETED => Claim::Completed,
            _ => Claim::InProgress { until },
        })
    }

    async fn complete(&self, id: &RequestId, keep_until: Timestamp) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(request_item(id, COMPLETED, keep_until)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn release(&self, id: &RequestId, lease_until: Timestamp) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(request_key(id)))
            .condition_expression("#state = :claimed AND #until = :until")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#until", UNTIL_MS)
            .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
            .expression_attribute_values(":until", number(lease_until.unix_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Completed, taken over, or already gone: nothing of ours to release.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(store_error(error)),
        }
    }
}
