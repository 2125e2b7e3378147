//! Shared pieces: batches built from item-id sequences, and initialisation.

use burn::nn::Initializer;
use burn::nn::transformer::TransformerEncoder;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// Embedding initialiser. burn's default N(0, 1) is far too large for dot-product scoring.
pub fn small_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// Initialiser of the attention and feed-forward weights of the transformer models: N(0, σ) as in
/// the reference SASRec/BERT4Rec implementations (σ = 0.02), or burn's Kaiming-uniform default
/// (U(±1/√fan_in), σ ≈ 0.072 at hidden 64) for `None`.
pub fn transformer_init(std: Option<f64>) -> Initializer {
    match std {
        Some(std) => Initializer::Normal { mean: 0.0, std },
        None => Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        },
    }
}

/// The encoder's biases as PyTorch's `nn.TransformerEncoderLayer` initialises them: the attention
/// projections' (`in_proj_bias`, `out_proj.bias`) zero, the feed-forward layers' U(±1/√fan_in)
/// (`nn.Linear`'s default). burn draws biases with the weights' initialiser instead.
pub fn torch_biases(mut enc: TransformerEncoder, device: &Device) -> TransformerEncoder {
    use burn::module::Param;
    use burn::tensor::Distribution;
    let zero = |b: &mut Option<Param<Tensor<1>>>| {
        if let Some(p) = b.take() {
            *b = Some(Param::from_tensor(Tensor::zeros(p.val().dims(), device)));
        }
    };
    let uniform = |b: &mut Option<Param<Tensor<1>>>, fan_in: usize| {
        if let Some(p) = b.take() {
            let r = 1.0 / (fan_in as f64).sqrt();
            *b = Some(Param::from_tensor(Tensor::random(
                p.val().dims(),
                Distribution::Uniform(-r, r),
                device,
            )));
        }
    };
    for l in &mut enc.layers {
        for lin in [
            &mut l.mha.query,
            &mut l.mha.key,
            &mut l.mha.value,
            &mut l.mha.output,
        ] {
            zero(&mut lin.bias);
        }
        let inner = l.pwff.linear_inner.weight.dims()[0];
        let outer = l.pwff.linear_outer.weight.dims()[0];
        uniform(&mut l.pwff.linear_inner.bias, inner);
        uniform(&mut l.pwff.linear_outer.bias, outer);
    }
    enc
}

/// How training batches are shaped for the backend. GPU backends compile (and autotune) kernels
/// per tensor shape, so a batch whose length or number of loss rows changes every step pays for
/// compilation every step; padding to a few sizes, the padding carrying no loss, keeps the loss
/// and its gradients those of the unpadded batch and the shapes few. The CPU backend runs any
/// shape at no extra cost, so there padding would only add work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes {
    /// Bucketed on GPU backends, exact on the CPU backend.
    Auto,
    /// Every batch at its own size.
    Exact,
    /// Sequence length padded to `max_len` (models with a padding mask), loss rows to [`bucket`].
    Bucketed,
}

static SHAPES: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets the batch shapes for this process (`ssi bench --shapes` measures both).
pub fn set_shapes(shapes: Shapes) {
    let v = match shapes {
        Shapes::Auto => 0,
        Shapes::Exact => 1,
        Shapes::Bucketed => 2,
    };
    SHAPES.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// Whether batches on `device` are padded to bucketed shapes.
pub fn bucketed(device: &Device) -> bool {
    match SHAPES.load(std::sync::atomic::Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => *device != Device::flex(),
    }
}

/// The smallest size m·2^k ≥ n with m in 4..=7: four sizes per doubling, at most 25 % padding.
pub fn bucket(n: usize) -> usize {
    if n <= 4 {
        return n;
    }
    let shift = usize::BITS - 3 - n.leading_zeros(); // n >> shift is in 4..=7
    let m = n.div_ceil(1 << shift);
    m << shift
}

/// Pads the loss rows of a batch to [`bucket`] rows on a bucketed device: each padding row
/// repeats the first row's index with target -1, which [`crate::loss::next_item_loss`] weighs 0.
pub fn pad_loss_rows(rows: &mut Vec<i64>, targets: &mut Vec<i64>, device: &Device) {
    if rows.is_empty() || !bucketed(device) {
        return;
    }
    let to = bucket(rows.len());
    rows.resize(to, rows[0]);
    targets.resize(to, -1);
}

/// Length of a batch for models whose padding is masked and whose positions count from the end
/// (SASRec, BERT4Rec): `max_len` on a bucketed device (same outputs, one shape), else
/// [`batch_len`].
pub fn masked_batch_len(seqs: &[&[u32]], max_len: usize, extra: usize, device: &Device) -> usize {
    if bucketed(device) {
        max_len
    } else {
        batch_len(seqs, max_len, extra)
    }
}

/// A group's fixed cost in [`length_groups`], in padded positions: what a group costs beyond
/// its positions (one more set of smaller matrix products), measured on BERT4Rec teachers on
/// Toys (docs/results/bench.md).
pub const GROUP_OVERHEAD: usize = 1024;

/// The rows of a batch (`lens`: their lengths) in groups, each to be padded only to its own
/// longest row: the grouping of the rows sorted by length that costs least, counting each
/// group's padded positions plus `overhead`. On a bucketed device (GPU: one shape) one group.
/// For models whose padding is masked and whose positions count from the end, each group's
/// outputs are the batch's (BERT4Rec): only the cost changes. Returns each group's row indices.
pub fn length_groups(lens: &[usize], overhead: usize, device: &Device) -> Vec<Vec<usize>> {
    let n = lens.len();
    if bucketed(device) || n == 0 {
        return vec![(0..n).collect()];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| lens[i]);
    // cost[j]: the cheapest grouping of the j shortest rows; cut[j]: where its last group starts.
    let (mut cost, mut cut) = (vec![usize::MAX; n + 1], vec![0; n + 1]);
    cost[0] = 0;
    for j in 1..=n {
        let longest = lens[order[j - 1]].max(1);
        for i in 0..j {
            let c = cost[i] + (j - i) * longest + overhead;
            if c < cost[j] {
                (cost[j], cut[j]) = (c, i);
            }
        }
    }
    let mut groups = Vec::new();
    let mut j = n;
    while j > 0 {
        groups.push(order[cut[j]..j].to_vec());
        j = cut[j];
    }
    groups.reverse();
    groups
}

/// Rows computed group by group ([`length_groups`]) back in the batch's order: `parts[g]` holds
/// the rows of `groups[g]`, in that order.
pub fn ungroup(parts: Vec<Tensor<2>>, groups: &[Vec<usize>], device: &Device) -> Tensor<2> {
    let mut at = vec![0i64; groups.iter().map(Vec::len).sum()];
    for (k, &i) in groups.iter().flatten().enumerate() {
        at[i] = k as i64;
    }
    Tensor::cat(parts, 0).select(0, int1(at, device))
}

/// Histories to encode: each sequence is chronological; `users` are dataset indices (0-based),
/// `None` for a user the model never saw (typed into the browser, say).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub items: &'a [&'a [u32]],
    pub users: &'a [Option<usize>],
}

/// Training sequences (the training part of each user's history) with their users.
#[derive(Debug, Clone, Copy)]
pub struct TrainBatch<'a> {
    pub items: &'a [&'a [u32]],
    pub users: &'a [usize],
}

/// Length of a batch: the longest sequence (plus `extra` appended tokens), at most `max_len`.
/// Padding beyond it would be masked anyway, so trimming it changes no output, only the cost.
pub fn batch_len(seqs: &[&[u32]], max_len: usize, extra: usize) -> usize {
    seqs.iter()
        .map(|s| s.len() + extra)
        .max()
        .unwrap_or(1)
        .clamp(1, max_len)
}

/// Left-pads (with 0) or truncates each sequence to its last `len` items, so the most recent item
/// is always at position `len - 1`. Returns row-major ids.
pub fn left_pad(seqs: &[&[u32]], len: usize) -> Vec<i64> {
    let mut out = vec![0i64; seqs.len() * len];
    for (r, s) in seqs.iter().enumerate() {
        let take = s.len().min(len);
        let src = &s[s.len() - take..];
        let row = &mut out[r * len..(r + 1) * len];
        for (dst, &v) in row[len - take..].iter_mut().zip(src) {
            *dst = v as i64;
        }
    }
    out
}

pub fn int2(data: Vec<i64>, shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

pub fn int1(data: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

pub fn float2(data: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// `true` where the id is padding.
pub fn pad_mask(ids: &Tensor<2, Int>) -> Tensor<2, Bool> {
    ids.clone().equal_elem(0)
}

/// The path (`encoder.layers.0.ffn.weight`) of the first weight of `module` that holds a NaN or an
/// infinity, or `None` when every weight is finite: a model that diverged or a corrupted file
/// scores every item NaN, which would otherwise reach metrics and predictions silently.
pub fn first_non_finite<M: burn::module::Module>(module: &M) -> Option<String> {
    use burn::module::{ModuleVisitor, Param};
    #[derive(Default)]
    struct Finder {
        path: Vec<String>,
        found: Option<String>,
    }
    impl ModuleVisitor for Finder {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.found.is_none() && !param.val().to_data().iter::<f32>().all(f32::is_finite) {
                self.found = Some(self.path.join("."));
            }
        }
    }
    let mut f = Finder::default();
    module.visit(&mut f);
    f.found
}

/// A library's debug text cut to its first 300 characters: a shape mismatch in burn's record
/// loader prints kilobytes.
pub fn brief(detail: &str) -> String {
    let mut out: String = detail.chars().take(300).collect();
    if out.len() < detail.len() {
        out.push_str(" …");
    }
    out
}

/// `module` with its first weight tensor multiplied by NaN: what the finiteness checks of model
/// loading are tested with.
pub fn with_nan_weight<M: burn::module::Module>(module: M) -> M {
    scaled(module, f32::NAN, true)
}

/// `module` with its weights (or only the first weight tensor) multiplied by `factor`: how tests
/// make a model diverge or go non-finite.
pub fn scaled<M: burn::module::Module>(module: M, factor: f32, first_only: bool) -> M {
    use burn::module::{ModuleMapper, Param};
    struct Scale {
        factor: f32,
        first_only: bool,
        done: bool,
    }
    impl ModuleMapper for Scale {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.first_only && std::mem::replace(&mut self.done, true) {
                param
            } else {
                let f = self.factor;
                param.map(|t| t.mul_scalar(f))
            }
        }
    }
    module.map(&mut Scale {
        factor,
        first_only,
        done: false,
    })
}

#[cfg(test)]
mod finite_tests {
    use super::*;
    use crate::{ModelConfig, ModelKind};

    #[test]
    fn non_finite_weights_are_found_by_path() {
        let model = ModelConfig::new(ModelKind::Sasrec, 20, 5).init(&Device::flex());
        assert_eq!(first_non_finite(&model), None);
        let at = first_non_finite(&with_nan_weight(model)).expect("found");
        assert!(!at.is_empty());
    }
}

/// A burnpack weight file read as a record, refused (with the tensor named) unless every tensor
/// holds floating-point values: burn panics when it loads integer data into a float parameter.
pub fn weights_record(bytes: Vec<u8>) -> Result<burn::store::ModuleRecord, String> {
    use burn::tensor::Bytes;
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.clone()))
        .map_err(|e| format!("not a burnpack weight file: {e}"))?;
    let tensors = reader
        .into_tensors()
        .map_err(|e| format!("not a burnpack weight file: {e}"))?;
    for t in tensors {
        let (name, dtype, ..) = t
            .into_parts()
            .map_err(|e| format!("not a burnpack weight file: {e}"))?;
        if !dtype.is_float() {
            return Err(format!(
                "tensor {name} holds {dtype:?} values where a model's weights are floating point"
            ));
        }
    }
    burn::store::ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("not a burnpack weight file: {e}"))
}

#[cfg(test)]
mod weight_file_tests {
    use super::weights_record;
    use burn::tensor::{Bytes, DType};

    fn file(dtype: DType, bytes: usize) -> Vec<u8> {
        let t = burn_pack::Tensor::new(
            "layer.weight".into(),
            dtype,
            [2],
            None,
            Bytes::from_bytes_vec(vec![0u8; bytes]),
        );
        burn_pack::Writer::new(vec![t])
            .into_bytes()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn integer_weights_are_refused_with_the_tensor_named() {
        for dtype in [DType::I32, DType::U32] {
            let err = weights_record(file(dtype, 8)).unwrap_err();
            assert!(err.contains("tensor layer.weight holds"), "{err}");
        }
        assert_eq!(weights_record(file(DType::F32, 8)).unwrap().len(), 1);
        let err = weights_record(b"not a weight file".to_vec()).unwrap_err();
        assert!(err.starts_with("not a burnpack weight file"), "{err}");
    }
}
