//! triggers: everything that can make tabs reload, and the one route from a change to the hub.

pub mod build;
mod ignore;
pub mod loop_guard;
pub mod poll;
pub mod watch;

pub use ignore::{BUILTIN_IGNORES, IgnoreRules};
pub use loop_guard::PageLoads;
