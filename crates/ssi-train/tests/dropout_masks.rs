//! The `dropout_masks` training setting. Alone in its test binary (its own process): burn's
//! device RNG is global, and tests running in parallel threads would draw from it between the
//! runs whose losses are compared.

mod common;

use common::{configs, dataset, trainer};
use ssi_models::ModelKind;
use ssi_models::transformer::DropoutMasks;
use ssi_train::Setting;
use ssi_train::trainer::Silent;

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

    common::unset_setting_resumes_as(ModelKind::Sasrec, "dropout_masks", "auto", "burn");
    let err = ssi_train::settings::apply_settings(
        &m,
        &t,
        &[Setting::parse("dropout_masks=gpu").unwrap()],
    )
    .expect_err("no such generator");
    assert!(err.to_string().contains("dropout_masks"), "{err}");
}
