//! Models with a self-supervised pre-training stage (S3-Rec): the run pre-trains into
//! `OUT/pretrain` on the model's pre-training loss, then fine-tunes from the last pre-trained
//! weights into `OUT` on its training loss. Both stages checkpoint and resume like any run.

use crate::checkpoint::{RunConfig, RunDir, model_from_bytes};
use crate::trainer::{Objective, Plain, TrainConfig, TrainError, TrainObserver, Trainer};
use burn::tensor::{Device, Tensor};
use ssi_data::rng::SsiRng;
use ssi_models::loss::Softmax;
use ssi_models::{AnyModel, ModelConfig, SequentialModel, TrainBatch};

pub use crate::checkpoint::PRETRAIN_DIR;

/// The self-supervised pre-training objective of a model.
pub struct Pretrain(pub ModelConfig);

impl Objective for Pretrain {
    type Module = AnyModel;
    fn init(&self, device: &Device) -> AnyModel {
        self.0.init(device)
    }
    fn load(&self, bytes: Vec<u8>, device: &Device) -> Result<AnyModel, TrainError> {
        model_from_bytes(&self.0, bytes, device)
    }
    fn loss(&self, m: &AnyModel, batch: TrainBatch, _: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        m.pretrain_loss(batch, rng)
            .expect("Pretrain is only built for models with a pre-training loss")
    }
    fn model<'m>(&self, m: &'m AnyModel) -> &'m AnyModel {
        m
    }
}

/// Training on the model's own loss, starting from given weights instead of a fresh init.
pub struct WarmStart {
    pub config: ModelConfig,
    pub start: Option<AnyModel>,
}

impl Objective for WarmStart {
    type Module = AnyModel;
    fn init(&self, device: &Device) -> AnyModel {
        match &self.start {
            Some(m) => m.clone(),
            None => self.config.init(device),
        }
    }
    fn load(&self, bytes: Vec<u8>, device: &Device) -> Result<AnyModel, TrainError> {
        Plain(self.config.clone()).load(bytes, device)
    }
    fn loss(&self, m: &AnyModel, batch: TrainBatch, s: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        m.train_loss(batch, s, rng)
    }
    fn model<'m>(&self, m: &'m AnyModel) -> &'m AnyModel {
        m
    }
}

/// Where a pre-training stage left a run.
pub enum Pretrained {
    /// Done (or the model has none): the fine-tuning stage starts from these weights (`None`:
    /// a fresh init, or the run's own checkpoint when it is resumed past the stage).
    Done(Option<Box<AnyModel>>),
    /// Stopped early on request (`stop_after_epochs`): resumable, like any run.
    Stopped(crate::checkpoint::TrainState),
}

impl Trainer<'_> {
    /// Trains `model_cfg`: with its pre-training stage first when it has one, else as `run`.
    pub fn run_staged(
        &self,
        model_cfg: &ModelConfig,
        cfg: &TrainConfig,
        resume: bool,
        obs: &mut dyn TrainObserver,
    ) -> Result<crate::checkpoint::TrainState, TrainError> {
        if model_cfg.pretrain_epochs().is_none() {
            return self.run(model_cfg, cfg, resume, obs);
        }
        let start = match self.pretrain(model_cfg, cfg, resume, obs)? {
            Pretrained::Done(start) => start.map(|m| *m),
            Pretrained::Stopped(state) => return Ok(state),
        };
        let run = self.run_config(model_cfg, cfg, None);
        self.run_objective(run, resume, obs, |r| {
            Ok(WarmStart {
                config: r.model.clone(),
                start,
            })
        })
    }

    /// The pre-training stage of `model_cfg`, if it has one: `pretrain_epochs` epochs into
    /// `OUT/pretrain` (validated once, at its end) under the same time budget as the stage after.
    pub fn pretrain(
        &self,
        model_cfg: &ModelConfig,
        cfg: &TrainConfig,
        resume: bool,
        obs: &mut dyn TrainObserver,
    ) -> Result<Pretrained, TrainError> {
        let epochs = match model_cfg.pretrain_epochs() {
            Some(e) if e > 0 => e,
            _ => return Ok(Pretrained::Done(None)),
        };
        let pre = Trainer {
            dataset: self.dataset,
            dataset_path: self.dataset_path.clone(),
            dir: RunDir::new(self.dir.path.join(PRETRAIN_DIR)),
            device: self.device.clone(),
            stop_after_epochs: self.stop_after_epochs,
        };
        let pre_cfg = cfg.clone().with_epochs(epochs).with_eval_every(epochs);
        let run = RunConfig {
            pretrain_stage: true,
            ..pre.run_config(model_cfg, &pre_cfg, None)
        };
        let state = pre.run_objective(run, resume, obs, |r| Ok(Pretrain(r.model.clone())))?;
        if !state.finished {
            return Ok(Pretrained::Stopped(state));
        }
        if self.dir.has_run() {
            return Ok(Pretrained::Done(None));
        }
        let file = pre.dir.epoch_file(state.epoch, "model");
        let bytes = std::fs::read(&file)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", file.display())))?;
        let model = model_from_bytes(&pre.dir.config()?.model, bytes, &self.device)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", file.display())))?;
        Ok(Pretrained::Done(Some(Box::new(model))))
    }
}
