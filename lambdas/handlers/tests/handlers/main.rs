//! The handlers, driven by real Lambda event JSON (in `tests/fixtures`), over the real
//! in-memory store and a mockall gateway.

mod authorizer;
mod connect;
mod helpers;
mod hostile;
mod jwks_url;
mod logs;
mod pusher;
mod subscribe;
mod token;
mod tokens;
