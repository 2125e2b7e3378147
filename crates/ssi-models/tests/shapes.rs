//! Bucketed batch shapes (what GPU backends get) leave every model's training loss and outputs as
//! they are with exact shapes. Its own test binary: the shape mode is process-wide.

use burn::module::Module;
use burn::tensor::Device;
use ssi_data::rng::seeded;
use ssi_models::common::{Batch, GROUP_OVERHEAD, Shapes, TrainBatch, length_groups, set_shapes};
use ssi_models::loss::Softmax;
use ssi_models::{AnyModel, ModelConfig, ModelKind, SequentialModel};

const N_ITEMS: usize = 40;

fn value(t: burn::tensor::Tensor<1>) -> f32 {
    t.into_data().try_to_vec::<f32>().unwrap()[0]
}

/// The training loss (fixed draws) and the scores of `seqs` with batch shapes `shapes`.
fn loss_and_scores(model: &AnyModel, seqs: &[&[u32]], shapes: Shapes) -> (f32, Vec<f32>) {
    set_shapes(shapes);
    let users: Vec<usize> = (0..seqs.len()).collect();
    let known: Vec<Option<usize>> = users.iter().copied().map(Some).collect();
    let batch = TrainBatch {
        items: seqs,
        users: &users,
    };
    let loss = value(model.train_loss(batch, Softmax::Full, &mut seeded(5)));
    let scores = model
        .valid()
        .score_all(Batch {
            items: seqs,
            users: &known,
        })
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    set_shapes(Shapes::Auto);
    (loss, scores)
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn bucketed_shapes_give_the_losses_and_scores_of_exact_shapes() {
    let device = Device::flex().autodiff();
    // Histories of different lengths, all shorter than max_len: bucketing pads every one.
    let seqs: Vec<Vec<u32>> = (0..9u32)
        .map(|u| {
            (0..3 + u)
                .map(|t| (u * 7 + t * 3) % N_ITEMS as u32 + 1)
                .collect()
        })
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    for kind in [ModelKind::Sasrec, ModelKind::Bert4rec, ModelKind::Gru4rec] {
        device.seed(3);
        let cfg = ModelConfig::new(kind, N_ITEMS, refs.len())
            .with_overrides(&[
                ("hidden".into(), 16.into()),
                ("max_len".into(), 20.into()),
                ("dropout".into(), 0.0.into()),
            ])
            .unwrap();
        let model = cfg.init(&device);
        let exact = loss_and_scores(&model, &refs, Shapes::Exact);
        let bucketed = loss_and_scores(&model, &refs, Shapes::Bucketed);
        assert!(
            exact.0.is_finite() && exact.0 > 0.0,
            "{kind:?}: loss {}",
            exact.0
        );
        assert!(
            (exact.0 - bucketed.0).abs() <= 1e-5 * exact.0.abs(),
            "{kind:?}: loss {} exact vs {} bucketed",
            exact.0,
            bucketed.0
        );
        let worst = largest_difference(&exact.1, &bucketed.1);
        assert!(worst <= 1e-4, "{kind:?}: scores differ by {worst}");
    }
    by_length_groups_bert4rec_gives_the_loss_and_scores_of_one_batch(&device);
}

/// Many short histories and a few long ones: with exact shapes BERT4Rec encodes the batch in
/// groups of similar length (`length_groups`), each padded to its own longest history; with
/// bucketed shapes in one group padded to max_len. Plain and as a teacher (whose consistency
/// task encodes each history's last state, as its scores do), the same loss and scores.
fn by_length_groups_bert4rec_gives_the_loss_and_scores_of_one_batch(device: &Device) {
    let seqs: Vec<Vec<u32>> = (0..64u32)
        .map(|u| {
            let n = if u % 16 == 5 { 45 } else { 2 + u % 4 };
            (0..n)
                .map(|t| (u * 7 + t * 3) % N_ITEMS as u32 + 1)
                .collect()
        })
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let lens: Vec<usize> = refs.iter().map(|s| s.len()).collect();
    set_shapes(Shapes::Exact);
    let groups = length_groups(&lens, GROUP_OVERHEAD, device);
    set_shapes(Shapes::Auto);
    assert!(groups.len() >= 2, "{groups:?}");
    let mut all: Vec<usize> = groups.concat();
    all.sort();
    assert_eq!(all, (0..refs.len()).collect::<Vec<_>>());
    for teacher in [None, Some("temporal")] {
        device.seed(3);
        let mut over = vec![
            ("hidden".to_string(), 16.into()),
            ("max_len".to_string(), 50.into()),
            ("dropout".to_string(), 0.0.into()),
        ];
        if let Some(t) = teacher {
            over.push(("consistency".into(), t.into()));
        }
        let model = ModelConfig::new(ModelKind::Bert4rec, N_ITEMS, refs.len())
            .with_overrides(&over)
            .unwrap()
            .init(device);
        let grouped = loss_and_scores(&model, &refs, Shapes::Exact);
        let one = loss_and_scores(&model, &refs, Shapes::Bucketed);
        assert!(grouped.0.is_finite(), "{teacher:?}: loss {}", grouped.0);
        assert!(
            (grouped.0 - one.0).abs() <= 1e-5 * one.0.abs(),
            "{teacher:?}: loss {} by groups vs {} in one batch",
            grouped.0,
            one.0
        );
        let worst = largest_difference(&grouped.1, &one.1);
        assert!(worst <= 1e-4, "{teacher:?}: scores differ by {worst}");
    }
}
