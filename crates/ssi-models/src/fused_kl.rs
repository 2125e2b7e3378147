//! Eq. 5's divergence for burn's CPU backend (flex), with its own backward pass: per row r of
//! the student's logits s [P, N] and a teacher's t [P, N] at temperature T, with a = s/T and
//! b = t/T,
//!
//! KL_r = Σ_j q_j (b_j − lse(b) − a_j + lse(a)), q = softmax(b),
//! ∂KL_r/∂s_j = (softmax(a)_j − q_j) / T, ∂KL_r/∂t_j = q_j (log q_j − log p_j − KL_r) / T.
//!
//! The tensor version ([`crate::imitation::prediction_imitation`]: two log-softmaxes, exp,
//! subtract, multiply, sum, and their backward) makes burn allocate and walk about thirty [P, N]
//! tensors per teacher; here a row takes four reading passes forward (two maxima, two sums of
//! exponentials) and one for the divergence, and one writing pass backward. The tensor version
//! stays the reference it is tested against (`tests/imitation.rs`) and the one other backends use.

use crate::fused_ce::contiguous_f32;
use crate::fused_softmax::lane_sum;
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
pub trait FusedKlBackend: Backend {
    /// Per-row D_KL(softmax(teacher/T) ‖ softmax(student/T)) [P, 1] of two [P, N] logit tensors.
    fn fused_kl(
        student: FloatTensor<Self>,
        teacher: FloatTensor<Self>,
        temperature: f32,
    ) -> FloatTensor<Self>;
}

static TENSOR_KL: AtomicBool = AtomicBool::new(false);

/// Forces the tensor version on every backend (to measure the difference).
pub fn set_tensor_kl(tensor: bool) {
    TENSOR_KL.store(tensor, Ordering::Relaxed);
}

/// Whether [`kl_rows`] runs the fused kernels on tensors of `device`.
pub fn supported(device: &Device) -> bool {
    *device == Device::flex() && !TENSOR_KL.load(Ordering::Relaxed)
}

/// Per-row D_KL(softmax(teacher/T) ‖ softmax(student/T)) [P, 1]: the fused kernels on f32 flex
/// tensors, the tensor version elsewhere. The teacher may live on a device without autodiff
/// (then it is a constant, as in the tensor version).
pub fn kl_rows(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<2> {
    // The kernels take the row maximum of the scaled logits as max · (1/T): T > 0 only.
    let fusable = supported(&student.device())
        && temperature.is_finite()
        && temperature > 0.0
        && student.dtype() == DType::F32
        && teacher.dtype() == DType::F32
        && student.dims() == teacher.dims();
    if !fusable {
        let t = crate::imitation::tempered_log_probs(teacher, temperature);
        let s = crate::imitation::tempered_log_probs(student, temperature);
        return (t.clone().exp() * (t - s)).sum_dim(1);
    }
    Tensor::from_dispatch(<Dispatch as FusedKlBackend>::fused_kl(
        student.into_dispatch(),
        teacher.into_dispatch(),
        temperature as f32,
    ))
}

impl FusedKlBackend for Flex {
    fn fused_kl(student: FlexTensor, teacher: FlexTensor, temperature: f32) -> FlexTensor {
        forward(&student, &teacher, 1.0 / temperature).0
    }
}

/// What the backward pass needs: both logit tensors, 1/T, and per row lse(a), lse(b) and KL.
#[derive(Debug, Clone)]
struct KlState {
    student: FlexTensor,
    teacher: FlexTensor,
    inv_t: f32,
    rows: Vec<RowStats>,
}

#[derive(Debug, Clone, Copy, Default)]
struct RowStats {
    lse_a: f32,
    lse_b: f32,
    kl: f32,
}

#[derive(Debug)]
struct FusedKl;

impl Backward<Flex, 2> for FusedKl {
    type State = KlState;

    fn backward(self, ops: Ops<KlState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let upstream = grads.consume::<Flex>(&ops.node);
        let g = contiguous_f32(&upstream).into_owned();
        let st = ops.state;
        let (p, n) = dims2(&st.student);
        let s = contiguous_f32(&st.student);
        let t = contiguous_f32(&st.teacher);
        let [student_node, teacher_node] = ops.parents;
        let grad = |teacher_side: bool| {
            let mut out = vec![0.0f32; p * n];
            if n > 0 {
                let task = |(i, out): (usize, &mut [f32])| {
                    let r0 = i * ROWS_PER_TASK;
                    for (k, o) in out.chunks_exact_mut(n).enumerate() {
                        let r = r0 + k;
                        let (sr, tr) = (&s[r * n..(r + 1) * n], &t[r * n..(r + 1) * n]);
                        simd::grad(o, sr, tr, st.inv_t, st.rows[r], g[r], teacher_side);
                    }
                };
                #[cfg(not(target_arch = "wasm32"))]
                {
                    use rayon::prelude::*;
                    out.par_chunks_mut(n * ROWS_PER_TASK)
                        .enumerate()
                        .for_each(task);
                }
                #[cfg(target_arch = "wasm32")]
                out.chunks_mut(n * ROWS_PER_TASK).enumerate().for_each(task);
            }
            FlexTensor::from_data(TensorData::new(out, [p, n]))
        };
        if let Some(node) = student_node {
            grads.register::<Flex>(node.id, grad(false));
        }
        if let Some(node) = teacher_node {
            grads.register::<Flex>(node.id, grad(true));
        }
    }
}

impl<C: CheckpointStrategy> FusedKlBackend for Autodiff<Flex, C> {
    fn fused_kl(
        student: FloatTensor<Self>,
        teacher: FloatTensor<Self>,
        temperature: f32,
    ) -> FloatTensor<Self> {
        let s_prim = Self::inner(student.clone());
        let t_prim = Self::inner(teacher.clone());
        let inv_t = 1.0 / temperature;
        let (out, rows) = forward(&s_prim, &t_prim, inv_t);
        match FusedKl
            .prepare::<C>([student.node(), teacher.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                KlState {
                    student: s_prim,
                    teacher: t_prim,
                    inv_t,
                    rows,
                },
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// The per-row divergences [P, 1], with each row's statistics for the backward pass.
fn forward(student: &FlexTensor, teacher: &FlexTensor, inv_t: f32) -> (FlexTensor, Vec<RowStats>) {
    let (p, n) = dims2(student);
    assert_eq!(
        (p, n),
        dims2(teacher),
        "fused_kl: student and teacher logits differ in shape"
    );
    let s = contiguous_f32(student);
    let t = contiguous_f32(teacher);
    let mut rows = vec![RowStats::default(); p];
    if n > 0 {
        let task = |((s, t), rows): ((&[f32], &[f32]), &mut [RowStats])| {
            for ((sr, tr), out) in s.chunks_exact(n).zip(t.chunks_exact(n)).zip(rows) {
                *out = simd::stats(sr, tr, inv_t);
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            s.par_chunks(n * ROWS_PER_TASK)
                .zip(t.par_chunks(n * ROWS_PER_TASK))
                .zip(rows.par_chunks_mut(ROWS_PER_TASK))
                .for_each(task);
        }
        #[cfg(target_arch = "wasm32")]
        s.chunks(n * ROWS_PER_TASK)
            .zip(t.chunks(n * ROWS_PER_TASK))
            .zip(rows.chunks_mut(ROWS_PER_TASK))
            .for_each(task);
    }
    let kl: Vec<f32> = rows.iter().map(|r| r.kl).collect();
    (FlexTensor::from_data(TensorData::new(kl, [p, 1])), rows)
}

fn dims2(t: &FlexTensor) -> (usize, usize) {
    match t.layout().shape().as_slice() {
        [p, n] => (*p, *n),
        other => panic!("fused_kl: logits must be 2-d, got shape {other:?}"),
    }
}

/// Rows per parallel task: enough work per task to amortise scheduling.
const ROWS_PER_TASK: usize = 16;

const LANES: usize = 16;

/// The largest entry, in `LANES` independent maxima (NaN entries are skipped).
#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let split = x.len() / LANES * LANES;
    for c in x[..split].chunks_exact(LANES) {
        for k in 0..LANES {
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
        }
    }
    let mut max = m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for &v in &x[split..] {
        max = max.max(v);
    }
    max
}

/// lse(x · inv_t) over one row (inv_t > 0, so the maximum of the scaled row is max · inv_t).
#[inline(always)]
fn row_lse(x: &[f32], inv_t: f32) -> f32 {
    let max = lane_max(x);
    if !max.is_finite() {
        // ±∞ in the row or every entry −∞: the plain formula gives the tensor version's ∞/NaN.
        let m = max * inv_t;
        return x.iter().map(|&v| (v * inv_t - m).exp()).sum::<f32>().ln() + m;
    }
    let m = max * inv_t;
    let exp = crate::fused_ce::exp_poly;
    lane_sum(x, x, |v, _| exp(v * inv_t - m)).ln() + m
}

#[inline(always)]
fn row_stats(s: &[f32], t: &[f32], inv_t: f32) -> RowStats {
    let lse_a = row_lse(s, inv_t);
    let lse_b = row_lse(t, inv_t);
    let exp = crate::fused_softmax::exp_or_zero;
    let kl = lane_sum(s, t, |sj, tj| {
        let log_q = tj * inv_t - lse_b;
        exp(log_q) * (log_q - (sj * inv_t - lse_a))
    });
    RowStats { lse_a, lse_b, kl }
}

/// One row of the gradient, times the upstream `g`: with respect to the student's logits
/// ((p − q) / T), or the teacher's (q (log q − log p − KL) / T).
#[inline(always)]
fn row_grad(out: &mut [f32], s: &[f32], t: &[f32], inv_t: f32, r: RowStats, g: f32, teacher: bool) {
    // Probabilities below e^−87 are exactly 0, as the tensor version's underflow makes them.
    let exp = crate::fused_softmax::exp_or_zero;
    let scale = g * inv_t;
    if teacher {
        for ((o, &sj), &tj) in out.iter_mut().zip(s).zip(t) {
            let log_q = tj * inv_t - r.lse_b;
            let log_p = sj * inv_t - r.lse_a;
            *o = scale * exp(log_q) * (log_q - log_p - r.kl);
        }
    } else {
        for ((o, &sj), &tj) in out.iter_mut().zip(s).zip(t) {
            *o = scale * (exp(sj * inv_t - r.lse_a) - exp(tj * inv_t - r.lse_b));
        }
    }
}

/// The row kernels compiled for the widest vector unit the CPU has (checked at run time).
mod simd {
    use super::RowStats;

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::RowStats;
        #[target_feature(enable = "avx512f")]
        pub fn stats_512(s: &[f32], t: &[f32], inv_t: f32) -> RowStats {
            super::super::row_stats(s, t, inv_t)
        }
        #[target_feature(enable = "avx512f")]
        pub fn grad_512(
            o: &mut [f32],
            s: &[f32],
            t: &[f32],
            inv_t: f32,
            r: RowStats,
            g: f32,
            teacher: bool,
        ) {
            super::super::row_grad(o, s, t, inv_t, r, g, teacher)
        }
        #[target_feature(enable = "avx2,fma")]
        pub fn stats_256(s: &[f32], t: &[f32], inv_t: f32) -> RowStats {
            super::super::row_stats(s, t, inv_t)
        }
        #[target_feature(enable = "avx2,fma")]
        pub fn grad_256(
            o: &mut [f32],
            s: &[f32],
            t: &[f32],
            inv_t: f32,
            r: RowStats,
            g: f32,
            teacher: bool,
        ) {
            super::super::row_grad(o, s, t, inv_t, r, g, teacher)
        }
    }

    pub fn stats(s: &[f32], t: &[f32], inv_t: f32) -> RowStats {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::stats_512(s, t, inv_t) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { x86::stats_256(s, t, inv_t) };
            }
        }
        super::row_stats(s, t, inv_t)
    }

    pub fn grad(
        o: &mut [f32],
        s: &[f32],
        t: &[f32],
        inv_t: f32,
        r: RowStats,
        g: f32,
        teacher: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::grad_512(o, s, t, inv_t, r, g, teacher) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { x86::grad_256(o, s, t, inv_t, r, g, teacher) };
            }
        }
        super::row_grad(o, s, t, inv_t, r, g, teacher)
    }
}
