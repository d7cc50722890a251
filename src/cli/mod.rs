//! What the command line adds on top of the engine: its definitions (clap's, which the man
//! pages and completions are generated from), reports, `mountprop revert`, logging.

pub mod args;
pub mod logging;
pub mod report;
pub mod revert;
