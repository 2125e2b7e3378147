//! In headless Chromium (`cargo test -p ssi-web --target wasm32-unknown-unknown`, runner
//! wasm-bindgen-test-runner): the shipped bundle loads, predicts what the native CLI predicts
//! (public/models/shop-ssi-hgn/check.json, written by `ssi predict`) on the CPU path and on the
//! WebGPU path, fine-tunes, and a corrupt bundle is an error, not a panic.
#![cfg(target_arch = "wasm32")]

use burn::tensor::Device;
use ssi_web::engine::{Engine, FineTuneConfig, Prediction};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const BUNDLE: &[u8] = include_bytes!("../../public/models/shop-ssi-hgn/bundle.ssib");
const CHECK: &str = include_str!("../../public/models/shop-ssi-hgn/check.json");
/// Probabilities may differ by float summation order between backends.
const TOLERANCE: f32 = 1e-4;

fn expected() -> (Vec<u32>, Vec<(u32, f32)>) {
    let v: serde_json::Value = serde_json::from_str(CHECK).unwrap();
    let history = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let preds = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["item"].as_u64().unwrap() as u32,
                p["probability"].as_f64().unwrap() as f32,
            )
        })
        .collect();
    (history, preds)
}

fn assert_matches(got: &[Prediction], want: &[(u32, f32)]) {
    assert_eq!(got.len(), want.len());
    for (g, (item, p)) in got.iter().zip(want) {
        assert_eq!(g.item, *item, "{got:?}");
        assert!(
            (g.probability - p).abs() < TOLERANCE,
            "{} vs {p}",
            g.probability
        );
    }
}

#[wasm_bindgen_test]
async fn cpu_predictions_match_the_native_cli() {
    let (history, want) = expected();
    let engine = Engine::load(BUNDLE, &Device::flex()).unwrap();
    assert_matches(&engine.predict(&history, want.len()), &want);
    assert_matches(&engine.predict_async(&history, want.len()).await, &want);
}

#[cfg(feature = "webgpu")]
thread_local! {
    static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

/// The page's one WebGPU device: burn refuses a second `init_async` in the same page.
#[cfg(feature = "webgpu")]
async fn webgpu() -> Device {
    if let Some(d) = WEBGPU.with(|w| w.borrow().clone()) {
        return d;
    }
    let d = Device::wgpu_options().init_async().await.unwrap();
    WEBGPU.with(|w| *w.borrow_mut() = Some(d.clone()));
    d
}

#[cfg(feature = "webgpu")]
#[wasm_bindgen_test]
async fn webgpu_predictions_match_the_native_cli() {
    let (history, want) = expected();
    let device = webgpu().await;
    let engine = Engine::load(BUNDLE, &device).unwrap();
    let got = engine.predict_async(&history, want.len()).await;
    // Only the probabilities of the top items are compared: GPU float order differs.
    for (g, (item, p)) in got.iter().zip(&want) {
        assert_eq!(g.item, *item);
        assert!((g.probability - p).abs() < 1e-3, "{} vs {p}", g.probability);
    }
}

#[wasm_bindgen_test]
fn a_fine_tune_epoch_lowers_the_loss() {
    let mut engine = Engine::load(BUNDLE, &Device::flex()).unwrap();
    engine
        .start_fine_tune(&FineTuneConfig {
            lr: 5e-3,
            batch_size: 256,
            ..Default::default()
        })
        .unwrap();
    let steps = engine.steps_per_epoch();
    let mut losses = Vec::new();
    for _ in 0..steps * 2 {
        losses.push(engine.fine_tune_step().unwrap().1);
    }
    let first: f32 = losses[..steps].iter().sum();
    let second: f32 = losses[steps..].iter().sum();
    assert!(second < first, "{losses:?}");
}

#[wasm_bindgen_test]
fn a_corrupt_bundle_is_an_error() {
    let err = Engine::load(&BUNDLE[..BUNDLE.len() - 7], &Device::flex())
        .err()
        .unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(Engine::load(b"", &Device::flex()).is_err());
}

/// Fine-tuning on WebGPU the way the page does it (launch a step, read the loss back
/// asynchronously, commit it): the path that once moved the model to the CPU and panicked. The
/// loss stays finite, the model still predicts, and saving says it needs the CPU backend.
#[cfg(feature = "webgpu")]
#[wasm_bindgen_test]
async fn webgpu_fine_tune_steps_run_and_keep_predicting() {
    let (history, want) = expected();
    let device = webgpu().await;
    let mut engine = Engine::load(BUNDLE, &device).unwrap();
    engine
        .start_fine_tune(&FineTuneConfig {
            lr: 1e-3,
            batch_size: 16,
            ..Default::default()
        })
        .unwrap();
    for _ in 0..2 {
        let (_, loss) = engine.launch_step().unwrap();
        let value = loss
            .into_data_async()
            .await
            .unwrap()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()[0];
        assert!(value.is_finite(), "{value}");
        engine.commit_step(value).unwrap();
    }
    assert_eq!(
        engine.predict_async(&history, want.len()).await.len(),
        want.len()
    );
    let err = engine.to_bundle(None).unwrap_err();
    assert!(err.to_string().contains("CPU backend"), "{err}");
}
