//! The training engine: resume equivalence, NaN guard, run-folder safety.

use burn::tensor::Device;
use ssi_data::Dataset;
use ssi_data::synth::{SynthConfig, generate};
use ssi_models::{ModelConfig, ModelKind};
use ssi_train::RunDir;
use ssi_train::trainer::{Silent, TrainConfig, TrainError, Trainer};

fn dataset() -> Dataset {
    generate(&SynthConfig {
        users: 120,
        categories: 3,
        products_per_category: 4,
        ..Default::default()
    })
    .unwrap()
}

fn configs(kind: ModelKind, ds: &Dataset) -> (ModelConfig, TrainConfig) {
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

fn trainer<'a>(ds: &'a Dataset, dir: &std::path::Path, stop: Option<usize>) -> Trainer<'a> {
    Trainer {
        dataset: ds,
        dataset_path: None,
        dir: RunDir::new(dir),
        device: Device::flex().autodiff(),
        stop_after_epochs: stop,
    }
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let ds = dataset();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    let dir = tempfile::tempdir().unwrap();
    trainer(&ds, dir.path(), Some(1))
        .run(&m, &t, false, &mut Silent)
        .unwrap();
    // Make the continuation diverge: an absurd learning rate blows the weights up after one step.
    let run = RunDir::new(dir.path());
    let mut cfg: serde_json::Value = run.read_json("config.json").unwrap();
    cfg["train"]["lr"] = serde_json::json!(1e30);
    run.write_json("config.json", &cfg).unwrap();
    let err = trainer(&ds, dir.path(), None)
        .run(&m, &t, true, &mut Silent)
        .unwrap_err();
    match &err {
        TrainError::NonFinite {
            epoch, last_good, ..
        } => assert_eq!((*epoch, *last_good), (2, 1)),
        other => panic!("expected a non-finite loss error, got {other}"),
    }
    assert!(
        err.to_string().contains("last good checkpoint (epoch 1)"),
        "{err}"
    );
    // The epoch-1 checkpoint is intact and loads.
    assert_eq!(run.state().unwrap().epoch, 1);
    assert!(run.load_best(&Device::flex()).is_ok());
}

#[test]
fn corrupt_checkpoint_is_an_error_not_a_panic() {
    let ds = dataset();
    let (m, t) = configs(ModelKind::Gru4rec, &ds);
    let dir = tempfile::tempdir().unwrap();
    trainer(&ds, dir.path(), Some(1))
        .run(&m, &t.with_max_steps_per_epoch(Some(1)), false, &mut Silent)
        .unwrap();
    std::fs::write(dir.path().join("best.bpk"), b"not a model").unwrap();
    let err = RunDir::new(dir.path())
        .load_best(&Device::flex())
        .expect_err("corrupt file must fail");
    assert!(err.to_string().contains("best.bpk"), "{err}");
}
