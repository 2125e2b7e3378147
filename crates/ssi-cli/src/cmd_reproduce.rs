//! `ssi reproduce`: the paper's pipeline (`ssi_train::reproduce`) from the command line. The
//! library plans, trains and writes the tables; here are the arguments, the progress on the
//! terminal, and `--jobs`, which trains stages in processes of their own (`jobs.rs`).

use crate::ui::TrainBar;
use anyhow::Result;
use clap::{Args, ValueEnum};
use ssi_data::{Dataset, EvalReport};
use ssi_models::ModelKind;
use ssi_models::imitation::ImitationPoints;
use ssi_train::checkpoint::TrainState;
use ssi_train::reproduce::{
    self, ImitationOptions, Output, Pipeline, Plan, ReproduceObserver, Request, Workspace,
};
use ssi_train::{EpochLog, Setting, TrainObserver};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ablation {
    /// Table 3: without item-representation imitation, without prediction imitation, without both.
    Imitation,
    /// Figure 3: one teacher at a time.
    Teachers,
    /// Figure 4: BERT4Rec and SSI with 1, 2, 4 and 8 self-attention layers.
    Layers,
}

#[derive(Args)]
pub struct ReproduceArgs {
    /// S3-Rec format file (e.g. ../shared/data/beauty.txt); omit for the embedded synthetic shop.
    #[arg(long)]
    data: Option<PathBuf>,
    /// small (hidden 64, 2 layers, 2 heads), paper (256, 8, 4), or a JSON settings file.
    #[arg(long, default_value = "small")]
    config: String,
    /// A setting for every run whose model has it (a key no model has is an error), e.g. --set
    /// time_budget_minutes=20 or --set layers=1; MODEL.KEY=VALUE for one model (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Output folder: one run folder per model, tables and plots (default runs/reproduce-NAME).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Ablations to run besides Table 2 (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    ablation: Vec<Ablation>,
    /// Baselines of Table 2 to train, comma-separated; `--baselines` with no value trains none.
    /// Finished runs of the others in --out are read back into the table all the same.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_value = "s3rec,grec,gru4rec,bert4rec,hgn,sasrec"
    )]
    baselines: Vec<ModelKind>,
    /// Students of SSI, comma-separated (hgn is the paper's SSI, gru4rec its SSI_GRU4Rec);
    /// `--students` with no value trains none, nor the teachers unless an ablation needs them.
    /// Finished runs of the others in --out are read back into the table.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_value = "hgn,gru4rec,sasrec"
    )]
    students: Vec<ModelKind>,
    /// Dataset name in the paper's table (default: the file's name, e.g. beauty).
    #[arg(long)]
    paper_dataset: Option<String>,
    /// cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Train this many stages at once, each in its own `ssi` process (a stage starts once the
    /// teachers it imitates have finished). Each process uses about one core, so 2 on a
    /// 2-core machine; wall-clock budgets (`time_budget_minutes`) then buy fewer epochs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// faithful: the paper's pipeline as written (the default; the four options below tune
    /// it). best: our best configuration, the same for every dataset — warm starts, imitation
    /// of the next item from the whole history at T = 4 (`--warm-start --imitation-points next
    /// --teacher-full-history --temperature 4`; docs/ssi.md).
    #[arg(long, value_enum, default_value = "faithful")]
    preset: Preset,
    /// Where every SSI student imitates its teachers, as `ssi distill --imitation-points`:
    /// target (the faithful reading, default), next or both.
    #[arg(long)]
    imitation_points: Option<ImitationPoints>,
    /// Teachers of every SSI student read the whole training history, as
    /// `ssi distill --teacher-full-history` (off by default: they read the student's input).
    #[arg(long)]
    teacher_full_history: bool,
    /// Softmax temperature of eq. 5 for every SSI student, as `ssi distill --temperature`
    /// (1, the paper's, by default).
    #[arg(long, value_parser = crate::cmd_train::parse_temperature)]
    temperature: Option<f64>,
    /// Beyond the paper: each teacher starts from the BERT4Rec run and continues with its
    /// consistency task, each SSI student starts from its own run alone, and that run is also
    /// continued alone from the same weights (`STUDENT-continued`), the same-run reference the
    /// SSI student is compared with (`ssi train --init`; docs/ssi.md).
    #[arg(long)]
    warm_start: bool,
    /// With a warm start (--warm-start, --preset best): the three teachers train from scratch,
    /// with seeds of their own (the run seed + 1, + 2, + 3), instead of continuing their
    /// model's run; the students still start from their own runs. Beyond the paper, not yet
    /// measured end to end: independently trained models make a stronger committee to imitate
    /// (docs/results/ssi-sasrec-teachers.md).
    #[arg(long)]
    teachers_from_scratch: bool,
    /// The model of the three consistency teachers: bert4rec (the paper's) or sasrec (beyond
    /// the paper: SASRec's next-item loss plus the consistency task; with a warm start the
    /// teachers continue the SASRec run). Works with either preset.
    #[arg(long, value_enum, default_value = "bert4rec")]
    teacher_model: TeacherModel,
    /// Train only the named stage (run folder name) of this invocation: what --jobs runs.
    #[arg(long, hide = true)]
    stage: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TeacherModel {
    Bert4rec,
    Sasrec,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    Faithful,
    Best,
}

impl From<Ablation> for reproduce::Ablation {
    fn from(a: Ablation) -> Self {
        match a {
            Ablation::Imitation => reproduce::Ablation::Imitation,
            Ablation::Teachers => reproduce::Ablation::Teachers,
            Ablation::Layers => reproduce::Ablation::Layers,
        }
    }
}

pub fn reproduce(a: ReproduceArgs) -> Result<()> {
    let ds = crate::source::load(a.data.as_deref(), false)?;
    let name = match &a.paper_dataset {
        Some(given) => reproduce::paper_dataset_named(given)?,
        None => ds.name.to_ascii_lowercase(),
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/reproduce-{name}")));
    let request = request(&a, name)?;
    let ws = workspace(&ds, a.data.clone(), out.clone(), &a.device)?;
    let plan = Plan::new(request, &ds)?;
    check_sets_reach_a_stage(&a.set, &plan)?;
    if a.teachers_from_scratch && !plan.stages().iter().any(|st| st.name.contains("teacher-")) {
        anyhow::bail!(
            "--teachers-from-scratch: this command trains no teachers (no --students, no ablation that needs them), so it would change nothing"
        );
    }
    let how = Execution {
        jobs: a.jobs,
        stage: a.stage.clone(),
        print_table2: true,
    };
    execute(&plan, ws, how)?;
    if a.stage.is_none() {
        outln!("results in {}", out.display());
    }
    Ok(())
}

fn request(a: &ReproduceArgs, paper_dataset: String) -> Result<Request> {
    // Any of them given, even at its faithful value, is refused with the best preset: it would
    // not be what trains.
    let tuned = a.imitation_points.is_some()
        || a.teacher_full_history
        || a.temperature.is_some()
        || a.warm_start;
    if a.preset == Preset::Best && tuned {
        anyhow::bail!(
            "--preset best sets --warm-start, --imitation-points, --teacher-full-history and --temperature itself: give them with --preset faithful instead"
        );
    }
    if a.teachers_from_scratch && !(a.warm_start || a.preset == Preset::Best) {
        anyhow::bail!(
            "--teachers-from-scratch goes with a warm start (--warm-start or --preset best): without one every run, the teachers too, already starts from scratch"
        );
    }
    for (flag, models) in [("--baselines", &a.baselines), ("--students", &a.students)] {
        if let Some((i, m)) = models
            .iter()
            .enumerate()
            .find(|(i, m)| models[..*i].contains(m))
        {
            anyhow::bail!(
                "{flag}: {} is listed twice (entries {} and {}): give each model once",
                m.id(),
                models.iter().position(|x| x == m).unwrap_or(0) + 1,
                i + 1
            );
        }
    }
    let mut settings = reproduce::base_settings(&a.config)?;
    for mut setting in ssi_train::parse_sets(&a.set)? {
        // As in a settings file: HGN has no `layers`, and `--set layers=1` is for the others.
        setting.strict = false;
        settings.push(setting);
    }
    Ok(Request {
        settings,
        ablations: a.ablation.iter().map(|&x| x.into()).collect(),
        baselines: a.baselines.clone(),
        students: a.students.clone(),
        imitation: match a.preset {
            Preset::Best => ImitationOptions::BEST,
            Preset::Faithful => ImitationOptions {
                points: a.imitation_points.unwrap_or(ImitationPoints::Target),
                full_history: a.teacher_full_history,
                temperature: a.temperature.unwrap_or(1.0),
            },
        },
        warm_start: a.warm_start || a.preset == Preset::Best,
        teachers_from_scratch: a.teachers_from_scratch,
        teacher_model: match a.teacher_model {
            TeacherModel::Bert4rec => ModelKind::Bert4rec,
            TeacherModel::Sasrec => ModelKind::Sasrec,
        },
        paper_dataset,
    })
}

/// A `--set` key that no run of the plan has (another model's setting, `dilations` with no
/// NextItNet-like model here) would change nothing, silently: refused, naming the models.
fn check_sets_reach_a_stage(sets: &[String], plan: &Plan) -> Result<()> {
    for s in sets {
        let key = Setting::parse(s)?.key;
        // A model's own setting also decides which finished runs of that model are read back
        // into the tables, so it is meaningful even for a model this command does not train.
        if key.contains('.') {
            continue;
        }
        let reached = plan.stages().iter().any(|stage| {
            let model = ssi_models::ModelConfig::new(stage.kind, 10, 10);
            let train = ssi_train::TrainConfig::defaults_for(&model);
            model.to_json().get(&key).is_some()
                || serde_json::to_value(&train).is_ok_and(|t| t.get(&key).is_some())
        });
        if !reached {
            anyhow::bail!(
                "--set {s}: none of this command's models ({}) has the setting {key:?}, so it would change nothing",
                stage_models(plan).join(", ")
            );
        }
    }
    Ok(())
}

/// The models a plan trains, each named once.
fn stage_models(plan: &Plan) -> Vec<&'static str> {
    let mut models: Vec<&str> = plan.stages().iter().map(|st| st.kind.name()).collect();
    models.sort_unstable();
    models.dedup();
    models
}

/// Where a plan of this invocation runs: `out` on `ds` (from the file `data`, if any).
pub fn workspace<'a>(
    ds: &'a Dataset,
    data: Option<PathBuf>,
    out: PathBuf,
    device: &str,
) -> Result<Workspace<'a>> {
    if let Some(what) = ssi_data::files::not_a_folder(&out) {
        anyhow::bail!(
            "--out {} is {what}: the runs and tables go in a folder; choose another --out",
            out.display(),
        );
    }
    // Its students record their teachers' folders, under --out.
    crate::source::recordable("--out", &out)?;
    if let Some(d) = &data {
        crate::source::recordable("--data", d)?;
    }
    Ok(Workspace {
        dataset: ds,
        data_path: data,
        out,
        device: crate::source::device(device)?,
        command: crate::command_line(),
    })
}

/// How this process carries out a plan.
pub struct Execution {
    /// Stages trained at once, each in an `ssi` process of its own.
    pub jobs: u64,
    /// Train this stage only, and write no table: a worker of `--jobs`.
    pub stage: Option<String>,
    /// Print Table 2 when written (the quickstart prints its own summary instead).
    pub print_table2: bool,
}

/// Trains the plan's stages, with `--jobs` processes if asked, then writes the tables.
pub fn execute(plan: &Plan, ws: Workspace, how: Execution) -> Result<()> {
    let out = ws.out.clone();
    if how.jobs > 1 && how.stage.is_none() {
        // Each stage's process reads --data again.
        crate::source::readable_again(
            ws.data_path.as_deref(),
            "the dataset, read again by each stage's process (--jobs),",
        )?;
    }
    let mut progress = Progress {
        bar: None,
        print_table2: how.print_table2,
    };
    let mut pipeline = Pipeline::open(plan, ws, &mut progress)?;
    if let Some(only) = &how.stage {
        pipeline.train_stage(only)?;
        return Ok(());
    }
    // Before anything trains: a mismatch found at a later stage would come after hours.
    pipeline.check_existing()?;
    if how.jobs > 1 {
        let tasks: Vec<crate::jobs::Task> = plan
            .stages()
            .iter()
            .map(|s| crate::jobs::Task {
                name: s.name.clone(),
                deps: s.deps(),
            })
            .collect();
        crate::jobs::run_parallel(&out, &tasks, how.jobs as usize)?;
    }
    pipeline.finish()?;
    Ok(())
}

/// The terminal's view of a reproduction: a line and a progress bar for each stage trained
/// here, and the tables on stdout.
struct Progress {
    /// The bar of the stage training now.
    bar: Option<TrainBar>,
    print_table2: bool,
}

impl TrainObserver for Progress {
    fn notice(&mut self, message: &str) {
        errln!("{message}");
    }
    fn evaluating(&mut self, done: usize, total: usize) {
        if let Some(b) = &mut self.bar {
            b.evaluating(done, total);
        }
    }
    fn epoch_start(&mut self, epoch: usize, steps: usize) {
        if let Some(b) = &mut self.bar {
            b.epoch_start(epoch, steps);
        }
    }
    fn step(&mut self, step: usize, loss: f32, seqs_per_s: f64) {
        if let Some(b) = &mut self.bar {
            b.step(step, loss, seqs_per_s);
        }
    }
    fn epoch_end(&mut self, log: &EpochLog) {
        if let Some(b) = &mut self.bar {
            b.epoch_end(log);
        }
    }
}

impl ReproduceObserver for Progress {
    fn stage_started(&mut self, label: &str, dir: &Path) {
        outln!("== {label} ({})", dir.display());
        self.bar = Some(TrainBar::new(false));
    }
    fn stage_trained(&mut self, state: &TrainState, report: &EvalReport) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
        crate::cmd_train::print_trained(state);
        outln!(
            "   test NDCG@10 {:.4}",
            report.sampled.ndcg_at(10).unwrap_or(f64::NAN)
        );
        for w in report.warnings() {
            errln!("   {w}");
        }
    }
    fn written(&mut self, output: Output, markdown: &str) {
        if output != Output::Table2 || self.print_table2 {
            out!("{markdown}");
        }
    }
}
