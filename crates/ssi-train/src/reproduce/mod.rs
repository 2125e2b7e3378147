//! The paper's whole pipeline on one dataset and one evaluation sample — baselines, the three
//! consistency teachers, SSI with each student — written as the paper's Table 2 with the
//! paper's values beside ours, plus the ablations (Table 3, Figures 3 and 4).
//!
//! A [`Request`] becomes a checked [`Plan`]; a [`Pipeline`] then trains its stages (one run
//! folder each under the output folder) and writes the tables. A finished stage (its
//! `test.json` exists) is read back instead of retrained and an unfinished one is resumed, so
//! the same invocation after an interruption continues where it stopped, and stages trained
//! elsewhere (other processes, earlier invocations) are read back into the tables.
//!
//! Modules, each building only on those listed before it: `error`, `paper` (the paper's
//! figures), `plan` (the stages), `render` (tables and charts as text), `run` (training and
//! reading back one stage), `tables` (each table from its stages), `quickstart` (the
//! miniature).

mod error;
mod paper;
mod plan;
pub mod quickstart;
mod render;
mod run;
mod tables;

pub use error::ReproduceError;
pub use paper::{
    METRICS, PAPER_TABLE3, paper_dataset_named, paper_datasets, paper_ndcg10, paper_rows,
};
pub use plan::{Ablation, ImitationOptions, Plan, Request, Stage, base_settings, student_runs};
pub use render::{Figure, Row, Table, bar_chart, line_chart};
pub use run::{Output, ReproduceObserver, Workspace};

use crate::RunDir;
use run::Runner;

/// A plan being carried out in a workspace.
pub struct Pipeline<'a> {
    runner: Runner<'a>,
}

impl<'a> Pipeline<'a> {
    /// Creates the output folder; nothing is trained yet.
    pub fn open(
        plan: &'a Plan,
        workspace: Workspace<'a>,
        obs: &'a mut dyn ReproduceObserver,
    ) -> Result<Self, ReproduceError> {
        if workspace.out.join("config.json").exists() {
            return Err(ReproduceError::OutIsRun {
                path: workspace.out.clone(),
            });
        }
        std::fs::create_dir_all(&workspace.out).map_err(|e| ReproduceError::CreateOut {
            path: workspace.out.clone(),
            source: e,
        })?;
        run::check_outputs(&workspace.out)?;
        Ok(Pipeline {
            runner: Runner {
                plan,
                ws: workspace,
                obs,
            },
        })
    }

    /// Trains (or resumes, or reads back) the one stage named `name`, writing no table: what
    /// one of several processes sharing the output folder does.
    pub fn train_stage(&mut self, name: &str) -> Result<(), ReproduceError> {
        let plan = self.runner.plan;
        let stage = plan.stage(name)?;
        let out = &self.runner.ws.out;
        // A teacher or start still training would be imitated, or started from, as it is now.
        if !RunDir::new(out.join(name)).has_result()
            && let Some(dep) = stage
                .deps()
                .into_iter()
                .find(|d| !RunDir::new(out.join(d)).has_result())
        {
            return Err(ReproduceError::Unfinished {
                stage: name.into(),
                needs: out.join(dep),
            });
        }
        self.runner.run(stage).map(drop)
    }

    /// Checks every stage already in the output folder against the plan (dataset, settings,
    /// imitation options, start) before anything trains: processes of `--jobs` skip finished
    /// stages, and a mismatch found only at the end would come after hours of training on it.
    pub fn check_existing(&self) -> Result<(), ReproduceError> {
        let r = &self.runner;
        for s in r.plan.stages() {
            r.check_existing(s, &r.ws.out.join(&s.name))?;
        }
        // The tables also read runs this command does not train: none may be of another
        // dataset (found only when the tables are written, after the training).
        let here = crate::checkpoint::DatasetInfo::of(r.ws.dataset, r.ws.data_path.as_deref());
        for entry in std::fs::read_dir(&r.ws.out).into_iter().flatten().flatten() {
            let run = RunDir::new(entry.path());
            if run.has_run()
                && let Ok(cfg) = run.config()
            {
                cfg.dataset
                    .check_same(&here, &run.path.display().to_string())?;
            }
        }
        Ok(())
    }

    /// Trains every stage not finished yet, in the plan's order, and writes Table 2 and the
    /// ablations asked for; returns Table 2's rows.
    pub fn finish(mut self) -> Result<Vec<Row>, ReproduceError> {
        let r = &mut self.runner;
        let plan = r.plan;
        let ablations = &plan.request().ablations;
        let teach = plan.table2_teachers();
        let rows = tables::table2(r, &teach)?;
        let find = |label: &str| rows.iter().find(|r| r.label == label);
        // With a warm start the ablations' students continue HGN's run: their reference is
        // HGN continued alone as long.
        let hgn = if plan.request().warm_start {
            find("HGN (continued)")
        } else {
            find("HGN")
        };
        if ablations.contains(&Ablation::Imitation) {
            tables::table3(r, &teach, find("SSI"), hgn)?;
        }
        if ablations.contains(&Ablation::Teachers) {
            tables::figure3(r, &teach, find("SSI"), hgn)?;
        }
        if ablations.contains(&Ablation::Layers) {
            tables::figure4(r)?;
        }
        // An ablation may train a model Table 2 has a row for (Figure 4's BERT4Rec or SASRec
        // baseline): written again, the table has it in this run, not only in the next.
        if !ablations.is_empty() {
            return tables::table2(r, &teach);
        }
        Ok(rows)
    }
}
