//! Types and rules with no I/O: identifiers, time, the event catalogue, webhook validation,
//! secrets and API keys. Everything here is unit tested without a database or a socket.

pub mod apikey;
pub mod catalog;
pub mod crypto;
pub mod cursor;
pub mod delivery;
pub mod egress;
pub mod event;
pub mod filter;
pub mod headers;
pub mod health;
pub mod id;
pub mod input;
pub mod json;
pub mod operational;
pub mod pace;
pub mod recovery;
pub mod registry;
pub mod retry;
pub mod secret;
pub mod tenant;
pub mod time;
pub mod webhook;
