//! Contract suites for wspush's ports, and the harness that runs them against real local
//! components.
//!
//! What belongs here: [`store_contract`], the one suite every `ConnectionStore` adapter must
//! pass (run against the in-memory store and DynamoDB Local by `tests/store`), and the
//! fixtures that find or start the real components (the one place the harness reads the
//! environment: [`local_process::given_endpoint`]). What must not: mocks of anything a real
//! local component can answer, or benchmarks (they are `wspush-bench`, in `bench/`).

pub mod dynamodb_local;
pub mod local_process;
pub mod moto;
pub mod store_contract;
