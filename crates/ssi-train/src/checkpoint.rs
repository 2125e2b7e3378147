//! Run folders and checkpoints. Every file is written atomically (temporary file + rename), and
//! `state.json` is written last: it names the epoch files that belong together, so a run killed
//! at any instant resumes from a consistent model + optimiser + epoch.

use burn::module::Module;
use burn::tensor::{Bytes, Device};
use ssi_data::dataset::{sha256_hex, write_atomic};
use ssi_models::{AnyModel, ModelConfig};
use std::path::{Path, PathBuf};

pub use crate::config::{DatasetInfo, RunConfig};
use crate::config::{SelectBy, TrainConfig, TrainError};

/// The `checksums` key of the model settings the weights were trained with: a digest of
/// `config.json`'s `model` object, null entries left out (settings added to the code later read
/// as null in older runs, so they do not change it; keys in sorted order, serde_json's map
/// without `preserve_order`), checked whenever the run is read.
const MODEL_SETTINGS: &str = "config.json#model";

/// The same digest of the training settings, less the stopping limits that `--resume` may
/// change (`set_limits`); runs written before it existed have none.
const TRAIN_SETTINGS: &str = "config.json#train";

/// The same digest of the dataset the run was trained on (its name, counts and checksums; not
/// its path, which a moved file changes): an edited record would let a bundle or an evaluation
/// name another file's data. Runs written before it existed have none.
const DATASET_SETTINGS: &str = "config.json#dataset";

/// The settings `--resume` may change: when the run stops.
pub const STOPPING_LIMITS: [&str; 4] = [
    "epochs",
    "patience",
    "patience_steps",
    "time_budget_minutes",
];

fn settings_digest(config: &serde_json::Value, section: &str, leave_out: &[&str]) -> String {
    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut part = strip(config.get(section).unwrap_or(&serde_json::Value::Null));
    if let Some(m) = part.as_object_mut() {
        for k in leave_out {
            m.remove(*k);
        }
    }
    sha256_hex(part.to_string().as_bytes())
}

fn model_digest(config: &serde_json::Value) -> String {
    settings_digest(config, "model", &[])
}

fn train_digest(config: &serde_json::Value) -> String {
    settings_digest(config, "train", &STOPPING_LIMITS)
}

fn dataset_digest(config: &serde_json::Value) -> String {
    settings_digest(config, "dataset", &["path"])
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

/// Progress of a run; the commit point of a checkpoint.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    pub steps: usize,
    pub best_epoch: Option<usize>,
    /// The best validation by the run's `select_by` (sampled NDCG@10 unless it says otherwise).
    pub best_valid_ndcg10: f64,
    /// The criterion `best_valid_ndcg10` is measured by; absent: sampled NDCG@10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_by: Option<crate::config::SelectBy>,
    /// Optimiser steps completed at the end of the best epoch.
    #[serde(default)]
    pub best_step: usize,
    /// Validations in a row without improvement.
    pub bad_evals: usize,
    pub finished: bool,
    pub train_seconds: f64,
    /// Why the run stopped, in words (set when `finished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// SHA-256 of the weight files this state commits (`epoch-NNNN.model.bpk`,
    /// `epoch-NNNN.optim.bpk`, `best.bpk`, `best-by-RULE.bpk`), checked when they are read back.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub checksums: std::collections::BTreeMap<String, String>,
    /// The best epoch by each selection rule the run does not stop by (`select_by`'s other
    /// values, by name), its weights kept as `best-by-RULE.bpk`: the trajectory is the same
    /// whichever rule keeps the epoch, so one run gives the test figures of every rule
    /// (`test-by-RULE.json`) within the epochs it trained. `None`: not tracked (a run begun
    /// before this was recorded, or resumed from one: its earlier epochs are gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub also_best: Option<std::collections::BTreeMap<String, AlsoBest>>,
}

/// The best validation by another rule than the run's own (see `TrainState::also_best`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlsoBest {
    pub epoch: usize,
    pub score: f64,
}

impl TrainState {
    /// Why `train`'s limits stop the run after this state, or `None` when another epoch may run:
    /// the rule the trainer stops by. Patience needs both `patience` validations without a better
    /// validation NDCG@10 *and* `patience_steps` optimiser steps since the best one: an epoch of a
    /// small dataset is a handful of steps, and validations alone would stop it before it learns.
    pub fn stop_reason(&self, train: &TrainConfig) -> Option<String> {
        if self.epoch >= train.epochs {
            return Some(format!("reached the epoch limit ({})", train.epochs));
        }
        if let Some(m) = train.time_budget_minutes
            && self.train_seconds >= m * 60.0
        {
            return Some(format!("reached the time budget ({m} min)"));
        }
        let since = self.steps.saturating_sub(self.best_step);
        if self.bad_evals >= train.patience && since >= train.patience_steps {
            return Some(format!(
                "no better {} than {:.4} (epoch {}) for {} validations and {since} steps (patience {}, patience_steps {})",
                self.select_by.unwrap_or_default().describe(),
                self.best_valid_ndcg10,
                self.best_epoch.unwrap_or(0),
                self.bad_evals,
                train.patience,
                train.patience_steps
            ));
        }
        None
    }

    pub fn can_continue(&self, train: &TrainConfig) -> bool {
        self.stop_reason(train).is_none()
    }
}

pub struct Checkpoint {
    pub config: RunConfig,
    pub state: TrainState,
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(format!("{}: {e}", path.display()))
}

/// Sub-folder of a run that holds its pre-training stage (`crate::stages`).
pub const PRETRAIN_DIR: &str = "pretrain";

/// Whether `name` is a file a run writes in its folder (settings, state, logs, weights, test
/// figures), so its temporaries are the run's to remove.
pub fn is_run_file(name: &str) -> bool {
    matches!(
        name,
        "config.json" | "state.json" | "test.json" | "log.jsonl" | "command.txt"
    ) || name.starts_with("test-by-") && name.ends_with(".json")
        || (name.starts_with("epoch-") || name.starts_with("best")) && name.ends_with(".bpk")
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// The run whose pre-training stage this folder holds, if it holds one (`cfg` is its
    /// `config.json`): a stage says so; one written before stages did is `RUN/pretrain` of a
    /// model with a pre-training stage, where `RUN` holds a run of the same model, or a run's
    /// command and lock but no `config.json` yet (cut off in its pre-training). A stage's
    /// weights are not the model's (they are fine-tuned after), so it is reached through its run.
    pub fn stage_owner(&self, cfg: &RunConfig) -> Option<PathBuf> {
        let path = self
            .path
            .canonicalize()
            .unwrap_or_else(|_| self.path.clone());
        let parent = path.parent()?;
        let owner = RunDir::new(parent);
        let old_stage = || {
            path.file_name() == Some(std::ffi::OsStr::new(PRETRAIN_DIR))
                && cfg.model.pretrain_epochs().is_some()
                && match owner.config() {
                    Ok(run) => run.model.kind() == cfg.model.kind(),
                    Err(_) => {
                        !owner.file("config.json").exists()
                            && owner.file("command.txt").exists()
                            && owner.file(".lock").exists()
                    }
                }
        };
        (cfg.pretrain_stage || old_stage()).then(|| parent.to_path_buf())
    }

    /// [`Self::stage_owner`] as the error of a command that reads or trains a run.
    pub fn refuse_stage(&self, cfg: &RunConfig, what: &str) -> Result<(), TrainError> {
        let Some(run) = self.stage_owner(cfg) else {
            return Ok(());
        };
        let way = if RunDir::new(&run).has_run() {
            format!("use {}", run.display())
        } else {
            format!(
                "the run is cut off in its pre-training: its command ({}) with --resume continues it (reproduce and quickstart resume by themselves)",
                run.join("command.txt").display()
            )
        };
        Err(TrainError::Config(format!(
            "{what} {} is the pre-training stage of the {} run {}, not a run of its own: {way}",
            self.path.display(),
            cfg.model.kind().name(),
            run.display(),
        )))
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    pub fn has_run(&self) -> bool {
        self.file("state.json").exists()
    }
    /// A folder whose `state.json` is not a file, or that has no `config.json` beside it, is not
    /// a run to continue or to train over: named, with the way out.
    pub fn check_record(&self) -> Result<(), TrainError> {
        let state = self.file("state.json");
        if !state.is_file() {
            return Err(TrainError::Config(format!(
                "{} is not a file (a folder, device or pipe), so {} holds no run: move it away, or choose another --out",
                state.display(),
                self.path.display()
            )));
        }
        if !self.file("config.json").exists() {
            return Err(TrainError::Config(format!(
                "{} has a state.json but no config.json: not a run that can be continued; restore its config.json, or move the folder away, or choose another --out",
                self.path.display()
            )));
        }
        Ok(())
    }
    /// Refuses a folder that holds what only a committed epoch writes (best weights, test
    /// results, the files of a second epoch) but no `state.json`: a run that lost its record,
    /// which neither `--resume` can continue nor a new run may overwrite. Files of a first
    /// epoch alone are those of a run stopped before its first commit, which starts over.
    pub fn refuse_orphan(&self) -> Result<(), TrainError> {
        if self.has_run() {
            return Ok(());
        }
        let mut found: Vec<String> = [BEST, "test.json"]
            .into_iter()
            .filter(|n| self.file(n).exists())
            .map(String::from)
            .collect();
        let mut later = self.own_files("epoch-", &[".model.bpk", ".optim.bpk"]);
        later.retain(|(epoch, _)| *epoch >= 2);
        later.sort();
        found.extend(later.into_iter().map(|(_, p)| file_name(&p)));
        if found.is_empty() {
            return Ok(());
        }
        Err(TrainError::Config(format!(
            "{} holds the files of a trained run ({}) but no state.json, so it can be neither \
             continued nor trained over: restore its state.json, or move those files (or the \
             folder) away, or choose another --out",
            self.path.display(),
            found.join(", ")
        )))
    }
    /// Whether the run has finished and its `test.json` is the result of that finish: a run
    /// reopened by `--resume` with new limits keeps training, and a `test.json` left from
    /// before would be of an earlier stop.
    pub fn has_result(&self) -> bool {
        self.file("test.json").is_file()
            && self
                .state()
                .is_ok_and(|s| s.finished && self.test_is_of_kept_epoch(&s))
    }

    /// `has_result`, with the test figures of the epochs kept by the other rules
    /// (`test-by-RULE.json`) too: what a pipeline reads back as a finished stage. A run killed
    /// between the files is finished by `--resume`, which writes them.
    pub fn has_every_result(&self) -> bool {
        self.has_result()
            && self.state().is_ok_and(|s| {
                s.also_best
                    .iter()
                    .flat_map(|m| m.keys())
                    .all(|rule| self.file(&format!("test-by-{rule}.json")).is_file())
            })
    }
    pub fn epoch_file(&self, epoch: usize, what: &str) -> PathBuf {
        self.file(&format!("epoch-{epoch:04}.{what}.bpk"))
    }

    pub fn write_json<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<(), TrainError> {
        let text = serde_json::to_string_pretty(value).map_err(|e| io(&self.file(name), e))?;
        write_atomic(&self.file(name), text.as_bytes())
            .map_err(|e| TrainError::Checkpoint(e.to_string()))
    }

    pub fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, TrainError> {
        let path = self.file(name);
        // A pipe or a device in a run folder would block or never end.
        if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
            return Err(io(&path, "not a regular file"));
        }
        let text = ssi_data::dataset::read_text_max(&path, ssi_data::dataset::MAX_SETTINGS_BYTES)
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| io(&path, format!("invalid JSON: {e}")))
    }

    /// The run's settings, range-checked like settings given on the command line (an edited
    /// `config.json` would otherwise reach burn with values it panics on).
    pub fn config(&self) -> Result<RunConfig, TrainError> {
        if std::fs::symlink_metadata(self.file("config.json")).is_err() {
            let what = if !self.path.exists() {
                "no such run folder"
            } else if !self.path.is_dir() {
                "a file, not a run folder"
            } else {
                "a folder without a run (no config.json)"
            };
            return Err(TrainError::Config(format!(
                "{}: {what} (a run folder is the --out of `ssi train`, `pretrain` or `distill`)",
                self.path.display()
            )));
        }
        let raw: serde_json::Value = self.read_json("config.json")?;
        let path = self.file("config.json");
        let cfg: RunConfig = serde_json::from_value(raw.clone()).map_err(|e| {
            // A model setting of the wrong type: name it.
            match raw.get("model").map(ssi_models::ModelConfig::from_json) {
                Some(Err(m)) => io(&path, format!("invalid \"model\": {m}")),
                _ => io(&path, format!("invalid JSON: {e}")),
            }
        })?;
        cfg.model.validate().map_err(|e| io(&path, e))?;
        cfg.train.validate().map_err(|e| io(&path, e))?;
        if self.file("state.json").exists() {
            let state = self.state()?;
            if let Some(want) = state.checksums.get(MODEL_SETTINGS)
                && *want != model_digest(&raw)
            {
                return Err(io(
                    &path,
                    "its model settings differ from those the run's weights were trained with \
                     (state.json records their checksum): an edited config.json would change \
                     results silently; restore it, or train a new run",
                ));
            }
            if let Some(want) = state.checksums.get(TRAIN_SETTINGS)
                && *want != train_digest(&raw)
            {
                return Err(io(
                    &path,
                    "its training settings differ from those the run was trained with (state.json \
                     records their checksum): only the stopping limits (epochs, patience, \
                     patience_steps, time_budget_minutes) may change, with --resume --set; \
                     restore the file, or train a new run",
                ));
            }
            if let Some(want) = state.checksums.get(DATASET_SETTINGS)
                && *want != dataset_digest(&raw)
            {
                return Err(io(
                    &path,
                    "its \"dataset\" record differs from the dataset the run was trained on \
                     (state.json records its checksum; only \"path\" may change, for a moved \
                     file): restore the file, or train a new run",
                ));
            }
        }
        Ok(cfg)
    }

    pub fn state(&self) -> Result<TrainState, TrainError> {
        if !self.has_run() && self.file("config.json").exists() {
            return Err(TrainError::Checkpoint(format!(
                "{} has no finished epoch yet (config.json but no state.json): its training is \
                 still in its first epoch, or was stopped there (the command that started it, \
                 run again without --resume, starts it over)",
                self.path.display()
            )));
        }
        let state: TrainState = self.read_json("state.json").map_err(|e| {
            let e = match e {
                TrainError::Checkpoint(m) => m,
                other => other.to_string(),
            };
            TrainError::Checkpoint(format!(
                "{e}: the run's record of its epochs is damaged, so the run can be neither \
                 continued nor evaluated; restore the file, or move the folder away and train \
                 again"
            ))
        })?;
        // A best epoch or step past the run's own counts is a hand-edited or foreign file: the
        // best weights would be looked for in an epoch that never ran.
        if !(state.train_seconds.is_finite() && state.train_seconds >= 0.0) {
            return Err(TrainError::Checkpoint(format!(
                "{}: train_seconds = {:e} is not a duration; the file was edited",
                self.file("state.json").display(),
                state.train_seconds
            )));
        }
        // Counts no run reaches (2^48 steps are years of a GPU's training): an edited file,
        // whose counter would wrap once training went on.
        const MAX_COUNT: u64 = 1 << 48;
        if state.steps as u64 > MAX_COUNT || state.epoch as u64 > MAX_COUNT {
            return Err(TrainError::Checkpoint(format!(
                "{}: {} steps in {} epochs is more than any run counts (at most 2^48); the file was edited",
                self.file("state.json").display(),
                state.steps,
                state.epoch
            )));
        }
        if state.best_epoch.is_some_and(|b| b > state.epoch) || state.best_step > state.steps {
            return Err(TrainError::Checkpoint(format!(
                "{}: best epoch {} (step {}) lies past the run's {} epochs ({} steps); the file was edited or belongs to another run",
                self.file("state.json").display(),
                state.best_epoch.unwrap_or(0),
                state.best_step,
                state.epoch,
                state.steps
            )));
        }
        Ok(state)
    }

    /// Gives a saved run the stopping limits of `limits` (epochs, patience, patience_steps,
    /// time_budget_minutes) and reopens it when they allow more training, so `--resume --set
    /// time_budget_minutes=45` continues a run that stopped at 22 minutes. Only the limits change:
    /// a run is one model trained one way, so its other settings stay those of `config.json`.
    /// Returns whether the run is (again) unfinished.
    pub fn set_limits(&self, limits: &TrainConfig) -> Result<bool, TrainError> {
        let mut config = self.config()?;
        let mut state = self.state()?;
        config.train.epochs = limits.epochs;
        config.train.patience = limits.patience;
        config.train.patience_steps = limits.patience_steps;
        config.train.time_budget_minutes = limits.time_budget_minutes;
        state.stop_reason = state.stop_reason(&config.train);
        state.finished = state.stop_reason.is_some();
        // Only the limits change in the file: the model settings stay byte for byte what their
        // digest in state.json was taken of.
        let mut raw: serde_json::Value = self.read_json("config.json")?;
        let train = serde_json::to_value(&config.train).expect("configs serialise");
        for key in STOPPING_LIMITS {
            raw["train"][key] = train[key].clone();
        }
        // config.json first: a crash between the two writes leaves a finished run with new
        // limits, which the next --resume reopens the same way.
        self.write_json("config.json", &raw)?;
        self.write_json("state.json", &state)?;
        Ok(!state.finished)
    }

    fn write_bytes(&self, path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
        write_atomic(path, bytes).map_err(|e| TrainError::Checkpoint(e.to_string()))
    }

    /// Saves model and optimiser for `state.epoch` (and, when this epoch is the best one, the
    /// best model as a pending file), then commits `state.json`, then settles the pending best
    /// model into `best.bpk` and removes the files of older epochs. A crash at any point leaves
    /// `state.json` and `best.bpk` in agreement once settled (`settle_best`).
    pub fn save(
        &self,
        module: &[u8],
        optim: &burn::optim::ModuleOptimizer,
        state: &mut TrainState,
        best: Option<&[u8]>,
        also: &[(SelectBy, &[u8])],
    ) -> Result<(), TrainError> {
        let m = self.epoch_file(state.epoch, "model");
        let o = self.epoch_file(state.epoch, "optim");
        self.write_bytes(&m, module)?;
        let ob = optim.into_bytes().map_err(|e| io(&o, e))?;
        self.write_bytes(&o, &ob)?;
        state
            .checksums
            .retain(|name, _| name == BEST || name.starts_with(BEST_BY));
        let raw: serde_json::Value = self.read_json("config.json")?;
        state
            .checksums
            .insert(MODEL_SETTINGS.into(), model_digest(&raw));
        state
            .checksums
            .insert(TRAIN_SETTINGS.into(), train_digest(&raw));
        state
            .checksums
            .insert(DATASET_SETTINGS.into(), dataset_digest(&raw));
        state.checksums.insert(file_name(&m), sha256_hex(module));
        state.checksums.insert(file_name(&o), sha256_hex(&ob));
        if let Some(b) = best {
            self.write_bytes(&self.pending_best(state.epoch), b)?;
            state.checksums.insert(BEST.into(), sha256_hex(b));
        }
        for (rule, b) in also {
            self.write_bytes(&self.pending_best_by(*rule, state.epoch), b)?;
            state.checksums.insert(best_by(*rule), sha256_hex(b));
        }
        self.write_json("state.json", state)?;
        self.settle_best(state)?;
        for (epoch, path) in self.own_files("epoch-", &[".model.bpk", ".optim.bpk"]) {
            if epoch < state.epoch {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    fn pending_best(&self, epoch: usize) -> PathBuf {
        self.file(&format!("best-{epoch:04}.pending.bpk"))
    }

    fn pending_best_by(&self, rule: SelectBy, epoch: usize) -> PathBuf {
        self.file(&format!("{BEST_BY}{}-{epoch:04}.pending.bpk", rule.name()))
    }

    /// Files of this run named `{prefix}{epoch}{suffix}` (the epoch in digits): only what the
    /// trainer writes, never a user's file that happens to share a prefix.
    fn own_files(&self, prefix: &str, suffixes: &[&str]) -> Vec<(usize, PathBuf)> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(rest) = name.strip_prefix(prefix) else {
                    continue;
                };
                for suffix in suffixes {
                    if let Some(num) = rest.strip_suffix(suffix)
                        && num.len() >= 4
                        && num.bytes().all(|b| b.is_ascii_digit())
                        && let Ok(n) = num.parse()
                    {
                        out.push((n, e.path()));
                    }
                }
            }
        }
        out
    }

    /// Makes `best.bpk` agree with `state.json`: a pending best model of the committed best
    /// epoch becomes `best.bpk`; one of an epoch that never committed is removed.
    pub fn settle_best(&self, state: &TrainState) -> Result<(), TrainError> {
        for (epoch, path) in self.own_files("best-", &[".pending.bpk"]) {
            if state.best_epoch == Some(epoch) && epoch <= state.epoch {
                let best = self.file(BEST);
                std::fs::rename(&path, &best).map_err(|e| io(&best, e))?;
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
        for rule in SelectBy::ALL {
            let prefix = format!("{BEST_BY}{}-", rule.name());
            let kept = state
                .also_best
                .as_ref()
                .and_then(|m| m.get(rule.name()))
                .map(|b| b.epoch);
            for (epoch, path) in self.own_files(&prefix, &[".pending.bpk"]) {
                if kept == Some(epoch) && epoch <= state.epoch {
                    let to = self.file(&best_by(rule));
                    std::fs::rename(&path, &to).map_err(|e| io(&to, e))?;
                } else {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Ok(())
    }

    /// The weights of the best epoch by `rule` where the run keeps them besides its own rule's
    /// (`TrainState::also_best`), read and checked: `None` where it does not. Read without
    /// changing the folder, as `read_best` reads `best.bpk` while the trainer may commit.
    pub fn read_best_by(&self, rule: SelectBy) -> Result<Option<(usize, Vec<u8>)>, TrainError> {
        let name = best_by(rule);
        let mut state = self.state()?;
        let mut tries = 0;
        loop {
            let Some(kept) = state.also_best.as_ref().and_then(|m| m.get(rule.name())) else {
                return Ok(None);
            };
            let mut failed = None;
            for path in [self.pending_best_by(rule, kept.epoch), self.file(&name)] {
                if !path.exists() {
                    continue;
                }
                match self.read_checked_as(&path, &name, &state) {
                    Ok(bytes) => return Ok(Some((kept.epoch, bytes))),
                    Err(e) => failed = Some(e),
                }
            }
            let err = failed.unwrap_or_else(|| {
                io(
                    &self.file(&name),
                    format!(
                        "missing: state.json records the weights of epoch {} (kept by {}) there",
                        kept.epoch,
                        rule.describe()
                    ),
                )
            });
            let again = self.state()?;
            tries += 1;
            let moved = again.epoch != state.epoch
                || again.checksums.get(&name) != state.checksums.get(&name);
            if !moved || tries >= 20 {
                return Err(err);
            }
            state = again;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether `test.json` is of the epoch the run keeps (files written before the epoch was
    /// recorded in it are taken as they are).
    pub fn test_is_of_kept_epoch(&self, state: &TrainState) -> bool {
        let test: Option<serde_json::Value> = self.read_json("test.json").ok();
        match test.as_ref().and_then(|t| t.get("epoch")) {
            None => true,
            Some(e) => e.as_u64().map(|e| e as usize) == state.best_epoch,
        }
    }

    /// The trained module's bytes and the optimiser of the last committed epoch.
    pub fn load_latest_bytes(
        &self,
        optim: burn::optim::ModuleOptimizer,
    ) -> Result<(Vec<u8>, burn::optim::ModuleOptimizer, TrainState), TrainError> {
        let state = self.state()?;
        self.settle_best(&state)?;
        let model = self.read_checked(&self.epoch_file(state.epoch, "model"), &state)?;
        let o = self.epoch_file(state.epoch, "optim");
        let bytes = self.read_checked(&o, &state)?;
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| io(&o, e))?;
        Ok((model, optim, state))
    }

    /// The best model (by validation NDCG@10) of a run.
    pub fn load_best(&self, device: &Device) -> Result<(RunConfig, AnyModel), TrainError> {
        let cfg = self.config()?;
        self.refuse_stage(&cfg, "the run")?;
        self.load_best_of(cfg, device)
    }

    /// [`Self::load_best`] of a run or of a pre-training stage (`--init` may start from
    /// pre-trained weights, in place of the stage).
    pub fn load_best_or_stage(&self, device: &Device) -> Result<(RunConfig, AnyModel), TrainError> {
        let cfg = self.config()?;
        self.load_best_of(cfg, device)
    }

    fn load_best_of(
        &self,
        cfg: RunConfig,
        device: &Device,
    ) -> Result<(RunConfig, AnyModel), TrainError> {
        let (state, bytes) = self.read_best()?;
        let Some((path, bytes)) = bytes else {
            let why = if let Some(epoch) = state.best_epoch.filter(|&e| e <= state.epoch) {
                format!(
                    "the file is gone, though state.json records the best weights (epoch {epoch}) there; `ssi train --resume --out {}` restores it where the run still holds that epoch's files",
                    self.path.display()
                )
            } else if state.finished && state.best_epoch.is_none() {
                format!(
                    "the run stopped after {} epoch(s) without a validation ({})",
                    state.epoch,
                    state.stop_reason.as_deref().unwrap_or("no reason recorded")
                )
            } else {
                "the run has not finished a validation yet".into()
            };
            return Err(TrainError::Checkpoint(format!(
                "{} has no {BEST}: {why}",
                self.path.display()
            )));
        };
        let model = model_from_bytes(&cfg.model, bytes, device).map_err(|e| io(&path, e))?;
        Ok((cfg, model))
    }

    /// The best model of a run by `rule`: `best.bpk` where it is the run's own rule, else the
    /// weights the run kept for it (`TrainState::also_best`), with their epoch.
    pub fn load_best_by(
        &self,
        rule: SelectBy,
        device: &Device,
    ) -> Result<(RunConfig, AnyModel, usize), TrainError> {
        let state = self.state()?;
        if state.select_by.unwrap_or_default() == rule {
            let (cfg, model) = self.load_best(device)?;
            let epoch = self.state()?.best_epoch.unwrap_or(0);
            return Ok((cfg, model, epoch));
        }
        let cfg = self.config()?;
        self.refuse_stage(&cfg, "the run")?;
        let Some((epoch, bytes)) = self.read_best_by(rule)? else {
            return Err(TrainError::Checkpoint(format!(
                "{} keeps no best epoch by {}: it keeps its epoch by {}{}",
                self.path.display(),
                rule.describe(),
                state.select_by.unwrap_or_default().describe(),
                if state.also_best.is_none() {
                    ", and was trained (or begun) by a version of ssi that kept no other"
                } else {
                    ", and has no validation with that figure yet"
                }
            )));
        };
        let path = self.file(&best_by(rule));
        let model = model_from_bytes(&cfg.model, bytes, device).map_err(|e| io(&path, e))?;
        Ok((cfg, model, epoch))
    }

    /// The SHA-256 of the run's best weights, once they are read and checked as `load_best`
    /// reads them (a teacher's identity in a distillation run).
    pub fn best_weights_sha256(&self) -> Result<String, TrainError> {
        self.load_best(&Device::flex())?;
        match self.read_best()? {
            (_, Some((_, bytes))) => Ok(sha256_hex(&bytes)),
            (_, None) => Err(TrainError::Checkpoint(format!(
                "{} has no {BEST}",
                self.path.display()
            ))),
        }
    }

    /// The committed best weights, read without changing the folder: `ssi eval`, `ssi export`
    /// and teachers may read a run while it trains, so a reader takes the pending file the
    /// committed state names while it is still there (the trainer settles it into `best.bpk`),
    /// and reads `state.json` again when the trainer committed a newer best in between. A
    /// mismatch that stays after the state stops changing is a damaged file.
    fn read_best(&self) -> Result<(TrainState, Option<WeightFile>), TrainError> {
        let mut state = self.state()?;
        let mut tries = 0;
        loop {
            let pending = state
                .best_epoch
                .filter(|&e| e <= state.epoch)
                .map(|e| self.pending_best(e));
            let mut failed = None;
            for path in pending.into_iter().chain([self.file(BEST)]) {
                if !path.exists() {
                    continue;
                }
                match self.read_checked_as(&path, BEST, &state) {
                    Ok(bytes) => return Ok((state, Some((path, bytes)))),
                    Err(e) => failed = Some(e),
                }
            }
            let Some(err) = failed else {
                return Ok((state, None));
            };
            let again = self.state()?;
            tries += 1;
            let moved = again.epoch != state.epoch
                || again.checksums.get(BEST) != state.checksums.get(BEST);
            if !moved || tries >= 20 {
                return Err(err);
            }
            state = again;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Checks the committed weight files of the run against their checksums, before anything of
    /// the run is rewritten.
    pub fn check_files(&self) -> Result<(), TrainError> {
        let state = self.state()?;
        self.settle_best(&state)?;
        self.restore_best(&state)?;
        for name in state
            .checksums
            .keys()
            .filter(|n| ![MODEL_SETTINGS, TRAIN_SETTINGS, DATASET_SETTINGS].contains(&n.as_str()))
        {
            let path = self.file(name);
            if path.exists() || !name.starts_with("best") {
                self.read_checked(&path, &state)?;
            }
        }
        Ok(())
    }

    /// A `best.bpk` that `state.json` committed but that is gone (deleted by hand) is restored
    /// from the best epoch's own model file while that is kept with the same bytes; otherwise
    /// the run is refused before anything is rewritten, since training on would remove the
    /// epoch files and leave the run without its best weights.
    fn restore_best(&self, state: &TrainState) -> Result<(), TrainError> {
        // The weights kept by another rule are often the same bytes as best.bpk or an epoch's
        // file; one that cannot be restored only leaves its test-by file out.
        for rule in SelectBy::ALL {
            let name = best_by(rule);
            let kept = state.also_best.as_ref().and_then(|m| m.get(rule.name()));
            let (Some(want), Some(kept)) = (state.checksums.get(&name), kept) else {
                continue;
            };
            let path = self.file(&name);
            if path.exists() || self.pending_best_by(rule, kept.epoch).exists() {
                continue;
            }
            for from in [self.file(BEST), self.epoch_file(kept.epoch, "model")] {
                if let Ok(bytes) = std::fs::read(&from)
                    && sha256_hex(&bytes) == *want
                {
                    self.write_bytes(&path, &bytes)?;
                    break;
                }
            }
        }
        let best = self.file(BEST);
        let (Some(want), Some(epoch)) = (state.checksums.get(BEST), state.best_epoch) else {
            return Ok(());
        };
        if best.exists() {
            return Ok(());
        }
        let copy = self.epoch_file(epoch, "model");
        if let Ok(bytes) = std::fs::read(&copy)
            && sha256_hex(&bytes) == *want
        {
            return self.write_bytes(&best, &bytes);
        }
        Err(TrainError::Checkpoint(format!(
            "{} is missing: state.json records the best weights (epoch {epoch}) there, and no other file of the run holds them. Restore the file, or train again without --resume into another --out",
            best.display()
        )))
    }

    /// Reads a weight file and checks it against the checksum `state` committed for it (runs
    /// written before checksums were recorded have none, and are read as they are).
    fn read_checked(&self, path: &Path, state: &TrainState) -> Result<Vec<u8>, TrainError> {
        self.read_checked_as(path, &file_name(path), state)
    }

    /// `read_checked` for a file committed under another name (a pending best model).
    fn read_checked_as(
        &self,
        path: &Path,
        name: &str,
        state: &TrainState,
    ) -> Result<Vec<u8>, TrainError> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        if let Some(want) = state.checksums.get(name)
            && *want != sha256_hex(&bytes)
        {
            return Err(io(
                path,
                "its SHA-256 does not match the one state.json recorded: the file is corrupt or was replaced",
            ));
        }
        Ok(bytes)
    }
}

/// A weight file read: its path and bytes.
type WeightFile = (PathBuf, Vec<u8>);

/// The best model's file in a run folder.
const BEST: &str = "best.bpk";

/// The start of the files of the best epochs by the other selection rules.
const BEST_BY: &str = "best-by-";

/// The file of the best epoch by `rule` (not the run's own rule, which is `best.bpk`).
fn best_by(rule: SelectBy) -> String {
    format!("{BEST_BY}{}.bpk", rule.name())
}

/// A line of `command.txt`: the command's words, each quoted where a shell needs it, so the line
/// runs the same command when pasted.
pub fn command_text(words: &[String]) -> String {
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

/// The words of a `command.txt` line ([`command_text`]); lines a shell cannot split (written
/// before they were quoted, with a stray quote) are split at white space.
pub fn command_words(line: &str) -> Vec<String> {
    shlex::split(line).unwrap_or_else(|| line.split_whitespace().map(String::from).collect())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn model_bytes(model: &AnyModel) -> Result<Vec<u8>, TrainError> {
    module_bytes(model)
}

/// Any module as burnpack bytes.
pub fn module_bytes<M: Module>(module: &M) -> Result<Vec<u8>, TrainError> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::Checkpoint(format!("{e:?}")))?;
    Ok(bytes.to_vec())
}

/// Builds the model of `config` and loads weights from a burnpack file, with a clear error when
/// the file does not fit the config.
pub fn load_model(
    config: &ModelConfig,
    path: &Path,
    device: &Device,
) -> Result<AnyModel, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    model_from_bytes(config, bytes, device).map_err(|e| io(path, e))
}

pub fn model_from_bytes(
    config: &ModelConfig,
    bytes: Vec<u8>,
    device: &Device,
) -> Result<AnyModel, TrainError> {
    config
        .check_fits_weights(bytes.len())
        .map_err(TrainError::Weights)?;
    let record = ssi_models::common::weights_record(bytes).map_err(TrainError::Weights)?;
    let model = config.init(device).try_load_record(record).map_err(|e| {
        TrainError::Weights(format!(
            "the weights do not fit the {} settings of config.json (tensor shapes differ: the settings were edited, or the weights belong to another run); detail: {}",
            config.kind().name(),
            ssi_models::common::brief(&e.to_string())
        ))
    })?;
    check_finite(&model)?;
    Ok(model)
}

/// The model of `config` with the best weights of the trained run in `init` (`--init`): every
/// weight of that run must land in the new model with its shape; weights the run lacks (a
/// consistency teacher's head when starting from a plain BERT4Rec) keep their fresh init.
pub fn warm_start(
    init: &Path,
    config: &ModelConfig,
    dataset: &crate::config::DatasetInfo,
    device: &Device,
) -> Result<AnyModel, TrainError> {
    let dir = RunDir::new(init);
    if !dir.has_run() {
        let why = if !init.exists() {
            "no such folder"
        } else if !init.is_dir() {
            "a file, not a run folder"
        } else if dir.file("config.json").exists() {
            "it has no finished epoch yet (config.json but no state.json)"
        } else {
            "not a run folder (no config.json)"
        };
        return Err(TrainError::Config(format!(
            "--init {}: {why}",
            init.display()
        )));
    }
    let (saved, model) = dir.load_best_or_stage(device)?;
    saved
        .dataset
        .check_same(dataset, &format!("--init {}", init.display()))?;
    if saved.model.kind() != config.kind() {
        return Err(TrainError::Config(format!(
            "--init {} holds a {} run, and this run trains {}: --init needs a run of the same model",
            init.display(),
            saved.model.kind().name(),
            config.kind().name()
        )));
    }
    // A teacher's consistency head (eq. 1–3) may have no place in a model of another task or
    // none: when its weights are all that is left over, the rest carry over without them (head
    // weights that fit the new task's head start it).
    let task = |c: &ModelConfig| c.to_json().get("consistency").cloned();
    let other_head =
        task(&saved.model).is_some_and(|t| !t.is_null()) && task(&saved.model) != task(config);
    let load = |m: AnyModel, allow_unused: bool| {
        let record = m
            .into_record()
            .allow_partial(true)
            .allow_unused(allow_unused);
        config.init(device).try_load_record(record)
    };
    match load(model.clone(), false) {
        Err(e) if other_head && only_head_left_over(&e.to_string()) => load(model, true),
        loaded => loaded,
    }
    .map_err(|e| {
        let e = e.to_string();
        let why = if e.contains("Unused tensors") {
            "it has weights this model has no place for"
        } else {
            "its weights do not fit these settings (hidden, layers, heads, max_len must be the run's: see its config.json)"
        };
        TrainError::Config(format!(
            "--init {}: {why}; detail: {}",
            init.display(),
            ssi_models::common::brief(&e)
        ))
    })
}

/// Whether a load error lists unused tensors, every one of them a consistency head's.
fn only_head_left_over(error: &str) -> bool {
    let Some(list) = error.split("Unused tensors: [").nth(1) else {
        return false;
    };
    let list = list.split(']').next().unwrap_or_default();
    let names: Vec<&str> = list
        .split(',')
        .map(|n| n.trim().trim_matches('"'))
        .collect();
    !names.is_empty() && names.iter().all(|n| n.contains("consistency"))
}

/// Refuses a model with a NaN or infinite weight, naming the weight.
pub fn check_finite<M: Module>(module: &M) -> Result<(), TrainError> {
    match ssi_models::common::first_non_finite(module) {
        Some(at) => Err(TrainError::Weights(format!(
            "weight {at} holds NaN or infinite values: the file is corrupt or training diverged (try a lower lr)"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_command_reads_back_as_its_words() {
        let words: Vec<String> = [
            "ssi",
            "train",
            "--data",
            "sp ace/my shop.txt",
            "--out",
            "it's",
        ]
        .map(String::from)
        .to_vec();
        let line = command_text(&words);
        assert_eq!(
            line,
            r#"ssi train --data 'sp ace/my shop.txt' --out "it's""#
        );
        assert_eq!(command_words(&line), words);
        // A line a shell cannot split is split at white space.
        assert_eq!(command_words("ssi 'x"), ["ssi", "'x"]);
    }
}
