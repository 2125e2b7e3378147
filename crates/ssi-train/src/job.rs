//! "Train this": one run from its settings to its test figures, as every front-end asks for it
//! (`ssi train`/`pretrain`/`distill`, `ssi reproduce`, `ssi quickstart`). The run folder is
//! locked, checked and resumed here; progress goes to a `TrainObserver`.

use crate::checkpoint::{
    DatasetInfo, RunDir, STOPPING_LIMITS as LIMITS, TrainState, command_text, model_from_bytes,
    warm_start,
};
use crate::config::{DistillSpec, RunConfig, SelectBy, TrainConfig, TrainError};
use crate::distill::{Distill, describe_teachers};
use crate::recommender::ModelRecommender;
use crate::settings::{Setting, apply_settings, origin_of};
use crate::stages::{PRETRAIN_DIR, Pretrained, WarmStart};
use crate::trainer::{TrainObserver, Trainer};
use burn::tensor::Device;
use serde_json::Value;
use ssi_data::{Dataset, EvalConfig, EvalReport, Evaluator, Split};
use ssi_models::imitation::ImitationConfig;
use ssi_models::{AnyModel, ModelConfig, ModelKind};
use std::path::{Path, PathBuf};

/// One training run: a model on its own loss, a teacher (a BERT4Rec whose settings carry
/// `consistency`), or a distilled student (`distill`).
pub struct Job {
    pub kind: ModelKind,
    pub settings: Vec<Setting>,
    pub data_path: Option<PathBuf>,
    pub device: Device,
    pub out: PathBuf,
    pub resume: bool,
    /// A trained run whose best weights the new run starts from (`--init`).
    pub init: Option<PathBuf>,
    /// The teachers' run folders and how to imitate them.
    pub distill: Option<(Vec<PathBuf>, ImitationConfig)>,
    /// The command line that started the run, kept in `command.txt` for `ssi export`.
    pub command: Vec<String>,
}

/// Trains (or resumes) `job`, evaluates its best epoch on the test split (99 sampled negatives
/// drawn with the run's seed, and full ranking) and writes `test.json`. The run folder is locked
/// for the whole time (`lock_run`).
pub fn train_job(
    ds: &Dataset,
    job: &Job,
    obs: &mut dyn TrainObserver,
) -> Result<(TrainState, EvalReport), TrainError> {
    let base = ModelConfig::new(job.kind, ds.n_items as usize, ds.n_users());
    let (model_cfg, train_cfg) =
        apply_settings(&base, &TrainConfig::defaults_for(&base), &job.settings)?;
    let origin = |key| origin_of(&job.settings, job.kind, key);
    if train_cfg.patience == 0 && train_cfg.patience_steps == 0 {
        return Err(TrainError::Config(format!(
            "patience 0{} with patience_steps 0{} stops a run at its first validation, whatever it gives: set one of them to at least 1",
            origin("patience"),
            origin("patience_steps")
        )));
    }
    if train_cfg.sampled_negatives as u64 >= ds.n_items as u64 {
        return Err(TrainError::Config(format!(
            "sampled_negatives {}{} is not below the {} items of the catalogue: sample fewer, or 0 for the full softmax over all of them",
            train_cfg.sampled_negatives,
            origin("sampled_negatives"),
            ds.n_items
        )));
    }
    let dir = RunDir::new(&job.out);
    if let Ok(cfg) = dir.config() {
        dir.refuse_stage(&cfg, "--out")?;
    }
    dir.refuse_orphan()?;
    let pretrain = RunDir::new(job.out.join(PRETRAIN_DIR));
    if job.resume && !dir.has_run() && !pretrain.has_run() {
        let why = if job.out.join("config.json").exists() {
            ": it was stopped before its first epoch ended; the same command without --resume starts it over"
        } else {
            ""
        };
        return Err(TrainError::Config(format!(
            "--resume: {} holds no run to continue{why}",
            job.out.display()
        )));
    }
    if let Some(what) = ssi_data::files::not_a_folder(&job.out) {
        return Err(TrainError::Config(format!(
            "--out {} is {what}: a run is a folder; choose another --out",
            job.out.display(),
        )));
    }
    let info = DatasetInfo::of(ds, job.data_path.as_deref());
    let train_device = job.device.clone().autodiff();
    // Read and checked before anything is written.
    let start = match &job.init {
        Some(init) if !dir.has_run() => {
            let start = warm_start(init, &model_cfg, &info, &train_device)?;
            init_settings_notice(init, &model_cfg, obs);
            Some(start)
        }
        _ => None,
    };
    if let Some((teachers, _)) = &job.distill
        && job.resume
        && dir.has_run()
        && let Some(gone) = teachers.iter().find(|t| !t.join("config.json").exists())
    {
        return Err(TrainError::Config(format!(
            "{}: teacher {} of this distillation (config.json) holds no run any more: moved or deleted? Put it back at that path to continue (its weights are checked against those the run started with), or train a new run (another --out) with the teachers where they are now",
            dir.path.display(),
            gone.display()
        )));
    }
    let named = match &job.distill {
        Some((teachers, _)) => describe_teachers(teachers, &info)?,
        None => Vec::new(),
    };
    // Every teacher's weights are read and checked here, before anything is written.
    let teacher_weights: Vec<String> = named
        .iter()
        .map(|(d, _)| {
            RunDir::new(d)
                .best_weights_sha256()
                .map_err(|e| TrainError::Config(format!("teacher {}: {e}", d.display())))
        })
        .collect::<Result<_, _>>()?;
    // A copied teacher folder is the same teacher: it would count twice in eq. 7. (A resumed
    // run checks its teachers against the weights it recorded.)
    for (i, w) in teacher_weights
        .iter()
        .enumerate()
        .filter(|_| !dir.has_run())
    {
        if let Some(j) = teacher_weights[..i].iter().position(|v| v == w) {
            return Err(TrainError::Config(format!(
                "teachers {} and {} hold the same weights (a copy of one run): give each teacher once",
                named[j].0.display(),
                named[i].0.display()
            )));
        }
    }
    if !dir.has_run() && job.out.is_dir() {
        // Before the lock file is made: a refused folder is left as it was.
        refuse_foreign_run_files(&job.out)?;
    }
    let pretrains = start.is_none() && model_cfg.pretrain_epochs().is_some_and(|e| e > 0);
    if pretrains && !dir.has_run() {
        check_pretrain_folder(&pretrain, &job.out, job.resume)?;
    }
    crate::trainer::no_training_pairs(ds, job.data_path.as_deref())?;
    check_memory(&model_cfg, &train_cfg, &job.device)?;
    std::fs::create_dir_all(&job.out).map_err(|e| io(&job.out, "cannot create", e))?;
    let _lock = lock_run(&job.out)?;
    // Only temporaries of a run's own files: `--out` may be a folder of the user's.
    ssi_data::dataset::remove_stale_temps(&job.out, &crate::checkpoint::is_run_file);
    ssi_data::dataset::remove_stale_temps(
        &job.out.join(PRETRAIN_DIR),
        &crate::checkpoint::is_run_file,
    );
    if job.resume && dir.has_run() {
        resume_limits(&dir, job, &info, obs)?;
        // One line per invocation: a run resumed with a new limit says so wherever it is shown.
        let path = dir.file("command.txt");
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        let lines = format!("{}\n{}", before.trim_end(), command_text(&job.command));
        ssi_data::dataset::write_atomic(&path, lines.trim_start().as_bytes())?;
    }
    let in_pretraining = !dir.has_run() && pretrain.has_run();
    if job.resume && in_pretraining {
        same_settings_as_pretraining(&pretrain, &model_cfg, &train_cfg, &job.out)?;
    }
    let continues_pretraining = job.resume && in_pretraining;
    if !dir.has_run() && !continues_pretraining {
        refuse_foreign_run_files(&job.out)?;
        ssi_data::dataset::write_atomic(
            &dir.file("command.txt"),
            command_text(&job.command).as_bytes(),
        )?;
    }
    let trainer = Trainer {
        dataset: ds,
        dataset_path: job.data_path.clone(),
        dir: dir.clone(),
        device: train_device,
        stop_after_epochs: None,
    };
    let init_from = match &job.init {
        Some(p) => Some(std::path::absolute(p).map_err(|e| io(p, "--init", e))?),
        None => None,
    };
    let state = match &job.distill {
        None if start.is_some() => {
            let mut run = trainer.run_config(&model_cfg, &train_cfg, None);
            run.init_from = init_from;
            trainer.run_objective(run, job.resume, obs, |r| {
                Ok(WarmStart {
                    config: r.model.clone(),
                    start,
                })
            })?
        }
        None => trainer.run_staged(&model_cfg, &train_cfg, job.resume, obs)?,
        Some((_, imitation)) => {
            // A student with a pre-training stage (S3-Rec) pre-trains first, as `train` does.
            let start = match start {
                Some(start) => Some(start),
                None => match trainer.pretrain(&model_cfg, &train_cfg, job.resume, obs)? {
                    Pretrained::Done(start) => start.map(|m| *m),
                    Pretrained::Stopped(_) => {
                        return Err(TrainError::Config(format!(
                            "{}: the pre-training stage stopped before its end; --resume continues it",
                            job.out.display()
                        )));
                    }
                },
            };
            let spec = DistillSpec {
                // Absolute, as --init: `--resume` from another working folder finds them.
                teachers: named
                    .iter()
                    .map(|(d, _)| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
                    .collect(),
                teacher_names: named.iter().map(|(_, n)| n.clone()).collect(),
                imitation: imitation.clone(),
                teacher_weights: Some(teacher_weights),
            };
            let mut run = trainer.run_config(&model_cfg, &train_cfg, Some(spec));
            run.init_from = init_from;
            let tdev = trainer.device.clone();
            trainer.run_objective(run, job.resume, obs, |r| {
                let mut d = Distill::from_run(r, &tdev)?;
                d.student_start = start;
                d.prepare(ds, &tdev)
            })?
        }
    };
    let report = evaluate_test(&dir, ds, &job.device, obs)?;
    // The epoch the figures are of: a reader compares it with state.json's, so a test.json
    // left from before a reopened run finished again is not taken for its result.
    let best_epoch = dir.state()?.best_epoch;
    let mut test = report.to_json();
    if let Some(epoch) = best_epoch {
        test["epoch"] = epoch.into();
    }
    dir.write_json("test.json", &test)?;
    tests_by_rule(&dir, ds, &job.device, &test, obs);
    Ok((state, report))
}

/// Writes `test-by-RULE.json` for each rule whose best epoch the run keeps besides its own.
/// Beside the run's result, not part of it: a file that cannot be read or evaluated is said and
/// left out (with any older one), never a reason to fail the run.
fn tests_by_rule(
    dir: &RunDir,
    ds: &Dataset,
    device: &Device,
    test: &Value,
    obs: &mut dyn TrainObserver,
) {
    let best_epoch = test.get("epoch").and_then(Value::as_u64);
    for rule in SelectBy::ALL {
        let name = test_by(rule);
        let json = dir.read_best_by(rule).and_then(|kept| {
            let Some((epoch, bytes)) = kept else {
                return Ok(None);
            };
            let mut json = if Some(epoch as u64) == best_epoch {
                // The same weights as best.bpk: the same figures.
                test.clone()
            } else {
                let cfg = dir.config()?;
                let model = model_from_bytes(&cfg.model, bytes, device)
                    .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", dir.path.display())))?;
                evaluate_model(dir, &cfg, &model, ds, obs)?.to_json()
            };
            json["kept_by"] = rule.name().into();
            json["epoch"] = epoch.into();
            Ok(Some(json))
        });
        let written = match json {
            Ok(Some(json)) => dir.write_json(&name, &json).map(|()| true),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        match written {
            Ok(true) => {}
            Ok(false) => {
                let _ = std::fs::remove_file(dir.file(&name));
            }
            Err(e) => {
                let _ = std::fs::remove_file(dir.file(&name));
                obs.notice(&format!(
                    "{}: no {name} (the test figures of the epoch kept by {}): {e}",
                    dir.path.display(),
                    rule.describe()
                ));
            }
        }
    }
}

/// The file of the test figures of a run's best epoch by `rule`, where the run keeps it besides
/// its own rule's (`TrainState::also_best`).
pub fn test_by(rule: SelectBy) -> String {
    format!("test-by-{}.json", rule.name())
}

/// The best epoch of the run in `dir` on the test split: 99 negatives drawn with its `eval_seed`,
/// and full ranking.
pub fn evaluate_test(
    dir: &RunDir,
    ds: &Dataset,
    device: &Device,
    obs: &mut dyn TrainObserver,
) -> Result<EvalReport, TrainError> {
    let (cfg, model) = dir.load_best(device)?;
    evaluate_model(dir, &cfg, &model, ds, obs)
}

/// Weights of the run in `dir` on the test split, as [`evaluate_test`] ranks them.
fn evaluate_model(
    dir: &RunDir,
    cfg: &RunConfig,
    model: &AnyModel,
    ds: &Dataset,
    obs: &mut dyn TrainObserver,
) -> Result<EvalReport, TrainError> {
    cfg.dataset
        .check_same(&DatasetInfo::of(ds, None), &dir.path.display().to_string())?;
    let ev = Evaluator::new(
        ds,
        EvalConfig {
            seed: cfg.train.candidates_seed(),
            split: Split::Test,
            ..Default::default()
        },
    );
    let total = ev.users.len();
    let rec = ModelRecommender::new(model);
    Ok(ev.evaluate(ds, &rec, &mut |done, _| obs.evaluating(done, total))?)
}

fn io(path: &Path, what: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(format!("{what} {}: {e}", path.display()))
}

/// Holds an exclusive lock on `dir/.lock` while a run trains: two processes training one folder
/// would overwrite each other's checkpoints. The OS releases it when the process ends, however it
/// ends, so a killed run leaves nothing stale behind.
fn lock_run(dir: &Path) -> Result<std::fs::File, TrainError> {
    let path = dir.join(".lock");
    match try_lock_file(&path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(TrainError::Config(format!(
            "{} is being trained by another process (it holds {}): wait for it to finish, or stop it and run again (`ssi train` with --resume; reproduce and quickstart resume by themselves)",
            dir.display(),
            path.display()
        ))),
        Err(e) => Err(io(&path, "cannot lock", e)),
    }
}

/// Opens (creating) `path` and takes its exclusive lock, held until the file is dropped;
/// `Ok(None)` when another process holds it.
pub fn try_lock_file(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// On `--resume`, settings given again must agree with the run's `config.json`, except its
/// stopping limits: new ones replace the saved ones and reopen a finished run they allow to go
/// on (`--resume --set time_budget_minutes=45` continues a run that stopped at 22 minutes). Any
/// other difference is an error, not silently ignored: a run is one model trained one way.
/// Checked before anything is written: a failed resume leaves the run as it was.
fn resume_limits(
    dir: &RunDir,
    job: &Job,
    info: &DatasetInfo,
    obs: &mut dyn TrainObserver,
) -> Result<(), TrainError> {
    dir.check_record()?;
    let saved = dir.config()?;
    saved
        .dataset
        .check_same(info, &dir.path.display().to_string())?;
    dir.check_files()?;
    if let (Some(spec), Some((teachers, imitation))) = (&saved.distill, &job.distill) {
        same_distillation(dir, spec, teachers, imitation)?;
        same_teacher_weights(dir, spec)?;
    }
    if saved.model.kind() != job.kind || saved.distill.is_some() != job.distill.is_some() {
        let what = |kind: ModelKind, distill: bool| {
            let role = if distill {
                "distilled student"
            } else {
                "model"
            };
            format!("{} {role}", kind.name())
        };
        return Err(TrainError::Config(format!(
            "{} holds a {} run, not a {} run: --resume continues the run that is there; choose another --out",
            dir.path.display(),
            what(saved.model.kind(), saved.distill.is_some()),
            what(job.kind, job.distill.is_some())
        )));
    }
    let (model, train) = apply_settings(&saved.model, &saved.train, &job.settings)?;
    let json = TrainConfig::comparable;
    // Saved settings as they read (`null` where a default was added later: its meaning).
    let pairs = [
        (model.to_json(), saved.model.clone().resolved().to_json()),
        (json(&train), json(&saved.train)),
    ];
    let mut changed = Vec::new();
    let mut limits = Vec::new();
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
        return Err(TrainError::Config(format!(
            "{}: --resume continues the run with its own settings, and these differ from its config.json: {}. Only {} may change on --resume; train a new run (another --out) to change the others",
            dir.path.display(),
            changed.join(", "),
            LIMITS.join(", ")
        )));
    }
    if !limits.is_empty() {
        // A reopened run's test.json stays until the run finishes again: readers take it only
        // beside a finished state.json (`RunDir::has_result`).
        limits_cover_the_run(dir, &dir.state()?, &saved.train, &train)?;
        let open = dir.set_limits(&train)?;
        obs.notice(&format!(
            "{}: new limits {}{}",
            dir.path.display(),
            limits.join(", "),
            if open { "" } else { " (still finished)" }
        ));
    }
    Ok(())
}

/// A run stopped in its pre-training (S3-Rec) has no `config.json` of its own yet: the settings
/// it resumes with must be those its pre-training was started with (the fine-tuning is built
/// from them), apart from the stopping limits and the epochs of each stage.
fn same_settings_as_pretraining(
    pretrain: &RunDir,
    model: &ModelConfig,
    train: &TrainConfig,
    out: &Path,
) -> Result<(), TrainError> {
    let saved = pretrain.config()?;
    let json = TrainConfig::comparable;
    let pairs = [
        (model.to_json(), saved.model.clone().resolved().to_json()),
        (json(train), json(&saved.train)),
    ];
    let mut differ = Vec::new();
    for (new, old) in &pairs {
        for (k, v) in new.as_object().into_iter().flatten() {
            let stage_specific = k == "eval_every" || LIMITS.contains(&k.as_str());
            if !stage_specific && old.get(k) != Some(v) {
                differ.push(format!("{k} {} -> {v}", old.get(k).unwrap_or(&Value::Null)));
            }
        }
    }
    if differ.is_empty() {
        return Ok(());
    }
    // The command that started it, to copy: its settings are not all in the stage's record
    // (the fine-tuning's own epochs and limits are only on its command line).
    let started = std::fs::read_to_string(out.join("command.txt"))
        .ok()
        .and_then(|t| t.lines().next().map(str::trim).map(String::from))
        .filter(|l| !l.is_empty());
    let how = match started {
        Some(line) => format!("run the command that started it with --resume: {line} --resume"),
        None => "give them as its command did".into(),
    };
    Err(TrainError::Config(format!(
        "{}: stopped in its pre-training, it resumes with the settings it was started with, and these differ: {}. To continue, {how}",
        out.display(),
        differ.join(", "),
    )))
}

/// New limits must describe the training the run has had: an epoch limit or time budget below
/// what it has used, or a patience lower than it trained under (it may have gone on past where
/// the lower one stops), would make `config.json` claim a run that was not trained that way.
fn limits_cover_the_run(
    dir: &RunDir,
    state: &TrainState,
    saved: &TrainConfig,
    new: &TrainConfig,
) -> Result<(), TrainError> {
    // Only the limits this command changes: a run stopped by its time budget has trained a
    // little past it, and keeps that budget.
    let mut below = Vec::new();
    if new.epochs != saved.epochs && new.epochs < state.epoch {
        below.push(format!(
            "epochs {} is below the {} epochs it has trained",
            new.epochs, state.epoch
        ));
    }
    if new.time_budget_minutes != saved.time_budget_minutes
        && let Some(m) = new.time_budget_minutes
        && m * 60.0 < state.train_seconds
    {
        below.push(format!(
            "time_budget_minutes {m} is below the {:.3} minutes ({:.1} s) it has trained",
            state.train_seconds / 60.0,
            state.train_seconds
        ));
    }
    if new.patience < saved.patience {
        below.push(format!(
            "patience {} is below the {} it trained with",
            new.patience, saved.patience
        ));
    }
    if new.patience_steps < saved.patience_steps {
        below.push(format!(
            "patience_steps {} is below the {} it trained with",
            new.patience_steps, saved.patience_steps
        ));
    }
    if below.is_empty() {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "{}: --resume can raise a run's stopping limits, not lower them below the training it has had ({}); train a new run (another --out) to stop sooner",
        dir.path.display(),
        below.join("; ")
    )))
}

/// Says which model settings of an `--init` run the new run does not share (a default that
/// changed since it was trained, a teacher's task): its weights continue under the new ones.
fn init_settings_notice(init: &Path, model: &ModelConfig, obs: &mut dyn TrainObserver) {
    let Ok(cfg) = RunDir::new(init).config() else {
        return;
    };
    let (old, new) = (cfg.model.resolved().to_json(), model.to_json());
    let differ: Vec<String> = new
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| old.get(k.as_str()).unwrap_or(&Value::Null) != *v)
        .map(|(k, v)| format!("{k} {} -> {v}", old.get(k).unwrap_or(&Value::Null)))
        .collect();
    if !differ.is_empty() {
        obs.notice(&format!(
            "{} was trained with other model settings ({}); this run continues its weights with the new ones",
            init.display(),
            differ.join(", ")
        ));
    }
}

/// Whether `job`, resuming the unfinished run in its `out`, keeps stopping limits that cover
/// the training the run has had (what `train_job` checks when it resumes), for pipelines that
/// check every stage before any trains.
pub fn resume_limits_cover(ds: &Dataset, job: &Job) -> Result<(), TrainError> {
    let dir = RunDir::new(&job.out);
    let saved = dir.config()?;
    let base = ModelConfig::new(job.kind, ds.n_items as usize, ds.n_users());
    let (_, train) = apply_settings(&base, &TrainConfig::defaults_for(&base), &job.settings)?;
    limits_cover_the_run(&dir, &dir.state()?, &saved.train, &train)
}

/// The settings of the run in `job.out` that differ from those `job` would start a new run with,
/// limits included, each as `key saved -> asked`: `reproduce` reads a finished run back only
/// when none differ, so a table never shows a run trained another way than its command says.
pub fn differing_settings(ds: &Dataset, job: &Job) -> Result<Vec<String>, TrainError> {
    let saved = RunDir::new(&job.out).config()?;
    let base = ModelConfig::new(job.kind, ds.n_items as usize, ds.n_users());
    let (model, train) = apply_settings(&base, &TrainConfig::defaults_for(&base), &job.settings)?;
    let json = TrainConfig::comparable;
    let mut differ = Vec::new();
    for (new, old) in [
        (model.to_json(), saved.model.clone().resolved().to_json()),
        (json(&train), json(&saved.train)),
    ] {
        let keys: std::collections::BTreeSet<&String> = new
            .as_object()
            .into_iter()
            .chain(old.as_object())
            .flat_map(|o| o.keys())
            .collect();
        for k in keys {
            let (n, o) = (
                new.get(k).unwrap_or(&Value::Null),
                old.get(k).unwrap_or(&Value::Null),
            );
            if n != o {
                differ.push(format!("{k} {o} -> {n}"));
            }
        }
    }
    Ok(differ)
}

/// A resumed distillation keeps its teachers and every imitation option the loss depends on.
fn same_distillation(
    dir: &RunDir,
    spec: &DistillSpec,
    teachers: &[PathBuf],
    imitation: &ImitationConfig,
) -> Result<(), TrainError> {
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    let same_teachers = spec.teachers.len() == teachers.len()
        && spec.teachers.iter().zip(teachers).all(|(a, b)| same(a, b));
    // What the loss depends on: the teacher cache is a speed option, and runs written before
    // imitation points existed imitate at the target.
    let loss_terms = |c: &ImitationConfig| {
        let mut v = serde_json::to_value(c).expect("configs serialise");
        v["cache_teachers"] = Value::Null;
        v["points"] = serde_json::to_value(c.imitation_points()).expect("configs serialise");
        v
    };
    let (saved_terms, asked_terms) = (loss_terms(&spec.imitation), loss_terms(imitation));
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
        let list = |t: &[PathBuf]| {
            t.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        differ.insert(
            0,
            format!("teachers {} -> {}", list(&spec.teachers), list(teachers)),
        );
    }
    if differ.is_empty() {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "{}: --resume continues the distillation that is there, with its teachers and imitation options (config.json); these differ: {}. Train a new run (another --out) to change them",
        dir.path.display(),
        differ.join(", ")
    )))
}

/// A resumed distillation imitates the teachers it started with: one whose `best.bpk` changed
/// since (retrained, resumed with a larger limit) is refused, naming it.
fn same_teacher_weights(dir: &RunDir, spec: &DistillSpec) -> Result<(), TrainError> {
    teachers_unchanged(spec).map_err(|e| {
        TrainError::Config(format!(
            "{}: {e}; --resume would imitate other weights for the rest of the run: put each back, or train a new run (another --out) with the teachers as they are now",
            dir.path.display()
        ))
    })
}

/// Whether every teacher of a distillation still holds the best weights it recorded when the
/// distillation started (runs from before the record pass); the error names the teacher.
pub(crate) fn teachers_unchanged(spec: &DistillSpec) -> Result<(), TrainError> {
    let Some(saved) = &spec.teacher_weights else {
        return Ok(());
    };
    let now = spec
        .teachers
        .iter()
        .map(|t| RunDir::new(t).best_weights_sha256())
        .collect::<Result<Vec<_>, _>>()?;
    for ((teacher, want), have) in spec.teachers.iter().zip(saved).zip(&now) {
        if let Some(other) = spec
            .teachers
            .iter()
            .zip(&now)
            .find(|(t, h)| *t != teacher && *h == want && have != want)
        {
            return Err(TrainError::Config(format!(
                "teacher {} now holds the weights teacher {} held when this distillation started (folders swapped or renamed?)",
                other.0.display(),
                teacher.display()
            )));
        }
        if have != want {
            return Err(TrainError::Config(format!(
                "the best weights of teacher {} changed since this distillation started (retrained or resumed?)",
                teacher.display()
            )));
        }
    }
    Ok(())
}

/// `OUT/pretrain`, where a new run of a model with a pre-training stage pre-trains, checked as
/// `OUT` is before anything is written: a stage of this run continues only with `--resume`, and
/// anything else there (a run of its own, a user's files of a run's names) is never trained over.
fn check_pretrain_folder(pretrain: &RunDir, out: &Path, resume: bool) -> Result<(), TrainError> {
    let path = &pretrain.path;
    if let Some(what) = ssi_data::files::not_a_folder(path) {
        return Err(TrainError::Config(format!(
            "{} is {what}, where this run pre-trains: move it away, or choose another --out",
            path.display()
        )));
    }
    if pretrain.has_run() {
        pretrain.check_record()?;
        let cfg = pretrain.config()?;
        if pretrain.stage_owner(&cfg).is_none() {
            return Err(TrainError::Config(format!(
                "{} holds a run of its own ({}), where this run pre-trains: move it away, or choose another --out",
                path.display(),
                cfg.model.kind().name()
            )));
        }
        if !resume {
            return Err(TrainError::Config(format!(
                "{} holds the pre-training stage of a run cut off in it: pass --resume to continue it, or choose another --out",
                out.display()
            )));
        }
        return Ok(());
    }
    pretrain.refuse_orphan()?;
    if path.is_dir() {
        refuse_foreign_run_files(path)?;
    }
    Ok(())
}

/// A new run may go into a folder that holds other files (they are kept), but never over a
/// file of the names a run writes: a `config.json` that is not a run's (a settings file), or a
/// run's files without the `config.json` that would make them a run ssi can continue.
pub(crate) fn refuse_foreign_run_files(out: &Path) -> Result<(), TrainError> {
    let config = out.join("config.json");
    if config.exists() {
        // A run of ours killed before its first state.json is resumed over.
        return RunDir::new(out).config().map(|_| ()).map_err(|e| {
            TrainError::Config(format!(
                "{} is not the config.json of an ssi run ({e}): a run in {} would replace it; choose another --out",
                config.display(),
                out.display()
            ))
        });
    }
    // A run killed before config.json (a distillation computing its teachers' encodings)
    // leaves its lock and command.txt: only a command.txt without a lock is someone else's.
    let locked = out.join(".lock").exists();
    let ours = |n: &str| {
        matches!(n, "best.bpk" | "state.json" | "test.json" | "log.jsonl")
            || n.starts_with("test-by-") && n.ends_with(".json")
            || n == "command.txt" && !locked
            || (n.starts_with("epoch-") || n.starts_with("best-")) && n.ends_with(".bpk")
    };
    let mut found: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| io(out, "cannot read", e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| ours(n))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    Err(TrainError::Config(format!(
        "{} holds {} but no config.json: it is not a run ssi can continue, and a new run would replace those files; choose another --out",
        out.display(),
        found.join(", ")
    )))
}

/// Refuses settings whose training would not fit in this machine's free memory (on the CPU
/// backend, where the model lives in host memory), before anything is written: past that the
/// allocator aborts the process, or the OS kills it or another process.
fn check_memory(
    model: &ssi_models::ModelConfig,
    train: &TrainConfig,
    device: &Device,
) -> Result<(), TrainError> {
    if *device != Device::flex() {
        return Ok(());
    }
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let need = training_bytes(model, train);
    if need <= available as f64 {
        return Ok(());
    }
    let gib = |b: f64| b / (1u64 << 30) as f64;
    let len = if model.to_json().get("window").is_some() {
        "window"
    } else {
        "max_len"
    };
    let depth = if model.to_json().get("dilations").is_some() {
        ", the number of dilations".to_string()
    } else if model.to_json().get("layers").is_some() {
        format!(", layers ({})", setting(model, "layers", 2.0))
    } else {
        String::new()
    };
    Err(TrainError::Config(format!(
        "these settings need about {:.1} GiB to train ({} items x hidden {}{} in weights, gradients and Adam's moments; batch_size {} x {len} {} positions scored against {} items per step{}; the worst case, sequences as long as {len}), and this machine has {:.1} GiB free: lower batch_size, {len}, hidden{depth} or heads{}",
        gib(need),
        model.n_items(),
        setting(model, "hidden", 64.0),
        match model.to_json().get("layers").and_then(Value::as_f64) {
            Some(l) => format!(", {l} layers of hidden^2 weights and activations"),
            None => String::new(),
        },
        train.batch_size,
        setting(model, "max_len", setting(model, "window", 50.0)),
        if train.sampled_negatives > 0 {
            format!("{} sampled", train.sampled_negatives + 1)
        } else {
            format!("all {}", model.n_items() + 1)
        },
        match setting(model, "heads", 0.0) {
            0.0 => String::new(),
            h => format!("; batch_size x {h} heads x max_len^2 attention scores per layer"),
        },
        gib(available as f64),
        if model.n_items() > 2048 && train.sampled_negatives == 0 {
            ", or score fewer items per step with --set sampled_negatives=1024"
        } else {
            ""
        }
    )))
}

fn setting(model: &ssi_models::ModelConfig, key: &str, default: f64) -> f64 {
    model
        .to_json()
        .get(key)
        .and_then(Value::as_f64)
        .unwrap_or(default)
}

/// A rough upper bound of a training step's memory: the item table and the layers in weights,
/// gradients and Adam's two moments, a step's logits three times over (scores, softmax, their
/// gradient), and for attention models each layer's batch × heads × max_len² attention scores
/// four times over (scores, softmax, dropout, gradient) — what dominates for every model here.
fn training_bytes(model: &ssi_models::ModelConfig, train: &TrainConfig) -> f64 {
    let items = model.n_items() as f64 + 1.0;
    let hidden = setting(model, "hidden", 64.0);
    // GREC's depth is its list of dilations; HGN reads a `window` of items, not `max_len`.
    let dilations = model
        .to_json()
        .get("dilations")
        .and_then(Value::as_array)
        .map(|d| d.len() as f64);
    let layers = dilations.unwrap_or_else(|| setting(model, "layers", 2.0));
    let max_len = setting(model, "max_len", setting(model, "window", 50.0));
    let positions = train.batch_size as f64 * max_len;
    let params = (items + max_len) * hidden + layers * 12.0 * hidden * hidden;
    let scored = if train.sampled_negatives > 0 {
        train.sampled_negatives as f64 + 1.0
    } else {
        items
    };
    // Models without attention have no `heads` setting.
    let heads = setting(model, "heads", 0.0);
    let attention = 4.0 * layers * positions * heads * max_len;
    4.0 * (4.0 * params + 3.0 * positions * scored + 40.0 * positions * hidden * layers + attention)
}

/// Free memory in bytes (`MemAvailable`), where the OS tells it.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
