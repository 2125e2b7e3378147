//! The main job in miniature: three consistency teachers continuing a BERT4Rec run, a student
//! imitating them, the same student continued alone from the same weights, and, for scale,
//! MostPop and a Markov chain, all evaluated with one test sample.

use super::error::ReproduceError;
use super::plan::{ImitationOptions, Request, preset_settings, student_runs};
use super::run::evaluate_test_split;
use crate::checkpoint::{DatasetInfo, RunDir};
use crate::config::TrainError;
use crate::recommender::ModelRecommender;
use crate::settings::Setting;
use burn::tensor::Device;
use ssi_data::{Dataset, EvalReport, MarkovChain, MostPop, Recommender};
use ssi_models::ModelKind;
use ssi_models::consistency::ConsistencyTask;
use std::path::Path;

/// Runs of the miniature: BERT4Rec, three teachers, the student alone, continued, and SSI.
pub const RUNS: usize = 7;

/// Seed of the summary's test sample, the same for every row.
const SEED: u64 = 42;

/// How long each run of the miniature trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// At most this many epochs (the stopping rule may end a run sooner): the same table on
    /// every machine, however fast or busy.
    Epochs(usize),
    /// This many minutes of training: more epochs on a faster or idler machine, so the table
    /// depends on both.
    Minutes(f64),
}

impl Budget {
    /// 16 epochs: at most about a minute and a half per run on one core of the 2-core machines
    /// the project is measured on (a teacher 4–5 s an epoch on the shop, BERT4Rec 3 s, SSI-HGN
    /// 1.5 s, HGN 0.4 s), so the miniature takes about 4 minutes with two runs at once.
    pub const DEFAULT: Budget = Budget::Epochs(16);

    fn setting(self) -> String {
        match self {
            Budget::Epochs(n) => format!("epochs={n}"),
            Budget::Minutes(m) => format!("time_budget_minutes={m}"),
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Epochs(1) => write!(f, "1 epoch"),
            Budget::Epochs(n) => write!(f, "{n} epochs"),
            Budget::Minutes(m) => write!(f, "{m} min"),
        }
    }
}

/// The miniature's pipeline: the three teachers, `student` alone and as an SSI student
/// (imitating the teachers' forecast of the next item from the whole history, our best
/// configuration), every run the small preset trained for `budget`.
pub fn request(
    paper_dataset: String,
    budget: Budget,
    student: ModelKind,
) -> Result<Request, TrainError> {
    let mut settings = preset_settings("small");
    // Batches of 64 give a dataset of a few thousand users enough optimiser steps per epoch
    // (256 gives 12 steps an epoch).
    for s in ["batch_size=64".to_string(), budget.setting()] {
        settings.push(Setting::parse(&s)?);
    }
    Ok(Request {
        settings,
        ablations: Vec::new(),
        baselines: vec![ModelKind::Bert4rec, student],
        students: vec![student],
        imitation: ImitationOptions::BEST,
        warm_start: true,
        teachers_from_scratch: false,
        teacher_model: ModelKind::Bert4rec,
        paper_dataset,
    })
}

/// One line of the miniature's summary.
pub struct SummaryRow {
    pub label: String,
    pub report: EvalReport,
    /// Training minutes (None for the count models).
    pub minutes: Option<f64>,
}

/// Test figures of MostPop, the Markov chain and every trained run of the miniature in `out`.
pub fn summary(
    ds: &Dataset,
    out: &Path,
    student: ModelKind,
    device: &Device,
) -> Result<Vec<SummaryRow>, ReproduceError> {
    let mut rows = Vec::new();
    for (label, model) in [
        (
            "MostPop",
            Box::new(MostPop::fit(ds)) as Box<dyn Recommender>,
        ),
        ("Markov chain", Box::new(MarkovChain::fit(ds))),
    ] {
        rows.push(SummaryRow {
            label: label.into(),
            report: evaluate_test_split(ds, model.as_ref(), SEED)?,
            minutes: None,
        });
    }
    for (label, folder) in summary_runs(student) {
        let dir = RunDir::new(out.join(folder));
        let (cfg, model) = dir.load_best(device)?;
        cfg.dataset
            .check_same(&DatasetInfo::of(ds, None), &dir.path.display().to_string())?;
        let report = evaluate_test_split(ds, &ModelRecommender::new(&model), SEED)?;
        let minutes = dir.state().ok().map(|s| s.train_seconds / 60.0);
        rows.push(SummaryRow {
            label,
            report,
            minutes,
        });
    }
    Ok(rows)
}

/// How `summary.md` begins (by which a rerun knows it may replace the file).
pub const SUMMARY_TITLE: &str = "# Quickstart on ";

/// The summary as Markdown: a table of both protocols and minutes, one row per model.
pub fn summary_markdown(dataset: &str, rows: &[SummaryRow]) -> String {
    let mut md = format!(
        "{SUMMARY_TITLE}{dataset}\n\nTest split, one sample of 99 negatives per user (seed {SEED}) for \
         every row; full: against all items; minutes of training.\n\n\
         | model | NDCG@10 | Recall@10 | full NDCG@10 | full Recall@10 | minutes |\n\
         |---|---|---|---|---|---|\n"
    );
    for r in rows {
        let full = r.report.full.as_ref();
        let cell = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.label,
            cell(r.report.sampled.ndcg_at(10)),
            cell(r.report.sampled.recall_at(10)),
            cell(full.and_then(|f| f.ndcg_at(10))),
            cell(full.and_then(|f| f.recall_at(10))),
            r.minutes.map(|m| format!("{m:.1}")).unwrap_or_default(),
        ));
    }
    md
}

/// Writes the summary to `out/summary.md`, replacing only a summary written before.
pub fn write_summary(out: &Path, markdown: &str) -> Result<(), ReproduceError> {
    super::run::check_output(out, "summary.md")?;
    ssi_data::dataset::write_atomic(&out.join("summary.md"), markdown.as_bytes())?;
    Ok(())
}

/// The trained runs of the summary: (label, run folder).
fn summary_runs(student: ModelKind) -> Vec<(String, String)> {
    let (alone, continued, ssi) = student_runs(student);
    let mut runs: Vec<(String, String)> = vec![("BERT4Rec".into(), "bert4rec".into())];
    runs.extend(ConsistencyTask::ALL.iter().map(|t| {
        (
            format!("teacher ({})", t.name()),
            format!("teacher-{}", t.name()),
        )
    }));
    runs.push((format!("{} alone", student.name()), alone));
    runs.push((format!("{} continued", student.name()), continued));
    runs.push((format!("SSI-{}", student.name()), ssi));
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_run_of_the_miniature() {
        let runs = summary_runs(ModelKind::Sasrec);
        assert_eq!(runs.len(), RUNS);
        let folders: Vec<&str> = runs.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(
            folders,
            [
                "bert4rec",
                "teacher-temporal",
                "teacher-persona",
                "teacher-global",
                "sasrec",
                "sasrec-continued",
                "ssi-sasrec"
            ]
        );
    }
}
