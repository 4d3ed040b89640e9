//! The subcommands other than `riptide test` (which is [`crate::run`]): each module holds one
//! command's options (clap) and its body.

pub mod admin;
pub mod analyze;
pub mod bench;
pub mod campaign;
pub mod check;
pub mod check_report;
pub mod cluster;
pub mod compare;
pub mod conform;
pub mod prune;
pub mod serve;
pub mod zoo;
