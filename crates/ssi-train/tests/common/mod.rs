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

/// A run written with `key` unset (`null`, as in runs from before the setting existed) resumes
/// with `--set key=same` (what `null` means: no change) and is refused with `--set key=other`,
/// the error naming the change. A small `kind` run of one step.
#[allow(dead_code)] // each test binary compiles this module; not all of them use this
pub fn unset_setting_resumes_as(kind: ModelKind, key: &str, same: &str, other: &str) {
    use ssi_train::trainer::Silent;
    use ssi_train::{Job, Setting, train_job};
    let ds = dataset();
    let dir = tempfile::tempdir().unwrap();
    let base = [
        Setting::strict("hidden", 16),
        Setting::strict("epochs", 1),
        Setting::strict("batch_size", 32),
        Setting::strict("max_steps_per_epoch", 1),
    ];
    let job = |resume: bool, more: Option<Setting>| Job {
        kind,
        settings: base.iter().cloned().chain(more).collect(),
        data_path: None,
        device: Device::flex(),
        out: dir.path().to_path_buf(),
        resume,
        init: None,
        distill: None,
        command: vec!["test".into()],
    };
    train_job(&ds, &job(false, None), &mut Silent).unwrap();
    let saved = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(saved.contains(&format!("\"{key}\": null")), "{saved}");
    train_job(
        &ds,
        &job(true, Some(Setting::strict(key, same))),
        &mut Silent,
    )
    .unwrap_or_else(|e| panic!("{key}={same} is the unset value: {e}"));
    let err = train_job(
        &ds,
        &job(true, Some(Setting::strict(key, other))),
        &mut Silent,
    )
    .expect_err("another value");
    assert!(
        err.to_string()
            .contains(&format!("{key} null -> \"{other}\"")),
        "{err}"
    );
}
