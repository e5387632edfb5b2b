use std::sync::Arc;

use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_integration_tests::store_contract::{History, Ledger, Presences, Store, StoreFixture};

struct DynamoDb(DynamoDbFixture);

impl StoreFixture for DynamoDb {
    fn store(&self) -> Store {
        Arc::new(self.0.store.clone())
    }

    fn ledger(&self) -> Ledger {
        Arc::new(self.0.store.clone())
    }

    fn presence(&self) -> Presences {
        Arc::new(self.0.store.clone())
    }

    fn history(&self) -> History {
        Arc::new(self.0.store.clone())
    }

    async fn finish(self) {
        self.0.finish().await;
    }
}

async fn fresh_store() -> DynamoDb {
    DynamoDb(DynamoDbFixture::new().await)
}

wspush_integration_tests::store_contract_tests!(fresh_store);
