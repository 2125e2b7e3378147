//! `ssi quickstart`: the main job in miniature — three consistency teachers, a student imitating
//! them, the same student alone, MostPop and a Markov chain, one table, and a bundle for the page.

use crate::cmd_eval::ProtocolArgs;
use crate::cmd_reproduce::{ReproduceArgs, reproduce, student_runs};
use anyhow::Result;
use clap::Args;
use ssi_data::{EvalReport, MarkovChain, MostPop};
use ssi_models::ModelKind;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct QuickstartArgs {
    /// Run on this dataset instead of the embedded synthetic shop.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder: one run folder per model, the table, and the bundle (an existing folder
    /// is continued: finished models are read back). Default: runs/quickstart/DATASET.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Training minutes of each of the seven trained runs.
    #[arg(long, default_value_t = 1.0)]
    minutes: f64,
    /// Models trained at once (each uses about one core).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// The student (the paper's are hgn, gru4rec and sasrec).
    #[arg(long, default_value = "sasrec")]
    student: ModelKind,
    /// A worker of --jobs: train this stage only.
    #[arg(long, hide = true)]
    stage: Option<String>,
}

/// Runs of the miniature: BERT4Rec, three teachers, the student alone, continued, and SSI.
const RUNS: usize = 7;

/// Settings of the miniature, the same for every model: batches of 64 give a dataset of a few
/// thousand users enough optimiser steps per minute (256 gives 12 steps an epoch).
fn settings(minutes: f64) -> Vec<String> {
    vec![
        "batch_size=64".into(),
        format!("time_budget_minutes={minutes}"),
    ]
}

pub fn quickstart(a: QuickstartArgs) -> Result<()> {
    if !(a.minutes.is_finite() && a.minutes > 0.0) {
        anyhow::bail!("--minutes {} must be a positive number", a.minutes);
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| default_out(a.data.as_deref()));
    let pipeline = ReproduceArgs::quickstart(
        a.data.clone(),
        out.clone(),
        settings(a.minutes),
        a.student,
        a.jobs,
        a.stage.clone(),
    );
    if a.stage.is_some() {
        return reproduce(pipeline);
    }
    let ds = crate::source::load(a.data.as_deref(), false)?;
    let st = ds.stats();
    outln!(
        "SSI in miniature on {} ({} users, {} items, {} interactions): BERT4Rec and {s} are \
         trained; three teachers continue the BERT4Rec run, each with one consistency task; \
         then the {s} run continues twice from the same weights, imitating the teachers (SSI) \
         and alone (the reference). MostPop and a Markov chain for scale. {} runs x {} min, \
         {} at once.\n",
        ds.name,
        st.users,
        st.max_item_id,
        st.interactions,
        RUNS,
        a.minutes,
        a.jobs,
        s = a.student.name(),
    );
    reproduce(pipeline)?;

    let rows = evaluate_rows(&ds, &out, a.student)?;
    print_summary(&rows);
    verdict(&rows, a.student);

    let (_, _, ssi) = student_runs(a.student);
    let bundle = out.join("bundle");
    crate::cmd_export::export(crate::cmd_export::ExportArgs::new(
        out.join(&ssi),
        bundle.clone(),
        format!("{} SSI-{}", ds.name, a.student.name()),
    ))?;
    next_steps(&out, &bundle);
    Ok(())
}

/// runs/quickstart/DATASET: the file's name, or `shop` for the embedded shop.
fn default_out(data: Option<&Path>) -> PathBuf {
    let name = match data {
        Some(d) => d
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into()),
        None => "shop".into(),
    };
    PathBuf::from("runs/quickstart").join(name)
}

/// Test figures of MostPop, the Markov chain and every trained run of the miniature.
fn evaluate_rows(
    ds: &ssi_data::Dataset,
    out: &Path,
    student: ModelKind,
) -> Result<Vec<(String, EvalReport, Option<f64>)>> {
    let protocol = ProtocolArgs::default_test(42);
    let (alone, continued, ssi) = student_runs(student);
    let mut rows: Vec<(String, EvalReport, Option<f64>)> = Vec::new();
    for (label, model) in [
        (
            "MostPop",
            Box::new(MostPop::fit(ds)) as Box<dyn ssi_data::Recommender>,
        ),
        ("Markov chain", Box::new(MarkovChain::fit(ds))),
    ] {
        let r = crate::cmd_eval::evaluate(ds, model.as_ref(), &protocol, true)?;
        rows.push((label.into(), r, None));
    }
    let mut runs: Vec<(String, String)> = vec![("BERT4Rec".into(), "bert4rec".into())];
    runs.extend(
        ssi_models::consistency::ConsistencyTask::ALL
            .iter()
            .map(|t| {
                (
                    format!("teacher ({})", t.name()),
                    format!("teacher-{}", t.name()),
                )
            }),
    );
    runs.push((format!("{} alone", student.name()), alone));
    runs.push((format!("{} continued", student.name()), continued));
    runs.push((format!("SSI-{}", student.name()), ssi));
    let device = burn::tensor::Device::flex();
    for (label, folder) in &runs {
        let dir = ssi_train::RunDir::new(out.join(folder));
        let r = crate::cmd_eval::evaluate_checkpoint(&dir, ds, &device, &protocol, true)?;
        let minutes = dir.state().ok().map(|s| s.train_seconds / 60.0);
        rows.push((label.clone(), r, minutes));
    }
    Ok(rows)
}

/// The closing line: the SSI student against the same student continued alone from the same
/// weights for the same time.
fn verdict(rows: &[(String, EvalReport, Option<f64>)], student: ModelKind) {
    let ndcg = |label: &str| {
        rows.iter()
            .find(|r| r.0 == label)
            .and_then(|r| r.1.sampled.ndcg_at(10))
            .unwrap_or(0.0)
    };
    let (s, b) = (
        ndcg(&format!("SSI-{}", student.name())),
        ndcg(&format!("{} continued", student.name())),
    );
    // About the standard error of a difference of NDCG@10 on one test sample of a few
    // thousand users: a smaller gap is no evidence either way.
    const NOISE: f64 = 0.005;
    outln!(
        "\nSSI-{0} vs {0} continued alone (same start, same minutes): {1:+.4} NDCG@10 (sampled). {2}",
        student.name(),
        s - b,
        if s - b > NOISE {
            "Imitating the teachers helped."
        } else if s - b < -NOISE {
            "Imitation did not help here (docs/results/ has the full-size runs)."
        } else {
            "Level within the noise of one test sample; on Beauty the same recipe gains +0.009 \
             (docs/results/ssi-beauty-warm.md)."
        }
    );
}

fn print_summary(rows: &[(String, EvalReport, Option<f64>)]) {
    outln!(
        "\n{:<22} {:>9} {:>9} {:>14} {:>9}",
        "model (test split)",
        "NDCG@10",
        "Recall@10",
        "full NDCG@10",
        "minutes"
    );
    for (label, r, minutes) in rows {
        let full = r.full.as_ref().and_then(|f| f.ndcg_at(10));
        outln!(
            "{:<22} {:>9.4} {:>9.4} {:>14} {:>9}",
            label,
            r.sampled.ndcg_at(10).unwrap_or(0.0),
            r.sampled.recall_at(10).unwrap_or(0.0),
            full.map(|f| format!("{f:.4}")).unwrap_or_default(),
            minutes.map(|m| format!("{m:.1}")).unwrap_or_default()
        );
    }
    outln!("NDCG@10 / Recall@10: the target among 99 sampled negatives; full: among all items.");
}

fn next_steps(out: &Path, bundle: &Path) {
    outln!(
        "\nNext:\n  \
         ssi predict --bundle {b} --history 1,2   # the next items after items 1 and 2\n  \
         trunk serve --release                     # the page (web/README.md); upload {b} there\n  \
         ssi data fetch beauty && ssi quickstart --data ~/.cache/ssi/beauty.txt --minutes 20\n  \
         ssi data ingest log.csv --out data/mine.txt   # your own log: user,item,timestamp\n\
         Runs, table2.md and the bundle are in {o}.",
        b = bundle.join(ssi_bundle::FILE_NAME).display(),
        o = out.display()
    );
}
