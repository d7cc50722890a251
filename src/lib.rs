//! mountprop: keeps a node's mount propagation the way Kubernetes `mountPropagation` needs it.
//!
//! The engine is observe → plan → act → verify ([`engine`]): [`observe`] reads systemd, `/proc`
//! and unit files into plain data, [`plan`] judges it (pure), [`act`] carries the plan out, and
//! a second observation verifies what really happened.

pub mod act;
pub mod atomicfile;
pub mod config;
pub mod daemon;
pub mod dropin;
pub mod engine;
pub mod guard;
pub mod image;
pub mod logging;
pub mod metrics;
pub mod modes;
pub mod mountinfo;
pub mod notify;
pub mod observe;
pub mod plan;
pub mod probe;
pub mod ratelimit;
pub mod report;
pub mod revert;
pub mod state;
pub mod statmount;
pub mod systemd;
pub mod unitfile;
pub mod watch;
