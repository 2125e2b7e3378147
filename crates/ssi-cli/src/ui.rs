//! Progress bars (of evaluation, and of training as a `TrainObserver`) and load reports on
//! stderr, so stdout stays machine-readable.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ssi_data::LoadReport;
use ssi_train::{EpochLog, TrainObserver};

pub fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub fn report_skips(report: &LoadReport) {
    for w in &report.warnings {
        errln!("warning: {w}");
    }
    if report.skipped.is_empty() {
        return;
    }
    errln!("note: {} line(s) skipped:", report.skipped.len());
    for s in report.skipped.iter().take(10) {
        errln!("  {s}");
    }
    if report.skipped.len() > 10 {
        errln!("  ... and {} more", report.skipped.len() - 10);
    }
}

/// A training run's progress bar, with a line per epoch (hidden when `quiet`).
pub struct TrainBar {
    pb: ProgressBar,
    quiet: bool,
}

impl TrainBar {
    pub fn new(quiet: bool) -> Self {
        let pb = bar(0, "training");
        pb.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:25}] {pos}/{len} {prefix} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        if quiet {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        TrainBar { pb, quiet }
    }

    pub fn finish(&self) {
        self.pb.finish_and_clear();
    }
}

impl TrainObserver for TrainBar {
    fn notice(&mut self, message: &str) {
        errln!("{message}");
    }
    fn evaluating(&mut self, done: usize, total: usize) {
        if done <= 1 {
            self.pb.reset();
            self.pb.set_length(total as u64);
            self.pb.set_message("evaluating");
            self.pb.set_prefix("");
        }
        self.pb.set_position(done as u64);
    }
    fn epoch_start(&mut self, epoch: usize, steps: usize) {
        self.pb.reset();
        self.pb.set_length(steps as u64);
        self.pb.set_message(format!("epoch {epoch}"));
    }
    fn step(&mut self, step: usize, loss: f32, seqs_per_s: f64) {
        self.pb.set_position(step as u64);
        self.pb
            .set_prefix(format!("loss {loss:.4} {seqs_per_s:.0} seq/s"));
    }
    fn epoch_end(&mut self, log: &EpochLog) {
        if self.quiet {
            return;
        }
        let lambda = log
            .extra
            .get("lambda")
            .and_then(|l| l.as_object())
            .map(|l| {
                let parts: Vec<String> = l
                    .iter()
                    .map(|(k, v)| format!("{k} {:.3}", v.as_f64().unwrap_or(f64::NAN)))
                    .collect();
                format!("  λ: {}", parts.join(", "))
            })
            .unwrap_or_default();
        let valid = log
            .valid_ndcg10
            .map(|v| {
                let full = log
                    .valid_full_ndcg10
                    .map(|f| format!(" (full {f:.4})"))
                    .unwrap_or_default();
                format!(
                    " valid NDCG@10 {v:.4}{full}{}",
                    if log.best { " (best)" } else { "" }
                )
            })
            .unwrap_or_default();
        self.pb.println(format!(
            "epoch {:>3}  loss {:.4}  {:.0} seq/s  {:.1}s{valid}{lambda}",
            log.epoch, log.loss, log.seqs_per_s, log.seconds
        ));
    }
}
