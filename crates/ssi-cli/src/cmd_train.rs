//! `ssi train`: trains a burn model with checkpoints, then evaluates its best epoch on the test split.

use crate::source::device;
use crate::ui::TrainBar;
use anyhow::{Context, Result};
use clap::Args;
use ssi_data::Dataset;
use ssi_models::ModelKind;
use ssi_models::consistency::ConsistencyTask;
use ssi_models::imitation::{ImitationConfig, ImitationPoints};
use ssi_train::{Job, Setting, load_settings_file, train_job};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// sasrec, bert4rec, gru4rec, hgn, s3rec or grec; with --resume, the run's own when left out,
    /// and with --config of a run's config.json, that run's.
    #[arg(long)]
    model: Option<ModelKind>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
pub struct PretrainArgs {
    /// The consistency task of this teacher: temporal (eq. 1), persona (eq. 2) or global (eq. 3);
    /// with --resume, the run's own when left out.
    #[arg(long, required_unless_present = "resume")]
    task: Option<ConsistencyTask>,
    #[command(flatten)]
    run: RunArgs,
}

/// One entry of a list of run folders (`--teachers`, `--ensemble`): spaces around a comma are
/// not part of a path.
pub(crate) fn teacher_path(s: &str) -> Result<PathBuf, String> {
    match s.trim() {
        "" => Err("an empty entry (a comma too many?)".into()),
        t => Ok(PathBuf::from(t)),
    }
}

#[derive(Args)]
pub struct DistillArgs {
    /// Run folders of trained teachers, comma-separated (e.g. from `ssi pretrain`); with
    /// --resume, the run's own when left out.
    #[arg(long, value_delimiter = ',', value_parser = teacher_path, required_unless_present = "resume")]
    teachers: Option<Vec<PathBuf>>,
    /// The student: hgn (the paper's; the default), gru4rec, sasrec, or any other model; with
    /// --resume, the run's own when left out.
    #[arg(long)]
    student: Option<ModelKind>,
    /// Leave out prediction distribution imitation (eq. 5; Table 3 ablation).
    #[arg(long)]
    no_prediction: bool,
    /// Leave out item representation imitation (eq. 6; Table 3 ablation).
    #[arg(long)]
    no_representation: bool,
    /// Keep every teacher weight λ_i = 1 instead of learning it with eq. 8.
    #[arg(long)]
    fixed_lambda: bool,
    /// Run the teachers on every step instead of computing their encodings of the training
    /// histories once (slower, same objective: the teachers are frozen).
    #[arg(long)]
    no_teacher_cache: bool,
    /// Teachers read the user's whole training history up to the imitation point (cut at their
    /// own max_len) instead of exactly the student's input (HGN's is its last 5 items).
    #[arg(long)]
    teacher_full_history: bool,
    /// Softmax temperature of eq. 5 (default 1, the paper's; > 1 softens both distributions).
    #[arg(long, value_parser = parse_temperature)]
    temperature: Option<f64>,
    /// Where the student imitates: target (the default: the history before the sequence's last
    /// item, whose next item the student is also trained on), next (the whole sequence: the
    /// teachers' forecast of the unseen next item) or both.
    #[arg(long)]
    imitation_points: Option<ImitationPoints>,
    #[command(flatten)]
    run: RunArgs,
}

/// What every training command shares.
#[derive(Args)]
pub struct RunArgs {
    /// S3-Rec format file; omit for the embedded synthetic shop (with --resume: for the file the
    /// run records).
    #[arg(long)]
    data: Option<PathBuf>,
    /// JSON file of settings (e.g. configs/small.json), or a run's config.json to train its
    /// settings again; keys another model has are ignored.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A setting of the model or of training, e.g. --set hidden=128 --set lr=0.002; `MODEL.key=value` sets one model only (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// cpu (burn flex backend) or wgpu (GPU through Vulkan/Metal/DX12).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Batch shapes: auto (padded to a few sizes on a GPU, where kernels are compiled per shape;
    /// exact on the CPU), exact or bucketed. Same losses and gradients either way.
    #[arg(long, default_value = "auto", value_parser = ["auto", "exact", "bucketed"])]
    shapes: String,
    /// Run folder: config, checkpoints, log.jsonl, test.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out where it stopped.
    #[arg(long)]
    resume: bool,
    /// Start from the best weights of a trained run of the same model and dataset instead of a
    /// fresh init (e.g. a consistency teacher from a BERT4Rec run, a student from its run alone);
    /// weights that run lacks start fresh. Replaces S3-Rec's pre-training stage.
    #[arg(long, value_name = "RUN", conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Seed of the initialisation, batch order and dropout (default 42; `--set seed=N` alike).
    #[arg(long)]
    seed: Option<u64>,
    /// The most epochs (default 200; the stopping rule usually ends a run sooner).
    #[arg(long)]
    epochs: Option<usize>,
    /// Print the final test metrics as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn train(a: TrainArgs) -> Result<()> {
    let of_file = a
        .run
        .config
        .as_deref()
        .and_then(ssi_train::run_config_model);
    if let (Some(m), Some(f), Some(file)) = (a.model, of_file, &a.run.config)
        && m != f
    {
        errln!(
            "note: {} is the record of a {} run: its model settings apply to {} only; {} trains \
             with its own model settings (and the file's training settings)",
            file.display(),
            f.name(),
            f.name(),
            m.name()
        );
    }
    let model = match a.model.or(of_file.filter(|_| !a.run.resume)) {
        Some(m) => m,
        None if !a.run.resume => anyhow::bail!(
            "--model is required for a new run (sasrec, bert4rec, gru4rec, hgn, s3rec or grec), \
             unless --config is a run's config.json, which names its model; --resume continues \
             the run in --out"
        ),
        // --resume without --model: the model config.json records, or that of the S3-Rec
        // pre-training stage of a run cut off in it (a model given is checked where the run is
        // opened).
        None => ssi_train::RunDir::new(&a.run.out)
            .config()
            .or_else(|e| {
                ssi_train::RunDir::new(a.run.out.join(ssi_train::checkpoint::PRETRAIN_DIR))
                    .config()
                    .map_err(|_| e)
            })
            .map(|c| c.model.kind())
            .map_err(|e| {
                let out = a.run.out.display();
                if a.run.out.join("config.json").exists() {
                    anyhow::anyhow!("{out}: cannot continue its run: {e}")
                } else {
                    anyhow::anyhow!("{out}: no run to continue there ({e})")
                }
            })?,
    };
    run(model, Vec::new(), a.run, None)
}

/// `ssi pretrain`: a BERT4Rec teacher with one consistency task (eq. 4).
pub fn pretrain(a: PretrainArgs) -> Result<()> {
    let task = match a.task {
        Some(t) => t,
        None => {
            // --resume (clap requires --task otherwise): the teacher's own task.
            let out = &a.run.out;
            let cfg = ssi_train::RunDir::new(out).config().map_err(|e| {
                anyhow::anyhow!("{}: no teacher to continue there ({e})", out.display())
            })?;
            let name = cfg.model.teacher_name();
            match name.parse::<ConsistencyTask>() {
                Ok(t) if cfg.model.kind() == ModelKind::Bert4rec => t,
                _ => anyhow::bail!(
                    "{}: it holds a {} {} without a consistency task of `ssi pretrain`, which \
                     `ssi {} --resume --out {}` continues",
                    out.display(),
                    cfg.model.kind().name(),
                    if cfg.distill.is_some() {
                        "distillation"
                    } else {
                        "run"
                    },
                    if cfg.distill.is_some() {
                        "distill"
                    } else {
                        "train"
                    },
                    out.display()
                ),
            }
        }
    };
    let task = Setting::strict("consistency", task.name());
    run(ModelKind::Bert4rec, vec![task], a.run, None)
}

/// `--temperature`: a finite number above 0 (it divides the logits of eq. 5).
pub fn parse_temperature(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        // Below ~0.05 the softened logits overflow f32 (a NaN loss, not a sharper target).
        Ok(t) if t.is_finite() && (0.05..=100.0).contains(&t) => Ok(t),
        Ok(_) => Err(format!(
            "{s} is not a usable temperature: give a number in [0.05, 100]"
        )),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// `ssi distill`: self-supervised imitation of trained teachers by a student (eq. 5–8).
/// With --resume, what the command line leaves out (teachers, student, imitation options) is
/// the run's own (`config.json`); what it gives must agree with the run, checked where the run
/// is opened.
pub fn distill(a: DistillArgs) -> Result<()> {
    let recorded = a
        .run
        .resume
        .then(|| ssi_train::RunDir::new(&a.run.out).config().ok())
        .flatten()
        .and_then(|c| Some((c.model.kind(), c.distill?)));
    let (base, kind, teachers) = match (&recorded, a.teachers) {
        (_, Some(t)) => (
            recorded.as_ref().map(|(_, d)| d.imitation.clone()),
            recorded.as_ref().map(|(k, _)| *k),
            t,
        ),
        (Some((k, d)), None) => (Some(d.imitation.clone()), Some(*k), d.teachers.clone()),
        (None, None) => {
            let out = &a.run.out;
            let there = match ssi_train::RunDir::new(out).config() {
                // A run trained alone is continued by `train`.
                Ok(c) if c.distill.is_none() => format!(
                    "it holds a {} run trained alone, which `ssi train --model {} --resume --out {}` continues",
                    c.model.kind().name(),
                    c.model.kind().id(),
                    out.display()
                ),
                Ok(_) => "it holds a distillation".into(),
                Err(_) if !out.exists() => "the folder does not exist".into(),
                Err(e) => format!("its config.json cannot be read ({e})"),
            };
            anyhow::bail!(
                "{}: no distillation to continue there: {there}; a new one needs --teachers (and another --out)",
                out.display()
            )
        }
    };
    let mut imitation =
        base.unwrap_or_else(|| ImitationConfig::new().with_points(Some(ImitationPoints::Target)));
    // A flag given turns its option on; left out, the option keeps the run's (or the default).
    if a.no_prediction {
        imitation.prediction = false;
    }
    if a.no_representation {
        imitation.representation = false;
    }
    if a.fixed_lambda {
        imitation.learn_lambda = false;
    }
    if a.no_teacher_cache {
        imitation.cache_teachers = false;
    }
    if a.teacher_full_history {
        imitation.teacher_full_history = true;
    }
    if let Some(t) = a.temperature {
        imitation.temperature = t;
    }
    if let Some(p) = a.imitation_points {
        imitation.points = Some(p);
    }
    let student = a.student.or(kind).unwrap_or(ModelKind::Hgn);
    if !imitation.prediction && !imitation.representation && !a.run.resume {
        errln!("note: both imitation terms are off: this trains the student alone (Table 3)");
    } else if !imitation.prediction && a.temperature.is_some() {
        errln!(
            "note: --temperature changes nothing without prediction imitation (--no-prediction): it softens eq. 5's distributions only"
        );
    }
    if !a.run.resume {
        for t in &teachers {
            unfinished_note(t, "teacher");
        }
    }
    run(student, Vec::new(), a.run, Some((teachers, imitation)))
}

/// A note when the run folder `dir` (a teacher, a run to export) has not finished training: it
/// was cut off or is still training, and what is read is its best epoch so far.
pub(crate) fn unfinished_note(dir: &std::path::Path, what: &str) {
    let run = ssi_train::RunDir::new(dir);
    let (Ok(state), Ok(cfg)) = (run.state(), run.config()) else {
        return; // Unreadable folders are refused, with their reason, where they are loaded.
    };
    if !state.finished {
        errln!(
            "note: {what} {} has not finished training (epoch {} of at most {}: cut off, or \
             still training); its best epoch so far ({}) is used. `ssi {} --resume --out {}` \
             continues it (a stage of `ssi reproduce` also resumes when that command is run again)",
            dir.display(),
            state.epoch,
            cfg.train.epochs,
            state
                .best_epoch
                .map_or("none".to_string(), |e| e.to_string()),
            if cfg.distill.is_some() {
                "distill"
            } else {
                "train"
            },
            dir.display()
        );
    }
}

/// Settings from a config file, `--set`, `--seed` and `--epochs`, in that order.
fn gather_settings(a: &RunArgs) -> Result<Vec<Setting>> {
    let mut settings = Vec::new();
    if let Some(p) = &a.config {
        // Its errors name the file.
        settings.extend(load_settings_file(p).context("--config")?);
    }
    settings.extend(ssi_train::parse_sets(&a.set)?);
    // An option and a --set of the same setting that disagree: which one was meant is unknown.
    for (option, key, value) in [
        ("--seed", "seed", a.seed.map(|s| s as f64)),
        ("--epochs", "epochs", a.epochs.map(|e| e as f64)),
    ] {
        let Some(value) = value else { continue };
        if let Some(set) = settings[..]
            .iter()
            .rev()
            .take(a.set.len())
            .find(|s| s.key == key && s.value.as_f64() != Some(value))
        {
            anyhow::bail!(
                "{option} {value} and --set {key}={} disagree: give one of them",
                set.value
            );
        }
    }
    if let Some(seed) = a.seed {
        settings.push(Setting::strict("seed", seed));
    }
    if let Some(e) = a.epochs {
        settings.push(Setting::strict("epochs", e));
    }
    Ok(settings)
}

fn run(
    kind: ModelKind,
    fixed: Vec<Setting>,
    a: RunArgs,
    distill: Option<(Vec<PathBuf>, ImitationConfig)>,
) -> Result<()> {
    // --resume without --data continues on the file the run records, as eval and export read it.
    // A run cut off in its pre-training records it in its stage only.
    let recorded = (a.resume && a.data.is_none())
        .then(|| {
            let stage = a.out.join(ssi_train::checkpoint::PRETRAIN_DIR);
            [a.out.as_path(), stage.as_path()]
                .into_iter()
                .find_map(|d| ssi_train::RunDir::new(d).config().ok())
        })
        .flatten()
        .and_then(|c| c.dataset.path);
    if let Some(d) = &a.data {
        crate::source::recordable("--data", d)?;
    }
    if let Some(i) = &a.init {
        crate::source::recordable("--init", i)?;
    }
    if let Some((teachers, _)) = &distill {
        for t in teachers {
            crate::source::recordable("--teachers", t)?;
        }
    }
    let data = a.data.clone().or(recorded.clone());
    let ds: Dataset = match &recorded {
        Some(p) => {
            errln!(
                "note: --resume reads the dataset the run records: {}",
                p.display()
            );
            crate::source::load_for_run(&a.out, Some(p), None, a.json)?
        }
        None => crate::source::load(a.data.as_deref(), a.json)?,
    };
    ssi_models::common::set_shapes(crate::source::shapes(&a.shapes));
    let mut settings = gather_settings(&a)?;
    // A setting the command fixes (pretrain's task) is not overridden by --set or a file.
    for f in &fixed {
        let scoped = format!("{}.{}", kind.id(), f.key);
        if let Some(s) = settings
            .iter()
            .find(|s| (s.key == f.key || s.key == scoped) && s.value != f.value)
        {
            anyhow::bail!(
                "{}={} contradicts {}={}, which this command sets (ssi pretrain: --task); drop the setting",
                s.key,
                s.value,
                f.key,
                f.value
            );
        }
    }
    settings.extend(fixed);
    let job = Job {
        kind,
        settings,
        data_path: data,
        device: device(&a.device)?,
        out: a.out.clone(),
        resume: a.resume,
        init: a.init.clone(),
        distill,
        command: crate::command_line(),
    };
    let (_, report) = run_job(&ds, &job, a.json)?;
    if a.json {
        outln!("{}", serde_json::to_string(&report.to_json())?);
    } else {
        out!("{}", report.to_table());
        outln!("run folder: {}", a.out.display());
    }
    Ok(())
}

/// `ssi_train::train_job` with a progress bar and a summary on the terminal (none when `quiet`).
fn run_job(
    ds: &Dataset,
    job: &Job,
    quiet: bool,
) -> Result<(ssi_train::checkpoint::TrainState, ssi_data::EvalReport)> {
    let mut obs = TrainBar::new(quiet);
    let (state, report) = train_job(ds, job, &mut obs)?;
    obs.finish();
    if !quiet {
        print_trained(&state);
    }
    Ok((state, report))
}

/// The summary of a trained run: epochs, minutes, best validation, and why it stopped.
pub fn print_trained(state: &ssi_train::checkpoint::TrainState) {
    outln!(
        "trained {} epochs in {:.1} min; best {} {:.4} at epoch {}",
        state.epoch,
        state.train_seconds / 60.0,
        state.select_by.unwrap_or_default().describe(),
        state.best_valid_ndcg10,
        state
            .best_epoch
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into())
    );
    if let Some(why) = &state.stop_reason {
        outln!("stopped: {why}");
    }
}
