//! `ssi train`: trains a burn model with checkpoints, then evaluates its best epoch on the test split.

use crate::cmd_eval::evaluate_checkpoint;
use crate::source::device;
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
use serde_json::Value;
use ssi_data::Dataset;
use ssi_models::consistency::ConsistencyTask;
use ssi_models::imitation::{ImitationConfig, ImitationPoints};
use ssi_models::{ModelConfig, ModelKind};
use ssi_train::RunDir;
use ssi_train::distill::{Distill, DistillSpec, describe_teachers};
use ssi_train::trainer::{EpochLog, TrainConfig, TrainObserver, Trainer};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct TrainArgs {
    /// sasrec, bert4rec, gru4rec, hgn, s3rec or grec.
    #[arg(long)]
    model: ModelKind,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
pub struct PretrainArgs {
    /// The consistency task of this teacher: temporal (eq. 1), persona (eq. 2) or global (eq. 3).
    #[arg(long)]
    task: ConsistencyTask,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
pub struct DistillArgs {
    /// Run folders of trained teachers, comma-separated (e.g. from `ssi pretrain`).
    #[arg(long, value_delimiter = ',', required = true)]
    teachers: Vec<PathBuf>,
    /// The student: hgn (the paper's), gru4rec, sasrec, or any other model.
    #[arg(long, default_value = "hgn")]
    student: ModelKind,
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
    /// Softmax temperature of eq. 5 (1 in the paper; > 1 softens both distributions).
    #[arg(long, default_value_t = 1.0, value_parser = parse_temperature)]
    temperature: f64,
    /// Where the student imitates: target (the history before the sequence's last item, whose
    /// next item the student is also trained on), next (the whole sequence: the teachers'
    /// forecast of the unseen next item) or both.
    #[arg(long, default_value = "target")]
    imitation_points: ImitationPoints,
    #[command(flatten)]
    run: RunArgs,
}

/// What every training command shares.
#[derive(Args)]
pub struct RunArgs {
    /// S3-Rec format file; omit for the embedded synthetic shop.
    #[arg(long)]
    data: Option<PathBuf>,
    /// JSON file of settings (e.g. configs/small.json); keys another model has are ignored.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A setting of the model or of training, e.g. --set hidden=128 --set lr=0.002; `MODEL.key=value` sets one model only (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// cpu (burn flex backend) or wgpu (GPU through Vulkan/Metal/DX12).
    #[arg(long, default_value = "cpu")]
    device: String,
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
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    epochs: Option<usize>,
    /// Print the final test metrics as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_value(v: &str) -> Value {
    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()))
}

/// Splits settings between the model config and the training config. Strict keys (from --set)
/// must exist in one of them; lenient keys (from a shared config file) may belong to another model.
pub(crate) fn apply_settings(
    model: &ModelConfig,
    train: &TrainConfig,
    settings: &[(String, Value, bool)],
) -> Result<(ModelConfig, TrainConfig)> {
    let model_keys = model.to_json();
    let mut train_json = serde_json::to_value(train)?;
    let mut model_over = Vec::new();
    let mut train_over: Vec<(String, Value)> = Vec::new();
    for (k, v, strict) in settings {
        // `MODEL.key` applies to that model only (e.g. sasrec.dropout=0.5 in a shared config).
        let k = match k.split_once('.') {
            Some((scope, key)) => {
                let scope: ModelKind = scope.parse().map_err(anyhow::Error::msg)?;
                if scope != model.kind() {
                    continue;
                }
                key
            }
            None => k.as_str(),
        };
        let k = &k.to_string();
        if model_keys.get(k).is_some() && k != "model" && k != "n_items" && k != "n_users" {
            model_over.push((k.clone(), v.clone()));
        } else if train_json.get(k).is_some() {
            train_json[k] = v.clone();
            train_over.push((k.clone(), v.clone()));
        } else if *strict
            || !ModelKind::ALL
                .iter()
                .any(|&kind| ModelConfig::new(kind, 1, 1).to_json().get(k).is_some())
        {
            let mut keys: Vec<String> = model_keys
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| !["model", "n_items", "n_users"].contains(&k.as_str()))
                .cloned()
                .collect();
            keys.extend(train_json.as_object().unwrap().keys().cloned());
            bail!(
                "unknown setting {k:?} for {}; settings: {}",
                model.kind().name(),
                keys.join(", ")
            );
        }
    }
    let model = model
        .with_overrides(&model_over)
        .map_err(anyhow::Error::msg)?;
    let train: TrainConfig = serde_json::from_value(train_json).map_err(|e| {
        let base = serde_json::to_value(train).expect("configs serialise");
        let culprit = train_over.iter().find(|(k, v)| {
            let mut one = base.clone();
            one[k.as_str()] = v.clone();
            serde_json::from_value::<TrainConfig>(one).is_err()
        });
        match culprit {
            Some((k, v)) => anyhow::anyhow!("training setting {k} = {v} is not valid: {e}"),
            None => anyhow::anyhow!("invalid training setting: {e}"),
        }
    })?;
    model.validate().map_err(anyhow::Error::msg)?;
    train.validate().map_err(anyhow::Error::msg)?;
    Ok((model, train))
}

struct Bar {
    pb: ProgressBar,
    quiet: bool,
}

impl TrainObserver for Bar {
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
                format!(
                    " valid NDCG@10 {v:.4}{}",
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

pub fn load_settings_file(path: &Path) -> Result<Vec<(String, Value, bool)>> {
    let text = ssi_data::dataset::read_text_max(path, ssi_data::dataset::MAX_SETTINGS_BYTES)?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let obj = v
        .as_object()
        .with_context(|| format!("{}: expected a JSON object of settings", path.display()))?;
    Ok(obj
        .iter()
        .map(|(k, v)| (k.clone(), v.clone(), false))
        .collect())
}

pub fn train(a: TrainArgs) -> Result<()> {
    run(a.model, Vec::new(), a.run, None)
}

/// `ssi pretrain`: a BERT4Rec teacher with one consistency task (eq. 4).
pub fn pretrain(a: PretrainArgs) -> Result<()> {
    let task = (
        "consistency".to_string(),
        Value::String(a.task.name().into()),
        true,
    );
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
pub fn distill(a: DistillArgs) -> Result<()> {
    let imitation = ImitationConfig::new()
        .with_prediction(!a.no_prediction)
        .with_representation(!a.no_representation)
        .with_learn_lambda(!a.fixed_lambda)
        .with_temperature(a.temperature)
        .with_cache_teachers(!a.no_teacher_cache)
        .with_teacher_full_history(a.teacher_full_history)
        .with_points(Some(a.imitation_points));
    if a.no_prediction && a.no_representation && !a.run.resume {
        errln!("note: both imitation terms are off: this trains the student alone (Table 3)");
    }
    run(a.student, Vec::new(), a.run, Some((a.teachers, imitation)))
}

/// Settings from a config file, `--set`, `--seed` and `--epochs`, in that order.
fn gather_settings(a: &RunArgs) -> Result<Vec<(String, Value, bool)>> {
    let mut settings = Vec::new();
    if let Some(p) = &a.config {
        settings.extend(load_settings_file(p)?);
    }
    for s in &a.set {
        settings.push(parse_setting(s)?);
    }
    if let Some(seed) = a.seed {
        settings.push(("seed".into(), seed.into(), true));
    }
    if let Some(e) = a.epochs {
        settings.push(("epochs".into(), e.into(), true));
    }
    Ok(settings)
}

/// `KEY=VALUE` as a strict setting.
pub fn parse_setting(s: &str) -> Result<(String, Value, bool)> {
    let (k, v) = s
        .split_once('=')
        .with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
    Ok((k.trim().to_string(), parse_value(v.trim()), true))
}

fn run(
    kind: ModelKind,
    fixed: Vec<(String, Value, bool)>,
    a: RunArgs,
    distill: Option<(Vec<PathBuf>, ImitationConfig)>,
) -> Result<()> {
    let ds: Dataset = crate::source::load(a.data.as_deref(), a.json)?;
    let mut settings = gather_settings(&a)?;
    settings.extend(fixed);
    let job = Job {
        kind,
        settings,
        data_path: a.data.clone(),
        device: device(&a.device)?,
        out: a.out.clone(),
        resume: a.resume,
        init: a.init.clone(),
        distill,
        quiet: a.json,
    };
    let (_, report) = run_job(&ds, &job)?;
    if a.json {
        outln!("{}", serde_json::to_string(&report.to_json())?);
    } else {
        out!("{}", report.to_table());
        outln!("run folder: {}", a.out.display());
    }
    Ok(())
}

/// One training run: a model on its own loss, a teacher (settings carry `consistency`), or a
/// distilled student.
pub struct Job {
    pub kind: ModelKind,
    pub settings: Vec<(String, Value, bool)>,
    pub data_path: Option<PathBuf>,
    pub device: burn::tensor::Device,
    pub out: PathBuf,
    pub resume: bool,
    /// A trained run whose best weights the new run starts from (`--init`).
    pub init: Option<PathBuf>,
    pub distill: Option<(Vec<PathBuf>, ImitationConfig)>,
    /// No progress bar or summary lines.
    pub quiet: bool,
}

/// Trains (or resumes) a job, evaluates its best epoch on the test split and writes `test.json`.
/// Holds an exclusive lock on `dir/.lock` while a run trains: two processes training one folder
/// would overwrite each other's checkpoints. The OS releases it when the process ends, however it
/// ends, so a killed run leaves nothing stale behind.
fn lock_run(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{} is being trained by another process (it holds {}): wait for it to finish, or stop it and pass --resume",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// The settings `--resume` may change: when the run stops.
const LIMITS: [&str; 4] = [
    "epochs",
    "patience",
    "patience_steps",
    "time_budget_minutes",
];

/// On `--resume`, settings given again must agree with the run's `config.json`, except its
/// stopping limits: new ones replace the saved ones and reopen a finished run they allow to go
/// on (`--resume --set time_budget_minutes=45` continues a run that stopped at 22 minutes). Any
/// other difference is an error, not silently ignored: a run is one model trained one way.
fn resume_limits(dir: &RunDir, job: &Job, ds: &Dataset) -> Result<()> {
    let settings = &job.settings;
    let saved = dir.config()?;
    saved.dataset.check_same(
        &ssi_train::checkpoint::DatasetInfo::of(ds, job.data_path.as_deref()),
        &dir.path.display().to_string(),
    )?;
    dir.check_files()?;
    if let (Some(spec), Some((teachers, imitation))) = (&saved.distill, &job.distill) {
        let same = |a: &Path, b: &Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        let same_teachers = spec.teachers.len() == teachers.len()
            && spec.teachers.iter().zip(teachers).all(|(a, b)| same(a, b));
        // What the loss depends on: the teacher cache is a speed option, and runs written before
        // imitation points existed imitate at the target.
        let loss_terms = |c: &ImitationConfig| -> Result<Value> {
            let mut v = serde_json::to_value(c)?;
            v["cache_teachers"] = Value::Null;
            v["points"] = serde_json::to_value(c.imitation_points())?;
            Ok(v)
        };
        let (saved_terms, asked_terms) = (loss_terms(&spec.imitation)?, loss_terms(imitation)?);
        let mut differ: Vec<String> = saved_terms
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| asked_terms.get(k.as_str()) != Some(v))
            .map(|(k, v)| {
                format!(
                    "{k} {v} -> {}",
                    asked_terms.get(k.as_str()).unwrap_or(&Value::Null)
                )
            })
            .collect();
        if !same_teachers {
            differ.insert(0, "teachers".into());
        }
        if !differ.is_empty() {
            bail!(
                "{}: --resume continues the distillation that is there, with its teachers and imitation options (config.json); these differ: {}. Train a new run (another --out) to change them",
                dir.path.display(),
                differ.join(", ")
            );
        }
    }
    // Checked before anything is written: a failed resume leaves the run as it was.
    if saved.model.kind() != job.kind || saved.distill.is_some() != job.distill.is_some() {
        let what = |kind: ModelKind, distill: bool| {
            let role = if distill {
                "distilled student"
            } else {
                "model"
            };
            format!("{} {role}", kind.name())
        };
        bail!(
            "{} holds a {} run, not a {} run: --resume continues the run that is there; choose another --out",
            dir.path.display(),
            what(saved.model.kind(), saved.distill.is_some()),
            what(job.kind, job.distill.is_some())
        );
    }
    let (model, train) = apply_settings(&saved.model, &saved.train, settings)?;
    let mut changed = Vec::new();
    let mut limits = Vec::new();
    let pairs = [
        (model.to_json(), saved.model.to_json()),
        (
            serde_json::to_value(&train)?,
            serde_json::to_value(&saved.train)?,
        ),
    ];
    for (new, old) in &pairs {
        for (k, v) in new.as_object().into_iter().flatten() {
            if old.get(k) != Some(v) {
                let line = format!("{k} {} -> {v}", old.get(k).unwrap_or(&Value::Null));
                if LIMITS.contains(&k.as_str()) {
                    limits.push(line);
                } else {
                    changed.push(line);
                }
            }
        }
    }
    if !changed.is_empty() {
        bail!(
            "{}: --resume continues the run with its own settings, and these differ from its config.json: {}. Only {} may change on --resume; train a new run (another --out) to change the others",
            dir.path.display(),
            changed.join(", "),
            LIMITS.join(", ")
        );
    }
    if !limits.is_empty() {
        let open = dir.set_limits(&train)?;
        errln!(
            "{}: new limits {}{}",
            dir.path.display(),
            limits.join(", "),
            if open { "" } else { " (still finished)" }
        );
    }
    Ok(())
}

/// A folder without `config.json` that holds files a run writes (`best.bpk`, `log.jsonl`,
/// epoch files…) belongs to something else: training there would replace or append to them.
fn refuse_foreign_run_files(out: &Path) -> Result<()> {
    if out.join("config.json").exists() {
        // A run of ours killed before its first state.json: its files are resumed over.
        return Ok(());
    }
    let ours = |n: &str| {
        matches!(n, "best.bpk" | "state.json" | "test.json" | "log.jsonl")
            || (n.starts_with("epoch-") || n.starts_with("best-")) && n.ends_with(".bpk")
    };
    let found: Vec<String> = std::fs::read_dir(out)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| ours(n))
                .collect()
        })
        .unwrap_or_default();
    if !found.is_empty() {
        bail!(
            "{} holds {} but no config.json: it is not a run ssi can continue, and a new run would replace those files; choose another --out",
            out.display(),
            found.join(", ")
        );
    }
    Ok(())
}

pub fn run_job(
    ds: &Dataset,
    job: &Job,
) -> Result<(ssi_train::checkpoint::TrainState, ssi_data::EvalReport)> {
    let base = ModelConfig::new(job.kind, ds.n_items as usize, ds.n_users());
    let (model_cfg, train_cfg) = apply_settings(&base, &TrainConfig::new(), &job.settings)?;
    let dir = RunDir::new(&job.out);
    let pretrain = RunDir::new(job.out.join(ssi_train::stages::PRETRAIN_DIR));
    if job.resume && !dir.has_run() && !pretrain.has_run() {
        bail!("--resume: {} holds no run to continue", job.out.display());
    }
    std::fs::create_dir_all(&job.out)
        .with_context(|| format!("cannot create {}", job.out.display()))?;
    let _lock = lock_run(&job.out)?;
    if job.resume && dir.has_run() {
        resume_limits(&dir, job, ds)?;
    }
    if !dir.has_run() {
        refuse_foreign_run_files(&job.out)?;
        // The command that started the run, for `ssi export`'s provenance.
        let cmd: Vec<String> = std::env::args().collect();
        ssi_data::dataset::write_atomic(&dir.file("command.txt"), cmd.join(" ").as_bytes())?;
    }
    let trainer = Trainer {
        dataset: ds,
        dataset_path: job.data_path.clone(),
        dir: dir.clone(),
        device: job.device.clone().autodiff(),
        stop_after_epochs: None,
    };
    let pb = crate::ui::bar(0, "training");
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:25}] {pos}/{len} {prefix} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    if job.quiet {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut obs = Bar {
        pb: pb.clone(),
        quiet: job.quiet,
    };
    let info = ssi_train::checkpoint::DatasetInfo::of(ds, job.data_path.as_deref());
    let start = match &job.init {
        Some(init) if !dir.has_run() => Some(ssi_train::checkpoint::warm_start(
            init,
            &model_cfg,
            &info,
            &trainer.device,
        )?),
        _ => None,
    };
    let init_from = match &job.init {
        Some(p) => Some(std::path::absolute(p).with_context(|| format!("--init {}", p.display()))?),
        None => None,
    };
    let state = match &job.distill {
        None if start.is_some() => {
            let mut run = trainer.run_config(&model_cfg, &train_cfg, None);
            run.init_from = init_from;
            trainer.run_objective(run, job.resume, &mut obs, |r| {
                Ok(ssi_train::stages::WarmStart {
                    config: r.model.clone(),
                    start,
                })
            })?
        }
        None => trainer.run_staged(&model_cfg, &train_cfg, job.resume, &mut obs)?,
        Some((teachers, imitation)) => {
            let named = describe_teachers(teachers, &info)?;
            let spec = DistillSpec {
                teachers: named.iter().map(|(d, _)| d.clone()).collect(),
                teacher_names: named.iter().map(|(_, n)| n.clone()).collect(),
                imitation: imitation.clone(),
            };
            let mut run = trainer.run_config(&model_cfg, &train_cfg, Some(spec));
            run.init_from = init_from;
            let tdev = trainer.device.clone();
            trainer.run_objective(run, job.resume, &mut obs, |r| {
                let mut d = Distill::from_run(r, &tdev)?;
                d.student_start = start;
                d.prepare(ds, &tdev)
            })?
        }
    };
    pb.finish_and_clear();
    if !job.quiet {
        outln!(
            "trained {} epochs in {:.1} min; best validation NDCG@10 {:.4} at epoch {}",
            state.epoch,
            state.train_seconds / 60.0,
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
    let seed = dir.config()?.train.seed;
    let report = evaluate_checkpoint(
        &dir,
        ds,
        &job.device,
        &crate::cmd_eval::ProtocolArgs::default_test(seed),
        job.quiet,
    )?;
    dir.write_json("test.json", &report.to_json())?;
    Ok((state, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "0", "1", "-1", "2.5", "1e400", "null", "true", "\"x\"", "[]", "{}"
            ])
            .prop_map(String::from),
            "[0-9]{1,6}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A settings file (`--config`) with any keys and values is refused with a message naming
        /// the file or the setting, or gives settings that passed every range check.
        #[test]
        fn settings_files_are_refused_or_valid(
            pairs in prop::collection::vec(
                (prop::sample::select(vec!["hidden", "heads", "layers", "max_len", "dropout", "lr", "batch_size", "epochs", "sasrec.dropout", "bert4rec.mask_prob", "typo", "patience"]), json_value()),
                0..6,
            ),
            garbage in proptest::option::of("[{}\\[\\],:\"a-z0-9 ]{0,20}"),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("settings.json");
            let text = match garbage {
                Some(g) => g,
                None => format!(
                    "{{{}}}",
                    pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect::<Vec<_>>().join(", ")
                ),
            };
            std::fs::write(&path, &text).unwrap();
            let settings = match load_settings_file(&path) {
                Ok(s) => s,
                Err(e) => {
                    prop_assert!(format!("{e:#}").contains("settings.json"), "{e:#}");
                    return Ok(());
                }
            };
            for kind in [ModelKind::Sasrec, ModelKind::Bert4rec, ModelKind::Hgn] {
                let base = ModelConfig::new(kind, 50, 10);
                match apply_settings(&base, &TrainConfig::new(), &settings) {
                    Ok((m, t)) => {
                        prop_assert!(m.validate().is_ok() && t.validate().is_ok());
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        prop_assert!(
                            settings.iter().any(|(k, _, _)| msg.contains(k.rsplit('.').next().unwrap())),
                            "{msg} names none of {settings:?}"
                        );
                    }
                }
            }
        }
    }
}
