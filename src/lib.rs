//! rollout: turns blank machines into a BigBlueButton pool and keeps it upgraded without
//! ending a class. The pipeline is the layout: inventory -> roles/steps -> plan -> exec ->
//! report. Above it, each layer importing only downward: `app` (load, execute, finish a
//! run), `pool` (balancer commands on top of `app`), `command` (every command's run, summary
//! and exit), and `cli` (arguments into those types).

pub mod adhoc;
pub mod app;
pub mod balancer;
pub mod bbb_api;
pub mod bounded;
pub mod check;
pub mod cli;
pub mod connection;
pub mod duration;
pub mod error;
pub mod exec;
pub mod extra_vars;
pub mod http;
pub mod inventory;
pub mod jwt;
pub mod log_file;
pub mod plan;
pub mod pool;
pub mod report;
pub mod retry_file;
pub mod role;
pub mod script;
pub mod secret;
pub mod state;
pub mod step;
pub mod subcommand;
pub mod template;
pub mod vars;
pub mod yaml;
