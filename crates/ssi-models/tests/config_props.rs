//! Hostile settings: whatever values a user sets, `with_overrides` + `validate` either refuse them
//! with a message naming the setting, or the model builds and scores without a panic.

use burn::tensor::Device;
use proptest::prelude::*;
use ssi_models::common::Batch;
use ssi_models::{ModelConfig, ModelKind, SequentialModel};

fn value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        prop::sample::select(vec![0i64, 1, 2, 3, 4, 7, 8, 16, -1, 100_000]).prop_map(|v| v.into()),
        prop::sample::select(vec![-1.0f64, 0.0, 1e-9, 0.3, 0.99, 1.0, 1.5, 1e300])
            .prop_map(|v| v.into()),
        any::<bool>().prop_map(|v| v.into()),
        Just(serde_json::Value::Null),
        Just(serde_json::json!("x")),
        Just(serde_json::json!([2, 0])),
    ]
}

/// 300 cases unless `PROPTEST_CASES` asks for a longer sweep.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 300;
    }
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn settings_are_refused_or_usable(
        kind in prop::sample::select(ModelKind::ALL.to_vec()),
        sets in prop::collection::vec((0usize..64, value()), 0..5),
    ) {
        let base = ModelConfig::new(kind, 12, 4);
        let mut keys: Vec<String> = base.to_json().as_object().unwrap().keys()
            .filter(|k| !matches!(k.as_str(), "model" | "n_items" | "n_users"))
            .cloned().collect();
        keys.sort();
        let overrides: Vec<(String, serde_json::Value)> =
            sets.into_iter().map(|(i, v)| (keys[i % keys.len()].clone(), v)).collect();
        let cfg = match base.with_overrides(&overrides) {
            Ok(c) => c,
            Err(e) => {
                prop_assert!(e.to_string().contains("setting"), "{e}");
                return Ok(());
            }
        };
        if let Err(e) = cfg.validate() {
            prop_assert!(overrides.iter().any(|(k, _)| e.to_string().contains(k.as_str())), "{e} names a setting");
            return Ok(());
        }
        // Valid: small enough to build here (the sizes above stay tiny) and it must score.
        let model = cfg.init(&Device::flex());
        let h: [&[u32]; 2] = [&[1, 2, 3], &[4]];
        let scores = model.score_all(Batch { items: &h, users: &[Some(0), None] });
        prop_assert_eq!(scores.dims()[0], 2);
    }
}

/// Found by the property above: GREC with hidden 1 built a projector without units, and burn's
/// initialiser panicked on its first forward pass. Refused, naming the setting; hidden 2 scores.
#[test]
fn grec_needs_a_hidden_size_of_two() {
    let base = ModelConfig::new(ModelKind::Grec, 12, 4);
    let one = base.with_overrides(&[("hidden".into(), 1.into())]).unwrap();
    let err = one.validate().unwrap_err().to_string();
    assert!(err.contains("hidden") && err.contains("2..="), "{err}");
    let two = base.with_overrides(&[("hidden".into(), 2.into())]).unwrap();
    two.validate().unwrap();
    let h: [&[u32]; 1] = [&[1, 2, 3]];
    let scores = two.init(&Device::flex()).score_all(Batch {
        items: &h,
        users: &[None],
    });
    assert_eq!(scores.dims(), [1, 12]);
}

/// A loss weight that is finite as f64 but not as the f32 loss it scales (a hostile review's
/// 1e300 made the first step's loss infinite): refused, naming the setting.
#[test]
fn loss_weights_stay_finite_in_f32() {
    for (kind, key) in [
        (ModelKind::Bert4rec, "consistency_weight"),
        (ModelKind::S3rec, "mip_weight"),
        (ModelKind::S3rec, "sp_weight"),
    ] {
        let base = ModelConfig::new(kind, 12, 4);
        let refused = base
            .with_overrides(&[(key.into(), 1e300.into())])
            .and_then(|c| c.validate().map(|_| c));
        let err = refused.unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
        let fine = base.with_overrides(&[(key.into(), 1e6.into())]).unwrap();
        fine.validate().unwrap();
    }
}

/// `config.json` and bundle headers are read with `ModelConfig::from_json`: a setting of the
/// wrong type is named (serde alone gives a column inside the tagged enum).
#[test]
fn a_setting_of_the_wrong_type_is_named() {
    for kind in ModelKind::ALL {
        let base = ModelConfig::new(kind, 12, 4).to_json();
        for (key, v) in base.as_object().unwrap() {
            if !v.is_number() {
                continue;
            }
            let mut bad = base.clone();
            bad[key.as_str()] = serde_json::json!("x");
            let e = ModelConfig::from_json(&bad).unwrap_err();
            assert!(
                e.contains(&format!("the setting {key:?} = \"x\"")),
                "{kind:?}: {e}"
            );
        }
        assert!(ModelConfig::from_json(&base).is_ok());
    }
}
