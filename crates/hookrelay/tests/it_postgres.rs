//! The integration suite against PostgreSQL: the same tests as `it`, compiled a second time
//! (`helpers::backend()` tells them apart by crate name), plus what only a shared database
//! can do: several nodes, and the database going away.

#[path = "it/main.rs"]
mod it;

mod cluster;
