//! Next-item losses over the item table. Logits are only formed for the positions the loss uses.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// How the softmax over items is computed during training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Softmax {
    /// Cross-entropy over all items (exact): [`crate::fused_ce`] on the CPU backend, [`full_ce`]
    /// elsewhere.
    Full,
    /// The same cross-entropy as tensor operations ([`full_ce`]) on every backend: the reference
    /// the fused version is tested against and the baseline of `ssi bench --ce logsumexp`.
    FullTensor,
    /// The same cross-entropy written the straightforward way ([`full_ce_log_softmax`]: log-softmax,
    /// then gather). Same values and gradients as `Full`, slower: kept as the baseline of
    /// `ssi bench --ce log-softmax`.
    FullLogSoftmax,
    /// Cross-entropy over the target and `n` uniformly drawn items shared by the whole batch
    /// (an approximation, much cheaper on large catalogues); fused on the CPU backend too.
    Sampled(usize),
}

/// Full-softmax cross-entropy. `h`: [P, H], `table`: [N, H], `bias`: [N], `targets`: [P] with
/// 0-based item indices (item id - 1). Returns the mean loss as a 1-element tensor.
///
/// Written as mean(logsumexp(z) − z_target), with the target logit z_target = h·e_target + b_target
/// taken as a row-wise dot product rather than gathered from the [P, N] logits. Why: the output
/// layer dominates training (`docs/results/bench.md`), and with log_softmax + gather autodiff
/// keeps three [P, N] tensors and makes four more in the backward pass (log-softmax's
/// decomposition plus gather's scatter into zeros); here it keeps two and makes two. Same
/// function, same gradient (tested against [`full_ce_log_softmax`]).
pub fn full_ce(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
) -> Tensor<1> {
    full_ce_rows(h, table, bias, targets).mean()
}

/// The per-row losses of [`full_ce`]: [P, 1].
pub fn full_ce_rows(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
) -> Tensor<2> {
    let mut logits = h.clone().matmul(table.clone().transpose()); // [P, N]
    let mut picked = (h * table.select(0, targets.clone())).sum_dim(1); // [P, 1]
    if let Some(b) = bias {
        logits = logits + b.clone().unsqueeze_dim(0);
        picked = picked + b.select(0, targets).unsqueeze_dim(1);
    }
    // The max shift only keeps exp in range: it cancels in the value and carries no gradient.
    let max = logits.clone().detach().max_dim(1); // [P, 1]
    let lse = (logits - max.clone()).exp().sum_dim(1).log() + max;
    lse - picked
}

/// [`full_ce`] written the straightforward way: log-softmax over the logits, then the targets'
/// log-probabilities gathered. The baseline that `full_ce` is measured and tested against.
pub fn full_ce_log_softmax(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
) -> Tensor<1> {
    full_ce_log_softmax_rows(h, table, bias, targets).mean()
}

/// The per-row losses of [`full_ce_log_softmax`]: [P, 1].
pub fn full_ce_log_softmax_rows(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
) -> Tensor<2> {
    let mut logits = h.matmul(table.transpose());
    if let Some(b) = bias {
        logits = logits + b.unsqueeze_dim(0);
    }
    nll_rows(log_softmax(logits, 1), targets)
}

/// Sampled-softmax cross-entropy with `negatives` (0-based indices) shared across the batch, per
/// row: [P, 1]. A negative equal to a row's target is masked out for that row. Fused on the CPU
/// backend ([`crate::fused_ce`]), else [`sampled_ce_tensor`].
pub fn sampled_ce(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
    negatives: Tensor<1, Int>,
) -> Tensor<2> {
    let logits = sampled_logits(h, table, bias, targets, negatives);
    let device = logits.device();
    if !crate::fused_ce::supported(&device) {
        return target_first_ce(logits);
    }
    let [p, c] = logits.dims();
    let zeros = Tensor::<1, Int>::zeros([p], &device);
    crate::fused_ce::fused_ce_rows(logits, Tensor::zeros([c], &device), zeros)
}

/// [`sampled_ce`] as tensor operations on every backend: the fused version's reference.
pub fn sampled_ce_tensor(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
    negatives: Tensor<1, Int>,
) -> Tensor<2> {
    target_first_ce(sampled_logits(h, table, bias, targets, negatives))
}

/// [P, 1 + K] logits: each row's target first, then the shared negatives (a negative equal to the
/// row's target at −1e9).
fn sampled_logits(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
    negatives: Tensor<1, Int>,
) -> Tensor<2> {
    let [p, _] = h.dims();
    let k = negatives.dims()[0];
    let pos_emb = table.clone().select(0, targets.clone());
    let mut pos = (h.clone() * pos_emb).sum_dim(1); // [P, 1]
    let mut neg = h.matmul(table.select(0, negatives.clone()).transpose()); // [P, K]
    if let Some(b) = bias {
        pos = pos + b.clone().select(0, targets.clone()).unsqueeze_dim(1);
        neg = neg + b.select(0, negatives.clone()).unsqueeze_dim(0);
    }
    let hit = targets
        .unsqueeze_dim::<2>(1)
        .expand([p, k])
        .equal(negatives.unsqueeze_dim::<2>(0).expand([p, k]));
    Tensor::cat(vec![pos, neg.mask_fill(hit, -1e9)], 1)
}

/// Cross-entropy of each row of `logits` against its first column.
fn target_first_ce(logits: Tensor<2>) -> Tensor<2> {
    let [p, _] = logits.dims();
    let zeros = Tensor::<1, Int>::zeros([p], &logits.device());
    nll_rows(log_softmax(logits, 1), zeros)
}

/// [`full_ce_rows`] through [`crate::fused_ce`] where the backend has it, else as tensors.
pub fn full_ce_rows_fused(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Tensor<1, Int>,
) -> Tensor<2> {
    let device = h.device();
    if !crate::fused_ce::supported(&device) {
        return full_ce_rows(h, table, bias, targets);
    }
    let n = table.dims()[0];
    let logits = h.matmul(table.transpose());
    let bias = bias.unwrap_or_else(|| Tensor::zeros([n], &device));
    crate::fused_ce::fused_ce_rows(logits, bias, targets)
}

/// Mean negative log-likelihood of `targets` under `log_probs` [P, C].
pub fn nll(log_probs: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    nll_rows(log_probs, targets).mean()
}

/// Negative log-likelihood of each row's target: [P, 1].
pub fn nll_rows(log_probs: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<2> {
    log_probs.gather(1, targets.unsqueeze_dim(1)).neg()
}

/// Next-item loss with the chosen softmax, the mean over rows; `targets` are 0-based item
/// indices, and a target of -1 marks a padding row ([`crate::common::pad_loss_rows`]) that
/// weighs nothing.
pub fn next_item_loss(
    h: Tensor<2>,
    table: Tensor<2>,
    bias: Option<Tensor<1>>,
    targets: Vec<i64>,
    softmax: Softmax,
    rng: &mut ssi_data::rng::SsiRng,
) -> Tensor<1> {
    use ssi_data::rng::Rng;
    let device = h.device();
    let n_items = table.dims()[0];
    let real = targets.iter().filter(|&&t| t >= 0).count();
    let weights: Option<Vec<f32>> = (real < targets.len()).then(|| {
        let w = 1.0 / real.max(1) as f32;
        targets
            .iter()
            .map(|&t| if t >= 0 { w } else { 0.0 })
            .collect()
    });
    let p = targets.len();
    let targets = crate::common::int1(targets.into_iter().map(|t| t.max(0)).collect(), &device);
    let rows = match softmax {
        Softmax::Full => full_ce_rows_fused(h, table, bias, targets),
        Softmax::FullTensor => full_ce_rows(h, table, bias, targets),
        Softmax::FullLogSoftmax => full_ce_log_softmax_rows(h, table, bias, targets),
        Softmax::Sampled(k) => {
            let negs: Vec<i64> = (0..k)
                .map(|_| rng.random_range(0..n_items as i64))
                .collect();
            sampled_ce(h, table, bias, targets, crate::common::int1(negs, &device))
        }
    };
    match weights {
        None => rows.mean(),
        Some(w) => (rows * crate::common::float2(w, [p, 1], &device)).sum(),
    }
}
