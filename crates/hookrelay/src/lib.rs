//! hookrelay: a self-hosted webhook delivery service.
//!
//! Layout:
//! - [`domain`]: types and rules with no I/O (ids, catalogue, validation, secrets, keys).
//! - [`store`]: the storage trait and its backends, with their migrations.
//! - [`service`]: the use cases (webhooks, events, logs, tenants, keys), once for every front
//!   door: validate, write through the store, tell the engine.
//! - [`api`]: HTTP routing, authentication, extractors, problem answers.
//! - [`metrics`]: Prometheus counters and the scrape.
//! - [`retention`]: deleting old logs and events in the background.
//! - [`listener`]: accepting and serving connections, within the connection limits.
//! - [`server`]: wiring it together; [`server::run`] serves on a listener until cancelled.
//! - [`cli`]: the command line; `main.rs` only calls [`cli::run`].
//! - [`client`], [`listen`]: the commands for people: API calls and a local receiver.

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod config_file;
pub mod delivery;
pub mod domain;
pub mod keyring;
pub mod listen;
pub mod listener;
pub mod metrics;
pub mod retention;
pub mod server;
pub mod service;
pub mod store;
mod telemetry;

pub use config::ServeConfig;
pub use server::run;
