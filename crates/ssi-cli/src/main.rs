//! `ssi`: the command-line front end of the SSI reference implementation.

/// `print!` that ends the program with a message, not a panic, when standard output fails (a full
/// disk, a closed file).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

/// `eprintln!` that never panics: a message that cannot be written to a closed or full standard
/// error is dropped.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `println!` with the failure handling of [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

mod cmd_bench;
mod cmd_data;
mod cmd_eval;
mod cmd_export;
mod cmd_predict;
mod cmd_quickstart;
mod cmd_report;
mod cmd_reproduce;
mod cmd_train;
mod fetch;
mod jobs;
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
    /// The main job in miniature (~4 min on 2 cores): consistency teachers, an SSI student, the student alone, MostPop and Markov, a table and a bundle for the page.
    Quickstart(cmd_quickstart::QuickstartArgs),
    /// Datasets: generate, inspect, ingest, download.
    #[command(subcommand)]
    Data(cmd_data::DataCommand),
    /// Evaluate a recommender with the paper's protocol (sampled-99) and full ranking.
    Eval(cmd_eval::EvalArgs),
    /// Train a model (SASRec, BERT4Rec, GRU4Rec, HGN, S3-Rec, GREC; checkpointed, resumable), then evaluate on the test split.
    Train(cmd_train::TrainArgs),
    /// Pre-train an SSI teacher: BERT4Rec with a consistency task (temporal, persona or global).
    Pretrain(cmd_train::PretrainArgs),
    /// Self-supervised imitation: distil trained teachers into a student (HGN, GRU4Rec, SASRec).
    Distill(cmd_train::DistillArgs),
    /// The paper's pipeline on one dataset: baselines, teachers, SSI; Table 2 (+ ablations) vs the paper.
    Reproduce(cmd_reproduce::ReproduceArgs),
    /// One results page from run folders: docs/results/table2.csv and README.md (both protocols, minutes, paper and best published figures).
    Report(cmd_report::ReportArgs),
    /// Write a trained run as a bundle for the browser app (weights, config, catalogue, metadata).
    Export(cmd_export::ExportArgs),
    /// The next items a bundle recommends after a sequence of item ids.
    Predict(cmd_predict::PredictArgs),
    /// Measure training throughput and inference latency of the models on a backend.
    Bench(cmd_bench::BenchArgs),
}

fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        errln!("error: cannot write to standard output: {e}");
    }
    std::process::exit(1);
}

/// glibc hands every large buffer back to the OS when it is freed (a CPU training step's
/// [positions × items] logits are hundreds of MB) and page-faults a fresh one on the next
/// allocation: about a fifth of a step in `perf`. Keeping freed memory in the heap makes CPU
/// training steps 1.4–1.7× faster for about 40 % more peak memory (docs/results/bench.md);
/// `keep = false` restores glibc's defaults (`ssi bench --freed-memory return`).
pub fn keep_freed_memory(keep: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds.
    unsafe {
        let (mmap_max, trim) = if keep {
            (0, libc::c_int::MAX)
        } else {
            (65_536, 128 * 1024) // glibc's defaults
        };
        libc::mallopt(libc::M_MMAP_MAX, mmap_max);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = keep;
}

/// This process's command line as a run records it (`command.txt`): an argument that is not
/// UTF-8 is recorded lossily, since the record is for reading; the run uses the paths as given.
pub fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// `--seed -3` is a value that its option refuses by name ("invalid value '-3' for '--seed'"),
/// not clap's "unexpected argument '-3'", which names no option; no option of ours is a number.
fn negative_numbers_are_values(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| {
        if a.get_action().takes_values() {
            a.allow_negative_numbers(true)
        } else {
            a
        }
    })
    .mut_subcommands(negative_numbers_are_values)
}

fn main() {
    // `ssi ... | head` ends quietly when the reader goes away, as other Unix tools do, instead of
    // panicking on the failed write (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory(true);
    // Help, version and usage errors go through the same writers as everything else, so a full
    // disk or a closed stream is reported (exit 1) instead of being ignored.
    let cli = match negative_numbers_are_values(<Cli as clap::CommandFactory>::command())
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                errln!("{}", text.trim_end());
            } else {
                outln!("{}", text.trim_end());
            }
            std::process::exit(e.exit_code());
        }
    };
    let result = match cli.command {
        Command::Quickstart(a) => cmd_quickstart::quickstart(a),
        Command::Data(c) => cmd_data::run(c),
        Command::Eval(a) => cmd_eval::eval(a),
        Command::Train(a) => cmd_train::train(a),
        Command::Pretrain(a) => cmd_train::pretrain(a),
        Command::Distill(a) => cmd_train::distill(a),
        Command::Reproduce(a) => cmd_reproduce::reproduce(a),
        Command::Report(a) => cmd_report::report(a),
        Command::Export(a) => cmd_export::export(a),
        Command::Predict(a) => cmd_predict::predict(a),
        Command::Bench(a) => cmd_bench::bench(a),
    };
    if let Err(e) = result {
        errln!("error: {e:#}");
        std::process::exit(1);
    }
    // Buffered output that cannot be written is an error too.
    if let Err(e) = std::io::Write::flush(&mut std::io::stdout()) {
        stdout_failed(e);
    }
}
