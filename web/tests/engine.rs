//! The page's model work, natively: a bundle loads, predicts like the CLI's model, validates,
//! fine-tunes (loss goes down) and round-trips as a bundle. The same checks run in headless
//! Chromium in tests/browser.rs.

use burn::tensor::Device;
use ssi_bundle::{Bundle, Header, Provenance};
use ssi_data::synth::{SynthConfig, generate};
use ssi_models::common::Batch;
use ssi_models::{ModelConfig, ModelKind, SequentialModel};
use ssi_web::engine::{Engine, FineTuneConfig};

fn bundle(kind: ModelKind) -> (Vec<u8>, ssi_data::Dataset) {
    let ds = generate(&SynthConfig {
        users: 120,
        categories: 3,
        products_per_category: 4,
        ..Default::default()
    })
    .unwrap();
    let cfg = ModelConfig::new(kind, ds.n_items as usize, ds.n_users())
        .with_overrides(&[("hidden".into(), 16.into())])
        .unwrap();
    let d = Device::flex();
    d.seed(3);
    let model = cfg.init(&d);
    let header = Header {
        name: "test".into(),
        model: cfg,
        provenance: Provenance {
            dataset: ds.name.clone(),
            n_users: ds.n_users(),
            command: None,
            metrics: serde_json::Value::Null,
            created: "2026-11-27".into(),
            fine_tuned: None,
            dataset_sha256: None,
        },
        catalogue: ds.catalogue.clone().unwrap(),
        sequences: ds.sequences.clone(),
        weights_len: 0,
        weights_sha256: None,
    };
    (Bundle::to_bytes(header, &model).unwrap(), ds)
}

#[test]
fn predictions_match_the_native_model() {
    let (bytes, _) = bundle(ModelKind::Sasrec);
    let engine = Engine::load(&bytes, &Device::flex()).unwrap();
    let native = Bundle::from_bytes(&bytes, &Device::flex()).unwrap().model;
    let history = [3u32, 7, 1];
    let top = engine.predict(&history, 5);
    assert_eq!(top.len(), 5);
    let items: [&[u32]; 1] = [&history];
    let scores = native
        .score_all(Batch {
            items: &items,
            users: &[None],
        })
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| !history.contains(&(i as u32 + 1)))
        .collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let want: Vec<u32> = order[..5].iter().map(|&i| i as u32 + 1).collect();
    let got: Vec<u32> = top.iter().map(|p| p.item).collect();
    assert_eq!(got, want);
    assert!(top.windows(2).all(|w| w[0].probability >= w[1].probability));
    assert!(
        top.iter()
            .all(|p| p.probability > 0.0 && p.probability < 1.0)
    );
    assert!(top.iter().all(|p| !history.contains(&p.item)));
}

#[test]
fn search_finds_ids_and_names() {
    let (bytes, ds) = bundle(ModelKind::Gru4rec);
    let engine = Engine::load(&bytes, &Device::flex()).unwrap();
    let name = ds.catalogue.as_ref().unwrap().names[5].clone();
    let hits = engine.search("5", 10);
    assert_eq!(hits[0].0, 5);
    let word = name.split_whitespace().next().unwrap().to_uppercase();
    let hits = engine.search(&word, 50);
    assert!(hits.iter().any(|(id, _)| *id == 5), "{word}: {hits:?}");
    assert!(engine.search("   ", 10).is_empty());
    assert!(engine.search("no such thing at all", 10).is_empty());
    assert!(!engine.is_item(0) && !engine.is_item(ds.n_items + 1));
}

#[test]
fn examples_are_the_ends_of_the_bundles_sequences() {
    let (bytes, ds) = bundle(ModelKind::Gru4rec);
    let engine = Engine::load(&bytes, &Device::flex()).unwrap();
    let first = engine.example(0, 5).unwrap();
    let s = &ds.sequences[0];
    assert_eq!(first, s[s.len().saturating_sub(5)..].to_vec());
    assert_ne!(engine.example(1, 5).unwrap(), first);
    assert_eq!(engine.example(ds.sequences.len(), 5).unwrap(), first);
    assert!(first.iter().all(|&i| engine.is_item(i)));
}

#[test]
fn fine_tuning_lowers_the_loss_and_round_trips() {
    for kind in [ModelKind::Hgn, ModelKind::Gru4rec] {
        let (bytes, _) = bundle(kind);
        let mut engine = Engine::load(&bytes, &Device::flex()).unwrap();
        let before = engine.validate().unwrap();
        assert!(before.users > 0);
        let n = engine
            .start_fine_tune(&FineTuneConfig {
                lr: 5e-3,
                extra: vec![vec![1, 2, 3, 4]],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(n, 121);
        let steps = engine.steps_per_epoch();
        let mut losses = Vec::new();
        for _ in 0..steps * 6 {
            losses.push(engine.fine_tune_step().unwrap().1);
        }
        let first: f32 = losses[..steps].iter().sum::<f32>() / steps as f32;
        let last: f32 = losses[losses.len() - steps..].iter().sum::<f32>() / steps as f32;
        assert!(last < first, "{kind:?}: {first} -> {last}");
        let after = engine.validate().unwrap();
        assert!(
            after.ndcg10 > before.ndcg10,
            "{kind:?}: {before:?} -> {after:?}"
        );
        // The fine-tuned bundle loads and predicts what the engine predicts.
        let out = engine
            .to_bundle(Some("6 epochs in the browser".into()))
            .unwrap();
        let again = Engine::load(&out, &Device::flex()).unwrap();
        assert_eq!(
            again.header.provenance.fine_tuned.as_deref(),
            Some("6 epochs in the browser")
        );
        assert_eq!(again.predict(&[1, 2], 10), engine.predict(&[1, 2], 10));
    }
}

/// A non-finite loss means the model it was computed on is damaged (by the step before): the
/// engine goes back to the last model whose loss was finite, and counts its steps.
#[test]
fn a_non_finite_loss_puts_back_the_last_finite_model() {
    let (bytes, _) = bundle(ModelKind::Gru4rec);
    // Test figures shipped with the bundle, of its weights.
    let b = Bundle::from_bytes(&bytes, &Device::flex()).unwrap();
    let mut header = b.header.clone();
    header.provenance.metrics = serde_json::json!({"ndcg@10": 0.5});
    let bytes = Bundle::to_bytes(header, &b.model).unwrap();
    let mut engine = Engine::load(&bytes, &Device::flex()).unwrap();
    assert!(!engine.header.provenance.metrics.is_null());
    let history = [1u32, 2, 3];
    let loaded = engine.predict(&history, 5);
    engine.start_fine_tune(&FineTuneConfig::default()).unwrap();
    // The first loss is not finite: the loaded model stays.
    engine.launch_step().unwrap();
    assert!(engine.commit_step(f32::NAN).is_err());
    assert_eq!(engine.predict(&history, 5), loaded);
    assert_eq!(engine.steps_done(), 0);
    assert!(
        engine.launch_step().is_err(),
        "a failed run must be started again"
    );
    // Two finite losses, then a non-finite one: back to the model after one step, whose loss
    // was the last finite one.
    engine.start_fine_tune(&FineTuneConfig::default()).unwrap();
    engine.launch_step().unwrap();
    engine.commit_step(1.0).unwrap();
    let one_step = engine.predict(&history, 5);
    assert_ne!(one_step, loaded);
    engine.launch_step().unwrap();
    engine.commit_step(1.0).unwrap();
    assert_eq!(engine.steps_done(), 2);
    engine.launch_step().unwrap();
    let err = engine.commit_step(f32::INFINITY).unwrap_err();
    assert!(err.to_string().contains("went back"), "{err}");
    assert_eq!(engine.predict(&history, 5), one_step);
    assert_eq!(engine.steps_done(), 1);
    assert!(!engine.is_tuning());
    // A run's last step has no loss of its own: the check at its end takes it back when the
    // model it made is not finite.
    engine.start_fine_tune(&FineTuneConfig::default()).unwrap();
    engine.launch_step().unwrap();
    engine.commit_step(1.0).unwrap();
    engine.launch_check().unwrap();
    engine.commit_check(1.0).unwrap();
    let checked = engine.predict(&history, 5);
    engine.launch_step().unwrap();
    engine.commit_step(1.0).unwrap();
    assert_eq!(engine.steps_done(), 2);
    engine.launch_check().unwrap();
    assert!(engine.commit_check(f32::NAN).is_err());
    assert_eq!(engine.predict(&history, 5), checked);
    assert_eq!(engine.steps_done(), 1);
    assert!(!engine.is_tuning());
    // The download says so after the bundle's own note, without the figures of the weights
    // before.
    let out = engine.to_bundle(Some("1 step".into())).unwrap();
    let again = Engine::load(&out, &Device::flex()).unwrap();
    assert_eq!(
        again.header.provenance.fine_tuned.as_deref(),
        Some("1 step")
    );
    assert!(again.header.provenance.metrics.is_null());
    let twice = again.to_bundle(Some("2 steps".into())).unwrap();
    let twice = Engine::load(&twice, &Device::flex()).unwrap();
    assert_eq!(
        twice.header.provenance.fine_tuned.as_deref(),
        Some("1 step; then 2 steps")
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (bytes, _) = bundle(ModelKind::Gru4rec);
    let err = Engine::load(&bytes[..bytes.len() / 2], &Device::flex())
        .err()
        .unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");
    let err = Engine::load(b"<html>", &Device::flex()).err().unwrap();
    assert!(err.to_string().contains("not an SSI bundle"), "{err}");
    let mut engine = Engine::load(&bytes, &Device::flex()).unwrap();
    assert!(engine.fine_tune_step().is_err());
    let err = engine
        .start_fine_tune(&FineTuneConfig {
            extra: vec![vec![1, 99_999]],
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("99999"), "{err}");
    // Unknown items in a history are ignored by the model, not a crash.
    assert_eq!(engine.predict(&[0, 99_999], 3).len(), 3);
}

/// The bundle the page ships (scripts/default-bundle.sh) loads, predicts what `ssi predict`
/// wrote, and evaluates on a freshly generated synthetic shop exactly as its run did.
#[test]
fn the_shipped_bundle_matches_a_fresh_native_evaluation() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../public/models/shop-ssi-hgn");
    let bytes = std::fs::read(dir.join("bundle.ssib")).unwrap();
    let engine = Engine::load(&bytes, &Device::flex()).unwrap();
    let check: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("check.json")).unwrap()).unwrap();
    let history: Vec<u32> = check["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let got = engine.predict(&history, 10);
    for (g, w) in got.iter().zip(check["predictions"].as_array().unwrap()) {
        assert_eq!(g.item as u64, w["item"].as_u64().unwrap());
        assert!((g.probability as f64 - w["probability"].as_f64().unwrap()).abs() < 1e-5);
    }
    let ds = generate(&SynthConfig::default()).unwrap();
    assert_eq!(engine.header.provenance.dataset, ds.name);
    let model = Bundle::from_bytes(&bytes, &Device::flex()).unwrap().model;
    let rec = ssi_train::ModelRecommender::new(&model);
    let ev = ssi_data::Evaluator::new(
        &ds,
        ssi_data::EvalConfig {
            seed: 42,
            n_negatives: 99,
            split: ssi_data::Split::Test,
            full: true,
            max_users: None,
            anonymous: false,
            history: None,
        },
    );
    let report = ev.evaluate(&ds, &rec, &mut |_, _| {}).unwrap().to_json();
    let shipped = &engine.header.provenance.metrics;
    for key in ["ndcg@10", "recall@10", "full_ndcg@10"] {
        let (a, b) = (
            report[key].as_f64().unwrap(),
            shipped[key].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{key}: fresh {a}, shipped {b}");
    }
}
