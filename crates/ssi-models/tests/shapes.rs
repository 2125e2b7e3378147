//! Bucketed batch shapes (what GPU backends get) leave every model's training loss and outputs as
//! they are with exact shapes. Its own test binary: the shape mode is process-wide.

use burn::module::Module;
use burn::tensor::Device;
use ssi_data::rng::seeded;
use ssi_models::common::{Batch, Shapes, TrainBatch, set_shapes};
use ssi_models::loss::Softmax;
use ssi_models::{ModelConfig, ModelKind, SequentialModel};

const N_ITEMS: usize = 40;

fn value(t: burn::tensor::Tensor<1>) -> f32 {
    t.into_data().try_to_vec::<f32>().unwrap()[0]
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
    let users: Vec<usize> = (0..refs.len()).collect();
    let known: Vec<Option<usize>> = users.iter().copied().map(Some).collect();
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
        let run = |shapes| {
            set_shapes(shapes);
            let batch = TrainBatch {
                items: &refs,
                users: &users,
            };
            let loss = value(model.train_loss(batch, Softmax::Full, &mut seeded(5)));
            let scores = model
                .valid()
                .score_all(Batch {
                    items: &refs,
                    users: &known,
                })
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            (loss, scores)
        };
        let exact = run(Shapes::Exact);
        let bucketed = run(Shapes::Bucketed);
        set_shapes(Shapes::Auto);
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
        let worst = exact
            .1
            .iter()
            .zip(&bucketed.1)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "{kind:?}: scores differ by {worst}");
    }
}
