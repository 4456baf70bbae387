//! Small helpers every layer may use; they own no concept of the product and import
//! nothing from it, so any module can depend on them without a cycle.

pub mod backoff;
pub mod blocking;
pub mod hex;

pub use backoff::backoff;
pub use blocking::{Panicked, blocking};
pub use hex::hex;
