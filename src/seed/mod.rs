//! Data generators, not domain code: the blog demo's groups and accounts
//! (`ladder demo`, `serve --demo`), and bulk users and pending requests for
//! demos and benchmarks (`ladder seed --users N --requests M`). They write
//! through the domain modules and the same tables; nothing else depends on them.

pub mod demo;
mod names;
pub mod requests;
mod rng;
pub mod users;

pub use demo::DemoAccount;
pub use requests::{RequestSeedReport, seed_requests};
pub use rng::{Rng, random_seed};
pub use users::{BATCH_ROWS, SeedReport, seed_users};
