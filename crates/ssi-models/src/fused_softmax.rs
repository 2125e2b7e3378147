//! Softmax over the last dimension for burn's CPU backend (flex), with its own backward pass:
//! y = e^(x − max) / Σ e^(x − max), and ∂L/∂x = y ⊙ (∂L/∂y − Σ ∂L/∂y ⊙ y) per row.
//!
//! burn's softmax is five element-wise passes (max, subtract, exp, sum, divide) and as many in
//! autodiff's backward, with a scalar `exp` that takes a slow path for the masked scores of the
//! attention (about −10⁴, far below where e^x underflows): in a SASRec training step on Toys,
//! `expf` and its underflow handler were 5.5 % of the time (perf, docs/results/bench.md). Here a
//! row takes three passes forward (max, exponentials and their sum, scale) and two backward, with
//! the polynomial `exp` of [`crate::fused_ce`]; arguments below −87 (e^−87 ≈ 1.6e-38) give exactly
//! 0, as the masked keys of the attention must. Other backends keep burn's softmax.

use crate::fused_ce::contiguous_f32;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor, TensorData};
use std::sync::atomic::{AtomicBool, Ordering};

#[backend_extension(Flex, Autodiff)]
pub trait FusedSoftmaxBackend: Backend {
    /// The softmax of every row of the last dimension.
    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

static BURN_SOFTMAX: AtomicBool = AtomicBool::new(false);

/// Forces burn's own softmax on every backend (`ssi bench --softmax burn` measures the difference).
pub fn set_burn_softmax(burn: bool) {
    BURN_SOFTMAX.store(burn, Ordering::Relaxed);
}

/// Whether [`softmax_last`] runs the fused kernels on tensors of `device`.
pub fn supported(device: &Device) -> bool {
    *device == Device::flex() && !BURN_SOFTMAX.load(Ordering::Relaxed)
}

/// Softmax over the last dimension: the fused kernels on f32 tensors where [`supported`], burn's
/// elsewhere.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !supported(&x.device()) || x.dtype() != DType::F32 {
        return burn::tensor::activation::softmax(x, D - 1);
    }
    Tensor::from_dispatch(<Dispatch as FusedSoftmaxBackend>::fused_softmax_last(
        x.into_dispatch(),
    ))
}

impl FusedSoftmaxBackend for Flex {
    fn fused_softmax_last(x: FlexTensor) -> FlexTensor {
        forward(&x)
    }
}

#[derive(Debug)]
struct FusedSoftmax;

impl Backward<Flex, 1> for FusedSoftmax {
    /// The output y.
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let upstream = grads.consume::<Flex>(&ops.node);
        let y = ops.state;
        let shape = y.layout().shape().clone();
        let n = last_dim(&y);
        let ys = contiguous_f32(&y);
        let mut g = contiguous_f32(&upstream).into_owned();
        if n > 0 {
            #[cfg(not(target_arch = "wasm32"))]
            {
                use rayon::prelude::*;
                let task = rows_per_task(n) * n;
                g.par_chunks_mut(task)
                    .zip(ys.par_chunks(task))
                    .for_each(|(g, y)| simd::grad(g, y, n));
            }
            #[cfg(target_arch = "wasm32")]
            simd::grad(&mut g, &ys, n);
        }
        let [node] = ops.parents;
        if let Some(node) = node {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(g, shape)));
        }
    }
}

impl<C: CheckpointStrategy> FusedSoftmaxBackend for Autodiff<Flex, C> {
    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = forward(&Self::inner(x.clone()));
        match FusedSoftmax
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

fn last_dim(t: &FlexTensor) -> usize {
    *t.layout()
        .shape()
        .as_slice()
        .last()
        .expect("fused_softmax: a tensor of rank 0")
}

fn forward(x: &FlexTensor) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let n = last_dim(x);
    let mut y = contiguous_f32(x).into_owned();
    if n > 0 {
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            y.par_chunks_mut(rows_per_task(n) * n)
                .for_each(|y| simd::forward(y, n));
        }
        #[cfg(target_arch = "wasm32")]
        simd::forward(&mut y, n);
    }
    FlexTensor::from_data(TensorData::new(y, shape))
}

/// Rows of length `n` per parallel task: about 64 Ki elements, enough to amortise scheduling.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn rows_per_task(n: usize) -> usize {
    ((1 << 16) / n).max(1)
}

/// e^a, exactly 0 below −87 (a NaN stays NaN).
#[inline(always)]
pub(crate) fn exp_or_zero(a: f32) -> f32 {
    let e = crate::fused_ce::exp_poly(a);
    if a < -87.0 { 0.0 } else { e }
}

const LANES: usize = 16;

/// Σ f(a_i, b_i) in `LANES` independent accumulators, so the loop vectorises (a float sum in
/// order does not).
#[inline(always)]
pub(crate) fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let split = a.len() / LANES * LANES;
    for (ca, cb) in a[..split]
        .chunks_exact(LANES)
        .zip(b[..split].chunks_exact(LANES))
    {
        for k in 0..LANES {
            acc[k] += f(ca[k], cb[k]);
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (&x, &y) in a[split..].iter().zip(&b[split..]) {
        sum += f(x, y);
    }
    sum
}

/// One row in place: x ← softmax(x).
#[inline(always)]
fn row_forward(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        // +∞ in the row, or every entry −∞: the plain formula gives burn's NaN. (A NaN entry is
        // skipped by `max` and spreads through the sum below.)
        let s: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        for v in row.iter_mut() {
            *v = (*v - max).exp() / s;
        }
        return;
    }
    for v in row.iter_mut() {
        *v = exp_or_zero(*v - max);
    }
    let inv = 1.0 / lane_sum(row, row, |x, _| x);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// One row in place: g ← y ⊙ (g − Σ g ⊙ y).
#[inline(always)]
fn row_grad(g: &mut [f32], y: &[f32]) {
    let dot = lane_sum(g, y, |a, b| a * b);
    for (gi, &yi) in g.iter_mut().zip(y) {
        *gi = yi * (*gi - dot);
    }
}

#[inline(always)]
fn rows_forward(y: &mut [f32], n: usize) {
    for row in y.chunks_exact_mut(n) {
        row_forward(row);
    }
}

#[inline(always)]
fn rows_grad(g: &mut [f32], y: &[f32], n: usize) {
    for (gr, yr) in g.chunks_exact_mut(n).zip(y.chunks_exact(n)) {
        row_grad(gr, yr);
    }
}

/// The kernels compiled for the widest vector unit the CPU has (checked at run time).
mod simd {
    #[cfg(target_arch = "x86_64")]
    mod x86 {
        #[target_feature(enable = "avx512f")]
        pub fn forward_512(y: &mut [f32], n: usize) {
            super::super::rows_forward(y, n)
        }
        #[target_feature(enable = "avx512f")]
        pub fn grad_512(g: &mut [f32], y: &[f32], n: usize) {
            super::super::rows_grad(g, y, n)
        }
        #[target_feature(enable = "avx2,fma")]
        pub fn forward_256(y: &mut [f32], n: usize) {
            super::super::rows_forward(y, n)
        }
        #[target_feature(enable = "avx2,fma")]
        pub fn grad_256(g: &mut [f32], y: &[f32], n: usize) {
            super::super::rows_grad(g, y, n)
        }
    }

    pub fn forward(y: &mut [f32], n: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::forward_512(y, n) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { x86::forward_256(y, n) };
            }
        }
        super::rows_forward(y, n)
    }

    pub fn grad(g: &mut [f32], y: &[f32], n: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::grad_512(g, y, n) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { x86::grad_256(g, y, n) };
            }
        }
        super::rows_grad(g, y, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through autodiff, in value and gradient, as burn's softmax: an uneven upstream gradient, a
    /// non-contiguous input, masked (−10⁴) entries that must weigh exactly 0.
    #[test]
    fn autodiff_matches_burns_softmax() {
        let dev = Device::flex().autodiff();
        assert!(supported(&dev), "the fused kernels are what is tested");
        let values =
            |n: usize, f: fn(f32) -> f32| -> Vec<f32> { (0..n).map(|i| f(i as f32)).collect() };
        let run = |fused: bool| {
            let x = Tensor::<3>::from_data(
                TensorData::new(values(210, |i| (i * 0.37).sin() * 6.0), [5, 6, 7]),
                &dev,
            )
            .require_grad();
            let w = Tensor::<3>::from_data(
                TensorData::new(values(210, |i| (i * 0.11).cos()), [5, 7, 6]),
                &dev,
            );
            let mask = Tensor::<3, burn::tensor::Bool>::from_data(
                TensorData::new(
                    (0..210)
                        .map(|i| i % 7 == 3 || i % 11 == 0)
                        .collect::<Vec<_>>(),
                    [5, 7, 6],
                ),
                &dev,
            );
            // Masked, then transposed: the kernels read a non-contiguous tensor.
            let mask = mask.swap_dims(1, 2);
            let xt = x.clone().mask_fill(mask, -1.0e4).swap_dims(1, 2);
            let y = if fused {
                softmax_last(xt)
            } else {
                burn::tensor::activation::softmax(xt, 2)
            };
            let grads = (y.clone() * w).sum().backward();
            let gx: Vec<f32> = x
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let yv: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap();
            (yv, gx)
        };
        let (y1, g1) = run(true);
        let (y2, g2) = run(false);
        assert!(g1.iter().any(|g| g.abs() > 1e-3), "vacuous gradient");
        for (a, b) in y1.iter().zip(&y2).chain(g1.iter().zip(&g2)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // Masked entries weigh exactly 0.
        assert_eq!(
            y1.iter().filter(|&&v| v == 0.0).count(),
            y2.iter().filter(|&&v| v == 0.0).count()
        );
        assert!(y1.contains(&0.0));
    }

    #[test]
    fn vector_unit_kernels_compute_what_the_plain_ones_do() {
        let n = 53;
        let x: Vec<f32> = (0..n * 9)
            .map(|i| ((i as f32) * 0.29).sin() * 8.0)
            .collect();
        let g0: Vec<f32> = (0..n * 9).map(|i| ((i as f32) * 0.13).cos()).collect();
        let (mut a, mut b) = (x.clone(), x.clone());
        simd::forward(&mut a, n);
        rows_forward(&mut b, n);
        let (mut ga, mut gb) = (g0.clone(), g0.clone());
        simd::grad(&mut ga, &a, n);
        rows_grad(&mut gb, &b, n);
        for (p, q) in a.iter().zip(&b).chain(ga.iter().zip(&gb)) {
            assert!((p - q).abs() < 1e-6, "{p} vs {q}");
        }
        for row in a.chunks(n) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn rows_of_a_nan_or_all_masked_behave_as_the_formula() {
        let mut all_masked = vec![-1.0e4f32; 4];
        row_forward(&mut all_masked);
        assert_eq!(all_masked, vec![0.25; 4]);
        for bad in [f32::NAN, f32::INFINITY] {
            let mut row = vec![0.0f32, bad, 1.0];
            row_forward(&mut row);
            assert!(row.iter().all(|v| v.is_nan()), "{bad}: {row:?}");
        }
        let mut minus_inf = vec![0.0f32, f32::NEG_INFINITY];
        row_forward(&mut minus_inf);
        assert_eq!(minus_inf, vec![1.0, 0.0]);
    }
}
