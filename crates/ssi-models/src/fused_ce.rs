//! Fused softmax cross-entropy for burn's CPU backend (flex), with its own backward pass.
//!
//! Per row r of `logits` [P, N] with `bias` [N] and target t_r:
//! loss_r = logsumexp_j(z_rj + b_j) − (z_rt + b_t), and ∂loss_r/∂z_rj = softmax_j − [j = t_r].
//! The tensor version ([`crate::loss::full_ce_rows`]) makes burn run about ten element-wise passes
//! over the [P, N] logits (bias, max, shift, exp, sum, and their backward); here the forward is two
//! passes per row (max, then the sum of exponentials, with a polynomial `exp` the compiler
//! vectorises) and the backward one pass that writes the gradient of the logits and accumulates
//! the bias gradient. Rows run in parallel (rayon) natively. The tensor version stays the
//! reference it is tested against (`tests/loss.rs`), and the one used on other backends.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

#[backend_extension(Flex, Autodiff)]
pub trait FusedCeBackend: Backend {
    /// Per-row losses [P, 1] of the softmax cross-entropy of `logits` [P, N] + `bias` [N] against
    /// `targets` [P] (0-based, in range).
    fn fused_ce(
        logits: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Whether [`fused_ce_rows`] runs on tensors of `device`.
pub fn supported(device: &Device) -> bool {
    *device == Device::flex()
}

/// Per-row softmax cross-entropy [P, 1] of `logits` [P, N] + `bias` [N] against `targets` [P]
/// (0-based item indices, each below N). Only for [`supported`] devices.
pub fn fused_ce_rows(logits: Tensor<2>, bias: Tensor<1>, targets: Tensor<1, Int>) -> Tensor<2> {
    let out = <Dispatch as FusedCeBackend>::fused_ce(
        logits.into_dispatch(),
        bias.into_dispatch(),
        targets.into_dispatch(),
    );
    Tensor::from_dispatch(out)
}

impl FusedCeBackend for Flex {
    fn fused_ce(logits: FlexTensor, bias: FlexTensor, targets: FlexTensor) -> FlexTensor {
        losses(&logits, &bias, targets).0
    }
}

/// What the backward pass needs: the logits, the bias, the targets and each row's logsumexp.
#[derive(Debug, Clone)]
struct CeState {
    logits: FlexTensor,
    bias: FlexTensor,
    targets: Vec<usize>,
    lse: Vec<f32>,
}

#[derive(Debug)]
struct FusedCe;

impl Backward<Flex, 2> for FusedCe {
    type State = CeState;

    fn backward(self, ops: Ops<CeState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let upstream = grads.consume::<Flex>(&ops.node);
        let g = contiguous_f32(&upstream).into_owned();
        let s = ops.state;
        let (p, n) = dims2(&s.logits);
        let b = contiguous_f32(&s.bias).into_owned();
        // The gradient overwrites the logits where the state holds their only reference (the
        // usual case): no [P, N] allocation, no zero-filled pages.
        let mut dz = if s.logits.layout().contiguous_offsets() == Some((0, p * n))
            && s.logits.storage::<f32>().len() == p * n
            && s.logits.is_unique()
        {
            s.logits
        } else {
            let z = contiguous_f32(&s.logits).into_owned();
            FlexTensor::from_data(TensorData::new(z, [p, n]))
        };
        let buf = dz
            .try_storage_mut::<f32>()
            .expect("fused_ce: the gradient buffer is owned here");
        let db = backward(buf, &b, n, &s.targets, &s.lse, &g);
        let [logits_node, bias_node] = ops.parents;
        if let Some(node) = logits_node {
            grads.register::<Flex>(node.id, dz);
        }
        if let Some(node) = bias_node {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(db, [n])));
        }
    }
}

impl<C: CheckpointStrategy> FusedCeBackend for Autodiff<Flex, C> {
    fn fused_ce(
        logits: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        let z_prim = Self::inner(logits.clone());
        let b_prim = Self::inner(bias.clone());
        let (out, t, lse) = losses(&z_prim, &b_prim, targets);
        match FusedCe
            .prepare::<C>([logits.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                CeState {
                    logits: z_prim,
                    bias: b_prim,
                    targets: t,
                    lse,
                },
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// The per-row losses [P, 1], with the targets and each row's logsumexp for the backward pass.
fn losses(
    logits: &FlexTensor,
    bias: &FlexTensor,
    targets: FlexTensor,
) -> (FlexTensor, Vec<usize>, Vec<f32>) {
    let (p, n) = dims2(logits);
    let z = contiguous_f32(logits);
    let b = contiguous_f32(bias);
    let t = target_indices(targets, n);
    let mut lse = vec![0.0f32; p];
    forward(&z, &b, n, &mut lse);
    let loss: Vec<f32> = lse
        .iter()
        .zip(&t)
        .enumerate()
        .map(|(r, (&l, &t))| l - (z[r * n + t] + b[t]))
        .collect();
    (FlexTensor::from_data(TensorData::new(loss, [p, 1])), t, lse)
}

fn dims2(t: &FlexTensor) -> (usize, usize) {
    let dims = t.layout().shape().clone();
    match dims.as_slice() {
        [p, n] => (*p, *n),
        other => panic!("fused_ce: logits must be 2-d, got shape {other:?}"),
    }
}

/// The tensor's values in row-major order (borrowed when already contiguous).
pub(crate) fn contiguous_f32(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    assert_eq!(t.dtype(), DType::F32, "fused kernels: f32 tensors only");
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().unwrap().to_vec()),
    }
}

fn target_indices(targets: FlexTensor, n: usize) -> Vec<usize> {
    targets
        .into_data()
        .iter::<i64>()
        .map(|t| {
            assert!(
                (0..n as i64).contains(&t),
                "fused_ce: target {t} outside 0..{n}"
            );
            t as usize
        })
        .collect()
}

/// Rows per parallel task: enough work per task to amortise scheduling.
const ROWS_PER_TASK: usize = 16;

/// Each row's logsumexp of `z_r + b` into `lse`.
fn forward(z: &[f32], b: &[f32], n: usize, lse: &mut [f32]) {
    let rows = |(z, lse): (&[f32], &mut [f32])| {
        for (row, out) in z.chunks_exact(n).zip(lse.iter_mut()) {
            *out = simd::row_lse(row, b);
        }
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        z.par_chunks(n * ROWS_PER_TASK)
            .zip(lse.par_chunks_mut(ROWS_PER_TASK))
            .for_each(rows);
    }
    #[cfg(target_arch = "wasm32")]
    rows((z, lse));
}

/// Overwrites each row z_r of `zd` with g_r · (softmax(z_r + b) − onehot(t_r)); returns the bias
/// gradient (the column sums of the result).
fn backward(
    zd: &mut [f32],
    b: &[f32],
    n: usize,
    targets: &[usize],
    lse: &[f32],
    g: &[f32],
) -> Vec<f32> {
    let task = |(r0, zd): (usize, &mut [f32])| -> Vec<f32> {
        let mut db = vec![0.0f32; n];
        for (i, d) in zd.chunks_exact_mut(n).enumerate() {
            let r = r0 * ROWS_PER_TASK + i;
            simd::row_grad(d, b, lse[r], g[r]);
            d[targets[r]] -= g[r];
            for (acc, &v) in db.iter_mut().zip(d.iter()) {
                *acc += v;
            }
        }
        db
    };
    let add = |mut a: Vec<f32>, c: Vec<f32>| {
        for (x, y) in a.iter_mut().zip(c) {
            *x += y;
        }
        a
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        zd.par_chunks_mut(n * ROWS_PER_TASK)
            .enumerate()
            .map(task)
            .reduce(|| vec![0.0f32; n], add)
    }
    #[cfg(target_arch = "wasm32")]
    zd.chunks_mut(n * ROWS_PER_TASK)
        .enumerate()
        .map(task)
        .fold(vec![0.0f32; n], add)
}

const LANES: usize = 16;

/// The row kernels compiled for the widest vector unit the CPU has (checked at run time): the
/// same code, vectorised by the compiler 8 (AVX2) or 16 (AVX-512) lanes wide instead of SSE2's 4.
mod simd {
    #[cfg(target_arch = "x86_64")]
    mod x86 {
        #[target_feature(enable = "avx512f")]
        pub fn row_lse_512(z: &[f32], b: &[f32]) -> f32 {
            super::super::row_lse(z, b)
        }
        #[target_feature(enable = "avx512f")]
        pub fn row_grad_512(z: &mut [f32], b: &[f32], lse: f32, g: f32) {
            super::super::row_grad(z, b, lse, g)
        }
        #[target_feature(enable = "avx2")]
        pub fn row_lse_256(z: &[f32], b: &[f32]) -> f32 {
            super::super::row_lse(z, b)
        }
        #[target_feature(enable = "avx2")]
        pub fn row_grad_256(z: &mut [f32], b: &[f32], lse: f32, g: f32) {
            super::super::row_grad(z, b, lse, g)
        }
    }

    pub fn row_lse(z: &[f32], b: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::row_lse_512(z, b) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { x86::row_lse_256(z, b) };
            }
        }
        super::row_lse(z, b)
    }

    pub fn row_grad(z: &mut [f32], b: &[f32], lse: f32, g: f32) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::row_grad_512(z, b, lse, g) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { x86::row_grad_256(z, b, lse, g) };
            }
        }
        super::row_grad(z, b, lse, g)
    }
}

/// logsumexp of `z + b` over one row.
#[inline(always)]
fn row_lse(z: &[f32], b: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let (zc, zr) = z.split_at(z.len() / LANES * LANES);
    let (bc, br) = b.split_at(zc.len());
    for (zs, bs) in zc.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for k in 0..LANES {
            let v = zs[k] + bs[k];
            m[k] = if v > m[k] { v } else { m[k] };
        }
    }
    let mut max = m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (&zi, &bi) in zr.iter().zip(br) {
        max = max.max(zi + bi);
    }
    if !max.is_finite() {
        // Every logit is −∞ (or a NaN/∞ is present): the plain formula gives the right NaN/∞.
        return z
            .iter()
            .zip(b)
            .map(|(&zi, &bi)| (zi + bi - max).exp())
            .sum::<f32>()
            .ln()
            + max;
    }
    let mut s = [0.0f32; LANES];
    for (zs, bs) in zc.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for k in 0..LANES {
            s[k] += exp_poly(zs[k] + bs[k] - max);
        }
    }
    let mut sum: f32 = s.iter().sum();
    for (&zi, &bi) in zr.iter().zip(br) {
        sum += exp_poly(zi + bi - max);
    }
    sum.ln() + max
}

/// z ← g · exp(z + b − lse) over one row.
#[inline(always)]
fn row_grad(z: &mut [f32], b: &[f32], lse: f32, g: f32) {
    for (zi, &bi) in z.iter_mut().zip(b) {
        *zi = g * exp_poly(*zi + bi - lse);
    }
}

/// e^x for x ≤ 0 (and a little above), branch-free so loops over it vectorise: x = k·ln 2 + r with
/// |r| ≤ ln 2 / 2, e^r by its Taylor polynomial to degree 7 (relative error below 2e-7 in f32),
/// 2^k through the exponent bits. Arguments below −87 give e^−87 ≈ 1.6e-38 instead of a smaller
/// number, which no softmax sum or gradient can tell apart from 0 at f32 precision.
#[inline(always)]
pub(crate) fn exp_poly(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer without a rounding
    // instruction (not in baseline SSE2).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let kf = shifted - ROUND;
    let r = x - kf * LN2_HI - kf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // k from the bits of `shifted` (ROUND's bits plus k), not `kf as i32`: Rust's saturating
    // float-to-int cast does not vectorise.
    let k = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(k.wrapping_add(127) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_poly_matches_exp() {
        let mut worst = 0.0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = (exp_poly(x) - x.exp()).abs() / x.exp();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp_poly(0.0), 1.0);
        assert!(exp_poly(-1000.0) < 1e-37);
    }

    /// 2^k from the float's bits is the saturating cast's: the same values at every k.
    #[test]
    fn exp_poly_scale_is_the_cast_formula() {
        let old = |x: f32| {
            let x = x.clamp(-87.0, 88.0);
            let kf = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
            let r = x - kf * 0.693_145_75 - kf * 1.428_606_8e-6;
            let p = 1.0
                + r * (1.0
                    + r * (0.5
                        + r * (1.0 / 6.0
                            + r * (1.0 / 24.0
                                + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
            p * f32::from_bits(((kf as i32 + 127) as u32) << 23)
        };
        for k in -126..=127 {
            for d in [-0.4f32, -1e-3, 0.0, 1e-3, 0.4] {
                let x = k as f32 * std::f32::consts::LN_2 + d;
                assert_eq!(exp_poly(x).to_bits(), old(x).to_bits(), "x = {x}");
            }
        }
        for x in [-87.0f32, 88.0, -1000.0, 1000.0] {
            assert_eq!(exp_poly(x).to_bits(), old(x).to_bits(), "x = {x}");
        }
    }

    #[test]
    fn row_lse_matches_the_definition() {
        let z: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = z
            .iter()
            .zip(&b)
            .map(|(&a, &c)| ((a + c) as f64).exp())
            .sum::<f64>()
            .ln();
        assert!((row_lse(&z, &b) as f64 - want).abs() < 1e-5);
        // The vector-unit versions compute the same.
        assert!((simd::row_lse(&z, &b) as f64 - want).abs() < 1e-5);
        let (mut d1, mut d2) = (z.clone(), z.clone());
        row_grad(&mut d1, &b, 3.0, 0.5);
        simd::row_grad(&mut d2, &b, 3.0, 0.5);
        for (x, y) in d1.iter().zip(&d2) {
            assert!((x - y).abs() <= 1e-6 * x.abs().max(1e-3), "{x} vs {y}");
        }
    }
}
