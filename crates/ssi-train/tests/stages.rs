//! Two-stage runs (S3-Rec): pre-training into `OUT/pretrain`, fine-tuning from its last weights,
//! and resuming across the stage boundary. Alone in its test binary: burn's device RNG is global.

mod common;

use burn::tensor::Device;
use common::{configs, dataset, trainer};
use ssi_models::{ModelKind, SequentialModel};
use ssi_train::RunDir;
use ssi_train::checkpoint::model_from_bytes;
use ssi_train::stages::{PRETRAIN_DIR, WarmStart};
use ssi_train::trainer::Silent;

fn table(dir: &std::path::Path) -> Vec<f32> {
    let (_, model) = RunDir::new(dir).load_best(&Device::flex()).unwrap();
    model.item_table().into_data().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn s3rec_fine_tunes_from_its_pretrained_weights_and_resumes_across_stages() {
    let ds = dataset();
    let (base, train) = configs(ModelKind::S3rec, &ds);
    let train = train.with_epochs(1);
    let cfg = |pre: usize| {
        base.with_overrides(&[("pretrain_epochs".into(), pre.into())])
            .unwrap()
    };

    let staged = tempfile::tempdir().unwrap();
    trainer(&ds, staged.path(), None)
        .run_staged(&cfg(2), &train, false, &mut Silent)
        .unwrap();
    let pre = RunDir::new(staged.path().join(PRETRAIN_DIR));
    let s = pre.state().unwrap();
    assert_eq!((s.epoch, s.finished), (2, true));
    assert_eq!(RunDir::new(staged.path()).state().unwrap().epoch, 1);

    // The same fine-tuning started by hand from the pre-trained weights gives the same model ...
    let bytes = std::fs::read(pre.epoch_file(2, "model")).unwrap();
    let device = Device::flex().autodiff();
    let start = model_from_bytes(&cfg(2), bytes, &device).unwrap();
    let by_hand = tempfile::tempdir().unwrap();
    let t = trainer(&ds, by_hand.path(), None);
    let run = t.run_config(&cfg(2), &train, None);
    t.run_objective(run, false, &mut Silent, |r| {
        Ok(WarmStart {
            config: r.model.clone(),
            start: Some(start),
        })
    })
    .unwrap();
    let a = table(staged.path());
    assert!(max_diff(&a, &table(by_hand.path())) < 1e-6);
    // ... and one without pre-training does not.
    let cold = tempfile::tempdir().unwrap();
    trainer(&ds, cold.path(), None)
        .run_staged(&cfg(0), &train, false, &mut Silent)
        .unwrap();
    assert!(!cold.path().join(PRETRAIN_DIR).exists());
    assert!(max_diff(&a, &table(cold.path())) > 1e-3);

    // Killed after one pre-training epoch, then resumed: the same final model.
    let broken = tempfile::tempdir().unwrap();
    let s = trainer(&ds, broken.path(), Some(1))
        .run_staged(&cfg(2), &train, false, &mut Silent)
        .unwrap();
    assert_eq!((s.epoch, s.finished), (1, false));
    let err = trainer(&ds, broken.path(), None)
        .run_staged(&cfg(2), &train, false, &mut Silent)
        .unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    trainer(&ds, broken.path(), None)
        .run_staged(&cfg(2), &train, true, &mut Silent)
        .unwrap();
    assert!(max_diff(&a, &table(broken.path())) < 1e-6);
}
