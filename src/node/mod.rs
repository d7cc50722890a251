//! What the node is, and how mountprop reads and writes it. Nothing here judges anything.

#[cfg(feature = "node")]
pub mod atomicfile;
#[cfg(feature = "node")]
pub mod bounded;
#[cfg(feature = "node")]
pub mod fdmount;
#[cfg(feature = "node")]
pub mod hostns;
#[cfg(feature = "node")]
pub mod image;
pub mod mountinfo;
#[cfg(feature = "node")]
pub mod namespacing;
pub mod ocispec;
#[cfg(feature = "node")]
pub mod ownfile;
#[cfg(feature = "node")]
pub mod procscan;
#[cfg(feature = "node")]
pub mod statmount;
#[cfg(feature = "node")]
pub mod systemd;
pub mod unitfile;
#[cfg(feature = "node")]
pub mod unitfiles;
