//! What a run is: its training settings, the dataset it belongs to, the teachers of a
//! distillation, and the errors of training. The other modules build on these types and none of
//! them is imported back here.

use burn::config::Config;
use ssi_models::ModelConfig;
use ssi_models::imitation::ImitationConfig;
use ssi_models::loss::Softmax;
use ssi_models::transformer::DropoutMasks;
use std::path::{Path, PathBuf};

/// The seed of every new run's sampled negatives (`TrainConfig::eval_seed`) and `ssi eval`'s
/// default: one set of candidates per dataset.
pub const EVAL_SEED: u64 = 42;

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
    /// Stop after this many validations in a row without a better validation NDCG@10 (and
    /// `patience_steps`).
    #[config(default = 5)]
    pub patience: usize,
    /// Patience also needs this many optimiser steps since the best validation: an epoch of a
    /// small dataset is a few steps, and counting validations alone stops it before it learns
    /// (docs/results/recipe.md).
    #[config(default = 1000)]
    pub patience_steps: usize,
    /// Train on every window of `max_len + 1` items of a long history (newest first, each
    /// target once per epoch), not only the most recent one as the paper's models do. Changes
    /// nothing for histories of at most `max_len + 1` training items.
    #[config(default = true)]
    pub all_windows: bool,
    /// 0: full softmax over all items; k > 0: sampled softmax with k shared negatives.
    #[config(default = 0)]
    pub sampled_negatives: usize,
    /// Batch users of similar history length together (batches shuffled), so little compute goes
    /// to padding. A speed option (about 3x fewer seconds per epoch on Beauty) that costs
    /// quality: length-homogeneous batches learn less per epoch (docs/results/recipe.md), so the
    /// default is uniformly random batches.
    #[config(default = false)]
    pub bucket_by_length: bool,
    /// Weight each batch's mean loss by its number of training positions (relative to the
    /// average batch), so that every position counts the same whatever batch it lands in, as in
    /// uniformly random batches. Matters with `bucket_by_length`: without it a batch of 256
    /// three-item histories weighs as much as one of 256 fifty-item histories. Measured with
    /// bucketing (docs/results/recipe.md): a small gain, far from closing the gap to random
    /// batches; off by default (random batches average over positions, as PyTorch does).
    #[config(default = false)]
    pub position_weighted: bool,
    /// Validate on the first this many users only (None: all).
    #[config(default = "None")]
    pub valid_users: Option<usize>,
    /// Cap on steps per epoch (None: a full pass); for smoke tests and time budgets.
    #[config(default = "None")]
    pub max_steps_per_epoch: Option<usize>,
    /// Stop (after the current epoch) once this much training time has passed.
    #[config(default = "None")]
    pub time_budget_minutes: Option<f64>,
    /// L2 penalty added to every gradient (Adam's coupled weight decay, as TensorFlow's
    /// `l2_reg` in NextItNet's and GREC's code); `null` (and run folders written before this
    /// setting existed): none.
    #[config(default = "None")]
    pub weight_decay: Option<f64>,
    /// Adam's epsilon; `null`: burn's default, 1e-5 (PyTorch's is 1e-8).
    #[config(default = "None")]
    pub adam_epsilon: Option<f64>,
    /// Seed of the 99 sampled negatives of validation and test. New runs get 42 whatever their
    /// `seed`, so that runs of one dataset trained with different seeds rank their targets among
    /// the same candidates (as `ssi eval` does by default) and their sampled figures compare;
    /// `null` (runs written before this setting existed): the run's `seed`, as they were
    /// evaluated.
    #[config(default = "None")]
    pub eval_seed: Option<u64>,
    /// What a better validation is, for `best.bpk` and patience; `null`: `sampled`, the paper's.
    #[config(default = "None")]
    pub select_by: Option<SelectBy>,
    /// Which dropout masks the transformer models draw: `fast` (ours, drawn on the CPU and
    /// uploaded), `burn` (burn's `Dropout`, drawn on the device), `auto` or `null`: fast on the
    /// CPU backend, burn's elsewhere (the faster of the two on each). The same distribution
    /// from other generators: `burn` checks ours against burn's (docs/results/recipe.md).
    #[config(default = "None")]
    pub dropout_masks: Option<DropoutMasks>,
}

/// The validation figure a run keeps its best epoch by (and counts patience on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectBy {
    /// NDCG@10 among the target and 99 sampled negatives: the paper's protocol.
    #[default]
    Sampled,
    /// NDCG@10 against every item.
    Full,
    /// The geometric mean of the two: a relative gain on one protocol weighs as much as the same
    /// relative gain on the other (sampled NDCG@10 is about five times full NDCG@10, so a sum
    /// would follow the sampled one alone).
    Both,
}

impl SelectBy {
    pub const ALL: [SelectBy; 3] = [SelectBy::Sampled, SelectBy::Full, SelectBy::Both];

    /// The criterion's value for one validation; `None` when it needs full ranking and there
    /// is none.
    pub fn score(self, sampled: f64, full: Option<f64>) -> Option<f64> {
        match self {
            SelectBy::Sampled => Some(sampled),
            SelectBy::Full => full,
            SelectBy::Both => full.map(|f| (sampled.max(0.0) * f.max(0.0)).sqrt()),
        }
    }

    /// The setting's value, as `--set select_by=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            SelectBy::Sampled => "sampled",
            SelectBy::Full => "full",
            SelectBy::Both => "both",
        }
    }

    /// The criterion in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            SelectBy::Sampled => "validation NDCG@10 (sampled-99)",
            SelectBy::Full => "validation NDCG@10 (full ranking)",
            SelectBy::Both => "validation √(sampled × full NDCG@10)",
        }
    }
}

impl TrainConfig {
    /// The training defaults of a new run of `model`: [`TrainConfig::new`] with the model's own
    /// defaults (its L2 penalty) over them. Settings are applied over this.
    pub fn defaults_for(model: &ModelConfig) -> Self {
        let own = model.train_defaults();
        TrainConfig::new()
            .with_weight_decay(own.weight_decay)
            .with_adam_epsilon(own.adam_epsilon)
            .with_eval_seed(Some(EVAL_SEED))
    }

    /// The settings as JSON with each `null` that stands for a value written as that value's
    /// `null`, so that a run written before a setting existed compares equal to a new run that
    /// keeps its default (`select_by` `sampled`, `dropout_masks` `auto`).
    pub fn comparable(&self) -> serde_json::Value {
        let v = TrainConfig {
            select_by: self.select_by.filter(|b| *b != SelectBy::Sampled),
            dropout_masks: self.dropout_masks.filter(|m| *m != DropoutMasks::Auto),
            ..self.clone()
        };
        serde_json::to_value(v).expect("configs serialise")
    }

    /// The seed of the sampled negatives this run is validated and tested with.
    pub fn candidates_seed(&self) -> u64 {
        self.eval_seed.unwrap_or(self.seed)
    }

    /// Checks every setting against its allowed range; the error names the setting.
    pub fn validate(&self) -> Result<(), ssi_models::ConfigError> {
        let bad = |k: &str, v: String, allowed: &str| {
            Err(ssi_models::ConfigError::TrainingOutOfRange {
                setting: k.into(),
                value: v,
                allowed: allowed.into(),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least 1");
        }
        if self.batch_size == 0 || self.batch_size > 1_000_000 {
            return bad("batch_size", self.batch_size.to_string(), "1..=1000000");
        }
        // Both are applied in f32, where smaller values round to 0 (no step; a division by 0).
        if !(self.lr.is_finite() && (1e-12..=10.0).contains(&self.lr)) {
            return bad("lr", self.lr.to_string(), "a learning rate in [1e-12, 10]");
        }
        if self.eval_every == 0 {
            return bad("eval_every", "0".into(), "at least 1");
        }
        if self.max_steps_per_epoch == Some(0) {
            return bad("max_steps_per_epoch", "0".into(), "at least 1, or null");
        }
        if self.valid_users == Some(0) {
            return bad("valid_users", "0".into(), "at least 1, or null");
        }
        if self.sampled_negatives > 1_000_000 {
            return bad(
                "sampled_negatives",
                self.sampled_negatives.to_string(),
                "0 (full softmax) or up to 1000000",
            );
        }
        if let Some(m) = self.time_budget_minutes
            && !(m.is_finite() && m > 0.0)
        {
            return bad("time_budget_minutes", m.to_string(), "minutes > 0, or null");
        }
        if let Some(e) = self.adam_epsilon
            && !(e.is_finite() && (1e-30..=1.0).contains(&e))
        {
            return bad(
                "adam_epsilon",
                e.to_string(),
                "a value in [1e-30, 1], or null",
            );
        }
        if let Some(d) = self.weight_decay
            && !(d.is_finite() && (0.0..=1.0).contains(&d))
        {
            return bad("weight_decay", d.to_string(), "0 up to 1, or null (none)");
        }
        Ok(())
    }

    pub fn softmax(&self) -> Softmax {
        match self.sampled_negatives {
            0 => Softmax::Full,
            k => Softmax::Sampled(k),
        }
    }
}

/// What a run stopped by an error leaves to resume from.
pub fn kept_checkpoint(last_good: usize, dir: &str) -> String {
    if last_good == 0 {
        format!("No epoch had ended, so {dir} holds no checkpoint: the same command starts it over")
    } else {
        format!("The last good checkpoint (epoch {last_good}) is kept in {dir}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Config(String),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}: training stopped. {}; try a lower learning rate (lr), or lower loss weights if one was raised",
        kept_checkpoint(*last_good, dir)
    )]
    NonFinite {
        value: f32,
        epoch: usize,
        step: usize,
        last_good: usize,
        dir: String,
    },
    #[error(transparent)]
    Data(#[from] ssi_data::DataError),
    #[error(transparent)]
    Settings(#[from] ssi_models::ConfigError),
    /// Weights that do not fit their config, or hold NaN or infinite values.
    #[error("{0}")]
    Weights(String),
    /// The backend failed to run a step (a GPU out of memory, a lost device): the whole message.
    #[error("{0}")]
    Device(String),
}

/// What `config.json` holds: everything needed to rebuild the model and continue the run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub dataset: DatasetInfo,
    /// Present on distillation runs: the teachers and imitation settings. `model` is the student.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<DistillSpec>,
    /// The run whose best weights this run started from (`--init`), absolute; None: a fresh init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// This folder is the pre-training stage of the run in the folder above
    /// (`RUN/pretrain`, `crate::stages`): trained, read and reported through that run only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pretrain_stage: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub n_items: usize,
    pub n_users: usize,
    /// Where it was loaded from, absolute (None for the embedded synthetic shop).
    pub path: Option<PathBuf>,
    /// `Dataset::fingerprint` (absent in runs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// SHA-256 of the item catalogue the run was trained with (names and categories as
    /// `Catalogue::to_tsv` writes them); None: no catalogue, or a run written before it was
    /// recorded. Training does not read names, so only `ssi export`, which ships them, checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalogue_sha256: Option<String>,
    /// Whether the catalogue beside the file raised the item count above the file's highest
    /// id (known for a dataset just loaded, not recorded), for an error's hint.
    #[serde(skip)]
    pub catalogue_raises_items: bool,
}

impl DatasetInfo {
    pub fn of(ds: &ssi_data::Dataset, path: Option<&Path>) -> Self {
        DatasetInfo {
            name: ds.name.clone(),
            n_items: ds.n_items as usize,
            n_users: ds.n_users(),
            path: path.map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf())),
            sha256: Some(ds.fingerprint()),
            catalogue_sha256: ds
                .catalogue
                .as_ref()
                .map(|c| ssi_data::dataset::sha256_hex(c.to_tsv().as_bytes())),
            catalogue_raises_items: ds.catalogue_raises_items(),
        }
    }

    /// Whether a model trained on `self` may be used on `other`: same users, items and content.
    /// `what` names the model in the error ("runs/x", "teacher runs/t").
    pub fn check_same(&self, other: &DatasetInfo, what: &str) -> Result<(), TrainError> {
        let counts = self.n_items == other.n_items && self.n_users == other.n_users;
        let content = match (&self.sha256, &other.sha256) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if counts && content {
            return Ok(());
        }
        let at = |d: &DatasetInfo| {
            d.path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| d.name.clone())
        };
        // A catalogue beside the file raises the item count: name it when only that count
        // differs, it is the likely cause then (other users mean another dataset).
        let hint = if self.n_items == other.n_items || self.n_users != other.n_users {
            String::new()
        } else {
            ssi_data::dataset::catalogue_hint(other.path.as_deref(), other.catalogue_raises_items)
        };
        if counts && at(self) == at(other) {
            // Same file, same counts: it was edited (or replaced) since.
            return Err(TrainError::Config(format!(
                "{what} was trained on {} as it was before: the file's content has changed since \
                 (same {} users and {} items, other SHA-256); use the file it was trained on",
                at(self),
                self.n_users,
                self.n_items
            )));
        }
        Err(TrainError::Config(format!(
            "{what} was trained on {} ({} users, {} items), not on {} ({} users, {} items{}){hint}: use the dataset it was trained on",
            at(self),
            self.n_users,
            self.n_items,
            at(other),
            other.n_users,
            other.n_items,
            if counts { ", other content" } else { "" },
        )))
    }
}

/// What `config.json` of a distillation run records besides the student.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DistillSpec {
    /// Run folders of the teachers (their `best.bpk` is used).
    pub teachers: Vec<PathBuf>,
    /// Display names of the teachers (their consistency task, else their model), for logs.
    pub teacher_names: Vec<String>,
    pub imitation: ImitationConfig,
    /// SHA-256 of each teacher's `best.bpk` when the run started: a resumed run refuses
    /// teachers whose weights changed since (retrained), which would mix two objectives.
    /// `null` in runs written before it existed (not checked).
    #[serde(default)]
    pub teacher_weights: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    /// A run stopped in its first epoch keeps no checkpoint, and says so (a hostile review found
    /// "the last good checkpoint (epoch 0)" in a folder without one).
    #[test]
    fn a_stopped_run_names_what_it_keeps() {
        let err = super::TrainError::NonFinite {
            value: f32::INFINITY,
            epoch: 1,
            step: 1,
            last_good: 0,
            dir: "runs/x".into(),
        }
        .to_string();
        assert!(
            err.contains("holds no checkpoint") && !err.contains("epoch 0"),
            "{err}"
        );
        let kept = super::kept_checkpoint(3, "runs/x");
        assert!(kept.contains("(epoch 3) is kept in runs/x"), "{kept}");
    }
}
