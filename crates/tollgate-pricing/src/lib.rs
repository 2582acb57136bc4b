//! Prices and money. Amounts are integers — nano-dollars for costs and budgets, pico-dollars
//! per token for prices — so sums never drift the way floating point does; decimal text in,
//! decimal text out.
#![forbid(unsafe_code)]

mod catalog;
mod decimal;
mod money;
mod price;
mod usage;

pub use catalog::{CatalogError, PriceCatalog};
pub use money::{Rate, Usd};
pub use price::{ModelPrice, PerSecond, PriceMode, Rates, Tier};
pub use usage::TokenUsage;
