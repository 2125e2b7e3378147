//! The exact GELU, x · Φ(x) = x/2 · (1 + erf(x/√2)), for burn's CPU backend (flex), with its own
//! backward pass: ∂/∂x = Φ(x) + x · φ(x), φ(x) = e^(−x²/2) / √(2π).
//!
//! burn's flex GELU calls a scalar `erf` per element forward and again backward (with an `exp`):
//! in a SASRec training step on Toys that was about a tenth of the time (perf, docs/results/bench.md).
//! Here `erf` is Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, the rounding of f32) on
//! the polynomial `exp` of [`crate::fused_ce`], branch-free so both passes vectorise, and the
//! forward and backward share one `exp`. Other backends keep burn's GELU.

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
pub trait FusedGeluBackend: Backend {
    /// The exact GELU of every element.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

static BURN_GELU: AtomicBool = AtomicBool::new(false);

/// Forces burn's own GELU on every backend (`ssi bench --gelu burn` measures the difference).
pub fn set_burn_gelu(burn: bool) {
    BURN_GELU.store(burn, Ordering::Relaxed);
}

/// Whether [`gelu`] runs the fused kernels on tensors of `device`.
pub fn supported(device: &Device) -> bool {
    *device == Device::flex() && !BURN_GELU.load(Ordering::Relaxed)
}

/// The exact GELU: the fused kernels on f32 tensors where [`supported`], burn's elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !supported(&x.device()) || x.dtype() != DType::F32 {
        return burn::tensor::activation::gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedGeluBackend>::fused_gelu(
        x.into_dispatch(),
    ))
}

impl FusedGeluBackend for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        forward(&x)
    }
}

#[derive(Debug)]
struct FusedGelu;

impl Backward<Flex, 1> for FusedGelu {
    /// The input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let upstream = grads.consume::<Flex>(&ops.node);
        let x = ops.state;
        let shape = x.layout().shape().clone();
        let xs = contiguous_f32(&x);
        let mut g = contiguous_f32(&upstream).into_owned();
        in_parallel_zip(&mut g, &xs, simd::grad);
        let [node] = ops.parents;
        if let Some(node) = node {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(g, shape)));
        }
    }
}

impl<C: CheckpointStrategy> FusedGeluBackend for Autodiff<Flex, C> {
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prim = Self::inner(x.clone());
        let out = forward(&prim);
        match FusedGelu
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(prim, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

fn forward(x: &FlexTensor) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let mut y = contiguous_f32(x).into_owned();
    in_parallel(&mut y, simd::forward);
    FlexTensor::from_data(TensorData::new(y, shape))
}

/// Elements per parallel task: enough work per task to amortise scheduling.
#[cfg(not(target_arch = "wasm32"))]
const CHUNK: usize = 1 << 16;

/// `f` over `y` in chunks on burn flex's rayon pool (natively; in order on wasm).
fn in_parallel(y: &mut [f32], f: fn(&mut [f32])) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        y.par_chunks_mut(CHUNK).for_each(f);
    }
    #[cfg(target_arch = "wasm32")]
    f(y);
}

/// `f(x, g)` over matching chunks of `g` and `x`.
fn in_parallel_zip(g: &mut [f32], x: &[f32], f: fn(&[f32], &mut [f32])) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        g.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(g, x)| f(x, g));
    }
    #[cfg(target_arch = "wasm32")]
    f(x, g);
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / √(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Φ(x) and e^(−x²/2), branch-free: erf(|x|/√2) by Abramowitz & Stegun 7.1.26, its sign restored.
#[inline(always)]
fn cdf_and_gauss(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let z = x.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    // Exactly 0 where e^(−z²) underflows (as burn's), not e^−87 with its subnormal products.
    let a = -z * z;
    let gauss = if a < -87.0 {
        0.0
    } else {
        crate::fused_ce::exp_poly(a)
    };
    let erf_abs = 1.0 - poly * gauss;
    let erf = f32::copysign(erf_abs, x);
    (0.5 * (1.0 + erf), gauss)
}

#[inline(always)]
fn forward_slice(y: &mut [f32]) {
    for v in y.iter_mut() {
        let (cdf, _) = cdf_and_gauss(*v);
        *v *= cdf;
    }
}

/// g ← g · (Φ(x) + x · φ(x)).
#[inline(always)]
fn grad_slice(x: &[f32], g: &mut [f32]) {
    for (gi, &xi) in g.iter_mut().zip(x) {
        let (cdf, gauss) = cdf_and_gauss(xi);
        *gi *= cdf + xi * INV_SQRT_2PI * gauss;
    }
}

/// The kernels compiled for the widest vector unit the CPU has (checked at run time).
mod simd {
    #[cfg(target_arch = "x86_64")]
    mod x86 {
        #[target_feature(enable = "avx512f")]
        pub fn forward_512(y: &mut [f32]) {
            super::super::forward_slice(y)
        }
        #[target_feature(enable = "avx512f")]
        pub fn grad_512(x: &[f32], g: &mut [f32]) {
            super::super::grad_slice(x, g)
        }
        #[target_feature(enable = "avx2,fma")]
        pub fn forward_256(y: &mut [f32]) {
            super::super::forward_slice(y)
        }
        #[target_feature(enable = "avx2,fma")]
        pub fn grad_256(x: &[f32], g: &mut [f32]) {
            super::super::grad_slice(x, g)
        }
    }

    pub fn forward(y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::forward_512(y) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { x86::forward_256(y) };
            }
        }
        super::forward_slice(y)
    }

    pub fn grad(x: &[f32], g: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { x86::grad_512(x, g) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { x86::grad_256(x, g) };
            }
        }
        super::grad_slice(x, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(x: f64) -> (f64, f64) {
        let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (x * cdf, cdf + x * pdf)
    }

    #[test]
    fn kernels_match_the_exact_gelu_and_its_derivative() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.0025).collect();
        let mut y = xs.clone();
        simd::forward(&mut y);
        let mut g = vec![1.0f32; xs.len()];
        simd::grad(&xs, &mut g);
        let (mut scalar_y, mut scalar_g) = (xs.clone(), vec![1.0f32; xs.len()]);
        forward_slice(&mut scalar_y);
        grad_slice(&xs, &mut scalar_g);
        for (i, &x) in xs.iter().enumerate() {
            let (want_y, want_g) = exact(x as f64);
            assert!(
                (y[i] as f64 - want_y).abs() < 4e-7 * (1.0 + (x as f64).abs()),
                "gelu({x}) = {} not {want_y}",
                y[i]
            );
            assert!(
                (g[i] as f64 - want_g).abs() < 1e-6,
                "gelu'({x}) = {} not {want_g}",
                g[i]
            );
            assert!((y[i] - scalar_y[i]).abs() <= 1e-6 * (1.0 + x.abs()));
            assert!((g[i] - scalar_g[i]).abs() <= 1e-6);
        }
        // Far tails: x and 0 exactly enough, no NaN.
        let mut far = vec![-100.0f32, -20.0, 20.0, 100.0, 1e38];
        simd::forward(&mut far);
        assert_eq!(&far[2..], &[20.0, 100.0, 1e38]);
        assert!(far[0].abs() < 1e-30 && far[1].abs() < 1e-30, "{far:?}");
        let mut g = vec![1.0f32; 2];
        simd::grad(&[1e38, -1e38], &mut g);
        assert_eq!(g, vec![1.0, 0.0]);
    }

    /// Through autodiff, in value and gradient, as burn's GELU (an uneven upstream gradient, a
    /// non-contiguous input, ranks 3 and 4).
    #[test]
    fn autodiff_matches_burns_gelu() {
        let dev = Device::flex().autodiff();
        assert!(supported(&dev), "the fused kernels are what is tested");
        let values =
            |n: usize, f: fn(f32) -> f32| -> Vec<f32> { (0..n).map(|i| f(i as f32)).collect() };
        let run = |fused: bool| {
            let x = Tensor::<3>::from_data(
                TensorData::new(values(210, |i| (i * 0.37).sin() * 4.0), [5, 6, 7]),
                &dev,
            )
            .require_grad();
            let w = Tensor::<3>::from_data(
                TensorData::new(values(210, |i| (i * 0.11).cos()), [5, 7, 6]),
                &dev,
            );
            let xt = x.clone().swap_dims(1, 2);
            let y = if fused {
                gelu(xt)
            } else {
                burn::tensor::activation::gelu(xt)
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
            assert!((a - b).abs() < 2e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
        // The upstream gradient of a sum is a broadcast (zero-stride) tensor of ones.
        let x =
            Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, 0.0, 2.0, 40.0], [2, 2]), &dev)
                .require_grad();
        let grads = gelu(x.clone()).sum().backward();
        let g: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want = [-0.083_315_4f32, 0.5, 1.085_231, 1.0];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{g:?}");
        }
        // Other float types take burn's GELU.
        let x64 = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, -0.5], [2]), &Device::flex())
            .cast(DType::F64);
        assert_eq!(x64.dtype(), DType::F64);
        let y64: Vec<f64> = gelu(x64).into_data().try_to_vec::<f64>().unwrap();
        assert!((y64[0] - 0.345_731_4).abs() < 1e-6 && (y64[1] + 0.154_268_6).abs() < 1e-6);
        let x4 = Tensor::<4>::ones([2, 1, 2, 2], &dev) * 0.5;
        let y4: Vec<f32> = gelu(x4).into_data().try_to_vec::<f32>().unwrap();
        assert!(y4.iter().all(|&v| (v - 0.345_731_4).abs() < 1e-6), "{y4:?}");
    }
}
