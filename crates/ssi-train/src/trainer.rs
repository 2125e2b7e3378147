//! The training loop shared by every model.

use crate::checkpoint::{DatasetInfo, RunConfig, RunDir, TrainState, module_bytes};
use crate::recommender::ModelRecommender;
use burn::config::Config;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use ssi_data::rng::{SsiRng, derived, mix};
use ssi_data::split::train_part;
use ssi_data::{Dataset, EvalConfig, Evaluator, Split};
use ssi_models::loss::Softmax;
use ssi_models::{AnyModel, ModelConfig, SequentialModel, TrainBatch};

#[derive(Config, Debug)]
pub struct TrainConfig {
    #[config(default = 200)]
    pub epochs: usize,
    #[config(default = 256)]
    pub batch_size: usize,
    #[config(default = 1e-3)]
    pub lr: f64,
    #[config(default = 42)]
    pub seed: u64,
    /// Validate every this many epochs.
    #[config(default = 1)]
    pub eval_every: usize,
    /// Stop after this many validations in a row without a better validation NDCG@10.
    #[config(default = 5)]
    pub patience: usize,
    /// 0: full softmax over all items; k > 0: sampled softmax with k shared negatives.
    #[config(default = 0)]
    pub sampled_negatives: usize,
    /// Batch users of similar history length together (batches shuffled), so little compute goes
    /// to padding. Not in the paper: a speed option; `false` gives uniformly random batches.
    #[config(default = true)]
    pub bucket_by_length: bool,
    /// Validate on the first this many users only (None: all).
    #[config(default = "None")]
    pub valid_users: Option<usize>,
    /// Cap on steps per epoch (None: a full pass); for smoke tests and time budgets.
    #[config(default = "None")]
    pub max_steps_per_epoch: Option<usize>,
    /// Stop (after the current epoch) once this much training time has passed.
    #[config(default = "None")]
    pub time_budget_minutes: Option<f64>,
}

impl TrainConfig {
    pub fn softmax(&self) -> Softmax {
        match self.sampled_negatives {
            0 => Softmax::Full,
            k => Softmax::Sampled(k),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Config(String),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}: training stopped. The last good checkpoint (epoch {last_good}) is kept in {dir}; try a lower learning rate"
    )]
    NonFinite {
        value: f32,
        epoch: usize,
        step: usize,
        last_good: usize,
        dir: String,
    },
    #[error("{0}")]
    Data(#[from] ssi_data::DataError),
}

/// What a run optimises: the module checkpointed every epoch, its loss on a batch, and the
/// recommender inside it that is validated and kept as `best.bpk`. Plain training optimises a
/// model alone; distillation (`crate::distill`) a student plus the imitation weights.
pub trait Objective {
    type Module: Module + Clone;
    fn init(&self, device: &Device) -> Self::Module;
    /// Rebuilds the module from an epoch checkpoint's bytes.
    fn load(&self, bytes: Vec<u8>, device: &Device) -> Result<Self::Module, String>;
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
    fn load(&self, bytes: Vec<u8>, device: &Device) -> Result<AnyModel, String> {
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
        distill: Option<crate::distill::DistillSpec>,
    ) -> RunConfig {
        RunConfig {
            model: model.clone(),
            train: train.clone(),
            dataset: DatasetInfo {
                name: self.dataset.name.clone(),
                n_items: self.dataset.n_items as usize,
                n_users: self.dataset.n_users(),
                path: self.dataset_path.clone(),
            },
            distill,
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
        // From here: loading, building the objective (a distiller precomputes its teachers'
        // encodings) and training all count towards the run's time and its budget.
        let started = std::time::Instant::now();
        let device = self.device.clone();
        let info = run.dataset.clone();
        let fresh_optim = || AdamConfig::new().init();
        let (objective, mut model, mut optim, mut state, cfg) = if self.dir.has_run() {
            if !resume {
                return Err(TrainError::Config(format!(
                    "{} already holds a run: pass --resume to continue it, or choose another --out",
                    self.dir.path.display()
                )));
            }
            let saved = self.dir.config()?;
            if saved.dataset.n_items != info.n_items || saved.dataset.n_users != info.n_users {
                return Err(TrainError::Config(format!(
                    "{} was trained on {} ({} users, {} items), not on {} ({} users, {} items)",
                    self.dir.path.display(),
                    saved.dataset.name,
                    saved.dataset.n_users,
                    saved.dataset.n_items,
                    info.name,
                    info.n_users,
                    info.n_items
                )));
            }
            let objective = make(&saved)?;
            let (bytes, o, s) = self.dir.load_latest_bytes(fresh_optim())?;
            let m = objective.load(bytes, &device).map_err(|e| {
                let file = self.dir.epoch_file(s.epoch, "model");
                TrainError::Checkpoint(format!("{}: {e}", file.display()))
            })?;
            (objective, m, o, s, saved.train)
        } else {
            let objective = make(&run)?;
            device.seed(run.train.seed);
            let m = objective.init(&device);
            self.dir.write_json("config.json", &run)?;
            (
                objective,
                m,
                fresh_optim(),
                TrainState::default(),
                run.train.clone(),
            )
        };
        if state.finished {
            return Ok(state);
        }
        let valid = Evaluator::new(
            self.dataset,
            EvalConfig {
                seed: cfg.seed,
                split: Split::Valid,
                full: false,
                max_users: cfg.valid_users,
                ..Default::default()
            },
        );
        let mut users: Vec<usize> = (0..self.dataset.n_users())
            .filter(|&u| train_part(&self.dataset.sequences[u]).len() >= 2)
            .collect();
        users.sort_unstable();
        let max_len = objective.model(&model).max_len();
        let softmax = cfg.softmax();
        let spent_before = state.train_seconds;
        let first_epoch = state.epoch;
        while state.epoch < cfg.epochs {
            if self
                .stop_after_epochs
                .is_some_and(|n| state.epoch - first_epoch >= n)
            {
                break;
            }
            let epoch = state.epoch + 1;
            let mut rng = epoch_rng(cfg.seed, epoch);
            device.seed(mix(cfg.seed ^ epoch as u64));
            let mut order = users.clone();
            shuffle(&mut order, &mut rng);
            let mut batches: Vec<&[usize]> = if cfg.bucket_by_length {
                // Stable: users of equal length stay in their shuffled order.
                order.sort_by_key(|&u| {
                    train_part(&self.dataset.sequences[u])
                        .len()
                        .min(max_len + 1)
                });
                order.chunks(cfg.batch_size).collect()
            } else {
                order.chunks(cfg.batch_size).collect()
            };
            shuffle(&mut batches, &mut rng);
            let mut steps = batches.len();
            if let Some(cap) = cfg.max_steps_per_epoch {
                steps = steps.min(cap);
            }
            obs.epoch_start(epoch, steps);
            let t0 = std::time::Instant::now();
            let mut loss_sum = 0.0f64;
            let mut seen = 0usize;
            for (step, chunk) in batches.iter().take(steps).enumerate() {
                // The last max_len + 1 training items: max_len inputs and their next items.
                let seqs: Vec<&[u32]> = chunk
                    .iter()
                    .map(|&u| {
                        let s = train_part(&self.dataset.sequences[u]);
                        &s[s.len().saturating_sub(max_len + 1)..]
                    })
                    .collect();
                let loss = objective.loss(
                    &model,
                    TrainBatch {
                        items: &seqs,
                        users: chunk,
                    },
                    softmax,
                    &mut rng,
                );
                let value: f32 = loss.clone().into_scalar();
                if !value.is_finite() {
                    return Err(TrainError::NonFinite {
                        value,
                        epoch,
                        step: step + 1,
                        last_good: state.epoch,
                        dir: self.dir.path.display().to_string(),
                    });
                }
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(cfg.lr, model, grads);
                loss_sum += value as f64;
                seen += chunk.len();
                state.steps += 1;
                obs.step(
                    step + 1,
                    value,
                    seen as f64 / t0.elapsed().as_secs_f64().max(1e-9),
                );
            }
            let seconds = t0.elapsed().as_secs_f64();
            state.epoch = epoch;
            state.train_seconds = spent_before + started.elapsed().as_secs_f64();
            let mut log = EpochLog {
                epoch,
                loss: loss_sum / steps.max(1) as f64,
                steps,
                seqs_per_s: seen as f64 / seconds.max(1e-9),
                seconds,
                valid_ndcg10: None,
                valid_recall10: None,
                best: false,
                extra: objective.log_extra(&model),
            };
            let last = epoch == cfg.epochs;
            if epoch % cfg.eval_every.max(1) == 0 || last {
                let eval_model = objective.model(&model).valid();
                let rec = ModelRecommender::new(&eval_model);
                let report = valid.evaluate(self.dataset, &rec, &mut |_, _| {})?;
                let ndcg = report.sampled.ndcg_at(10).unwrap_or(0.0);
                log.valid_ndcg10 = Some(ndcg);
                log.valid_recall10 = report.sampled.recall_at(10);
                if state.best_epoch.is_none() || ndcg > state.best_valid_ndcg10 {
                    state.best_epoch = Some(epoch);
                    state.best_valid_ndcg10 = ndcg;
                    state.bad_evals = 0;
                    log.best = true;
                    self.dir.save_best(objective.model(&model))?;
                } else {
                    state.bad_evals += 1;
                }
            }
            state.finished = last || !state.can_continue(&cfg);
            self.dir.save(&module_bytes(&model)?, &optim, &state)?;
            append_log(&self.dir, &log)?;
            obs.epoch_end(&log);
            if state.finished {
                break;
            }
        }
        Ok(state)
    }
}

fn append_log(dir: &RunDir, log: &EpochLog) -> Result<(), TrainError> {
    use std::io::Write;
    let path = dir.file("log.jsonl");
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
