//! Black-box tests: the real server on a random port, a fresh SQLite file per test, spoken to
//! over HTTP exactly as a client would.

#[macro_use]
mod helpers;

mod auth;
mod crash;
mod delivery;
mod errors;
mod isolation;
mod lifecycle;
mod persistence;
mod quickstart;
mod receiver;
mod ssrf;
mod tenants;
mod validation;
mod webhooks;
