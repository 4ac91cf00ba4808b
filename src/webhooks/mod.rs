//! Signed webhooks: endpoints that hear about decisions and permission
//! changes, without polling.
//!
//! An admin registers an endpoint (URL, event types, description); Ladder
//! makes its secret (shown once, rotatable). Each change that is an event
//! (`events`) queues one delivery per subscribed endpoint in the
//! transaction of the change, like email. The worker (`worker`) sends them,
//! signed as Standard Webhooks 1.0 says (`signature`), retries with
//! backoff, and keeps each endpoint's deliveries about one subject in
//! order. Targets on non-public addresses are refused (`target`).

mod deliveries;
mod endpoints;
pub mod events;
pub mod signature;
pub mod target;
pub mod worker;

pub use deliveries::*;
pub use endpoints::*;
