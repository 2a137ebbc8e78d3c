//! Black-box tests: the real server on a random port, a fresh database per test (SQLite here,
//! PostgreSQL when compiled as `it_postgres`), spoken to over HTTP exactly as a client would,
//! delivering to a real receiver on loopback.

#[macro_use]
pub(crate) mod helpers;

mod auth;
mod backup;
pub(crate) mod cli;
mod cli_webhooks;
mod config;
mod connections;
pub(crate) mod crash;
mod delivery;
mod docs;
mod errors;
mod event_types;
pub(crate) mod examples;
mod faults;
mod filters;
mod headers;
mod health;
mod hostile;
mod http_layer;
mod isolation;
mod lifecycle;
mod limits;
pub(crate) mod listen;
mod masking;
mod metrics;
mod openapi;
mod operational;
mod otlp;
mod payloads;
mod persistence;
mod quickstart;
pub(crate) mod receiver;
mod recovery;
mod retention;
mod retry_schedule;
mod robustness;
mod secrets;
pub(crate) mod smoke;
mod ssrf;
mod tenants;
mod validation;
mod webhooks;
