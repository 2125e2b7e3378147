//! The training engine: NaN guard and checkpoint errors (resume equivalence is in resume.rs).

mod common;

use burn::tensor::Device;
use common::{configs, dataset, trainer};
use ssi_models::ModelKind;
use ssi_train::RunDir;
use ssi_train::trainer::{Silent, TrainError};

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let ds = dataset();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    let dir = tempfile::tempdir().unwrap();
    trainer(&ds, dir.path(), Some(1))
        .run(&m, &t, false, &mut Silent)
        .unwrap();
    // Make the continuation diverge: weights of 1e30 overflow the first step's loss. (config.json
    // is range-checked when read, so an absurd learning rate cannot be planted there.)
    let run = RunDir::new(dir.path());
    let file = run.epoch_file(1, "model");
    let model =
        ssi_train::checkpoint::model_from_bytes(&m, std::fs::read(&file).unwrap(), &Device::flex())
            .unwrap();
    let huge = ssi_train::checkpoint::model_bytes(&ssi_models::common::scaled(model, 1e30, false))
        .unwrap();
    std::fs::write(&file, &huge).unwrap();
    let mut state: serde_json::Value = run.read_json("state.json").unwrap();
    state["checksums"]["epoch-0001.model.bpk"] = ssi_data::dataset::sha256_hex(&huge).into();
    run.write_json("state.json", &state).unwrap();
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

/// A finished GRU4Rec run of one epoch of one step, in a fresh folder.
fn one_step_run() -> tempfile::TempDir {
    let ds = dataset();
    let (m, t) = configs(ModelKind::Gru4rec, &ds);
    let dir = tempfile::tempdir().unwrap();
    trainer(&ds, dir.path(), Some(1))
        .run(&m, &t.with_max_steps_per_epoch(Some(1)), false, &mut Silent)
        .unwrap();
    dir
}

#[test]
fn corrupt_checkpoint_is_an_error_not_a_panic() {
    let dir = one_step_run();
    std::fs::write(dir.path().join("best.bpk"), b"not a model").unwrap();
    let err = RunDir::new(dir.path())
        .load_best(&Device::flex())
        .expect_err("corrupt file must fail");
    assert!(err.to_string().contains("best.bpk"), "{err}");
}

/// Reading a run never changes its folder: `ssi eval` or `ssi export` on a run that is training
/// must not move the trainer's pending best model (the trainer settles it, and its next rename
/// would fail). The committed pending file is read where it is.
#[test]
fn reading_a_run_leaves_its_pending_best_model_in_place() {
    let dir = one_step_run();
    let run = RunDir::new(dir.path());
    let best = run.state().unwrap().best_epoch.unwrap();
    // The instant between the trainer's commit of state.json and its rename of the pending file.
    let pending = dir.path().join(format!("best-{best:04}.pending.bpk"));
    std::fs::rename(dir.path().join("best.bpk"), &pending).unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    assert!(run.load_best(&Device::flex()).is_ok());
    assert_eq!(listing(), before, "a reader renamed or removed a file");
    // A damaged pending file is refused like a damaged best.bpk.
    let mut bytes = std::fs::read(&pending).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x01;
    std::fs::write(&pending, bytes).unwrap();
    let err = run
        .load_best(&Device::flex())
        .expect_err("damaged pending file");
    assert!(err.to_string().contains("SHA-256"), "{err}");
}

/// A flipped bit in any committed weight file is caught by its checksum, on load and on resume.
#[test]
fn bit_flipped_weights_are_refused_by_checksum() {
    let ds = dataset();
    let (m, t) = configs(ModelKind::Gru4rec, &ds);
    let dir = one_step_run();
    let run = RunDir::new(dir.path());
    assert_eq!(
        run.state().unwrap().checksums.len(),
        8,
        "model, optimiser, best, best by full and by both, and the model, training and dataset settings"
    );
    let flip = |name: &str| {
        let path = dir.path().join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    };
    flip("epoch-0001.model.bpk");
    let err = trainer(&ds, dir.path(), None)
        .run(&m, &t, true, &mut Silent)
        .expect_err("resume from a damaged epoch file");
    assert!(
        err.to_string().contains("epoch-0001.model.bpk") && err.to_string().contains("SHA-256"),
        "{err}"
    );
    flip("best.bpk");
    let err = run
        .load_best(&Device::flex())
        .expect_err("damaged best.bpk");
    assert!(err.to_string().contains("SHA-256"), "{err}");
    flip("best-by-full.bpk");
    let err = run
        .load_best_by(ssi_train::config::SelectBy::Full, &Device::flex())
        .expect_err("damaged best-by-full.bpk");
    assert!(err.to_string().contains("SHA-256"), "{err}");
}

/// A deleted `best.bpk` is restored from the best epoch's own file while it is kept; when no
/// file holds the best weights, resuming is refused before anything is rewritten.
#[test]
fn a_deleted_best_model_is_restored_or_refused() {
    let dir = one_step_run();
    let run = RunDir::new(dir.path());
    let best = dir.path().join("best.bpk");
    let bytes = std::fs::read(&best).unwrap();
    std::fs::remove_file(&best).unwrap();
    let err = run.load_best(&Device::flex()).expect_err("no best.bpk");
    assert!(err.to_string().contains("the file is gone"), "{err}");
    run.check_files().unwrap();
    assert_eq!(std::fs::read(&best).unwrap(), bytes);
    // Best weights that no other file holds (another epoch's, say): refused, nothing written.
    let mut state: serde_json::Value = run.read_json("state.json").unwrap();
    state["checksums"]["best.bpk"] = ssi_data::dataset::sha256_hex(b"other weights").into();
    run.write_json("state.json", &state).unwrap();
    std::fs::remove_file(&best).unwrap();
    let err = run.check_files().expect_err("best weights lost");
    assert!(err.to_string().contains("best.bpk is missing"), "{err}");
    assert!(!best.exists());
    assert!(run.epoch_file(1, "model").exists());
}

/// An edited training setting in `config.json` is refused when the run is read (it would
/// silently change a resumed run); the stopping limits may change.
#[test]
fn edited_training_settings_are_refused() {
    let dir = one_step_run();
    let run = RunDir::new(dir.path());
    let original: serde_json::Value = run.read_json("config.json").unwrap();
    let mut edited = original.clone();
    edited["train"]["lr"] = 0.5.into();
    run.write_json("config.json", &edited).unwrap();
    let err = run.config().expect_err("edited lr");
    assert!(
        err.to_string().contains("its training settings differ"),
        "{err}"
    );
    run.write_json("config.json", &original).unwrap();
    let state: serde_json::Value = run.read_json("state.json").unwrap();
    let mut ahead = state.clone();
    ahead["best_epoch"] = 5.into();
    run.write_json("state.json", &ahead).unwrap();
    let err = run.state().expect_err("best epoch past the run");
    assert!(err.to_string().contains("best epoch 5"), "{err}");
    let mut ahead = state.clone();
    ahead["best_step"] = 1000.into();
    run.write_json("state.json", &ahead).unwrap();
    let err = run.state().expect_err("best step past the run");
    assert!(err.to_string().contains("(step 1000)"), "{err}");
    // A count near the integer's end would wrap once training went on.
    let mut huge = state.clone();
    huge["steps"] = u64::MAX.into();
    run.write_json("state.json", &huge).unwrap();
    let err = run.state().expect_err("a step count no run reaches");
    assert!(
        err.to_string().contains("18446744073709551615 steps"),
        "{err}"
    );
    run.write_json("state.json", &state).unwrap();
    let mut limits = original.clone();
    limits["train"]["epochs"] = 7.into();
    limits["train"]["time_budget_minutes"] = 3.0.into();
    run.write_json("config.json", &limits).unwrap();
    assert_eq!(run.config().unwrap().train.epochs, 7);
}

/// A folder that holds a trained run's files but lost its `state.json` is neither resumed nor
/// trained over: its best weights stay as they were.
#[test]
fn a_run_that_lost_its_state_is_neither_resumed_nor_trained_over() {
    let dir = one_step_run();
    let best = std::fs::read(dir.path().join("best.bpk")).unwrap();
    std::fs::remove_file(dir.path().join("state.json")).unwrap();
    let ds = dataset();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    for resume in [false, true] {
        let err = trainer(&ds, dir.path(), Some(1))
            .run(&m, &t, resume, &mut Silent)
            .expect_err("a run without its state.json");
        assert!(
            err.to_string().contains("best.bpk") && err.to_string().contains("no state.json"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(dir.path().join("best.bpk")).unwrap(), best);
}

/// A `state.json` that is a folder, or one without a `config.json`, is named as what it is, not
/// taken for a run that `--resume` could continue.
#[test]
fn a_state_json_without_a_run_is_named() {
    let ds = dataset();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state.json")).unwrap();
    for resume in [false, true] {
        let err = trainer(&ds, dir.path(), Some(1))
            .run(&m, &t, resume, &mut Silent)
            .expect_err("a folder named state.json");
        assert!(err.to_string().contains("is not a file"), "{err}");
    }
    let dir = one_step_run();
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    for resume in [false, true] {
        let err = trainer(&ds, dir.path(), Some(1))
            .run(&m, &t, resume, &mut Silent)
            .expect_err("a run without its config.json");
        assert!(err.to_string().contains("no config.json"), "{err}");
    }
    // A damaged config.json: both ways say the run cannot be continued, naming the file,
    // instead of advising --resume.
    let dir = one_step_run();
    let path = dir.path().join("config.json");
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    for resume in [false, true] {
        let err = trainer(&ds, dir.path(), Some(1))
            .run(&m, &t, resume, &mut Silent)
            .expect_err("a run whose config.json is cut")
            .to_string();
        assert!(
            err.contains("cannot be continued") && err.contains("config.json"),
            "{err}"
        );
    }
}

/// `ssi report` reads a run as every command does: an edited `config.json` is skipped with the
/// reason, not reported as the run's figures.
#[test]
fn the_report_skips_a_run_whose_settings_were_edited() {
    let dir = one_step_run();
    let run = RunDir::new(dir.path());
    std::fs::write(
        dir.path().join("test.json"),
        r#"{"recall@10": 0.5, "ndcg@10": 0.3}"#,
    )
    .unwrap();
    let mut state: serde_json::Value = run.read_json("state.json").unwrap();
    state["finished"] = true.into();
    run.write_json("state.json", &state).unwrap();
    let roots = [dir.path().to_path_buf()];
    let (rows, skipped) = ssi_train::report::collect(&roots);
    assert_eq!((rows.len(), skipped.len()), (1, 0), "{skipped:?}");
    let mut edited: serde_json::Value = run.read_json("config.json").unwrap();
    edited["train"]["lr"] = 0.5.into();
    run.write_json("config.json", &edited).unwrap();
    let (rows, skipped) = ssi_train::report::collect(&roots);
    assert!(rows.is_empty());
    assert!(
        skipped.len() == 1 && skipped[0].contains("training settings differ"),
        "{skipped:?}"
    );
}

/// `weight_decay` reaches the optimiser: the same run with a strong L2 penalty ends with a
/// smaller item table (same seed, data and steps otherwise).
#[test]
fn weight_decay_shrinks_the_weights() {
    use ssi_models::SequentialModel;
    let ds = dataset();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    let t = t.with_epochs(1).with_max_steps_per_epoch(Some(3));
    let norm = |decay: Option<f64>| {
        let dir = tempfile::tempdir().unwrap();
        trainer(&ds, dir.path(), None)
            .run(&m, &t.clone().with_weight_decay(decay), false, &mut Silent)
            .unwrap();
        let (_, model) = RunDir::new(dir.path()).load_best(&Device::flex()).unwrap();
        model
            .item_table()
            .powf_scalar(2.0)
            .sum()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0]
    };
    let (plain, decayed) = (norm(None), norm(Some(0.5)));
    assert!(decayed < plain * 0.99, "{decayed} vs {plain}");
}

/// Run folders written by earlier versions keep loading: settings added since (here
/// `weight_decay`, GREC's `decoder_input`, SASRec's consistency settings) take their defaults
/// when absent.
#[test]
fn configs_written_before_newer_settings_still_load() {
    for name in [
        "config-grec-2026-11-30.json",
        "config-ssi-sasrec-2026-11-30.json",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("weight_decay"), "{name}: not an old config");
        let cfg: ssi_train::checkpoint::RunConfig =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} no longer loads: {e}"));
        assert_eq!(cfg.train.weight_decay, None);
        // And the model they describe still builds.
        cfg.model.validate().unwrap();
    }
}

/// Users of three items leave one training item each (the last two are held out): no training
/// pair at all is an error before anything is written, not a run of zero steps reported as
/// trained.
#[test]
fn a_dataset_without_training_pairs_is_refused() {
    let text: String = (1..=20)
        .map(|u| format!("{u} {} {} {}\n", u % 7 + 1, u % 5 + 2, u % 3 + 3))
        .collect();
    let (ds, _) = ssi_data::Dataset::parse(&text, std::path::Path::new("min3.txt")).unwrap();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let err = trainer(&ds, &out, None)
        .run(&m, &t, false, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing to train on"), "{err}");
    assert!(err.contains("at least 4 items"), "{err}");
    assert!(!out.exists(), "a run folder was written");
}

/// `select_by` decides which epoch is kept: the best epoch of a run is the one whose logged
/// validation is best by the run's criterion (sampled NDCG@10, full-ranking NDCG@10, or their
/// geometric mean), and the state says which criterion its best value is.
#[test]
fn the_best_epoch_is_the_best_by_the_runs_criterion() {
    use ssi_train::config::SelectBy;
    let ds = dataset();
    let (m, t) = configs(ModelKind::Sasrec, &ds);
    let t = t
        .with_epochs(4)
        .with_patience(100)
        .with_max_steps_per_epoch(Some(2));
    for by in [SelectBy::Sampled, SelectBy::Full, SelectBy::Both] {
        let dir = tempfile::tempdir().unwrap();
        let state = trainer(&ds, dir.path(), None)
            .run(&m, &t.clone().with_select_by(Some(by)), false, &mut Silent)
            .unwrap();
        let log = std::fs::read_to_string(dir.path().join("log.jsonl")).unwrap();
        let scores: Vec<(usize, f64)> = log
            .lines()
            .map(|l| {
                let e: ssi_train::trainer::EpochLog = serde_json::from_str(l).unwrap();
                let s = by
                    .score(e.valid_ndcg10.unwrap(), e.valid_full_ndcg10)
                    .unwrap();
                (e.epoch, s)
            })
            .collect();
        assert_eq!(scores.len(), 4, "{log}");
        // The first epoch reaching the maximum: a later equal one is not better. (log.jsonl's
        // decimal figures round-trip to within an ulp or so.)
        let max = scores.iter().map(|s| s.1).fold(f64::MIN, f64::max);
        let want = scores.iter().find(|s| s.1 >= max - 1e-12).unwrap().0;
        assert_eq!(state.best_epoch, Some(want), "{by:?}: {scores:?}");
        assert!((state.best_valid_ndcg10 - max).abs() < 1e-12, "{by:?}");
        assert_eq!(state.select_by, Some(by));
    }
}

/// `select_by` left unset (`null`, as in runs from before the setting) is `sampled`: resuming
/// such a run with `--set select_by=sampled` is no change, with `full` a refused one.
#[test]
fn an_unset_select_by_is_sampled_on_resume() {
    common::unset_setting_resumes_as(ModelKind::Gru4rec, "select_by", "sampled", "full");
}

/// The weights kept for another selection rule follow the same commit as `best.bpk`: a pending
/// file of the committed epoch is read where it is and settled into `best-by-RULE.bpk`; one of
/// an epoch that never committed is removed, never taken for the rule's best.
#[test]
fn weights_kept_by_another_rule_settle_like_the_best_ones() {
    use ssi_train::config::SelectBy;
    let dir = one_step_run();
    let run = RunDir::new(dir.path());
    let kept = dir.path().join("best-by-full.bpk");
    let pending = dir.path().join("best-by-full-0001.pending.bpk");
    std::fs::rename(&kept, &pending).unwrap();
    let before = std::fs::read(&pending).unwrap();
    let (_, _, epoch) = run.load_best_by(SelectBy::Full, &Device::flex()).unwrap();
    assert_eq!(epoch, 1);
    assert!(pending.exists() && !kept.exists(), "a reader moved a file");
    // A crash after writing epoch 2's file and before its commit.
    let stray = dir.path().join("best-by-full-0002.pending.bpk");
    std::fs::write(&stray, b"not committed").unwrap();
    run.check_files().unwrap();
    assert!(!stray.exists() && !pending.exists());
    assert_eq!(std::fs::read(&kept).unwrap(), before);
    assert!(run.load_best_by(SelectBy::Full, &Device::flex()).is_ok());
    // A deleted file is restored from one with the same bytes (here best.bpk: one epoch).
    std::fs::remove_file(&kept).unwrap();
    run.check_files().unwrap();
    assert_eq!(std::fs::read(&kept).unwrap(), before);
    // The run's own rule is best.bpk.
    let (_, _, own) = run
        .load_best_by(SelectBy::Sampled, &Device::flex())
        .unwrap();
    assert_eq!(Some(own), run.state().unwrap().best_epoch);
}
