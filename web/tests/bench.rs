//! Browser speed report (issue 6, "Speed"), in headless Chromium: for the CPU and the WebGPU
//! backends, bundle load time, top-20 prediction latency for the shipped bundle and for a
//! 12k-item HGN, and fine-tuning sequences/s. It prints the figures (`docs/results/web-speed.md`
//! records them with the command) and asserts only that the work was done: timings are never
//! asserted. Run: `cargo test --release -p ssi-web --features webgpu,fusion --target
//! wasm32-unknown-unknown --test bench -- --nocapture`.
#![cfg(target_arch = "wasm32")]

use burn::tensor::Device;
use ssi_bundle::{Bundle, Header};
use ssi_data::catalogue::Catalogue;
use ssi_models::{ModelConfig, ModelKind};
use ssi_web::engine::{Engine, FineTuneConfig};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const BUNDLE: &[u8] = include_bytes!("../../public/models/shop-ssi-hgn/bundle.ssib");
const HISTORY: [u32; 4] = [1, 2, 3, 17];
const REPEATS: usize = 20;

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

/// A bundle of an untrained HGN over `n_items` items (weights do not change the cost).
fn big_bundle(n_items: usize, device: &Device) -> Vec<u8> {
    let (shipped, _) = Bundle::read_header(BUNDLE).unwrap();
    let cfg = ModelConfig::new(ModelKind::Hgn, n_items, shipped.provenance.n_users);
    let model = cfg.init(device);
    let header = Header {
        name: format!("hgn-{n_items}"),
        model: cfg,
        catalogue: Catalogue::with_items(n_items),
        sequences: Vec::new(),
        weights_len: 0,
        weights_sha256: None,
        ..shipped
    };
    Bundle::to_bytes(header, &model).unwrap()
}

/// Mean milliseconds of a top-20 prediction (after one warm-up).
async fn predict_ms(engine: &Engine) -> f64 {
    assert_eq!(engine.predict_async(&HISTORY, 20).await.len(), 20);
    let t = now();
    for _ in 0..REPEATS {
        assert_eq!(engine.predict_async(&HISTORY, 20).await.len(), 20);
    }
    (now() - t) / REPEATS as f64
}

async fn report(backend: &str, device: Device) {
    let t = now();
    let mut engine = Engine::load(BUNDLE, &device).unwrap();
    let load_ms = now() - t;
    let shipped_ms = predict_ms(&engine).await;
    let big = big_bundle(12_000, &Device::flex());
    let t = now();
    let big_engine = Engine::load(&big, &device).unwrap();
    let big_load_ms = now() - t;
    let big_ms = predict_ms(&big_engine).await;

    let batch = 256;
    engine
        .start_fine_tune(&FineTuneConfig {
            batch_size: batch,
            ..Default::default()
        })
        .unwrap();
    let steps = 4;
    let mut first = None;
    let mut t = now();
    for step in 0..=steps {
        if step == 1 {
            t = now(); // the first step compiles kernels on WebGPU: not timed
        }
        let (_, loss) = engine.launch_step().unwrap();
        let data = loss.into_data_async().await.unwrap();
        let v: f32 = data.convert::<f32>().try_into_vec::<f32>().unwrap()[0];
        engine.commit_step(v).unwrap();
        first.get_or_insert(v);
    }
    let seqs_per_s = (steps * batch) as f64 / ((now() - t) / 1000.0);
    web_sys::console::log_1(
        &format!(
            "SPEED {backend}: load {load_ms:.1} ms, top-20 {shipped_ms:.2} ms ({} items); \
             12k-item HGN: load {big_load_ms:.1} ms, top-20 {big_ms:.2} ms; \
             fine-tune {seqs_per_s:.0} seq/s (batch {batch}, {} parameters)",
            engine.n_items(),
            engine.num_params()
        )
        .into(),
    );
}

#[wasm_bindgen_test]
async fn speed_on_cpu() {
    report("CPU (flex)", Device::flex()).await;
}

#[cfg(feature = "webgpu")]
#[wasm_bindgen_test]
async fn speed_on_webgpu() {
    let device = Device::wgpu_options().init_async().await.unwrap();
    report("WebGPU", device).await;
}
