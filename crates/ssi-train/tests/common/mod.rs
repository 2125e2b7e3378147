//! Helpers shared by the trainer test binaries.

use burn::tensor::Device;
use ssi_data::Dataset;
use ssi_data::synth::{SynthConfig, generate};
use ssi_models::{ModelConfig, ModelKind};
use ssi_train::RunDir;
use ssi_train::trainer::{TrainConfig, Trainer};

pub fn dataset() -> Dataset {
    generate(&SynthConfig {
        users: 120,
        categories: 3,
        products_per_category: 4,
        ..Default::default()
    })
    .unwrap()
}

pub fn configs(kind: ModelKind, ds: &Dataset) -> (ModelConfig, TrainConfig) {
    let model = ModelConfig::new(kind, ds.n_items as usize, ds.n_users())
        .with_overrides(&[("hidden".into(), 16.into())])
        .unwrap();
    let train = TrainConfig::new()
        .with_epochs(2)
        .with_batch_size(32)
        .with_seed(7)
        .with_lr(5e-3);
    (model, train)
}

pub fn trainer<'a>(ds: &'a Dataset, dir: &std::path::Path, stop: Option<usize>) -> Trainer<'a> {
    Trainer {
        dataset: ds,
        dataset_path: None,
        dir: RunDir::new(dir),
        device: Device::flex().autodiff(),
        stop_after_epochs: stop,
    }
}
