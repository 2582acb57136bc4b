//! Request policy: who is calling, and whether they may.
#![forbid(unsafe_code)]

pub mod auth;
pub mod budgets;
pub mod directory;
pub mod keys;
pub mod limits;
pub mod management;
pub mod shared;
