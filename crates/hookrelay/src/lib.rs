//! hookrelay: a self-hosted webhook delivery service.
//!
//! Layout, from the bottom up (a module imports only those listed above it, and its siblings
//! at the same level; docs/architecture.md draws it):
//! - [`domain`]: types and rules with no I/O (ids, catalogue, validation, secrets, keys, the
//!   egress policy, retry schedules).
//! - [`config`]: the server's settings as resolved (`ServeConfig` and the settings each part
//!   reads); [`config_file`]: `hookrelay.toml`, layered under the environment and the flags.
//! - [`telemetry`]: logging and tracing.
//! - [`keyring`]: where the keys that seal secrets at rest come from.
//! - [`store`]: the storage trait and its backends, with their migrations.
//! - [`egress`]: the SSRF guard at connection time, and the resolver it checks.
//! - [`metrics`]: Prometheus counters and the scrape.
//! - [`delivery`]: the engine: ingest, the durable queue, attempts, retries.
//! - [`retention`]: deleting old logs and events in the background.
//! - [`service`]: the use cases (webhooks, events, logs, tenants, keys), once for every front
//!   door: validate, write through the store, tell the engine.
//! - [`api`]: HTTP routing, authentication, extractors, problem answers, the OpenAPI document.
//! - [`listener`]: accepting and serving connections, within the connection limits.
//! - [`server`]: wiring it together; [`server::run`] serves on a listener until cancelled.
//! - [`client`], [`listen`]: the commands for people: API calls and a local receiver.
//! - [`cli`]: the command line; `main.rs` only calls [`cli::run`].

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod config_file;
pub mod delivery;
pub mod domain;
pub mod egress;
pub mod keyring;
pub mod listen;
pub mod listener;
pub mod metrics;
pub mod retention;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;

pub use config::ServeConfig;
pub use server::run;
