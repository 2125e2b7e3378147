//! The transformer encoder's forward pass over burn's own modules (same parameters, same records,
//! same arithmetic as `TransformerEncoder::forward` with pre-norm), with a faster dropout, the
//! fused GELU of [`crate::fused_gelu`] and the fused softmax of [`crate::fused_softmax`].
//!
//! Why: burn's `Dropout` draws every element through a ChaCha generator and a per-element
//! distribution sampler; in a SASRec training step on the CPU that was about a fifth of the time
//! (perf, Beauty, docs/results/bench.md). Here the mask comes from Xoshiro256++, 32 bits per
//! element compared against a threshold. Same semantics: active only in training mode on an
//! autodiff device, kept elements scaled by 1 / (1 - p). On a GPU the mask would be drawn on the
//! CPU and uploaded every time, 3–5× slower steps than burn's dropout drawn on the device
//! (docs/results/gpu.md), so GPUs keep burn's.

use burn::nn::Dropout;
use burn::nn::attention::MultiHeadAttention;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderLayer};
use burn::tensor::activation::quiet_softmax;
use burn::tensor::{Bool, Tensor, TensorData};
use ssi_data::rng::{RngCore, SeedableRng, SsiRng, mix};
use std::cell::RefCell;

/// Which dropout masks [`dropout`] draws (`ssi bench --dropout` measures each; the training
/// setting `dropout_masks` chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropoutMasks {
    /// Fast masks on the CPU backend, burn's on-device dropout elsewhere.
    #[default]
    Auto,
    /// Fast masks (drawn on the CPU) on every backend.
    Fast,
    /// burn's own `Dropout::forward` on every backend.
    Burn,
}

/// Sets the dropout masks of this thread (the trainer does so per epoch, from its run's
/// `dropout_masks`): per thread, so runs trained side by side keep their own.
pub fn set_dropout_masks(masks: DropoutMasks) {
    MASKS.with(|m| m.set(masks));
}

thread_local! {
    static MASKS: std::cell::Cell<DropoutMasks> = const { std::cell::Cell::new(DropoutMasks::Auto) };
    static MASK_RNG: RefCell<SsiRng> = RefCell::new(SsiRng::seed_from_u64(mix(0)));
}

/// Seeds the dropout masks of this thread (the trainer does so per epoch, beside burn's device
/// seed, so a resumed run replays the same masks).
pub fn seed_dropout(seed: u64) {
    MASK_RNG.with(|r| *r.borrow_mut() = SsiRng::seed_from_u64(mix(seed)));
}

/// `d.forward(x)` with a fast mask.
pub fn dropout<const D: usize>(d: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let burn = match MASKS.with(std::cell::Cell::get) {
        DropoutMasks::Fast => false,
        DropoutMasks::Burn => true,
        DropoutMasks::Auto => x.device() != burn::tensor::Device::flex(),
    };
    if burn {
        return d.forward(x);
    }
    if !d.training.is_enabled() || !x.device().is_autodiff() || d.prob == 0.0 {
        return x;
    }
    let shape = x.shape();
    let n = shape.num_elements();
    let keep = 1.0 - d.prob;
    let scale = (1.0 / keep) as f32;
    // Kept when a uniform 32-bit draw is below keep * 2^32.
    let threshold = (keep * 4_294_967_296.0).min(4_294_967_295.0) as u64;
    // Two elements per 64-bit draw (low half first). Branch-free (at p = 0.5 a branch per element
    // mispredicts half the time) and on a local copy of the generator (its state stays in
    // registers): several times faster than a per-element `if`.
    let scale_bits = scale.to_bits();
    let keep_or_drop = move |half: u64| {
        // All ones when half < threshold (both below 2^33, so the difference's sign bit says so).
        let all = 0u32.wrapping_sub((half.wrapping_sub(threshold) >> 63) as u32);
        f32::from_bits(scale_bits & all)
    };
    let mut mask = vec![0.0f32; n];
    MASK_RNG.with(|r| {
        let mut rng = r.borrow().clone();
        let mut pairs = mask.chunks_exact_mut(2);
        for pair in &mut pairs {
            let bits = rng.next_u64();
            pair[0] = keep_or_drop(bits & 0xFFFF_FFFF);
            pair[1] = keep_or_drop(bits >> 32);
        }
        if let [last] = pairs.into_remainder() {
            *last = keep_or_drop(rng.next_u64() & 0xFFFF_FFFF);
        }
        *r.borrow_mut() = rng;
    });
    let mask = Tensor::<D>::from_data(TensorData::new(mask, shape), &x.device());
    x * mask
}

/// The encoder over `x` [batch, len, hidden]: `padding` [batch, len] marks keys never attended to,
/// `attn` [batch, len, len] marks further forbidden (query, key) pairs (the causal mask).
pub fn encode(
    enc: &TransformerEncoder,
    mut x: Tensor<3>,
    padding: Option<Tensor<2, Bool>>,
    attn: Option<Tensor<3, Bool>>,
) -> Tensor<3> {
    for layer in &enc.layers {
        x = layer_forward(layer, x, padding.clone(), attn.clone());
    }
    x
}

fn layer_forward(
    l: &TransformerEncoderLayer,
    x: Tensor<3>,
    padding: Option<Tensor<2, Bool>>,
    attn: Option<Tensor<3, Bool>>,
) -> Tensor<3> {
    if l.norm_first {
        let a = attention(&l.mha, l.norm_2.forward(x.clone()), padding, attn);
        let x = x + dropout(&l.dropout, a);
        let f = feed_forward(l, l.norm_1.forward(x.clone()));
        x + dropout(&l.dropout, f)
    } else {
        let a = attention(&l.mha, x.clone(), padding, attn);
        let x = l.norm_1.forward(x + dropout(&l.dropout, a));
        let f = feed_forward(l, x.clone());
        l.norm_2.forward(x + dropout(&l.dropout, f))
    }
}

/// `lin` applied to every position of `x` [batch, len, d_in] as one [batch·len, d_in] product:
/// burn's `Linear` keeps a 3-d input as `batch` small products of `len` rows (its transform
/// policy merges batches only where that makes the product squarer), and on the CPU backend
/// those small products took about a third of the matrix-product time of a SASRec step.
pub fn linear_rows(lin: &burn::nn::Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, l, d] = x.dims();
    let y = lin.forward(x.reshape([b * l, d]));
    let out = y.dims()[1];
    y.reshape([b, l, out])
}

fn feed_forward(l: &TransformerEncoderLayer, x: Tensor<3>) -> Tensor<3> {
    let p = &l.pwff;
    let x = linear_rows(&p.linear_inner, x);
    let h = match &p.activation {
        burn::nn::activation::Activation::Gelu(g) if !g.approximate => crate::fused_gelu::gelu(x),
        other => other.forward(x),
    };
    linear_rows(&p.linear_outer, dropout(&p.dropout, h))
}

/// Multi-head self-attention as burn's `MultiHeadAttention::forward`.
fn attention(
    m: &MultiHeadAttention,
    x: Tensor<3>,
    padding: Option<Tensor<2, Bool>>,
    attn: Option<Tensor<3, Bool>>,
) -> Tensor<3> {
    let [b, l, d] = x.dims();
    let heads = |lin: &burn::nn::Linear| {
        linear_rows(lin, x.clone())
            .reshape([b, l, m.n_heads, m.d_k])
            .swap_dims(1, 2)
    };
    let (q, k, v) = (heads(&m.query), heads(&m.key), heads(&m.value));
    let mut scores = q.matmul(k.transpose()).div_scalar((m.d_k as f32).sqrt());
    if let Some(p) = padding {
        scores = scores.mask_fill(p.reshape([b, 1, 1, l]), m.min_float);
    }
    if let Some(a) = attn {
        scores = scores.mask_fill(a.reshape([b, 1, l, l]), m.min_float);
    }
    attend(m, scores, v, [b, l, d])
}

/// The attention's output from its (masked) scores [batch, heads, queries, keys] and values
/// [batch, heads, keys, d_k]: softmax, dropout, the weighted values, the output projection:
/// `out` = [batch, queries, d].
fn attend(m: &MultiHeadAttention, scores: Tensor<4>, v: Tensor<4>, out: [usize; 3]) -> Tensor<3> {
    let w = if m.quiet_softmax {
        quiet_softmax(scores, 3)
    } else {
        crate::fused_softmax::softmax_last(scores)
    };
    let ctx = dropout(&m.dropout, w)
        .matmul(v)
        .swap_dims(1, 2)
        .reshape(out);
    linear_rows(&m.output, ctx)
}

/// The causal encoder's state at the last position, [batch, hidden]: [`encode`] with a causal
/// mask, read at the last position, computed without what that position does not need (in the
/// last layer, only its own query, residual and feed-forward). `x` [batch, n, hidden] holds the
/// inputs of the last `n` positions, `padding` [batch, n] marks keys never attended to.
///
/// `pad` [1, len, hidden], at inference only (no dropout): the inputs of a sequence of padding
/// only, for sequences left-padded to `len` whose padding is attended (SASRec's
/// `attend_padding`) of which `x` holds the last `n` positions. Under causal attention a padding
/// position sees only the padding before it, so its states are the same in every sequence: they
/// are computed once, from `pad`, and each row computes only its last `n` positions.
pub fn encode_last_causal(
    enc: &TransformerEncoder,
    mut x: Tensor<3>,
    pad: Option<Tensor<3>>,
    padding: Option<Tensor<2, Bool>>,
) -> Tensor<2> {
    let [b, n, d] = x.dims();
    let len = pad.as_ref().map_or(n, |p| p.dims()[1]);
    assert!(
        n >= 1 && n <= len,
        "encode_last_causal: {n} positions out of {len}"
    );
    let prefix = len - n;
    let mut pad = pad.filter(|_| prefix > 0);
    let layers = enc.layers.len();
    for (i, l) in enc.layers.iter().enumerate() {
        let last = i + 1 == layers;
        // Each sublayer reads its input normalised first (pre-norm) or as it is (post-norm).
        let attn_in = |t: &Tensor<3>| {
            if l.norm_first {
                l.norm_2.forward(t.clone())
            } else {
                t.clone()
            }
        };
        let kv = attn_in(&x);
        let pad_kv = pad.as_ref().map(|p| attn_in(p).narrow(1, 0, prefix));
        let (queries, residual) = if last {
            (kv.clone().narrow(1, n - 1, 1), x.narrow(1, n - 1, 1))
        } else {
            (kv.clone(), x)
        };
        let a = attention_last(&l.mha, queries, kv, pad_kv, padding.clone());
        x = if l.norm_first {
            let x = residual + dropout(&l.dropout, a);
            let f = feed_forward(l, l.norm_1.forward(x.clone()));
            x + dropout(&l.dropout, f)
        } else {
            let x = l.norm_1.forward(residual + dropout(&l.dropout, a));
            let f = feed_forward(l, x.clone());
            l.norm_2.forward(x + dropout(&l.dropout, f))
        };
        if !last {
            pad = pad.map(|p| {
                let causal = burn::nn::attention::generate_autoregressive_mask(1, len, &p.device());
                layer_forward(l, p, None, Some(causal))
            });
        }
    }
    x.reshape([b, d])
}

/// Attention of the last `nq` positions (`queries` [batch, nq, d], as the layer reads them) over
/// `pad_kv` [1, prefix, d] (padding, the same for every row) followed by `kv` [batch, n, d],
/// causally: query i (of the last nq) sees every key up to its own position; `padding` [batch,
/// n] marks keys of `kv` never attended to.
fn attention_last(
    m: &MultiHeadAttention,
    queries: Tensor<3>,
    kv: Tensor<3>,
    pad_kv: Option<Tensor<3>>,
    padding: Option<Tensor<2, Bool>>,
) -> Tensor<3> {
    let [b, nq, d] = queries.dims();
    let n = kv.dims()[1];
    let heads = |lin: &burn::nn::Linear, t: Tensor<3>| {
        let [tb, tl, _] = t.dims();
        linear_rows(lin, t)
            .reshape([tb, tl, m.n_heads, m.d_k])
            .swap_dims(1, 2)
    };
    let q = heads(&m.query, queries);
    let (mut k, mut v) = (heads(&m.key, kv.clone()), heads(&m.value, kv));
    let mut prefix = 0;
    if let Some(p) = pad_kv {
        prefix = p.dims()[1];
        let shape = [b, m.n_heads, prefix, m.d_k];
        let pk = heads(&m.key, p.clone()).expand(shape);
        let pv = heads(&m.value, p).expand(shape);
        k = Tensor::cat(vec![pk, k], 2);
        v = Tensor::cat(vec![pv, v], 2);
    }
    let len = prefix + n;
    let mut scores = q.matmul(k.transpose()).div_scalar((m.d_k as f32).sqrt());
    if let Some(p) = padding {
        // Masked padding is never computed once: its keys are in `kv`.
        assert_eq!(
            prefix, 0,
            "attention_last: padding both masked and attended"
        );
        scores = scores.mask_fill(p.reshape([b, 1, 1, len]), m.min_float);
    }
    if nq > 1 {
        // Query i sits at position len - nq + i and sees keys up to there.
        let mask: Vec<bool> = (0..nq)
            .flat_map(|i| (0..len).map(move |j| j > len - nq + i))
            .collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [nq, len]), &scores.device())
            .reshape([1, 1, nq, len])
            .expand([b, 1, nq, len]);
        scores = scores.mask_fill(mask, m.min_float);
    }
    attend(m, scores, v, [b, nq, d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::DropoutConfig;
    use burn::nn::attention::generate_autoregressive_mask;
    use burn::nn::transformer::{TransformerEncoderConfig, TransformerEncoderInput};
    use burn::tensor::{Device, Distribution};

    #[test]
    fn encode_equals_burns_forward() {
        let device = Device::flex();
        for norm_first in [true, false] {
            let enc = TransformerEncoderConfig::new(16, 64, 2, 2)
                .with_norm_first(norm_first)
                .init(&device)
                .valid();
            let x = Tensor::<3>::random([3, 5, 16], Distribution::Normal(0.0, 1.0), &device);
            let pad =
                Tensor::<2>::from_data([[1.0, 1.0, 0.0, 0.0, 0.0]; 3], &device).equal_elem(1.0);
            let causal = generate_autoregressive_mask(3, 5, &device);
            let ours = encode(&enc, x.clone(), Some(pad.clone()), Some(causal.clone()));
            let theirs = enc.forward(
                TransformerEncoderInput::new(x)
                    .mask_pad(pad)
                    .mask_attn(causal),
            );
            let diff = (ours - theirs).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "norm_first {norm_first}: differs by {diff}");
        }
    }

    #[test]
    fn dropout_keeps_the_expected_share_and_scale() {
        let device = Device::flex().autodiff();
        let d = DropoutConfig::new(0.3).init();
        seed_dropout(7);
        let out = dropout(&d, Tensor::<2>::ones([100, 1000], &device));
        let v: Vec<f32> = out.into_data().try_to_vec::<f32>().unwrap();
        let kept = v.iter().filter(|&&x| x > 0.0).count() as f64 / v.len() as f64;
        assert!((kept - 0.7).abs() < 0.005, "kept {kept}");
        assert!(v.iter().all(|&x| x == 0.0 || (x - 1.0 / 0.7).abs() < 1e-6));
        // Seeded: the same masks again; inactive without autodiff.
        seed_dropout(7);
        let again: Vec<f32> = dropout(&d, Tensor::<2>::ones([100, 1000], &device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(v, again);
        let plain = dropout(&d, Tensor::<2>::ones([4, 4], &Device::flex()));
        assert_eq!(plain.sum().into_scalar::<f32>(), 16.0);
    }

    /// The masks are the generator's stream read two elements per draw, low half first (an odd
    /// count takes the low half of one more draw): runs keep their masks across versions.
    #[test]
    fn dropout_masks_follow_the_seeded_stream() {
        let device = Device::flex().autodiff();
        for (p, n) in [(0.5, 15), (0.3, 40)] {
            let d = DropoutConfig::new(p).init();
            seed_dropout(9);
            let got: Vec<f32> = dropout(&d, Tensor::<2>::ones([n / 5, 5], &device))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let keep = 1.0 - p;
            let threshold = (keep * 4_294_967_296.0) as u64;
            let mut rng = SsiRng::seed_from_u64(mix(9));
            let mut want = Vec::new();
            while want.len() < n {
                let bits = rng.next_u64();
                for half in [bits & 0xFFFF_FFFF, bits >> 32] {
                    if want.len() < n {
                        want.push(if half < threshold {
                            (1.0 / keep) as f32
                        } else {
                            0.0
                        });
                    }
                }
            }
            assert_eq!(got, want, "p = {p}");
        }
    }
}
