//! The store contract suite, run against every store adapter: the in-memory store, and the
//! DynamoDB store on DynamoDB Local.

mod calls;
mod dynamodb;
mod history_calls;
mod memory;
