//! Training the stages of a plan, one at a time in this process: each is trained (or resumed)
//! unless its `test.json` exists, and read back as a row of the tables. A run folder trained
//! another way than the plan asks (another dataset, settings, imitation options or start) is
//! refused rather than read back under the wrong label.

use super::error::ReproduceError;
use super::plan::{ImitationOptions, Plan, Stage};
use super::render::Row;
use crate::checkpoint::{DatasetInfo, RunDir, TrainState};
use crate::config::TrainError;
use crate::job::{Job, differing_settings, train_job};
use crate::trainer::{Silent, TrainObserver};
use burn::tensor::Device;
use ssi_data::{Dataset, EvalConfig, EvalReport, Evaluator, MostPop, Recommender};
use std::path::{Path, PathBuf};

/// The tables and figures `reproduce` writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Output {
    Table2,
    Table3,
    Figure3,
    Figure4,
}

/// Progress of a reproduction: the training of each stage (through [`TrainObserver`]), where
/// stages start and end, and each table written.
pub trait ReproduceObserver: TrainObserver {
    /// A stage starts (or resumes) training in `dir`.
    fn stage_started(&mut self, _label: &str, _dir: &Path) {}
    /// The stage that started last has trained and been evaluated on the test split.
    fn stage_trained(&mut self, _state: &TrainState, _report: &EvalReport) {}
    /// A table or figure has been written; `markdown` is the text of its Markdown file.
    fn written(&mut self, _output: Output, _markdown: &str) {}
}

impl ReproduceObserver for Silent {}

/// Where a plan runs.
pub struct Workspace<'a> {
    pub dataset: &'a Dataset,
    /// The dataset's file (None for the embedded synthetic shop), recorded in every run.
    pub data_path: Option<PathBuf>,
    /// One run folder per stage, the tables and the figures.
    pub out: PathBuf,
    pub device: Device,
    /// The command line of the invocation, kept in each run's `command.txt`.
    pub command: Vec<String>,
}

pub(super) struct Runner<'a> {
    pub(super) plan: &'a Plan,
    pub(super) ws: Workspace<'a>,
    pub(super) obs: &'a mut dyn ReproduceObserver,
}

/// `rec` on the test split: 99 negatives drawn with `seed`, and full ranking.
pub(super) fn evaluate_test_split(
    ds: &Dataset,
    rec: &dyn Recommender,
    seed: u64,
) -> Result<EvalReport, ssi_data::DataError> {
    let cfg = EvalConfig {
        seed,
        ..Default::default()
    };
    Evaluator::new(ds, cfg).evaluate(ds, rec, &mut |_, _| {})
}

impl Runner<'_> {
    /// MostPop's row, evaluated here (it trains in no time) and kept in `mostpop.json`.
    pub(super) fn mostpop(&self) -> Result<Row, ReproduceError> {
        let ds = self.ws.dataset;
        let report = evaluate_test_split(ds, &MostPop::fit(ds), self.plan.request().eval_seed())?;
        let json = serde_json::to_string_pretty(&report.to_json()).expect("JSON values serialise");
        check_output(&self.ws.out, "mostpop.json")?;
        ssi_data::dataset::write_atomic(&self.ws.out.join("mostpop.json"), json.as_bytes())?;
        Ok(Row {
            label: "MostPop".into(),
            metrics: report.to_json(),
            minutes: None,
        })
    }

    /// Trains (or resumes) the stage when `train`, else reads it back only if it has finished
    /// — and was trained as this command asks: one trained otherwise (another invocation's
    /// settings, imitation options or start, or before a default changed) is left out of the
    /// tables, with a notice.
    pub(super) fn run_or_read(
        &mut self,
        s: &Stage,
        train: bool,
    ) -> Result<Option<Row>, ReproduceError> {
        if train {
            return self.run(s).map(Some);
        }
        let dir = self.ws.out.join(&s.name);
        if !RunDir::new(&dir).has_result() {
            if dir.join("test.json").is_file() {
                self.obs.notice(&format!(
                    "left out of the tables: {} trains on (its test.json is of an earlier stop); finish it with `ssi train --resume --out` it, or ask this command for its stage",
                    dir.display()
                ));
            }
            return Ok(None);
        }
        match self.run(s) {
            Err(
                e @ (ReproduceError::OtherSettings { .. }
                | ReproduceError::OtherImitation { .. }
                | ReproduceError::OtherTeachers { .. }
                | ReproduceError::OtherStart { .. }),
            ) => {
                self.obs.notice(&format!("left out of the tables: {e}"));
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// The stage's row: read back if it has finished, else trained (or resumed) first.
    pub(super) fn run(&mut self, s: &Stage) -> Result<Row, ReproduceError> {
        let dir = self.ws.out.join(&s.name);
        self.check_existing(s, &dir)?;
        let test = dir.join("test.json");
        if !RunDir::new(&dir).has_every_result() {
            self.train(s, &dir)?;
        }
        let text = std::fs::read_to_string(&test).map_err(|e| ReproduceError::ReadResult {
            path: test.clone(),
            source: e,
        })?;
        let metrics = serde_json::from_str(&text).map_err(|e| ReproduceError::ResultJson {
            path: test.clone(),
            source: e,
        })?;
        // The figures of the run's own test split, as `ssi report` reads them.
        crate::report::check_test_json(&metrics, &RunDir::new(&dir).config()?).map_err(|e| {
            crate::config::TrainError::Config(format!(
                "{}/{e}; delete that file and run this command again: the run is evaluated again",
                dir.display()
            ))
        })?;
        let minutes = RunDir::new(&dir)
            .state()
            .ok()
            .map(|st| st.train_seconds / 60.0);
        Ok(Row {
            label: s.label.clone(),
            metrics,
            minutes,
        })
    }

    /// A run already in `dir` must be the stage's: same dataset, settings, imitation options
    /// and start.
    pub(super) fn check_existing(&self, s: &Stage, dir: &Path) -> Result<(), ReproduceError> {
        let run = RunDir::new(dir);
        if !run.has_run() {
            // What would stop this stage when its turn comes: found before any stage trains.
            if let Some(what) = ssi_data::files::not_a_folder(dir) {
                return Err(ReproduceError::Train(TrainError::Config(format!(
                    "{} is {what}, where stage {} trains: move it away, or choose another --out",
                    dir.display(),
                    s.name
                ))));
            }
            if dir.is_dir() {
                crate::job::refuse_foreign_run_files(dir)?;
            }
            return Ok(());
        }
        let cfg = run.config()?;
        cfg.dataset.check_same(
            &DatasetInfo::of(self.ws.dataset, self.ws.data_path.as_deref()),
            &dir.display().to_string(),
        )?;
        let asked = self.plan.request().imitation;
        if s.distill.is_some()
            && let Some(spec) = &cfg.distill
            && ImitationOptions::of(&spec.imitation) != asked
        {
            return Err(ReproduceError::OtherImitation {
                dir: dir.to_path_buf(),
                trained: ImitationOptions::of(&spec.imitation).flags(),
                asked: asked.flags(),
            });
        }
        if cfg.init_from.is_some() != s.init.is_some() {
            // A teacher's start is set by the warm start and --teachers-from-scratch, a
            // student's by the warm start.
            let teacher = s.name.contains("teacher-");
            let (was, asked) = match (s.init.is_some(), teacher) {
                (true, true) => (
                    "from scratch (the paper's pipeline, or --teachers-from-scratch)",
                    "teachers that continue their model's run (--warm-start or --preset best, without --teachers-from-scratch)",
                ),
                (true, false) => (
                    "from scratch",
                    "a warm start (--warm-start or --preset best)",
                ),
                (false, true) => (
                    "from another run (--warm-start or --preset best)",
                    "teachers from scratch (the paper's pipeline, or --teachers-from-scratch)",
                ),
                (false, false) => (
                    "from another run (--warm-start or --preset best)",
                    "a run from scratch",
                ),
            };
            return Err(ReproduceError::OtherStart {
                dir: dir.to_path_buf(),
                was,
                asked,
            });
        }
        // A finished run is read back as it is; an unfinished one is resumed, where new
        // stopping limits are allowed and any other change is refused (`train_job`).
        if !run.has_every_result() {
            return Ok(crate::job::resume_limits_cover(
                self.ws.dataset,
                &self.job(s, dir),
            )?);
        }
        if let Some(spec) = &cfg.distill
            && let Err(e) = crate::job::teachers_unchanged(spec)
        {
            return Err(ReproduceError::OtherTeachers {
                dir: dir.to_path_buf(),
                detail: format!(
                    "{e}; move this run away to train it again from its teachers as they are now"
                ),
            });
        }
        let differ = differing_settings(self.ws.dataset, &self.job(s, dir))?;
        if !differ.is_empty() {
            return Err(ReproduceError::OtherSettings {
                dir: dir.to_path_buf(),
                differ,
                hint: format!(
                    "give the settings it was trained with (its command is in {}) to read it back, or use another --out",
                    dir.join("command.txt").display()
                ),
            });
        }
        Ok(())
    }

    /// The training job of stage `s` in `dir`.
    fn job(&self, s: &Stage, dir: &Path) -> Job {
        let out = &self.ws.out;
        let imitation = self.plan.request().imitation;
        Job {
            kind: s.kind,
            settings: self.plan.settings_of(s),
            data_path: self.ws.data_path.clone(),
            device: self.ws.device.clone(),
            out: dir.to_path_buf(),
            // An S3-Rec stage cut off in its pre-training resumes it.
            resume: RunDir::new(dir).has_run()
                || RunDir::new(dir.join(crate::stages::PRETRAIN_DIR)).has_run(),
            init: s.init.as_ref().map(|i| out.join(i)),
            distill: s.distill.as_ref().map(|(t, base)| {
                (
                    t.iter().map(|t| out.join(t)).collect(),
                    imitation.apply(base),
                )
            }),
            command: self.ws.command.clone(),
        }
    }

    fn train(&mut self, s: &Stage, dir: &Path) -> Result<(), ReproduceError> {
        self.obs.stage_started(&s.label, dir);
        let job = self.job(s, dir);
        let (state, report) = train_job(self.ws.dataset, &job, &mut *self.obs)?;
        self.obs.stage_trained(&state, &report);
        Ok(())
    }

    /// A sentence for the tables when the imitation options differ from the paper's reading.
    pub(super) fn imitation_note(&self) -> String {
        let imitation = self.plan.request().imitation;
        if imitation.is_faithful() {
            return String::new();
        }
        format!(
            " SSI students imitate with {} (not the faithful default).",
            imitation.flags()
        )
    }

    /// Writes `files` (name, text) into the output folder, then tells the observer.
    pub(super) fn write(
        &mut self,
        output: Output,
        files: &[(String, &str)],
        markdown: &str,
    ) -> Result<(), ReproduceError> {
        // All checked before any is written.
        for (name, _) in files {
            debug_assert!(OUTPUTS.contains(&name.as_str()), "{name} is not in OUTPUTS");
            check_output(&self.ws.out, name)?;
        }
        for (name, text) in files {
            ssi_data::dataset::write_atomic(&self.ws.out.join(name), text.as_bytes())?;
        }
        self.obs.written(output, markdown);
        Ok(())
    }
}

/// The files `reproduce` writes into its output folder beside the run folders.
const OUTPUTS: [&str; 12] = [
    "mostpop.json",
    "summary.md",
    "table2.md",
    "table2.csv",
    "table3.md",
    "table3.csv",
    "figure3.md",
    "figure3.csv",
    "figure3.svg",
    "figure4.md",
    "figure4.csv",
    "figure4.svg",
];

/// Whether `bytes`, found where the output `name` goes, is one `reproduce` wrote: MostPop's
/// result, a Markdown table or figure page, a CSV with one of its headers, or an SVG chart.
fn generated(name: &str, bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("json") => serde_json::from_slice::<serde_json::Value>(bytes)
            .is_ok_and(|v| v.get("ndcg@10").is_some()),
        Some("md") => [
            "# Table 2 on ",
            "# Table 3: effect of",
            "# Figure 3 (",
            "# Figure 4 (",
            super::quickstart::SUMMARY_TITLE,
        ]
        .iter()
        .any(|h| text.starts_with(h)),
        Some("csv") => ["dataset,model,metric,", "variant,", "series,"]
            .iter()
            .any(|h| text.starts_with(h)),
        Some("svg") => {
            text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
                && text.trim_end().ends_with("</svg>")
        }
        _ => false,
    }
}

/// Refuses an output folder where a file `reproduce` would write is one it did not write:
/// checked before anything trains, and again before each write.
pub(super) fn check_outputs(out: &Path) -> Result<(), ReproduceError> {
    for name in OUTPUTS {
        check_output(out, name)?;
    }
    Ok(())
}

pub(super) fn check_output(out: &Path, name: &str) -> Result<(), ReproduceError> {
    ssi_data::dataset::check_replaceable(
        &out.join(name),
        "ssi reproduce` or `ssi quickstart",
        |b| generated(name, b),
    )?;
    Ok(())
}
