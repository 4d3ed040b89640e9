//! `riptide-node`: one member of a riptide Raft key-value cluster. See `riptide_node::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    riptide_node::cli::run(riptide_node::cli::Args::parse())
}
