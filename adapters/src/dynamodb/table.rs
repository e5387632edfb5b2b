//! The table's schema: creating it with its indexes and TTL.

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use wspush_ports::StoreError;

use super::DynamoDbStore;
use super::errors::{build_error, store_error};
use super::items::{BY_TOPIC, BY_USER, OWNER, PK, SK, TOPIC, TTL};

impl DynamoDbStore {
    /// Creates the table with its indexes and TTL if it does not exist, and waits until it
    /// is active. For tests and the local gateway; deployments get the table from the SAM
    /// template, which declares the same schema.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(
                [PK, SK, OWNER, TOPIC]
                    .into_iter()
                    .map(|name| {
                        AttributeDefinition::builder()
                            .attribute_name(name)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                    })
                    .collect::<Result<_, _>>()
                    .map_err(build_error)?,
            ))
            .set_key_schema(Some(key_schema(PK, SK)?))
            .global_secondary_indexes(index(BY_USER, OWNER)?)
            .global_secondary_indexes(index(BY_TOPIC, TOPIC)?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error) if error.code() == Some("ResourceInUseException") => return Ok(()),
            Err(error) => return Err(store_error(error)),
        }
        self.wait_until_active().await?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(store_error)?;
            if described
                .table()
                .and_then(|table| table.table_status())
                .is_some_and(|status| *status == TableStatus::Active)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::Unavailable(
            format!("table {} did not become active within 60 s", self.table).into(),
        ))
    }
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    [(hash, KeyType::Hash), (range, KeyType::Range)]
        .into_iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        })
        .collect::<Result<_, _>>()
        .map_err(build_error)
}

fn index(name: &str, hash: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(hash, PK)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)
}
