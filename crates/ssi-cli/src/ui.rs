//! Progress bars and load reports on stderr, so stdout stays machine-readable.

use indicatif::{ProgressBar, ProgressStyle};
use ssi_data::LoadReport;

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
