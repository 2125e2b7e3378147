//! Our SASRec against the PyTorch reference the training recipe is measured against
//! (`bench/quality_ref.py`): from the same weights, on the same batches, without dropout, the same
//! loss, the same gradient of every parameter, the same weights after three Adam steps with
//! ours's default epsilon, and then the same scores at inference. The PyTorch side is `tests/fixtures/sasrec-torch.json`, written in
//! float64 by `bench/grad_check.py`; ours runs in float32 on the CPU backend (the fused
//! cross-entropy and GELU of training), so the tolerances are float32's.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use serde_json::Value;
use ssi_data::rng::{SeedableRng, SsiRng};
use ssi_models::loss::Softmax;
use ssi_models::model::ModelSpec;
use ssi_models::sasrec::{SasRec, SasRecConfig};
use ssi_models::{Batch, SequentialModel, TrainBatch};
use std::collections::BTreeMap;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sasrec-torch.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON list of item sequences.
fn sequences(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| floats(s).into_iter().map(|x| x as u32).collect())
        .collect()
}

/// Path of the parameter being mapped or visited, as `encoder.layers.0.mha.query.weight`.
#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn name(&self) -> String {
        self.0.join(".")
    }
}

/// Replaces every float parameter by the fixture's value of the same name (and shape).
struct Load<'a> {
    weights: &'a serde_json::Map<String, Value>,
    path: Path,
    loaded: Vec<String>,
}

impl ModuleMapper for Load<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.name();
        let w = self
            .weights
            .get(&name)
            .unwrap_or_else(|| panic!("the fixture has no {name}"));
        let shape: Vec<usize> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        self.loaded.push(name.clone());
        param.map(|t| {
            assert_eq!(t.dims().to_vec(), shape, "{name}: shape");
            Tensor::from_data(TensorData::new(floats(&w["data"]), shape), &t.device())
                .require_grad()
        })
    }
}

/// Every float parameter's name and values, or its gradient's values when `grads` is set.
#[derive(Default)]
struct Collect<'a> {
    path: Path,
    grads: Option<&'a Gradients>,
    params: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.name();
        let t = match self.grads {
            Some(g) => param
                .val()
                .grad(g)
                .unwrap_or_else(|| panic!("{name} has no gradient")),
            None => param.val(),
        };
        let values = t.into_data().convert::<f32>().try_to_vec().unwrap();
        self.params.insert(name, values);
    }
}

/// Every parameter's values, or with `grads` its gradient's, by name.
fn params(model: &SasRec, grads: Option<&Gradients>) -> BTreeMap<String, Vec<f32>> {
    let mut c = Collect {
        grads,
        ..Default::default()
    };
    model.visit(&mut c);
    c.params
}

/// |ours − torch| ≤ atol + rtol·|torch| for every element, or the worst element named.
fn assert_close(ours: &[f32], torch: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(ours.len(), torch.len(), "{what}: lengths");
    let worst = ours
        .iter()
        .zip(torch)
        .enumerate()
        .map(|(i, (a, b))| (i, (a - b).abs() - (atol + rtol * b.abs()), *a, *b))
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .unwrap();
    assert!(
        worst.1 <= 0.0,
        "{what}[{}]: ours {} against PyTorch's {}",
        worst.0,
        worst.2,
        worst.3
    );
}

/// Ours's SASRec with the project's defaults (`ModelSpec::defaults`: padding attended, PyTorch's
/// biases) at the fixture's size, without dropout, holding the fixture's initial weights.
fn model(fx: &Value, freeze_padding: bool, device: &Device) -> SasRec {
    let c = &fx["config"];
    let size = |k: &str| c[k].as_u64().unwrap() as usize;
    let config = SasRecConfig::defaults(size("n_items"), 0)
        .with_hidden(size("hidden"))
        .with_layers(size("layers"))
        .with_heads(size("heads"))
        .with_max_len(size("max_len"))
        .with_dropout(0.0)
        .with_freeze_padding(Some(freeze_padding));
    let weights = fx["weights"].as_object().unwrap();
    let mut load = Load {
        weights,
        path: Path::default(),
        loaded: Vec::new(),
    };
    let model = config.init(device).map(&mut load);
    let mut expected: Vec<&String> = weights.keys().collect();
    expected.sort();
    load.loaded.sort();
    assert_eq!(
        load.loaded.iter().collect::<Vec<_>>(),
        expected,
        "every parameter loaded once"
    );
    model
}

fn loss(model: &SasRec, batch: &Value) -> Tensor<1> {
    let seqs = sequences(batch);
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let users: Vec<usize> = (0..refs.len()).collect();
    let batch = TrainBatch {
        items: &refs,
        users: &users,
    };
    model.train_loss(batch, Softmax::Full, &mut SsiRng::seed_from_u64(0))
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0]
}

#[test]
fn the_first_step_has_pytorchs_loss_and_gradients() {
    let fx = fixture();
    let device = Device::flex().autodiff();
    let torch_losses = floats(&fx["losses"]);
    for freeze_padding in [true, false] {
        let model = model(&fx, freeze_padding, &device);
        let l = loss(&model, &fx["batches"][0]);
        assert_close(&[scalar(l.clone())], &torch_losses[..1], 0.0, 1e-6, "loss");
        let grads = l.backward();
        for (name, ours) in params(&model, Some(&grads)) {
            let torch = floats(&fx["grads"][&name]);
            if name == "item_emb.weight" && !freeze_padding {
                // The padding row (row 0) is trained when not frozen, unlike `padding_idx`.
                let h = torch.len() / (fx["config"]["n_items"].as_u64().unwrap() as usize + 1);
                assert!(ours[..h].iter().any(|&g| g != 0.0), "padding row trained");
                assert_close(&ours[h..], &torch[h..], 1e-7, 1e-4, &name);
            } else {
                assert_close(&ours, &torch, 1e-7, 1e-4, &name);
            }
        }
    }
}

#[test]
fn three_adam_steps_land_on_pytorchs_weights() {
    let fx = fixture();
    let device = Device::flex().autodiff();
    let mut model = model(&fx, true, &device);
    let c = &fx["config"];
    let epsilon = SasRecConfig::new(1).train_defaults().adam_epsilon;
    assert_eq!(
        epsilon,
        c["epsilon"].as_f64(),
        "the fixture's epsilon is ours's default"
    );
    let mut optim = AdamConfig::new()
        .with_epsilon(epsilon.unwrap() as f32)
        .init();
    let lr = c["lr"].as_f64().unwrap();
    let torch_losses = floats(&fx["losses"]);
    for (step, batch) in fx["batches"].as_array().unwrap().iter().enumerate() {
        let l = loss(&model, batch);
        assert_close(
            &[scalar(l.clone())],
            &torch_losses[step..step + 1],
            0.0,
            1e-5,
            &format!("loss of step {}", step + 1),
        );
        let grads = GradientsParams::from_grads(l.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    for (name, ours) in params(&model, None) {
        assert_close(&ours, &floats(&fx["after"][&name]), 1e-5, 1e-4, &name);
    }
    // Inference, as validation ranks: no autodiff, the padding's states computed once.
    let model = model.valid();
    let seqs = sequences(&fx["histories"]);
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let users = vec![None; refs.len()];
    let scores = model.score_all(Batch {
        items: &refs,
        users: &users,
    });
    let scores = scores
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    assert_close(
        &scores,
        &floats(&fx["scores"]),
        1e-5,
        1e-4,
        "scores at inference",
    );
}

/// Mean, standard deviation and kurtosis of `x`.
fn moments(x: &[f32]) -> (f64, f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let m = |k: i32| x.iter().map(|&v| (v as f64 - mean).powi(k)).sum::<f64>() / n;
    let var = m(2);
    (mean, var.sqrt(), m(4) / (var * var))
}

/// The reference's initialisation, drawn by ours at the default size: every weight matrix and
/// embedding N(0, 0.02) (kurtosis 3, a normal's; a uniform's is 1.8), the attention's biases 0,
/// the feed-forward's U(±1/√fan_in), LayerNorm 1 and 0. The draws are not fixed (the other tests
/// of this binary draw from burn's global generator at the same time), so each bound is at
/// least four standard errors of its statistic wide (the smallest tensor has 64 values, the
/// smallest matrix 3,200).
#[test]
fn the_initial_weights_are_drawn_as_pytorchs() {
    let device = Device::flex();
    device.seed(3);
    let model = SasRecConfig::defaults(2000, 0).init(&device);
    let hidden = 64.0f64;
    let params = params(&model, None);
    assert_eq!(params.len(), 4 + 2 * 16, "{:?}", params.keys());
    for (name, values) in params {
        let (mean, std, kurtosis) = moments(&values);
        let last = name.rsplit('.').next().unwrap();
        if name.ends_with("emb.weight") || last == "weight" {
            assert!(mean.abs() < 0.002, "{name}: mean {mean}");
            assert!((std / 0.02 - 1.0).abs() < 0.06, "{name}: std {std}");
            assert!((kurtosis - 3.0).abs() < 0.5, "{name}: kurtosis {kurtosis}");
        } else if name.contains(".mha.") || last == "beta" {
            assert!(values.iter().all(|&v| v == 0.0), "{name}: not zero");
        } else if last == "gamma" {
            assert!(values.iter().all(|&v| v == 1.0), "{name}: not one");
        } else {
            let fan_in = if name.contains("linear_inner") {
                hidden
            } else {
                4.0 * hidden
            };
            let r = 1.0 / fan_in.sqrt();
            let max = values.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
            assert!(max <= r && max > 0.8 * r, "{name}: max |b| {max}, U(±{r})");
            assert!(
                (std / (r / 3f64.sqrt()) - 1.0).abs() < 0.3,
                "{name}: std {std}"
            );
        }
    }
}
