//! The integration suite against PostgreSQL: the same tests as `it`, compiled a second time;
//! `helpers::backend()` tells them apart by crate name.

#[path = "it/main.rs"]
mod it;
