//! The fast full-softmax cross-entropies (tensor logsumexp, and fused on the CPU backend) equal
//! the straightforward one, in value and gradient.

use burn::tensor::{Device, Tensor, TensorData};
use ssi_data::rng::{Rng, seeded};
use ssi_models::common::int1;

fn vec_of(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Padding rows (target -1, as `pad_loss_rows` makes them) change neither the loss nor any
/// gradient, for every softmax.
#[test]
fn padding_rows_carry_no_loss_and_no_gradient() {
    use ssi_models::loss::{Softmax, next_item_loss};
    let [p, n, h] = [5, 30, 4];
    let mut rng = seeded(9);
    let mut uniform =
        |k: usize| -> Vec<f32> { (0..k).map(|_| rng.random::<f32>() - 0.5).collect() };
    let (hv, tv) = (uniform(p * h), uniform(n * h));
    let targets = vec![1i64, 7, 29, 0, 7];
    for softmax in [
        Softmax::Full,
        Softmax::FullTensor,
        Softmax::FullLogSoftmax,
        Softmax::Sampled(6),
    ] {
        let run = |rows: Vec<i64>, targets: Vec<i64>| {
            let dev = Device::flex().autodiff();
            let hs =
                Tensor::<2>::from_data(TensorData::new(hv.clone(), [p, h]), &dev).require_grad();
            let table =
                Tensor::<2>::from_data(TensorData::new(tv.clone(), [n, h]), &dev).require_grad();
            let picked = hs.clone().select(0, int1(rows, &dev));
            let loss = next_item_loss(
                picked,
                table.clone(),
                None,
                targets,
                softmax,
                &mut seeded(4),
            );
            let grads = loss.backward();
            let value = loss.into_data().try_to_vec::<f32>().unwrap()[0];
            (
                value,
                vec_of(hs.grad(&grads).unwrap()),
                vec_of(table.grad(&grads).unwrap()),
            )
        };
        let plain = run((0..p as i64).collect(), targets.clone());
        let mut rows: Vec<i64> = (0..p as i64).collect();
        let mut padded_targets = targets.clone();
        rows.extend([0, 0, 0]);
        padded_targets.extend([-1, -1, -1]);
        let padded = run(rows, padded_targets);
        assert!(
            (plain.0 - padded.0).abs() <= 1e-6 * plain.0.abs().max(1.0),
            "{softmax:?}: loss {} vs {}",
            plain.0,
            padded.0
        );
        assert_close(&padded.1, &plain.1, "d/dh");
        assert_close(&padded.2, &plain.2, "d/dtable");
        assert!(
            plain.1.iter().any(|g| g.abs() > 1e-5),
            "{softmax:?}: vacuous"
        );
    }
}

type RowsCe = fn(
    Tensor<2>,
    Tensor<2>,
    Option<Tensor<1>>,
    burn::tensor::Tensor<1, burn::tensor::Int>,
) -> Tensor<2>;

/// Σ_r w_r · loss_r and its gradients (h, table, bias) for per-row losses; uneven weights check
/// that each row's upstream gradient reaches its own row.
fn run_rows(
    ce: impl Fn(
        Tensor<2>,
        Tensor<2>,
        Option<Tensor<1>>,
        burn::tensor::Tensor<1, burn::tensor::Int>,
    ) -> Tensor<2>,
    data: &(Vec<f32>, Vec<f32>, Vec<f32>, Vec<i64>),
    [p, n, h]: [usize; 3],
) -> (f32, Vec<f32>, Vec<f32>, Vec<f32>) {
    let dev = Device::flex().autodiff();
    let hs = Tensor::<2>::from_data(TensorData::new(data.0.clone(), [p, h]), &dev).require_grad();
    let table =
        Tensor::<2>::from_data(TensorData::new(data.1.clone(), [n, h]), &dev).require_grad();
    let bias = Tensor::<1>::from_data(TensorData::new(data.2.clone(), [n]), &dev).require_grad();
    let w: Vec<f32> = (0..p).map(|r| 0.5 + (r % 5) as f32 * 0.25).collect();
    let w = Tensor::<2>::from_data(TensorData::new(w, [p, 1]), &dev);
    let rows = ce(
        hs.clone(),
        table.clone(),
        Some(bias.clone()),
        int1(data.3.clone(), &dev),
    );
    let loss = (rows * w).sum();
    let grads = loss.backward();
    let value = loss.into_data().try_to_vec::<f32>().unwrap()[0];
    (
        value,
        vec_of(hs.grad(&grads).unwrap()),
        vec_of(table.grad(&grads).unwrap()),
        bias.grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
    )
}

fn random_case(
    p: usize,
    n: usize,
    h: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<i64>) {
    let mut rng = seeded(seed);
    let mut uniform = |k: usize, scale: f32| -> Vec<f32> {
        (0..k)
            .map(|_| (rng.random::<f32>() - 0.5) * 2.0 * scale)
            .collect()
    };
    let hs = uniform(p * h, 4.0);
    let table = uniform(n * h, 4.0);
    let bias = uniform(n, 1.0);
    let targets = (0..p).map(|r| ((r * 7 + 3) % n) as i64).collect();
    (hs, table, bias, targets)
}

fn assert_same(a: &(f32, Vec<f32>, Vec<f32>, Vec<f32>), b: &(f32, Vec<f32>, Vec<f32>, Vec<f32>)) {
    assert!(a.0.is_finite() && a.0 > 0.0, "loss {}", a.0);
    assert!(
        (a.0 - b.0).abs() <= 1e-5 * b.0.abs().max(1.0),
        "loss {} vs {}",
        a.0,
        b.0
    );
    assert_close(&a.1, &b.1, "d/dh");
    assert_close(&a.2, &b.2, "d/dtable");
    assert_close(&a.3, &b.3, "d/dbias");
    assert!(a.2.iter().any(|g| g.abs() > 1e-4), "vacuous gradient");
}

/// The fused full softmax (flex) equals the tensor logsumexp and log-softmax + gather versions,
/// in value and in every gradient, over shapes that exercise the vector lanes' remainder (N not a
/// multiple of 8) and several parallel tasks of rows (P above 16).
#[test]
fn fused_full_ce_matches_the_tensor_versions() {
    use ssi_models::loss::{full_ce_log_softmax_rows, full_ce_rows, full_ce_rows_fused};
    // Not a comparison of the tensor version with itself: flex takes the fused path.
    assert!(ssi_models::fused_ce::supported(&Device::flex().autodiff()));
    assert!(ssi_models::fused_ce::supported(&Device::flex()));
    for [p, n, h] in [[7, 40, 5], [37, 45, 6], [3, 5, 2]] {
        let data = random_case(p, n, h, p as u64);
        let fused = run_rows(full_ce_rows_fused as RowsCe, &data, [p, n, h]);
        let tensor = run_rows(full_ce_rows as RowsCe, &data, [p, n, h]);
        let log_softmax = run_rows(full_ce_log_softmax_rows as RowsCe, &data, [p, n, h]);
        assert_same(&fused, &tensor);
        assert_same(&fused, &log_softmax);
        assert_same(&tensor, &log_softmax);
    }
}

type SampledCe = fn(
    Tensor<2>,
    Tensor<2>,
    Option<Tensor<1>>,
    burn::tensor::Tensor<1, burn::tensor::Int>,
    burn::tensor::Tensor<1, burn::tensor::Int>,
) -> Tensor<2>;

/// The fused sampled softmax equals its tensor version, including a negative equal to a target.
#[test]
fn fused_sampled_ce_matches_the_tensor_version() {
    use ssi_models::loss::{sampled_ce, sampled_ce_tensor};
    let [p, n, h] = [21, 50, 4];
    let data = random_case(p, n, h, 11);
    // 3 is row 0's target: masked for that row.
    let negatives = vec![3i64, 9, 17, 48, 0, 26];
    let with = |f: SampledCe| {
        let negatives = negatives.clone();
        move |hs: Tensor<2>, t: Tensor<2>, b: Option<Tensor<1>>, y| {
            let dev = hs.device();
            f(hs, t, b, y, int1(negatives.clone(), &dev))
        }
    };
    let fused = run_rows(with(sampled_ce), &data, [p, n, h]);
    let tensor = run_rows(with(sampled_ce_tensor), &data, [p, n, h]);
    assert_same(&fused, &tensor);
}

/// Without autodiff (inference, validation) the fused loss runs on plain flex tensors and gives
/// the same values.
#[test]
fn fused_full_ce_runs_without_autodiff() {
    use ssi_models::loss::{full_ce_rows, full_ce_rows_fused};
    let [p, n, h] = [19, 33, 3];
    let data = random_case(p, n, h, 5);
    let dev = Device::flex();
    let make = || {
        (
            Tensor::<2>::from_data(TensorData::new(data.0.clone(), [p, h]), &dev),
            Tensor::<2>::from_data(TensorData::new(data.1.clone(), [n, h]), &dev),
            Tensor::<1>::from_data(TensorData::new(data.2.clone(), [n]), &dev),
        )
    };
    let (a, b, c) = make();
    let fused = vec_of(full_ce_rows_fused(
        a,
        b,
        Some(c),
        int1(data.3.clone(), &dev),
    ));
    let (a, b, c) = make();
    let tensor = vec_of(full_ce_rows(a, b, Some(c), int1(data.3.clone(), &dev)));
    assert_close(&fused, &tensor, "loss rows");
}

#[test]
fn buckets_are_few_and_pad_at_most_a_quarter() {
    use ssi_models::common::bucket;
    let mut sizes = std::collections::BTreeSet::new();
    for n in 1..=5000usize {
        let b = bucket(n);
        assert!(
            b >= n && (b as f64) <= (n as f64) * 1.25 + 1.0,
            "{n} -> {b}"
        );
        sizes.insert(b);
    }
    // Four sizes per doubling: about 4·log2(5000) ≈ 50, not 5000.
    assert!(sizes.len() < 60, "{} sizes", sizes.len());
}
