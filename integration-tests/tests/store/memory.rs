use std::sync::Arc;

use wspush_adapters::MemoryStore;
use wspush_integration_tests::store_contract::{History, Ledger, Presences, Store, StoreFixture};

struct Memory(Arc<MemoryStore>);

impl StoreFixture for Memory {
    fn store(&self) -> Store {
        self.0.clone()
    }

    fn ledger(&self) -> Ledger {
        self.0.clone()
    }

    fn presence(&self) -> Presences {
        self.0.clone()
    }

    fn history(&self) -> History {
        self.0.clone()
    }

    async fn finish(self) {}
}

async fn fresh_store() -> Memory {
    Memory(Arc::new(MemoryStore::new()))
}

wspush_integration_tests::store_contract_tests!(fresh_store);
