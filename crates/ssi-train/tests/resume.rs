//! Resume equivalence. Alone in its test binary (its own process): burn's device RNG is global,
//! and tests running in parallel threads would draw from it between the two runs.

use burn::tensor::Device;
use ssi_data::Dataset;
use ssi_data::synth::{SynthConfig, generate};
use ssi_models::{ModelConfig, ModelKind, SequentialModel};
use ssi_train::RunDir;
use ssi_train::trainer::{Silent, TrainConfig, Trainer};

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

fn weights(dir: &std::path::Path) -> Vec<f32> {
    let (_, model) = RunDir::new(dir).load_best(&Device::flex()).unwrap();
    let state = RunDir::new(dir).state().unwrap();
    assert_eq!(state.epoch, 2);
    model.item_table().into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn interrupted_and_resumed_run_matches_uninterrupted() {
    let ds = dataset();
    for kind in [ModelKind::Sasrec, ModelKind::Hgn] {
        let (m, t) = configs(kind, &ds);
        let straight = tempfile::tempdir().unwrap();
        trainer(&ds, straight.path(), None)
            .run(&m, &t, false, &mut Silent)
            .unwrap();

        let broken = tempfile::tempdir().unwrap();
        let s = trainer(&ds, broken.path(), Some(1))
            .run(&m, &t, false, &mut Silent)
            .unwrap();
        assert_eq!((s.epoch, s.finished), (1, false));
        // Without --resume an existing run is never overwritten.
        let err = trainer(&ds, broken.path(), None)
            .run(&m, &t, false, &mut Silent)
            .unwrap_err();
        assert!(err.to_string().contains("--resume"), "{err}");
        let s = trainer(&ds, broken.path(), None)
            .run(&m, &t, true, &mut Silent)
            .unwrap();
        assert_eq!((s.epoch, s.finished), (2, true));

        let (a, b) = (weights(straight.path()), weights(broken.path()));
        let max_diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(
            max_diff < 1e-6,
            "{kind:?}: resumed weights differ by {max_diff}"
        );
        let log = std::fs::read_to_string(broken.path().join("log.jsonl")).unwrap();
        assert_eq!(log.lines().count(), 2);
    }
}
