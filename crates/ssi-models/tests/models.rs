//! Behavioural tests of every model on crafted inputs: they learn, padding is inert, attention
//! masks hold.

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use ssi_data::rng::seeded;
use ssi_models::common::{Batch, TrainBatch, int2, left_pad};
use ssi_models::loss::Softmax;
use ssi_models::{AnyModel, ModelConfig, ModelKind, SequentialModel};

const N_ITEMS: usize = 30;

/// burn's device RNG is shared by the whole process: a test that seeds it and draws from it holds
/// this lock, so that a test running in parallel cannot take draws in between (which made the
/// initialisation, and a teacher's learning curve, depend on thread timing).
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn tiny_config(kind: ModelKind) -> ModelConfig {
    let cfg = ModelConfig::new(kind, N_ITEMS, 12);
    let over: Vec<(String, serde_json::Value)> = match kind {
        ModelKind::Hgn => vec![
            ("hidden".into(), 16.into()),
            ("dropout".into(), 0.0.into()),
            ("p_unknown_user".into(), 0.0.into()),
        ],
        ModelKind::Gru4rec => vec![
            ("hidden".into(), 16.into()),
            ("max_len".into(), 8.into()),
            ("dropout".into(), 0.0.into()),
        ],
        _ => vec![
            ("hidden".into(), 16.into()),
            ("max_len".into(), 8.into()),
            ("dropout".into(), 0.0.into()),
        ],
    };
    cfg.with_overrides(&over).unwrap()
}

/// Twelve users walking the item ring with strides 1..=3: a deterministic next-item rule.
fn sequences() -> Vec<Vec<u32>> {
    (0..12u32)
        .map(|u| {
            (0..7u32)
                .map(|t| (u * 5 + t * (1 + u % 3)) % N_ITEMS as u32 + 1)
                .collect()
        })
        .collect()
}

fn train(kind: ModelKind, steps: usize) -> (AnyModel, f32, f32) {
    train_with(tiny_config(kind), steps)
}

fn train_with(cfg: ModelConfig, steps: usize) -> (AnyModel, f32, f32) {
    let _rng = rng_lock();
    let device = Device::flex().autodiff();
    device.seed(1);
    train_from(cfg.init(&device), steps)
}

/// `steps` full-softmax Adam steps of `model` on the tiny set.
fn train_from(mut model: AnyModel, steps: usize) -> (AnyModel, f32, f32) {
    let mut optim = AdamConfig::new().init();
    let seqs = sequences();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let users: Vec<usize> = (0..refs.len()).collect();
    let mut rng = seeded(3);
    let (mut first, mut last) = (0.0, 0.0);
    for step in 0..steps {
        let loss = model.train_loss(
            TrainBatch {
                items: &refs,
                users: &users,
            },
            Softmax::Full,
            &mut rng,
        );
        let v: f32 = loss.clone().into_scalar();
        if step == 0 {
            first = v;
        }
        last = v;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    (model, first, last)
}

#[test]
fn every_model_overfits_a_tiny_set() {
    for kind in ModelKind::ALL {
        let (model, first, last) = train(kind, 150);
        assert!(last < 0.35 * first, "{kind:?}: loss {first} -> {last}");
        // The learned rule shows in the ranking: the true next item is in the top 3 for most users.
        let model = model.valid();
        let seqs = sequences();
        let hist: Vec<&[u32]> = seqs.iter().map(|s| &s[..s.len() - 1]).collect();
        let users: Vec<Option<usize>> = (0..hist.len()).map(Some).collect();
        let scores = model.score_all(Batch {
            items: &hist,
            users: &users,
        });
        let data: Vec<f32> = scores.into_data().try_to_vec::<f32>().unwrap();
        let mut hits = 0;
        for (u, s) in seqs.iter().enumerate() {
            let row = &data[u * N_ITEMS..(u + 1) * N_ITEMS];
            let t = row[*s.last().unwrap() as usize - 1];
            if row.iter().filter(|&&x| x > t).count() < 3 {
                hits += 1;
            }
        }
        assert!(hits >= 9, "{kind:?}: only {hits}/12 targets in the top 3");
    }
}

/// Replaces the padding row of the input embedding: outputs for real items must not move.
fn with_random_pad_row(model: AnyModel) -> AnyModel {
    fn bump(w: &Param<Tensor<2>>) -> Param<Tensor<2>> {
        let t = w.val();
        let [n, h] = t.dims();
        let noise = Tensor::<2>::ones([1, h], &t.device()).mul_scalar(3.0);
        let rest = t.clone().narrow(0, 1, n - 1);
        Param::from_tensor(Tensor::cat(vec![noise, rest], 0).detach())
    }
    match model {
        AnyModel::Sasrec(mut m) => {
            m.item_emb.weight = bump(&m.item_emb.weight);
            AnyModel::Sasrec(m)
        }
        AnyModel::Bert4rec(mut m) => {
            m.item_emb.weight = bump(&m.item_emb.weight);
            AnyModel::Bert4rec(m)
        }
        AnyModel::Gru4rec(mut m) => {
            m.item_emb.weight = bump(&m.item_emb.weight);
            AnyModel::Gru4rec(m)
        }
        AnyModel::Hgn(mut m) => {
            m.item_emb.weight = bump(&m.item_emb.weight);
            AnyModel::Hgn(m)
        }
        AnyModel::S3rec(mut m) => {
            m.encoder.item_emb.weight = bump(&m.encoder.item_emb.weight);
            AnyModel::S3rec(m)
        }
        AnyModel::Grec(mut m) => {
            m.item_emb.weight = bump(&m.item_emb.weight);
            AnyModel::Grec(m)
        }
    }
}

fn encode(model: &AnyModel, hist: &[&[u32]]) -> Vec<f32> {
    let users: Vec<Option<usize>> = vec![Some(0); hist.len()];
    model
        .encode(Batch {
            items: hist,
            users: &users,
        })
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
}

#[test]
fn padding_is_never_attended_to_nor_predicted() {
    let _rng = rng_lock();
    let device = Device::flex();
    for kind in ModelKind::ALL {
        device.seed(5);
        let mut cfg = tiny_config(kind);
        if kind == ModelKind::Sasrec {
            // Masked padding; SASRec's default attends to it (the test below).
            cfg = cfg
                .with_overrides(&[("attend_padding".into(), false.into())])
                .unwrap();
        }
        let model = cfg.init(&device).valid();
        let hist: Vec<&[u32]> = vec![&[3, 4], &[7, 8, 9, 10]];
        let before = encode(&model, &hist);
        let after = encode(&with_random_pad_row(model.clone()), &hist);
        assert!(
            close(&before, &after),
            "{kind:?}: the padding embedding leaked into the output"
        );
        // Scores cover items 1..=N only: the padding id cannot be recommended.
        let s = model.score_all(Batch {
            items: &hist,
            users: &[None, None],
        });
        assert_eq!(s.dims(), [2, N_ITEMS], "{kind:?}");
    }
}

/// A SASRec config written before `attend_padding` existed (no key, or null) is the masked
/// model it was trained as, though new configs attend to the padding.
#[test]
fn a_sasrec_config_without_attend_padding_stays_masked() {
    let _rng = rng_lock();
    let device = Device::flex();
    device.seed(5);
    let mut json = tiny_config(ModelKind::Sasrec).to_json();
    assert_eq!(
        json["attend_padding"], true,
        "new configs attend to the padding"
    );
    json.as_object_mut().unwrap().remove("attend_padding");
    let old: ModelConfig = serde_json::from_value(json).unwrap();
    let model = old.init(&device).valid();
    let hist: Vec<&[u32]> = vec![&[3, 4]];
    let before = encode(&model, &hist);
    let after = encode(&with_random_pad_row(model), &hist);
    assert!(
        close(&before, &after),
        "an old config attended to the padding"
    );
}

/// With `attend_padding` the padding is an input: the output moves with the padding row, but a
/// sequence's state does not depend on its batch mates (every batch is padded to `max_len`).
#[test]
fn attended_padding_is_an_input_independent_of_the_batch() {
    let _rng = rng_lock();
    let device = Device::flex();
    device.seed(5);
    let cfg = tiny_config(ModelKind::Sasrec)
        .with_overrides(&[("attend_padding".into(), true.into())])
        .unwrap();
    let model = cfg.init(&device).valid();
    let alone = encode(&model, &[&[3, 4]]);
    let beside_longer = encode(&model, &[&[3, 4], &[7, 8, 9, 10, 11]]);
    assert!(close(&alone, &beside_longer[..alone.len()]));
    let moved = encode(&with_random_pad_row(model), &[&[3, 4]]);
    assert!(!close(&alone, &moved), "the padding row changed nothing");
}

/// A SASRec's state at the last item skips what that position does not need (the last layer's
/// other positions; at inference with `attend_padding`, the padding's states, computed once per
/// batch): the same states as the padded forward pass read at the last position, on an autodiff
/// device and at inference, with padding attended or masked, for batches shorter than, as long
/// as and longer than `max_len`, with the padding row moved away from its initialisation.
#[test]
fn sasrec_last_states_equal_the_padded_forward_pass() {
    let _rng = rng_lock();
    let device = Device::flex().autodiff();
    let seqs: Vec<Vec<u32>> = (0..12u32)
        .map(|n| {
            (0..n)
                .map(|t| (n * 7 + t * 3) % N_ITEMS as u32 + 1)
                .collect()
        })
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    for attend in [true, false] {
        device.seed(11);
        let cfg = tiny_config(ModelKind::Sasrec)
            .with_overrides(&[
                ("attend_padding".into(), attend.into()),
                ("layers".into(), 3.into()),
            ])
            .unwrap();
        let trained = with_random_pad_row(cfg.init(&device));
        let inference = trained.clone().valid();
        let AnyModel::Sasrec(m) = &inference else {
            unreachable!()
        };
        for batch in [
            &refs[..1],
            &refs[1..4],
            &refs[2..9],
            &refs[5..12],
            &refs[..],
        ] {
            if !attend && batch[0].is_empty() {
                // An empty history with masked padding attends to nothing: its state depends
                // on how far it is padded, and means nothing.
                continue;
            }
            // Padded to max_len (8) and read at the last position.
            let ids = int2(left_pad(batch, 8), [batch.len(), 8], &m.device());
            let want: Vec<f32> = m
                .hidden_states(ids)
                .narrow(1, 7, 1)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (path, model) in [("autodiff", &trained), ("inference", &inference)] {
                let got = encode(model, batch);
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-5,
                    "attend_padding {attend}, {path}, lengths {:?}: differs by {worst}",
                    batch.iter().map(|s| s.len()).collect::<Vec<_>>()
                );
            }
        }
    }
}

/// `freeze_padding` keeps the padding row at its initial value through training, as
/// `padding_idx` does in PyTorch; without it the row learns (items attend to it).
#[test]
fn a_frozen_padding_row_does_not_learn() {
    let pad_row = |m: &AnyModel| -> Vec<f32> {
        match m {
            AnyModel::Sasrec(m) => m.item_emb.weight.val().narrow(0, 0, 1),
            _ => unreachable!(),
        }
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
    };
    let device = Device::flex().autodiff();
    for freeze in [true, false] {
        let cfg = tiny_config(ModelKind::Sasrec)
            .with_overrides(&[("freeze_padding".into(), freeze.into())])
            .unwrap();
        // The row before and after training of one model: weights are drawn when first read,
        // from an RNG other tests share, so a second model seeded alike may differ.
        let model = cfg.init(&device);
        let initial = pad_row(&model);
        let (model, first, last) = train_from(model, 20);
        assert!(last < first, "freeze {freeze}: loss {first} -> {last}");
        assert_eq!(
            close(&initial, &pad_row(&model)),
            freeze,
            "freeze_padding {freeze}: the padding row moved {}",
            if freeze { "" } else { "not" }
        );
    }
}

#[test]
fn sasrec_is_causal_and_bert4rec_is_bidirectional() {
    let _rng = rng_lock();
    let device = Device::flex();
    device.seed(9);
    let sas = match tiny_config(ModelKind::Sasrec).init(&device).valid() {
        AnyModel::Sasrec(m) => m,
        _ => unreachable!(),
    };
    let a = int2(vec![0, 0, 0, 1, 2, 3, 4, 5], [1, 8], &device);
    let b = int2(vec![0, 0, 0, 1, 2, 3, 9, 7], [1, 8], &device);
    let ha: Vec<f32> = sas
        .hidden_states(a.clone())
        .narrow(1, 5, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let hb: Vec<f32> = sas
        .hidden_states(b.clone())
        .narrow(1, 5, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(close(&ha, &hb), "SASRec position 5 saw the future");
    let la: Vec<f32> = sas
        .hidden_states(a.clone())
        .narrow(1, 7, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let lb: Vec<f32> = sas
        .hidden_states(b.clone())
        .narrow(1, 7, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(
        !close(&la, &lb),
        "SASRec last position ignores its own items"
    );

    let bert = match tiny_config(ModelKind::Bert4rec).init(&device).valid() {
        AnyModel::Bert4rec(m) => m,
        _ => unreachable!(),
    };
    let ha: Vec<f32> = bert
        .hidden_states(a)
        .narrow(1, 5, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let hb: Vec<f32> = bert
        .hidden_states(b)
        .narrow(1, 5, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(
        !close(&ha, &hb),
        "BERT4Rec position 5 should see later items"
    );
}

#[test]
fn bert4rec_cloze_masks_and_keeps_targets() {
    let device = Device::flex();
    let bert = match tiny_config(ModelKind::Bert4rec).init(&device) {
        AnyModel::Bert4rec(m) => m,
        _ => unreachable!(),
    };
    let seqs: Vec<&[u32]> = vec![&[1, 2, 3, 4, 5], &[6, 7]];
    let mut rng = seeded(1);
    for _ in 0..20 {
        let (ids, targets, rows) = bert.cloze(&seqs, &mut rng);
        assert!(!rows.is_empty());
        for (&r, &t) in rows.iter().zip(&targets) {
            assert_eq!(
                ids[r as usize],
                N_ITEMS as i64 + 1,
                "masked position holds [MASK]"
            );
            assert!(t >= 0 && (t as usize) < N_ITEMS);
        }
        // The batch is trimmed to its longest sequence (5 items); padding is never masked: row 1
        // (flat positions 5..10) has three pads before its two items.
        assert_eq!(ids.len(), 10);
        assert!(rows.iter().all(|r| !(5..8).contains(r)), "{rows:?}");
    }
}

#[test]
fn hgn_unknown_user_scores_without_an_id() {
    let device = Device::flex();
    let model = tiny_config(ModelKind::Hgn).init(&device).valid();
    let hist: Vec<&[u32]> = vec![&[3, 4, 5]];
    let known = model.encode(Batch {
        items: &hist,
        users: &[Some(2)],
    });
    let unknown = model.encode(Batch {
        items: &hist,
        users: &[None],
    });
    let out_of_range = model.encode(Batch {
        items: &hist,
        users: &[Some(10_000)],
    });
    let (k, u, o): (Vec<f32>, Vec<f32>, Vec<f32>) = (
        known.into_data().try_to_vec::<f32>().unwrap(),
        unknown.into_data().try_to_vec::<f32>().unwrap(),
        out_of_range.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert!(!close(&k, &u));
    assert!(
        close(&u, &o),
        "an unseen user id falls back to the unknown-user vector"
    );
}

#[test]
fn config_overrides_reject_unknown_keys() {
    let cfg = ModelConfig::new(ModelKind::Sasrec, 10, 5);
    let err = cfg
        .with_overrides(&[("hiden".into(), 32.into())])
        .unwrap_err();
    assert!(
        err.to_string().contains("hiden") && err.to_string().contains("hidden"),
        "{err}"
    );
    let ok = cfg.with_overrides(&[("hidden".into(), 32.into())]).unwrap();
    assert_eq!(ok.to_json()["hidden"], 32);
    assert_eq!(ok.to_json()["model"], "sasrec");
}

/// A teacher with one consistency task (eq. 1–3): a BERT4Rec (the paper's) or a SASRec.
fn teacher(kind: ModelKind, task: &str, device: &Device) -> AnyModel {
    tiny_config(kind)
        .with_overrides(&[("consistency".into(), task.into())])
        .unwrap()
        .init(device)
}

/// The teacher's auxiliary loss (None for a model without a consistency task).
fn aux_loss(
    model: &AnyModel,
    seqs: &[&[u32]],
    rng: &mut ssi_data::rng::SsiRng,
) -> Option<Tensor<1>> {
    match model {
        AnyModel::Bert4rec(m) => m.consistency_loss(seqs, rng),
        AnyModel::Sasrec(m) => m.consistency_loss(seqs, rng),
        _ => None,
    }
}

/// The same model without its consistency task.
fn without_task(model: &AnyModel) -> AnyModel {
    match model.clone() {
        AnyModel::Bert4rec(mut m) => {
            m.consistency = None;
            AnyModel::Bert4rec(m)
        }
        AnyModel::Sasrec(mut m) => {
            m.consistency = None;
            AnyModel::Sasrec(m)
        }
        other => other,
    }
}

/// Smooth enough that the last 50 steps' mean is well below chance for every task.
const LR: f64 = 3e-3;
const TEACHERS: [ModelKind; 2] = [ModelKind::Bert4rec, ModelKind::Sasrec];

#[test]
fn consistency_teachers_learn_their_auxiliary_task() {
    let _rng = rng_lock();
    let seqs = sequences();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    for kind in TEACHERS {
        for task in ["temporal", "persona", "global"] {
            let device = Device::flex().autodiff();
            device.seed(2);
            // At hidden 16 PyTorch's feed-forward biases (U(±1/4)) dwarf the σ = 0.02 weights:
            // the SASRec persona task then leaves chance slowly, by an amount that varies with the
            // floating-point summation order. This test is about each task's gradient, so it
            // takes burn's biases; the real teachers continue a trained SASRec (`--init`).
            let mut model = match kind {
                ModelKind::Sasrec => model_config(kind, task)
                    .with_overrides(&[("torch_biases".into(), false.into())])
                    .unwrap()
                    .init(&device),
                _ => teacher(kind, task, &device),
            };
            let name = ModelConfig::teacher_name(&model_config(kind, task));
            let want = match kind {
                ModelKind::Bert4rec => task.to_string(),
                _ => format!("sasrec-{task}"),
            };
            assert_eq!(name, want);
            let mut optim = AdamConfig::new().init();
            let mut rng = seeded(4);
            let mut aux = Vec::new();
            // SASRec's small (σ = 0.02) initialisation learns the binary tasks slowly at first.
            for _ in 0..700 {
                let loss = aux_loss(&model, &refs, &mut rng).unwrap();
                aux.push(loss.clone().into_scalar::<f32>());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(LR, model, grads);
            }
            let early: f32 = aux[..10].iter().sum::<f32>() / 10.0;
            // The last 50 steps: each step draws new negatives, so single steps are noisy.
            let late: f32 = aux[aux.len() - 50..].iter().sum::<f32>() / 50.0;
            assert!(
                aux.iter().all(|v| v.is_finite()),
                "{kind:?} {task}: {aux:?}"
            );
            // Chance level: ln 2 for the binary tasks, ln 12 for InfoNCE over 12 sequences.
            assert!(
                late < 0.8 * early,
                "{kind:?} {task}: aux loss {early} -> {late}"
            );
        }
    }
}

fn model_config(kind: ModelKind, task: &str) -> ModelConfig {
    tiny_config(kind)
        .with_overrides(&[("consistency".into(), task.into())])
        .unwrap()
}

#[test]
fn teacher_loss_is_own_loss_plus_weighted_auxiliary_loss() {
    let device = Device::flex();
    let seqs = sequences();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let users: Vec<usize> = (0..refs.len()).collect();
    let batch = TrainBatch {
        items: &refs,
        users: &users,
    };
    for kind in TEACHERS {
        for task in ["temporal", "global"] {
            // λ = 0.5: the auxiliary term must be weighted, not just added.
            let model = tiny_config(kind)
                .with_overrides(&[
                    ("consistency".into(), task.into()),
                    ("consistency_weight".into(), 0.5.into()),
                ])
                .unwrap()
                .init(&device);
            let plain = without_task(&model);
            // Same rng stream: the model's own draws (cloze) come first, then the task's.
            let total: f32 = model
                .train_loss(batch, Softmax::Full, &mut seeded(9))
                .into_scalar();
            let mut rng = seeded(9);
            let own: f32 = plain
                .train_loss(batch, Softmax::Full, &mut rng)
                .into_scalar();
            let aux: f32 = aux_loss(&model, &refs, &mut rng).unwrap().into_scalar();
            assert!(
                (total - (own + 0.5 * aux)).abs() < 1e-4,
                "{kind:?} {task}: {total} vs {own} + 0.5 * {aux}"
            );
            assert!(aux > 0.0, "{kind:?} {task}");
            // A plain model has no auxiliary loss, and the task changes no prediction.
            assert!(aux_loss(&plain, &refs, &mut rng).is_none());
            let hist: Vec<&[u32]> = vec![&seqs[0][..4]];
            let users = [None];
            let a = model.encode(Batch {
                items: &hist,
                users: &users,
            });
            let b = plain.encode(Batch {
                items: &hist,
                users: &users,
            });
            assert!(close(
                &a.into_data().try_to_vec::<f32>().unwrap(),
                &b.into_data().try_to_vec::<f32>().unwrap()
            ));
        }
    }
}

/// `torch_biases` starts the encoder's biases as PyTorch's transformer layer does: attention
/// projections at zero, feed-forward layers U(±1/√fan_in); without it burn draws them N(0, 0.02).
#[test]
fn torch_biases_start_as_pytorchs() {
    let device = Device::flex();
    let vals = |b: &Option<burn::module::Param<Tensor<1>>>| -> Vec<f32> {
        b.as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    for torch in [true, false] {
        let cfg = tiny_config(ModelKind::Sasrec)
            .with_overrides(&[("torch_biases".into(), torch.into())])
            .unwrap();
        let model = {
            let _rng = rng_lock();
            device.seed(3);
            cfg.init(&device)
        };
        let AnyModel::Sasrec(m) = model else {
            unreachable!()
        };
        for l in &m.encoder.layers {
            for lin in [&l.mha.query, &l.mha.key, &l.mha.value, &l.mha.output] {
                let b = vals(&lin.bias);
                assert_eq!(b.iter().all(|&x| x == 0.0), torch, "attention bias {b:?}");
            }
            for lin in [&l.pwff.linear_inner, &l.pwff.linear_outer] {
                let fan_in = lin.weight.val().dims()[0] as f32;
                let b = vals(&lin.bias);
                let max = b.iter().fold(0f32, |a, &x| a.max(x.abs()));
                assert!(
                    max <= 1.0 / fan_in.sqrt(),
                    "feed-forward bias beyond ±1/√fan_in"
                );
                // Hidden 16: bounds 0.25 and 0.125, where N(0, 0.02) stays below 0.09 (4.5 σ).
                assert_eq!(max > 0.09, torch, "feed-forward bias {max}");
            }
        }
    }
}
