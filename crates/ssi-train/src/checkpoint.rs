//! Run folders and checkpoints. Every file is written atomically (temporary file + rename), and
//! `state.json` is written last: it names the epoch files that belong together, so a run killed
//! at any instant resumes from a consistent model + optimiser + epoch.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use ssi_data::dataset::write_atomic;
use ssi_models::{AnyModel, ModelConfig};
use std::path::{Path, PathBuf};

use crate::trainer::{TrainConfig, TrainError};

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

/// What `config.json` holds: everything needed to rebuild the model and continue the run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub dataset: DatasetInfo,
    /// Present on distillation runs: the teachers and imitation settings. `model` is the student.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<crate::distill::DistillSpec>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub n_items: usize,
    pub n_users: usize,
    /// Where it was loaded from (None for the embedded synthetic shop).
    pub path: Option<PathBuf>,
}

/// Progress of a run; the commit point of a checkpoint.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    pub steps: usize,
    pub best_epoch: Option<usize>,
    pub best_valid_ndcg10: f64,
    /// Validations in a row without improvement.
    pub bad_evals: usize,
    pub finished: bool,
    pub train_seconds: f64,
}

impl TrainState {
    /// Whether `train`'s limits allow another epoch after this state: the rule the trainer
    /// stops by (epochs, patience, wall-clock budget).
    pub fn can_continue(&self, train: &TrainConfig) -> bool {
        self.epoch < train.epochs
            && self.bad_evals < train.patience
            && !train
                .time_budget_minutes
                .is_some_and(|m| self.train_seconds >= m * 60.0)
    }
}

pub struct Checkpoint {
    pub config: RunConfig,
    pub state: TrainState,
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(format!("{}: {e}", path.display()))
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    pub fn has_run(&self) -> bool {
        self.file("state.json").exists()
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
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| io(&path, format!("invalid JSON: {e}")))
    }

    pub fn config(&self) -> Result<RunConfig, TrainError> {
        self.read_json("config.json")
    }

    pub fn state(&self) -> Result<TrainState, TrainError> {
        self.read_json("state.json")
    }

    /// Gives a saved run new stopping limits (`epochs`, `patience`, `time_budget_minutes`) and
    /// reopens it when they allow more training, so `--resume --set time_budget_minutes=45`
    /// continues a run that stopped at 22 minutes. Only the limits change: a run is one model
    /// trained one way, so its other settings stay those of `config.json`. Returns whether the
    /// run is (again) unfinished.
    pub fn set_limits(
        &self,
        epochs: usize,
        patience: usize,
        time_budget_minutes: Option<f64>,
    ) -> Result<bool, TrainError> {
        let mut config = self.config()?;
        let mut state = self.state()?;
        config.train.epochs = epochs;
        config.train.patience = patience;
        config.train.time_budget_minutes = time_budget_minutes;
        state.finished = !state.can_continue(&config.train);
        // config.json first: a crash between the two writes leaves a finished run with new
        // limits, which the next --resume reopens the same way.
        self.write_json("config.json", &config)?;
        self.write_json("state.json", &state)?;
        Ok(!state.finished)
    }

    fn write_bytes(&self, path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
        write_atomic(path, bytes).map_err(|e| TrainError::Checkpoint(e.to_string()))
    }

    /// Saves model and optimiser for `state.epoch`, then commits `state.json`, then removes the
    /// files of older epochs.
    pub fn save(
        &self,
        module: &[u8],
        optim: &burn::optim::ModuleOptimizer,
        state: &TrainState,
    ) -> Result<(), TrainError> {
        let m = self.epoch_file(state.epoch, "model");
        let o = self.epoch_file(state.epoch, "optim");
        self.write_bytes(&m, module)?;
        let ob = optim.into_bytes().map_err(|e| io(&o, format!("{e:?}")))?;
        self.write_bytes(&o, &ob)?;
        self.write_json("state.json", state)?;
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("epoch-")
                    && !name.starts_with(&format!("epoch-{:04}.", state.epoch))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    pub fn save_best(&self, model: &AnyModel) -> Result<(), TrainError> {
        self.write_bytes(&self.file("best.bpk"), &model_bytes(model)?)
    }

    /// The trained module's bytes and the optimiser of the last committed epoch.
    pub fn load_latest_bytes(
        &self,
        optim: burn::optim::ModuleOptimizer,
    ) -> Result<(Vec<u8>, burn::optim::ModuleOptimizer, TrainState), TrainError> {
        let state = self.state()?;
        let m = self.epoch_file(state.epoch, "model");
        let model = std::fs::read(&m).map_err(|e| io(&m, e))?;
        let o = self.epoch_file(state.epoch, "optim");
        let bytes = std::fs::read(&o).map_err(|e| io(&o, e))?;
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| io(&o, format!("{e:?}")))?;
        Ok((model, optim, state))
    }

    /// The best model (by validation NDCG@10) of a run.
    pub fn load_best(&self, device: &Device) -> Result<(RunConfig, AnyModel), TrainError> {
        let cfg = self.config()?;
        let path = self.file("best.bpk");
        if !path.exists() {
            return Err(TrainError::Checkpoint(format!(
                "{} has no best.bpk: the run has not finished a validation yet",
                self.path.display()
            )));
        }
        let model = load_model(&cfg.model, &path, device)?;
        Ok((cfg, model))
    }
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
) -> Result<AnyModel, String> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("not a burnpack model file: {e:?}"))?;
    config.init(device).try_load_record(record).map_err(|e| {
        format!(
            "weights do not fit the {} config: {e:?}",
            config.kind().name()
        )
    })
}
