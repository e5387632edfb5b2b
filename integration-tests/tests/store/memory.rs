use std::sync::Arc;

use wspush_adapters::MemoryStore;
use wspush_integration_tests::store_contract::{Store, StoreFixture};

struct Memory(Store);

impl StoreFixture for Memory {
    fn store(&self) -> Store {
        Arc::clone(&self.0)
    }

    async fn finish(self) {}
}

async fn fresh_store() -> Memory {
    Memory(Arc::new(MemoryStore::new()))
}

wspush_integration_tests::store_contract_tests!(fresh_store);
