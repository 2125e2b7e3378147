//! `ssi`: the command-line front end of the SSI reference implementation.

mod cmd_data;
mod cmd_eval;
mod fetch;
mod source;
mod ui;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ssi",
    version,
    about = "Self-Supervised Imitation for sequential recommendation (Yuan et al., IJCAI 2021)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job on the embedded synthetic shop: generate it, evaluate the recommenders, print a table.
    Quickstart(cmd_eval::QuickstartArgs),
    /// Datasets: generate, inspect, ingest, download.
    #[command(subcommand)]
    Data(cmd_data::DataCommand),
    /// Evaluate a recommender with the paper's protocol (sampled-99) and full ranking.
    Eval(cmd_eval::EvalArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Quickstart(a) => cmd_eval::quickstart(a),
        Command::Data(c) => cmd_data::run(c),
        Command::Eval(a) => cmd_eval::eval(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
