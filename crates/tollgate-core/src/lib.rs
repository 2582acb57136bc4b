//! Tollgate's foundations, shared by every other crate: the configuration (raw serde form and
//! the validated runtime form), the provider table, the gateway error, and ids.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod config;
pub mod duration;
pub mod endpoint;
pub mod env;
pub mod error;
pub mod ids;
pub mod provider;
pub mod wildcard;
pub mod worker;
