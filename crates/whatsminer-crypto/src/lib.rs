//! Whatsminer write-path crypto, in one place for both sides of the wire: the agent signs and
//! encrypts its writes with it, and the simulator checks them with it.

pub mod v2;
pub mod v3;
