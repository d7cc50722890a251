//! mountprop: keeps a node's mount propagation the way Kubernetes `mountPropagation` needs it.
//!
//! Three layers, each using only those below it:
//! - [`node`]: what the node is and how it is read and written: the mount table
//!   ([`node::mountinfo`], [`node::statmount`]), unit files ([`node::unitfile`],
//!   [`node::namespacing`]), systemd over D-Bus ([`node::systemd`]), image trees
//!   ([`node::image`]), mountprop's own files ([`node::ownfile`]) and safe writes
//!   ([`node::atomicfile`]).
//! - [`engine`]: observe → plan → act → verify. [`engine::observe`] reads the node into plain
//!   data, [`engine::plan`] judges it (pure; [`engine::modes`] for the Kubernetes modes,
//!   [`engine::dropin`] for the drop-in policy), [`engine::act`] carries the plan out, and a
//!   second observation verifies what really happened; [`engine::probe`] is the live probe.
//! - [`daemon`]: keeps the node fixed: the loop, the paths guard, event sources, the no-fight
//!   limiter, state, metrics, sd_notify.
//!
//! On top, [`cli`] (reports, `revert`, logging) and `main.rs`. [`config`] is read by all.

#[cfg(feature = "node")]
pub mod cli;
pub mod config;
pub mod configdoc;
#[cfg(feature = "node")]
pub mod daemon;
#[cfg(feature = "node")]
pub mod engine;
pub mod escape;
pub mod node;

// The library's public paths from before the layers, which tests, benches and the fuzz
// targets use.
#[cfg(feature = "node")]
pub use cli::{logging, report, revert};
#[cfg(feature = "node")]
pub use daemon::{guard, metrics, notify, ratelimit, state, watch};
#[cfg(feature = "node")]
pub use engine::{act, containers, dropin, modes, observe, plan, probe};
#[cfg(feature = "node")]
pub use node::{atomicfile, image, namespacing, statmount, systemd};
pub use node::{mountinfo, unitfile};
