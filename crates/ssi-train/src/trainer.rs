//! The training loop shared by every model.

use crate::checkpoint::{AlsoBest, RunDir, TrainState, module_bytes};
use crate::config::SelectBy;
pub use crate::config::{DatasetInfo, DistillSpec, RunConfig, TrainConfig, TrainError};
use crate::recommender::ModelRecommender;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use ssi_data::rng::{SsiRng, derived, mix};
use ssi_data::split::train_part;
use ssi_data::{Dataset, EvalConfig, Evaluator, Split};
use ssi_models::loss::Softmax;
use ssi_models::{AnyModel, ModelConfig, SequentialModel, TrainBatch};

/// What a run optimises: the module checkpointed every epoch, its loss on a batch, and the
/// recommender inside it that is validated and kept as `best.bpk`. Plain training optimises a
/// model alone; distillation (`crate::distill`) a student plus the imitation weights.
pub trait Objective {
    type Module: Module + Clone;
    fn init(&self, device: &Device) -> Self::Module;
    /// Rebuilds the module from an epoch checkpoint's bytes.
    fn load(&self, bytes: Vec<u8>, device: &Device) -> Result<Self::Module, TrainError>;
    fn loss(
        &self,
        module: &Self::Module,
        batch: TrainBatch,
        softmax: Softmax,
        rng: &mut SsiRng,
    ) -> Tensor<1>;
    /// The recommender being trained.
    fn model<'m>(&self, module: &'m Self::Module) -> &'m AnyModel;
    /// Extra values for the epoch's log line (e.g. the imitation weights λ_i).
    fn log_extra(&self, _module: &Self::Module) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// A model trained on its own loss.
pub struct Plain(pub ModelConfig);

impl Objective for Plain {
    type Module = AnyModel;
    fn init(&self, device: &Device) -> AnyModel {
        self.0.init(device)
    }
    fn load(&self, bytes: Vec<u8>, device: &Device) -> Result<AnyModel, TrainError> {
        crate::checkpoint::model_from_bytes(&self.0, bytes, device)
    }
    fn loss(
        &self,
        m: &AnyModel,
        batch: TrainBatch,
        softmax: Softmax,
        rng: &mut SsiRng,
    ) -> Tensor<1> {
        m.train_loss(batch, softmax, rng)
    }
    fn model<'m>(&self, m: &'m AnyModel) -> &'m AnyModel {
        m
    }
}

/// One line of `log.jsonl`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub steps: usize,
    pub seqs_per_s: f64,
    pub seconds: f64,
    pub valid_ndcg10: Option<f64>,
    pub valid_recall10: Option<f64>,
    /// Validation NDCG@10 against all items (both protocols every epoch; the stopping rule
    /// reads the sampled one, the paper's). Absent in logs written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_full_ndcg10: Option<f64>,
    pub best: bool,
    /// Objective-specific values, e.g. `"lambda": {"temporal": 1.2, ...}` when distilling.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Progress callbacks (a progress bar natively, the page in the browser).
pub trait TrainObserver {
    fn epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    fn step(&mut self, _step: usize, _loss: f32, _seqs_per_s: f64) {}
    fn epoch_end(&mut self, _log: &EpochLog) {}
    /// Something the user should know that is not an error (e.g. new limits of a resumed run).
    fn notice(&mut self, _message: &str) {}
    /// Test users evaluated so far, of `total`.
    fn evaluating(&mut self, _done: usize, _total: usize) {}
}

pub struct Silent;
impl TrainObserver for Silent {}

pub struct Trainer<'a> {
    pub dataset: &'a Dataset,
    pub dataset_path: Option<std::path::PathBuf>,
    pub dir: RunDir,
    pub device: Device,
    /// Return after this many epochs of this invocation, leaving the run resumable (what a kill
    /// between two epochs leaves behind).
    pub stop_after_epochs: Option<usize>,
}

/// Seeds for one epoch: batches, masks and dropout depend only on (seed, epoch), so a resumed run
/// replays exactly what an uninterrupted one does.
fn epoch_rng(seed: u64, epoch: usize) -> SsiRng {
    derived(seed, 0x0074_7261_696e, epoch as u64)
}

pub fn shuffle<T>(v: &mut [T], rng: &mut SsiRng) {
    use ssi_data::rng::Rng;
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

impl Trainer<'_> {
    /// Trains a model on its own loss from scratch into an empty run folder, or continues the
    /// run found there when `resume` is set.
    pub fn run(
        &self,
        model_cfg: &ModelConfig,
        cfg: &TrainConfig,
        resume: bool,
        obs: &mut dyn TrainObserver,
    ) -> Result<TrainState, TrainError> {
        let run = self.run_config(model_cfg, cfg, None);
        self.run_objective(run, resume, obs, |saved| Ok(Plain(saved.model.clone())))
    }

    /// The `config.json` of a new run of this trainer's dataset.
    pub fn run_config(
        &self,
        model: &ModelConfig,
        train: &TrainConfig,
        distill: Option<DistillSpec>,
    ) -> RunConfig {
        RunConfig {
            model: model.clone(),
            train: train.clone(),
            dataset: DatasetInfo::of(self.dataset, self.dataset_path.as_deref()),
            distill,
            init_from: None,
            pretrain_stage: false,
        }
    }

    /// Runs any objective. `make` builds it from the run's config: `run` for a new run, the saved
    /// `config.json` when resuming (so a resumed run keeps its settings).
    pub fn run_objective<O: Objective>(
        &self,
        run: RunConfig,
        resume: bool,
        obs: &mut dyn TrainObserver,
        make: impl FnOnce(&RunConfig) -> Result<O, TrainError>,
    ) -> Result<TrainState, TrainError> {
        no_training_pairs(self.dataset, self.dataset_path.as_deref())?;
        // From here: loading, building the objective (a distiller precomputes its teachers'
        // encodings) and training all count towards the run's time and its budget.
        let clock = Clock {
            started: std::time::Instant::now(),
            spent_before: 0.0,
        };
        let mut s = self.open(run, resume, make)?;
        if s.state.finished {
            return Ok(s.state);
        }
        tidy_log(&self.dir, s.state.epoch)?;
        let clock = Clock {
            spent_before: s.state.train_seconds,
            ..clock
        };
        let cfg = s.cfg.clone();
        let valid = Evaluator::new(
            self.dataset,
            EvalConfig {
                seed: cfg.candidates_seed(),
                split: Split::Valid,
                // Full ranking costs one score per item per user, a small part of a validation
                // (the encoder dominates), and shows what imitation does to the head.
                full: true,
                max_users: cfg.valid_users,
                ..Default::default()
            },
        );
        let max_len = s.objective.model(&s.model).max_len();
        let windows = training_windows(self.dataset, max_len, cfg.all_windows);
        let first_epoch = s.state.epoch;
        while s.state.epoch < cfg.epochs {
            if self
                .stop_after_epochs
                .is_some_and(|n| s.state.epoch - first_epoch >= n)
            {
                break;
            }
            let (next, mut log) = self.train_epoch(s, &windows, obs)?;
            s = next;
            s.state.train_seconds = clock.seconds();
            let last = log.epoch == cfg.epochs;
            let keep = if log.epoch % cfg.eval_every.max(1) == 0 || last {
                self.validate(&mut s, &valid, &mut log)?
            } else {
                Kept::default()
            };
            s.state.stop_reason = s.state.stop_reason(&cfg);
            s.state.finished = last || s.state.stop_reason.is_some();
            // The line goes first: a crash before the commit leaves a line of an epoch that
            // `tidy_log` drops on resume, where the other order would lose a committed one.
            // A failed write (a full disk) names what is left to resume from.
            let committed = log.epoch.saturating_sub(1);
            let kept = |e: TrainError| match e {
                TrainError::Checkpoint(m) => TrainError::Checkpoint(format!(
                    "{m}. {}",
                    crate::config::kept_checkpoint(committed, &self.dir.path.display().to_string())
                )),
                e => e,
            };
            append_log(&self.dir, &log).map_err(kept)?;
            self.dir
                .save(
                    &module_bytes(&s.model)?,
                    &s.optim,
                    &mut s.state,
                    keep.best.then_some(&keep.bytes[..]),
                    &keep
                        .also
                        .iter()
                        .map(|&r| (r, &keep.bytes[..]))
                        .collect::<Vec<_>>(),
                )
                .map_err(kept)?;
            obs.epoch_end(&log);
            if s.state.finished {
                break;
            }
        }
        Ok(s.state)
    }

    /// A new run in an empty folder (its `config.json` written), or the run found there when
    /// `resume` is set, checked against `run` and restored from its last epoch.
    fn open<O: Objective>(
        &self,
        run: RunConfig,
        resume: bool,
        make: impl FnOnce(&RunConfig) -> Result<O, TrainError>,
    ) -> Result<Session<O>, TrainError> {
        run.model.validate()?;
        run.train.validate()?;
        let device = &self.device;
        let decay = run.train.weight_decay.filter(|&d| d > 0.0);
        let epsilon = run.train.adam_epsilon;
        let fresh_optim = || {
            let adam = AdamConfig::new();
            let adam = match epsilon {
                Some(e) => adam.with_epsilon(e as f32),
                None => adam,
            };
            adam.with_weight_decay(decay.map(|d| WeightDecayConfig::new(d as f32)))
                .init()
        };
        if !self.dir.has_run() {
            self.dir.refuse_orphan()?;
            let objective = make(&run)?;
            device.seed(run.train.seed);
            let model = objective.init(device);
            self.dir.write_json("config.json", &run)?;
            return Ok(Session {
                objective,
                model,
                optim: fresh_optim(),
                state: TrainState {
                    // A pre-training stage is read only for its best weights.
                    also_best: (!run.pretrain_stage).then(Default::default),
                    ..Default::default()
                },
                cfg: run.train,
            });
        }
        self.dir.check_record()?;
        // Before the advice to resume: a run whose settings cannot be read cannot be resumed.
        let saved = self.dir.config().map_err(|e| {
            TrainError::Config(format!(
                "{} holds a run whose settings cannot be read, so it cannot be continued ({e}): restore its config.json, or choose another --out",
                self.dir.path.display()
            ))
        })?;
        if !resume {
            return Err(TrainError::Config(format!(
                "{} already holds a run: pass --resume to continue it, or choose another --out",
                self.dir.path.display()
            )));
        }
        saved
            .dataset
            .check_same(&run.dataset, &self.dir.path.display().to_string())?;
        if saved.model.kind() != run.model.kind()
            || saved.distill.is_some() != run.distill.is_some()
        {
            let what = |c: &RunConfig| {
                let role = if c.distill.is_some() {
                    "distilled student"
                } else {
                    "model"
                };
                format!("{} {role}", c.model.kind().name())
            };
            return Err(TrainError::Config(format!(
                "{} holds a {} run, not a {} run: --resume continues the run that is there; choose another --out",
                self.dir.path.display(),
                what(&saved),
                what(&run)
            )));
        }
        let objective = make(&saved)?;
        let (bytes, optim, state) = self.dir.load_latest_bytes(fresh_optim())?;
        let model = objective.load(bytes, device).map_err(|e| {
            let file = self.dir.epoch_file(state.epoch, "model");
            TrainError::Checkpoint(format!("{}: {e}", file.display()))
        })?;
        Ok(Session {
            objective,
            model,
            optim,
            state,
            cfg: saved.train,
        })
    }

    /// One pass over the training windows (shuffled, in batches), an optimiser step per batch.
    /// The session is moved through the epoch so the optimiser owns the only handle of each
    /// weight and can update it in place.
    fn train_epoch<O: Objective>(
        &self,
        mut s: Session<O>,
        windows: &[Window],
        obs: &mut dyn TrainObserver,
    ) -> Result<(Session<O>, EpochLog), TrainError> {
        let cfg = s.cfg.clone();
        let epoch = s.state.epoch + 1;
        let mut rng = epoch_rng(cfg.seed, epoch);
        self.device.seed(mix(cfg.seed ^ epoch as u64));
        ssi_models::transformer::set_dropout_masks(cfg.dropout_masks.unwrap_or_default());
        ssi_models::transformer::seed_dropout(mix(cfg.seed ^ epoch as u64) ^ 0x64726f70);
        let batches = epoch_batches(windows, &cfg, &mut rng);
        let steps = batches.len();
        // Training positions (targets) of a window: all its items but the first.
        let mean_positions =
            windows.iter().map(|w| w.len - 1).sum::<usize>() as f64 / windows.len().max(1) as f64;
        let softmax = cfg.softmax();
        obs.epoch_start(epoch, steps);
        let t0 = std::time::Instant::now();
        let mut loss_sum = 0.0f64;
        let mut seen = 0usize;
        for (step, chunk) in batches.iter().enumerate() {
            let seqs: Vec<&[u32]> = chunk.iter().map(|w| w.items(self.dataset)).collect();
            let who: Vec<usize> = chunk.iter().map(|w| w.user).collect();
            let batch = TrainBatch {
                items: &seqs,
                users: &who,
            };
            let loss = s.objective.loss(&s.model, batch, softmax, &mut rng);
            let value: f32 = loss.clone().try_into_scalar().map_err(|e| {
                TrainError::Device(format!(
                    "the {:?} backend failed at epoch {epoch}, step {}: {}. {}; a smaller batch_size or max_len needs less memory",
                    loss.device(),
                    step + 1,
                    ssi_models::common::brief(&e.to_string()),
                    crate::config::kept_checkpoint(
                        s.state.epoch,
                        &self.dir.path.display().to_string()
                    ),
                ))
            })?;
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    value,
                    epoch,
                    step: step + 1,
                    last_good: s.state.epoch,
                    dir: self.dir.path.display().to_string(),
                });
            }
            let loss = if cfg.position_weighted {
                let positions: usize = chunk.iter().map(|w| w.len - 1).sum();
                let average = mean_positions * cfg.batch_size as f64;
                loss.mul_scalar((positions as f64 / average.max(1e-9)) as f32)
            } else {
                loss
            };
            let grads = GradientsParams::from_grads(loss.backward(), &s.model);
            s.model = s.optim.step(cfg.lr, s.model, grads);
            loss_sum += value as f64;
            seen += chunk.len();
            s.state.steps += 1;
            obs.step(
                step + 1,
                value,
                seen as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            );
        }
        let seconds = t0.elapsed().as_secs_f64();
        s.state.epoch = epoch;
        let extra = s.objective.log_extra(&s.model);
        let log = EpochLog {
            epoch,
            loss: loss_sum / steps.max(1) as f64,
            steps,
            seqs_per_s: seen as f64 / seconds.max(1e-9),
            seconds,
            valid_ndcg10: None,
            valid_recall10: None,
            valid_full_ndcg10: None,
            best: false,
            extra,
        };
        Ok((s, log))
    }

    /// Validates the model into `log` and keeps the best: by the run's own rule (`best.bpk`,
    /// patience) and by each other rule the run tracks (`best-by-RULE.bpk`).
    fn validate<O: Objective>(
        &self,
        s: &mut Session<O>,
        valid: &Evaluator,
        log: &mut EpochLog,
    ) -> Result<Kept, TrainError> {
        let eval_model = s.objective.model(&s.model).valid();
        let rec = ModelRecommender::new(&eval_model);
        let report = valid.evaluate(self.dataset, &rec, &mut |_, _| {})?;
        let ndcg = report.sampled.ndcg_at(10).unwrap_or(0.0);
        log.valid_ndcg10 = Some(ndcg);
        log.valid_recall10 = report.sampled.recall_at(10);
        log.valid_full_ndcg10 = report.full.as_ref().and_then(|f| f.ndcg_at(10));
        let select_by = s.cfg.select_by.unwrap_or_default();
        let score = select_by
            .score(ndcg, log.valid_full_ndcg10)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "select_by = {select_by:?} needs full-ranking validation, which gave no figure"
                ))
            })?;
        let state = &mut s.state;
        state.select_by = s.cfg.select_by;
        let mut also = Vec::new();
        if let Some(kept) = state.also_best.as_mut() {
            for rule in SelectBy::ALL.into_iter().filter(|&r| r != select_by) {
                let Some(score) = rule.score(ndcg, log.valid_full_ndcg10) else {
                    continue;
                };
                if kept.get(rule.name()).is_none_or(|b| score > b.score) {
                    let epoch = log.epoch;
                    kept.insert(rule.name().into(), AlsoBest { epoch, score });
                    also.push(rule);
                }
            }
        }
        let best = state.best_epoch.is_none() || score > state.best_valid_ndcg10;
        if best {
            state.best_epoch = Some(log.epoch);
            state.best_valid_ndcg10 = score;
            state.best_step = state.steps;
            state.bad_evals = 0;
            log.best = true;
        } else {
            state.bad_evals += 1;
        }
        let bytes = if best || !also.is_empty() {
            crate::checkpoint::model_bytes(s.objective.model(&s.model))?
        } else {
            Vec::new()
        };
        Ok(Kept { bytes, best, also })
    }
}

/// The weights a validation keeps: as `best.bpk` when `best`, and as the best by each rule of
/// `also`.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    best: bool,
    also: Vec<SelectBy>,
}

/// What a run carries from epoch to epoch.
struct Session<O: Objective> {
    objective: O,
    model: O::Module,
    optim: ModuleOptimizer,
    state: TrainState,
    cfg: TrainConfig,
}

/// Training time of a run: what earlier invocations spent plus this one's so far.
#[derive(Clone, Copy)]
struct Clock {
    started: std::time::Instant,
    spent_before: f64,
}

impl Clock {
    fn seconds(&self) -> f64 {
        self.spent_before + self.started.elapsed().as_secs_f64()
    }
}

/// An epoch's batches: the windows shuffled (sorted by length when `bucket_by_length`, batches
/// shuffled after), cut at `max_steps_per_epoch`.
fn epoch_batches(windows: &[Window], cfg: &TrainConfig, rng: &mut SsiRng) -> Vec<Vec<Window>> {
    let mut order = windows.to_vec();
    shuffle(&mut order, rng);
    if cfg.bucket_by_length {
        // Stable: windows of equal length stay in their shuffled order.
        order.sort_by_key(|w| w.len);
    }
    let mut batches: Vec<Vec<Window>> = order
        .chunks(cfg.batch_size)
        .map(<[Window]>::to_vec)
        .collect();
    shuffle(&mut batches, rng);
    batches.truncate(cfg.max_steps_per_epoch.unwrap_or(usize::MAX));
    batches
}

/// A training sequence: `len` items of a user's training part ending (exclusive) at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub user: usize,
    pub end: usize,
    pub len: usize,
}

impl Window {
    pub fn items<'d>(&self, ds: &'d Dataset) -> &'d [u32] {
        &train_part(&ds.sequences[self.user])[self.end - self.len..self.end]
    }
}

/// Refuses a dataset with nothing to train on (before a run folder is written): leave-one-out
/// keeps each user's last two items for validation and test, so only users with four or more
/// items give a training pair; without one an epoch takes no step and the "trained" model is
/// its initialisation.
pub fn no_training_pairs(ds: &Dataset, path: Option<&std::path::Path>) -> Result<(), TrainError> {
    if ds.sequences.iter().any(|s| train_part(s).len() >= 2) {
        return Ok(());
    }
    let longest = ds.sequences.iter().map(Vec::len).max().unwrap_or(0);
    let name = path.map_or(ds.name.clone(), |p| p.display().to_string());
    Err(TrainError::Config(format!(
        "{name}: nothing to train on: each user's last two items are held out for validation \
         and test, so a user needs at least 4 items to give a training pair, and the longest \
         history here has {longest}"
    )))
}

/// The training sequences of an epoch: each user's last `max_len + 1` training items (inputs and
/// their next items); with `all_windows`, also the earlier windows of a longer history, stepping
/// back `max_len` items so that each item is a target exactly once. Users with fewer than two
/// training items have nothing to learn from.
pub fn training_windows(ds: &Dataset, max_len: usize, all_windows: bool) -> Vec<Window> {
    let mut out = Vec::new();
    for (user, seq) in ds.sequences.iter().enumerate() {
        let n = train_part(seq).len();
        let mut end = n;
        while end >= 2 {
            let len = end.min(max_len + 1);
            out.push(Window { user, end, len });
            if !all_windows || max_len == 0 {
                break;
            }
            end = end.saturating_sub(max_len);
        }
    }
    out
}

/// Keeps the lines of `log.jsonl` of committed epochs (up to `epoch`), so a run cut off while
/// writing a line, or between a line and its commit, resumes with one whole line per epoch.
fn tidy_log(dir: &RunDir, epoch: usize) -> Result<(), TrainError> {
    let path = dir.file("log.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let committed = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("epoch")?.as_u64())
            .is_some_and(|e| e as usize <= epoch)
    };
    // A last line without its newline was cut off while being written.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let kept: Vec<&str> = complete
        .split('\n')
        .filter(|l| !l.is_empty() && committed(l))
        .collect();
    let tidy: String = kept.iter().map(|l| format!("{l}\n")).collect();
    if tidy != text {
        ssi_data::dataset::write_atomic(&path, tidy.as_bytes())
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    }
    Ok(())
}

fn append_log(dir: &RunDir, log: &EpochLog) -> Result<(), TrainError> {
    use std::io::Write;
    let path = dir.file("log.jsonl");
    // A link (git-annex, DVC) would be appended through, into a file outside the run: the
    // run's log becomes a file of its own, with the lines the link showed.
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        let lines = std::fs::read(&path).unwrap_or_default();
        ssi_data::dataset::write_atomic(&path, &lines)
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))?;
    let line = serde_json::to_string(log).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    writeln!(f, "{line}").map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Builds a model on `device` that is ready to train (`AnyModel` is already in training mode).
pub fn init_model(cfg: &ModelConfig, device: &Device) -> AnyModel {
    cfg.init(device)
}

/// Re-exported so callers need not name the optimiser type.
pub type Optimizer = ModuleOptimizer;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn tidy_log_keeps_whole_lines_of_committed_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let path = run.file("log.jsonl");
        std::fs::write(&path, "{\"epoch\":1}\n{\"epoch\":2}\n{\"epoch\":3}\n{\"epo").unwrap();
        tidy_log(&run, 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"epoch\":1}\n{\"epoch\":2}\n"
        );
        tidy_log(&run, 2).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_log_is_not_appended_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.jsonl");
        std::fs::write(&outside, "{\"epoch\":1}\n").unwrap();
        let run_dir = dir.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        std::os::unix::fs::symlink(&outside, run_dir.join("log.jsonl")).unwrap();
        let run = RunDir::new(&run_dir);
        let log: EpochLog = serde_json::from_str("{\"epoch\":2,\"loss\":1.0,\"steps\":1,\"seqs_per_s\":1.0,\"seconds\":1.0,\"best\":false}").unwrap();
        append_log(&run, &log).unwrap();
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "{\"epoch\":1}\n"
        );
        let own = run.file("log.jsonl");
        assert!(
            !std::fs::symlink_metadata(&own)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let text = std::fs::read_to_string(&own).unwrap();
        assert!(text.starts_with("{\"epoch\":1}\n{\"epoch\":2"), "{text}");
    }

    fn ds(lens: &[usize]) -> Dataset {
        let mut text = String::new();
        for (u, &n) in lens.iter().enumerate() {
            let items: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            text.push_str(&format!("{} {}\n", u + 1, items.join(" ")));
        }
        Dataset::parse(&text, Path::new("t")).unwrap().0
    }

    #[test]
    fn windows_make_every_training_item_a_target_once() {
        // Training parts of 3, 60 and 8 items (the last two items of each line are held out).
        let d = ds(&[5, 62, 10]);
        let max_len = 4;
        let all = training_windows(&d, max_len, true);
        for (u, seq) in d.sequences.iter().enumerate() {
            let n = train_part(seq).len();
            let mut targets: Vec<usize> = all
                .iter()
                .filter(|w| w.user == u)
                .flat_map(|w| {
                    assert!(w.len <= max_len + 1 && w.len >= 2);
                    (w.end - w.len + 1)..w.end
                })
                .collect();
            targets.sort_unstable();
            assert_eq!(targets, (1..n).collect::<Vec<_>>(), "user {u}");
        }
        // One window per user without `all_windows`: the most recent max_len + 1 items.
        let last = training_windows(&d, max_len, false);
        assert_eq!(last.len(), 3);
        assert!(
            last.iter()
                .all(|w| w.end == train_part(&d.sequences[w.user]).len())
        );
        assert_eq!(last[1].items(&d), &[56, 57, 58, 59, 60]);
    }

    #[test]
    fn patience_needs_both_validations_and_steps() {
        let cfg = TrainConfig::new().with_patience(5).with_patience_steps(100);
        let mut s = TrainState {
            epoch: 20,
            steps: 60,
            best_epoch: Some(8),
            best_step: 24,
            bad_evals: 12,
            ..Default::default()
        };
        // Twelve validations without improvement, but only 36 steps: a small dataset goes on.
        assert_eq!(s.stop_reason(&cfg), None);
        s.steps = 124;
        let why = s.stop_reason(&cfg).expect("patience spent");
        assert!(why.contains("12 validations and 100 steps"), "{why}");
        // Many steps but few validations: goes on too.
        s.bad_evals = 4;
        assert_eq!(s.stop_reason(&cfg), None);
        s.epoch = cfg.epochs;
        assert!(s.stop_reason(&cfg).unwrap().contains("epoch limit"));
    }
}
