//! Eq. 5 through the fused kernel (`fused_kl`, the CPU backend's path) equals its tensor version
//! (`prediction_imitation`), in value and in the gradients of both sides.

use burn::tensor::{Device, Tensor, TensorData};
use ssi_data::rng::{Rng, seeded};
use ssi_models::fused_kl::kl_rows;
use ssi_models::imitation::{StudentPrediction, prediction_imitation};

fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 2e-6 + 2e-4 * y.abs(),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Logits of `p` rows and `n` columns, spread over `scale` (a peaked teacher has a large one).
fn logits(p: usize, n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = seeded(seed);
    (0..p * n)
        .map(|_| scale * (rng.random::<f32>() - 0.5))
        .collect()
}

/// (mean KL, ∂/∂student, ∂/∂teacher) through `eq5`, both sides requiring gradients.
fn run(
    eq5: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<1>,
    s: &[f32],
    t: &[f32],
    shape: [usize; 2],
) -> (f32, Vec<f32>, Vec<f32>) {
    let dev = Device::flex().autodiff();
    let st = Tensor::<2>::from_data(TensorData::new(s.to_vec(), shape), &dev).require_grad();
    let tt = Tensor::<2>::from_data(TensorData::new(t.to_vec(), shape), &dev).require_grad();
    let loss = eq5(st.clone(), tt.clone());
    let grads = loss.backward();
    (
        vec_of(loss)[0],
        vec_of(st.grad(&grads).unwrap()),
        vec_of(tt.grad(&grads).unwrap()),
    )
}

#[test]
fn fused_kl_matches_the_tensor_version() {
    assert!(ssi_models::fused_kl::supported(&Device::flex().autodiff()));
    // Row and column counts that are not multiples of the kernels' lanes or tasks.
    for (k, &([p, n], scale, temperature)) in [
        ([3, 40], 4.0, 1.0),
        ([19, 37], 30.0, 1.0),
        ([33, 130], 30.0, 4.0),
        ([2, 1], 3.0, 2.0),
    ]
    .iter()
    .enumerate()
    {
        let s = logits(p, n, scale, 10 + k as u64);
        let t = logits(p, n, scale, 20 + k as u64);
        // Each row's divergence weighted differently, so that every row's upstream gradient
        // is its own.
        let w = logits(p, 1, 2.0, 30 + k as u64);
        let weighted = |kl: Tensor<2>| {
            let w = Tensor::<2>::from_data(TensorData::new(w.clone(), [p, 1]), &kl.device());
            (kl * w).sum()
        };
        let fused = run(|s, t| weighted(kl_rows(s, t, temperature)), &s, &t, [p, n]);
        let tensor = run(
            |s, t| weighted(tensor_kl_rows(s, t, temperature)),
            &s,
            &t,
            [p, n],
        );
        let what = format!("{p}x{n} at T = {temperature}");
        assert_close(&[fused.0], &[tensor.0], &format!("{what}: KL"));
        assert_close(&fused.1, &tensor.1, &format!("{what}: student gradient"));
        assert_close(&fused.2, &tensor.2, &format!("{what}: teacher gradient"));
        let kl = vec_of(kl_rows(
            Tensor::<2>::from_data(TensorData::new(s.clone(), [p, n]), &Device::flex()),
            Tensor::<2>::from_data(TensorData::new(t.clone(), [p, n]), &Device::flex()),
            temperature,
        ));
        assert!(kl.iter().all(|&v| v >= -1e-6 && (n > 1 || v.abs() < 1e-6)));
    }
}

/// Eq. 5 per row as tensor operations (what `prediction_imitation` averages).
fn tensor_kl_rows(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<2> {
    use ssi_models::imitation::tempered_log_probs;
    let t = tempered_log_probs(teacher, temperature);
    let s = tempered_log_probs(student, temperature);
    (t.clone().exp() * (t - s)).sum_dim(1)
}

/// Inputs that are views (a transposed student, a teacher sliced at an offset) and a teacher with
/// scores far below the rest (probabilities that underflow to exactly 0) give the tensor
/// version's values and gradients.
#[test]
fn fused_kl_on_views_and_underflowing_probabilities() {
    let [p, n] = [6, 45];
    let s = logits(n, p, 6.0, 40); // stored [n, p], used transposed
    let mut t = logits(p + 2, n, 6.0, 41); // rows 2.. used
    for (i, v) in t.iter_mut().enumerate() {
        if i % 7 == 0 {
            *v = -1e30;
        }
    }
    let dev = Device::flex().autodiff();
    let grads_of = |eq5: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<2>| {
        let sv = Tensor::<2>::from_data(TensorData::new(s.clone(), [n, p]), &dev).require_grad();
        let tv =
            Tensor::<2>::from_data(TensorData::new(t.clone(), [p + 2, n]), &dev).require_grad();
        let kl = eq5(sv.clone().transpose(), tv.clone().narrow(0, 2, p));
        let w = Tensor::<2>::from_data(TensorData::new(logits(p, 1, 2.0, 42), [p, 1]), &dev);
        let loss = (kl.clone() * w).sum();
        let grads = loss.backward();
        (
            vec_of(kl),
            vec_of(sv.grad(&grads).unwrap()),
            vec_of(tv.grad(&grads).unwrap()),
        )
    };
    let fused = grads_of(&|s, t| kl_rows(s, t, 2.0));
    let tensor = grads_of(&|s, t| tensor_kl_rows(s, t, 2.0));
    assert_close(&fused.0, &tensor.0, "KL rows");
    assert_close(&fused.1, &tensor.1, "student gradient");
    assert_close(&fused.2, &tensor.2, "teacher gradient");
}

/// A frozen teacher lives on a device without autodiff: a constant, its logits unchanged, the
/// student's gradient the same as with a teacher that could take one.
#[test]
fn a_teacher_without_autodiff_is_a_constant() {
    let [p, n] = [7, 50];
    let (s, t) = (logits(p, n, 8.0, 1), logits(p, n, 8.0, 2));
    let dev = Device::flex().autodiff();
    let st = Tensor::<2>::from_data(TensorData::new(s.clone(), [p, n]), &dev).require_grad();
    let teacher = Tensor::<2>::from_data(TensorData::new(t.clone(), [p, n]), &Device::flex());
    let prediction = StudentPrediction::new(st.clone(), 4.0);
    let loss = prediction.imitate(teacher);
    let grads = loss.backward();
    let reference = run(|s, t| prediction_imitation(t, s, 4.0), &s, &t, [p, n]);
    assert_close(&vec_of(loss), &[reference.0], "KL");
    assert_close(
        &vec_of(st.grad(&grads).unwrap()),
        &reference.1,
        "student gradient",
    );
}

/// Without autodiff (an evaluation of the loss) the kernel runs on plain tensors; a student equal
/// to its teacher is at divergence 0.
#[test]
fn fused_kl_without_autodiff() {
    let [p, n] = [5, 64];
    let t = logits(p, n, 10.0, 3);
    let dev = Device::flex();
    let tt = Tensor::<2>::from_data(TensorData::new(t.clone(), [p, n]), &dev);
    let same = vec_of(kl_rows(tt.clone(), tt.clone(), 2.0));
    assert!(same.iter().all(|v| v.abs() < 1e-5), "{same:?}");
    let s = Tensor::<2>::from_data(TensorData::new(logits(p, n, 10.0, 4), [p, n]), &dev);
    let fused = vec_of(kl_rows(s.clone(), tt.clone(), 2.0).mean());
    let tensor = vec_of(prediction_imitation(tt, s, 2.0));
    assert_close(&fused, &tensor, "KL");
}
