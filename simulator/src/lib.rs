//! Simulated miners and fake Foreman.
