//! mountprop: keeps a node's mount propagation the way Kubernetes `mountPropagation` needs it.
//!
//! The engine is observe → plan → act → verify ([`engine`]): [`observe`] reads systemd, `/proc`
//! and unit files into plain data, [`plan`] judges it (pure), [`act`] carries the plan out, and
//! a second observation verifies what really happened.

#[cfg(feature = "node")]
pub mod act;
#[cfg(feature = "node")]
pub mod atomicfile;
pub mod config;
#[cfg(feature = "node")]
pub mod containers;
#[cfg(feature = "node")]
pub mod daemon;
#[cfg(feature = "node")]
pub mod dropin;
#[cfg(feature = "node")]
pub mod engine;
#[cfg(feature = "node")]
pub mod guard;
#[cfg(feature = "node")]
pub mod image;
#[cfg(feature = "node")]
pub mod logging;
#[cfg(feature = "node")]
pub mod metrics;
#[cfg(feature = "node")]
pub mod modes;
pub mod mountinfo;
#[cfg(feature = "node")]
pub mod namespacing;
#[cfg(feature = "node")]
pub mod notify;
#[cfg(feature = "node")]
pub mod observe;
#[cfg(feature = "node")]
pub mod plan;
#[cfg(feature = "node")]
pub mod probe;
#[cfg(feature = "node")]
pub mod ratelimit;
#[cfg(feature = "node")]
pub mod report;
#[cfg(feature = "node")]
pub mod revert;
#[cfg(feature = "node")]
pub mod state;
#[cfg(feature = "node")]
pub mod statmount;
#[cfg(feature = "node")]
pub mod systemd;
pub mod unitfile;
#[cfg(feature = "node")]
pub mod watch;
