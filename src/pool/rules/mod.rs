//! The pool's decisions as pure functions over plain observations: which nodes the upgrade
//! takes next and in what order, when failures stop it, what registration does with a node,
//! when a drain is over. The async commands (`upgrade`, `register`, `drain`) observe the
//! balancer, the journal and the nodes, ask these rules, and carry out the answer; so every
//! rule is tested here, row by row, without a lab.

pub mod drain;
pub mod enable;
pub mod failures;
pub mod hands_off;
pub mod next_batch;
pub mod order;
pub mod registration;
pub mod resume;
pub mod stop;

#[cfg(test)]
mod scenarios;
