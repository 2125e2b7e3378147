//! The `dropout_masks` training setting. Alone in its test binary (its own process): burn's
//! device RNG is global, and tests running in parallel threads would draw from it between the
//! runs whose losses are compared.

mod common;

use burn::tensor::Device;
use common::{configs, dataset, trainer};
use ssi_models::ModelKind;
use ssi_models::transformer::DropoutMasks;
use ssi_train::trainer::Silent;
use ssi_train::{Job, Setting, train_job};

/// `dropout_masks` reaches training: on the CPU `auto` draws ours's fast masks (the same
/// losses as `fast`), `burn` other masks (other losses); a run written with it unset (`null`)
/// resumes with `auto`, and is refused with `burn`.
#[test]
fn dropout_masks_choose_the_generator() {
    let ds = dataset();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    let t = t.with_epochs(1).with_max_steps_per_epoch(Some(3));
    let loss = |masks: Option<DropoutMasks>| {
        let dir = tempfile::tempdir().unwrap();
        trainer(&ds, dir.path(), None)
            .run(&m, &t.clone().with_dropout_masks(masks), false, &mut Silent)
            .unwrap();
        let log = std::fs::read_to_string(dir.path().join("log.jsonl")).unwrap();
        let e: ssi_train::trainer::EpochLog =
            serde_json::from_str(log.lines().next().unwrap()).unwrap();
        e.loss
    };
    let (auto, fast, burn) = (
        loss(None),
        loss(Some(DropoutMasks::Fast)),
        loss(Some(DropoutMasks::Burn)),
    );
    assert_eq!(auto, fast, "auto is the fast masks on the CPU");
    assert_ne!(fast, burn, "burn's masks are other masks");
    assert_eq!(loss(Some(DropoutMasks::Auto)), auto);

    let dir = tempfile::tempdir().unwrap();
    let job = |resume: bool, more: Option<Setting>| Job {
        kind: ModelKind::Sasrec,
        settings: [
            Setting::strict("hidden", 16),
            Setting::strict("epochs", 1),
            Setting::strict("max_steps_per_epoch", 1),
        ]
        .into_iter()
        .chain(more)
        .collect(),
        data_path: None,
        device: Device::flex(),
        out: dir.path().to_path_buf(),
        resume,
        init: None,
        distill: None,
        command: vec!["test".into()],
    };
    train_job(&ds, &job(false, None), &mut Silent).unwrap();
    train_job(
        &ds,
        &job(true, Some(Setting::strict("dropout_masks", "auto"))),
        &mut Silent,
    )
    .expect("auto is the unset generator");
    let err = train_job(
        &ds,
        &job(true, Some(Setting::strict("dropout_masks", "burn"))),
        &mut Silent,
    )
    .expect_err("another generator");
    assert!(
        err.to_string().contains("dropout_masks null -> \"burn\""),
        "{err}"
    );
    let err = ssi_train::settings::apply_settings(
        &m,
        &t,
        &[Setting::parse("dropout_masks=gpu").unwrap()],
    )
    .expect_err("no such generator");
    assert!(err.to_string().contains("dropout_masks"), "{err}");
}
