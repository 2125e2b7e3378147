//! Resume equivalence. Alone in its test binary (its own process): burn's device RNG is global,
//! and tests running in parallel threads would draw from it between the two runs.

mod common;

use burn::tensor::Device;
use common::{configs, dataset, trainer};
use ssi_models::{ModelKind, SequentialModel};
use ssi_train::RunDir;
use ssi_train::trainer::Silent;

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

        // A run that finished at 1 epoch, given a 2-epoch limit, continues to the same weights.
        let short = tempfile::tempdir().unwrap();
        let s = trainer(&ds, short.path(), None)
            .run(&m, &t.clone().with_epochs(1), false, &mut Silent)
            .unwrap();
        assert_eq!((s.epoch, s.finished), (1, true));
        let dir = RunDir::new(short.path());
        assert!(
            dir.set_limits(&t.clone().with_epochs(2).with_time_budget_minutes(None))
                .unwrap()
        );
        assert_eq!(dir.config().unwrap().train.epochs, 2);
        let s = trainer(&ds, short.path(), None)
            .run(&m, &t.clone().with_epochs(1), true, &mut Silent)
            .unwrap();
        assert_eq!((s.epoch, s.finished), (2, true));
        let c = weights(short.path());
        let diff = a
            .iter()
            .zip(&c)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-6, "{kind:?}: extended weights differ by {diff}");
        // Limits that are already spent leave it finished.
        assert!(
            !dir.set_limits(&t.clone().with_epochs(3).with_time_budget_minutes(Some(0.0)))
                .unwrap()
        );
        assert!(dir.state().unwrap().finished);
    }
}
