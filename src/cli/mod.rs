//! What the command line adds on top of the engine: reports, `mountprop revert`, logging.

pub mod logging;
pub mod report;
pub mod revert;
