//! Anthropic's Messages format: as a provider (`outbound`), as a client format (`inbound`),
//! the observer for Anthropic-to-Anthropic passthrough, and its error bodies.

pub mod errors;
pub mod inbound;
pub mod observer;
pub mod outbound;
pub mod platform;
