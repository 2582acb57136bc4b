//! Routes other than inference (which is the pipeline's).

pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod models;
