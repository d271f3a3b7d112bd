//! The pool's state backend (see [`crate::state`], where the inventory's `state:` section is
//! read, below the application layer): the PostgreSQL session lives here.

pub use crate::state::*;

pub mod postgres;
