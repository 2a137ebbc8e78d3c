//! Black-box tests: the real server on a random port, a fresh database per test (SQLite here,
//! PostgreSQL when compiled as `it_postgres`), spoken to over HTTP exactly as a client would,
//! delivering to a real receiver on loopback.

#[macro_use]
pub(crate) mod helpers;

mod auth;
pub(crate) mod crash;
mod delivery;
mod errors;
mod isolation;
mod lifecycle;
mod openapi;
mod persistence;
mod quickstart;
pub(crate) mod receiver;
mod secrets;
mod ssrf;
mod tenants;
mod validation;
mod webhooks;
