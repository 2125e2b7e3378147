//! What the page computes, without any browser API: load a bundle, search its catalogue, predict
//! the next items, validate, fine-tune step by step, and write the result back as a bundle.
//! Tested natively and in headless Chromium (the same code).

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use ssi_bundle::{Bundle, Header};
use ssi_data::rng::{SsiRng, derived};
use ssi_data::split::train_part;
use ssi_data::{Dataset, EvalConfig, Evaluator, Split};
use ssi_models::common::{Batch, TrainBatch};
use ssi_models::loss::Softmax;
use ssi_models::{AnyModel, SequentialModel};
use ssi_train::ModelRecommender;

/// Seed stream tag of browser fine-tuning ("web").
const FINE_TUNE_TAG: u64 = 0x0077_6562;

/// A user index that no model knows: HGN reads it as its unknown-user vector.
pub const UNKNOWN_USER: usize = usize::MAX;

/// One predicted item.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub item: u32,
    pub name: String,
    pub probability: f32,
}

/// Validation figures on the bundle's own sequences (sampled-99, validation item).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    pub ndcg10: f64,
    pub recall10: f64,
    pub users: usize,
}

pub struct Engine {
    pub header: Header,
    /// On the training device (autodiff), so fine-tuning needs no copy.
    model: AnyModel,
    device: Device,
    tuner: Option<FineTuner>,
    /// The model the last launched step computed its loss on, until that loss is read back.
    previous: Option<AnyModel>,
    /// The last model whose loss was read back finite: what a non-finite loss goes back to (the
    /// model that gave it holds the damage of the step before).
    good: Option<AnyModel>,
    /// Steps of the current fine-tuning run in `model`, and in `good`.
    steps: usize,
    good_steps: usize,
}

/// Fine-tuning state: Adam, the shuffled order of one epoch, where we are in it.
struct FineTuner {
    optim: ModuleOptimizer,
    lr: f64,
    batch_size: usize,
    epoch: usize,
    order: Vec<usize>,
    next: usize,
    rng: SsiRng,
    seed: u64,
    /// Training sequences: the bundle's (with their users) and the user's own (unknown user).
    sequences: Vec<(Vec<u32>, usize)>,
}

/// How a fine-tuning run is set up.
#[derive(Debug, Clone)]
pub struct FineTuneConfig {
    pub lr: f64,
    pub batch_size: usize,
    pub seed: u64,
    /// Sequences the user built or uploaded, trained as an unknown user's.
    pub extra: Vec<Vec<u32>>,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        FineTuneConfig {
            lr: 1e-3,
            batch_size: 64,
            seed: 42,
            extra: Vec::new(),
        }
    }
}

/// What the engine refuses, in words for the page.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Bundle(#[from] ssi_bundle::BundleError),
    #[error("item {0} is not in this model's catalogue")]
    UnknownItem(u32),
    #[error(
        "nothing to fine-tune on: no shipped sequence has 2 or more items to train on (4 or more in all: validation holds out the last two), and no sequence of yours of 2 or more items was included (\"include my sequence\")"
    )]
    NothingToTune,
    #[error("fine-tuning has not been started")]
    NotStarted,
    #[error(
        "the loss became {0}: fine-tuning stopped and the model went back to its last one with a finite loss (try a lower learning rate)"
    )]
    NonFiniteLoss(f32),
    #[error(
        "weight {0} holds NaN or infinite values: reset to the original and fine-tune with a lower learning rate"
    )]
    NonFiniteWeights(String),
    /// Writing the weights reads them back synchronously, which WebGPU cannot.
    #[error("saving a model is done on the CPU backend: fine-tune there to download the result")]
    CpuOnly,
}

impl Engine {
    /// Loads and checks a bundle; `device` is the plain device (flex or WebGPU).
    pub fn load(bytes: &[u8], device: &Device) -> Result<Engine, EngineError> {
        let train_device = device.clone().autodiff();
        let b = Bundle::from_bytes(bytes, &train_device)?;
        Ok(Engine {
            header: b.header,
            model: b.model,
            device: device.clone(),
            tuner: None,
            previous: None,
            good: None,
            steps: 0,
            good_steps: 0,
        })
    }

    pub fn n_items(&self) -> usize {
        self.header.catalogue.n_items()
    }

    pub fn item_name(&self, item: u32) -> String {
        self.header.catalogue.name(item)
    }

    pub fn is_item(&self, item: u32) -> bool {
        item >= 1 && item as usize <= self.n_items()
    }

    /// Type-ahead: items whose id is `query`, then whose name contains it (case-insensitive).
    pub fn search(&self, query: &str, limit: usize) -> Vec<(u32, String)> {
        let q = query.trim().to_lowercase();
        if q.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Ok(id) = q.parse::<u32>()
            && self.is_item(id)
        {
            out.push((id, self.item_name(id)));
        }
        for id in 1..=self.n_items() as u32 {
            if out.len() >= limit {
                break;
            }
            let name = self.item_name(id);
            if name.to_lowercase().contains(&q) && !out.iter().any(|(i, _)| *i == id) {
                out.push((id, name));
            }
        }
        out
    }

    /// Scores of every item after `history` (column i is item i + 1), as an anonymous user.
    /// Launches the work; read it back with `into_data` (CPU) or `into_data_async` (WebGPU).
    pub fn scores(&self, history: &[u32]) -> burn::tensor::Tensor<2> {
        let known: Vec<u32> = history
            .iter()
            .copied()
            .filter(|&i| self.is_item(i))
            .collect();
        let items: [&[u32]; 1] = [&known];
        self.model.valid().score_all(Batch {
            items: &items,
            users: &[None],
        })
    }

    /// The `k` best items of read-back `scores`, with softmax probabilities.
    pub fn top_k(&self, scores: Vec<f32>, history: &[u32], k: usize) -> Vec<Prediction> {
        ssi_bundle::top_k(&scores, history, k)
            .into_iter()
            .map(|(item, probability)| Prediction {
                item,
                name: self.item_name(item),
                probability,
            })
            .collect()
    }

    /// Top-`k` next items with probabilities (synchronous readback: the CPU backend).
    pub fn predict(&self, history: &[u32], k: usize) -> Vec<Prediction> {
        let scores = self
            .scores(history)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        self.top_k(scores, history, k)
    }

    /// Top-`k` next items, reading back asynchronously (required on WebGPU).
    pub async fn predict_async(&self, history: &[u32], k: usize) -> Vec<Prediction> {
        let data = self.scores(history).into_data_async().await;
        let scores = data
            .map(|d| d.convert::<f32>().try_into_vec::<f32>().unwrap_or_default())
            .unwrap_or_default();
        self.top_k(scores, history, k)
    }

    /// The bundle's sequences as a dataset (users in bundle order).
    fn dataset(&self) -> Dataset {
        Dataset {
            name: self.header.provenance.dataset.clone(),
            user_ids: (1..=self.header.sequences.len() as u32).collect(),
            sequences: self.header.sequences.clone(),
            n_items: self.n_items() as u32,
            catalogue: None,
        }
    }

    /// Sampled-99 validation on the bundle's sequences (None when it ships none).
    pub fn validate(&self) -> Option<Validation> {
        let ds = self.dataset();
        if ds.sequences.iter().all(|s| s.len() < 3) {
            return None;
        }
        let ev = Evaluator::new(
            &ds,
            EvalConfig {
                seed: 42,
                split: Split::Valid,
                full: false,
                ..Default::default()
            },
        );
        // Validation reads scores back synchronously, which WebGPU cannot; and moving the model
        // across backends is not supported by burn's dispatch (it panics). So: CPU only.
        if self.device != Device::flex() {
            return None;
        }
        let model = self.model.valid();
        let rec = ModelRecommender::new(&model);
        let report = ev.evaluate(&ds, &rec, &mut |_, _| {}).ok()?;
        Some(Validation {
            ndcg10: report.sampled.ndcg_at(10)?,
            recall10: report.sampled.recall_at(10)?,
            users: report.sampled.users,
        })
    }

    /// Starts (or restarts) fine-tuning.
    pub fn start_fine_tune(&mut self, cfg: &FineTuneConfig) -> Result<usize, EngineError> {
        let max_len = self.model.max_len();
        let mut sequences: Vec<(Vec<u32>, usize)> = self
            .header
            .sequences
            .iter()
            .enumerate()
            .map(|(u, s)| (train_part(s).to_vec(), u))
            .collect();
        for s in &cfg.extra {
            if let Some(bad) = s.iter().find(|&&i| !self.is_item(i)) {
                return Err(EngineError::UnknownItem(*bad));
            }
            sequences.push((s.clone(), UNKNOWN_USER));
        }
        sequences.retain(|(s, _)| s.len() >= 2);
        for (s, _) in &mut sequences {
            let keep = s.len().min(max_len + 1);
            s.drain(..s.len() - keep);
        }
        if sequences.is_empty() {
            return Err(EngineError::NothingToTune);
        }
        let n = sequences.len();
        // The model's own training defaults, as `ssi train` uses them (SASRec: PyTorch's epsilon).
        let adam = match self.header.model.train_defaults().adam_epsilon {
            Some(e) => AdamConfig::new().with_epsilon(e as f32),
            None => AdamConfig::new(),
        };
        (self.previous, self.good, self.steps, self.good_steps) = (None, None, 0, 0);
        self.tuner = Some(FineTuner {
            optim: adam.init(),
            lr: cfg.lr,
            batch_size: cfg.batch_size.max(1),
            epoch: 0,
            order: Vec::new(),
            next: 0,
            rng: derived(cfg.seed, FINE_TUNE_TAG, 0),
            seed: cfg.seed,
            sequences,
        });
        Ok(n)
    }

    /// Adam steps of the current fine-tuning run that the model holds (a non-finite loss takes
    /// back the steps it undoes).
    pub fn steps_done(&self) -> usize {
        self.steps
    }

    /// Steps in one fine-tuning epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.tuner
            .as_ref()
            .map_or(0, |t| t.sequences.len().div_ceil(t.batch_size))
    }

    /// One Adam step on the next batch, launched: returns the epoch and the (not yet read) loss.
    /// Call [`Engine::commit_step`] with the loss value once it is read back.
    pub fn launch_step(&mut self) -> Result<(usize, burn::tensor::Tensor<1>), EngineError> {
        let t = self.tuner.as_mut().ok_or(EngineError::NotStarted)?;
        if t.next >= t.order.len() {
            t.epoch += 1;
            t.order = (0..t.sequences.len()).collect();
            t.rng = derived(t.seed, FINE_TUNE_TAG, t.epoch as u64);
            ssi_train::trainer::shuffle(&mut t.order, &mut t.rng);
            t.next = 0;
        }
        let end = (t.next + t.batch_size).min(t.order.len());
        let chunk: Vec<usize> = t.order[t.next..end].to_vec();
        t.next = end;
        let seqs: Vec<&[u32]> = chunk.iter().map(|&i| t.sequences[i].0.as_slice()).collect();
        let users: Vec<usize> = chunk.iter().map(|&i| t.sequences[i].1).collect();
        let loss = self.model.train_loss(
            TrainBatch {
                items: &seqs,
                users: &users,
            },
            Softmax::Full,
            &mut t.rng,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let before = self.model.clone();
        self.model = t.optim.step(t.lr, self.model.clone(), grads);
        self.previous = Some(before);
        self.steps += 1;
        Ok((t.epoch, loss.detach()))
    }

    /// Accepts the last step if its loss was finite; otherwise puts back the last model whose
    /// loss was finite (the loaded one, if the first loss was not) and stops with an error.
    pub fn commit_step(&mut self, loss: f32) -> Result<(), EngineError> {
        let previous = self.previous.take();
        if loss.is_finite() {
            if previous.is_some() {
                self.good = previous;
                self.good_steps = self.steps - 1;
            }
            return Ok(());
        }
        if let Some(m) = self.good.take() {
            (self.model, self.steps) = (m, self.good_steps);
        } else if let Some(m) = previous {
            (self.model, self.steps) = (m, self.steps - 1);
        }
        self.tuner = None;
        Err(EngineError::NonFiniteLoss(loss))
    }

    /// The loss of the current model on the first batch, without a step: a step's loss is of the
    /// model before it, so a run's last step is checked with this when the run ends. Read it
    /// back and pass it to [`Engine::commit_check`].
    pub fn launch_check(&mut self) -> Result<burn::tensor::Tensor<1>, EngineError> {
        let t = self.tuner.as_ref().ok_or(EngineError::NotStarted)?;
        let n = t.batch_size.min(t.sequences.len());
        let seqs: Vec<&[u32]> = t.sequences[..n].iter().map(|s| s.0.as_slice()).collect();
        let users: Vec<usize> = t.sequences[..n].iter().map(|s| s.1).collect();
        // A copy: the check draws no mask or dropout from the run's own stream.
        let mut rng = t.rng.clone();
        let loss = self.model.train_loss(
            TrainBatch {
                items: &seqs,
                users: &users,
            },
            Softmax::Full,
            &mut rng,
        );
        self.previous = None;
        Ok(loss.detach())
    }

    /// Accepts the current model if its checked loss is finite; otherwise puts back the last
    /// model whose loss was finite and ends the run with an error.
    pub fn commit_check(&mut self, loss: f32) -> Result<(), EngineError> {
        if loss.is_finite() {
            (self.good, self.good_steps) = (Some(self.model.clone()), self.steps);
            return Ok(());
        }
        if let Some(m) = self.good.take() {
            (self.model, self.steps) = (m, self.good_steps);
        }
        self.tuner = None;
        Err(EngineError::NonFiniteLoss(loss))
    }

    /// Whether a fine-tuning run is under way (started, not ended by a non-finite loss).
    pub fn is_tuning(&self) -> bool {
        self.tuner.is_some()
    }

    /// One step, read back synchronously (CPU backend); returns (epoch, loss).
    pub fn fine_tune_step(&mut self) -> Result<(usize, f32), EngineError> {
        let (epoch, loss) = self.launch_step()?;
        let value = loss
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::NAN);
        self.commit_step(value)?;
        Ok((epoch, value))
    }

    /// The current model as a bundle, marked as fine-tuned with `note` (after the bundle's own
    /// note, if it was fine-tuned before; its test figures, of the weights before, are left out).
    pub fn to_bundle(&self, note: Option<String>) -> Result<Vec<u8>, EngineError> {
        if self.device != Device::flex() {
            return Err(EngineError::CpuOnly);
        }
        let plain = self.model.valid();
        // The page's own loader refuses such weights: a download of them would be lost work.
        if let Some(at) = ssi_models::common::first_non_finite(&plain) {
            return Err(EngineError::NonFiniteWeights(at));
        }
        let mut header = self.header.clone();
        if let Some(note) = note {
            header.provenance.fine_tuned = Some(match header.provenance.fine_tuned.take() {
                Some(before) => format!("{before}; then {note}"),
                None => note,
            });
            header.provenance.metrics = serde_json::Value::Null;
        }
        Ok(Bundle::to_bytes(header, &plain)?)
    }

    /// The `i`-th example history for the page's "try an example" button: the last `len` items
    /// of one of the bundle's own sequences (cycling through those long enough), or None when the
    /// bundle ships none.
    pub fn example(&self, i: usize, len: usize) -> Option<Vec<u32>> {
        let long: Vec<&Vec<u32>> = self
            .header
            .sequences
            .iter()
            .filter(|s| s.len() >= 2)
            .collect();
        let s = long.get(i % long.len().max(1))?;
        Some(s[s.len().saturating_sub(len)..].to_vec())
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Parameters of the model, for the page's summary line.
    pub fn num_params(&self) -> usize {
        self.model.num_params()
    }
}
