//! S3-Rec (Zhou et al., CIKM 2020) as SSI's Table 2 ran it (§3.1): "two auxiliary
//! self-supervised objectives without extra attribute information". Of S3-Rec's four objectives
//! only masked item prediction (MIP) and segment prediction (SP) need no attributes. A SASRec
//! encoder is pre-trained on MIP + SP with bidirectional attention, then fine-tuned for next-item
//! prediction as SASRec (causal attention, [`SasRec::train_loss`]).
//!
//! `ssi train --model s3rec` runs both stages (`ssi_train::s3rec`); `train_loss` here is the
//! fine-tuning loss and [`S3Rec::mip_sp_loss`] the pre-training one. Choices the S3-Rec paper
//! leaves open are documented in `docs/ssi.md` (section "S3-Rec").

use crate::common::{Batch, TrainBatch, batch_len, int1, int2, small_init};
use crate::loss::Softmax;
use crate::ModelKind;
use crate::model::SequentialModel;
use crate::sasrec::{SasRec, SasRecConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Tensor};
use ssi_data::rng::{Rng, SsiRng};

#[derive(Config, Debug)]
pub struct S3RecConfig {
    pub n_items: usize,
    #[config(default = 64)]
    pub hidden: usize,
    #[config(default = 2)]
    pub layers: usize,
    #[config(default = 2)]
    pub heads: usize,
    #[config(default = 50)]
    pub max_len: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Epochs of MIP + SP pre-training before fine-tuning (S3-Rec pre-trains for hundreds of
    /// epochs; on 2 CPU cores we default to a budget-friendly 20).
    #[config(default = 20)]
    pub pretrain_epochs: usize,
    /// Probability that an item is replaced by [MASK] for MIP (S3-Rec: 0.2).
    #[config(default = 0.2)]
    pub mask_prob: f64,
    /// Weight of L_MIP in the pre-training loss (S3-Rec: 1).
    #[config(default = 1.0)]
    pub mip_weight: f64,
    /// Weight of L_SP in the pre-training loss (S3-Rec: 0.5).
    #[config(default = 0.5)]
    pub sp_weight: f64,
}

impl S3RecConfig {
    /// The fine-tuned model's encoder settings.
    pub fn sasrec(&self) -> SasRecConfig {
        SasRecConfig::new(self.n_items)
            .with_hidden(self.hidden)
            .with_layers(self.layers)
            .with_heads(self.heads)
            .with_max_len(self.max_len)
            .with_dropout(self.dropout)
    }

    pub fn init(&self, device: &Device) -> S3Rec {
        let mut encoder = self.sasrec().init(device);
        // One more row than SASRec: [MASK] = N + 1, used only in pre-training.
        encoder.item_emb = EmbeddingConfig::new(self.n_items + 2, self.hidden)
            .with_initializer(small_init())
            .init(device);
        let bilinear = || {
            LinearConfig::new(self.hidden, self.hidden)
                .with_bias(false)
                .init(device)
        };
        S3Rec {
            encoder,
            w_mip: bilinear(),
            w_sp: bilinear(),
            mask_prob: self.mask_prob,
            mip_weight: self.mip_weight,
            sp_weight: self.sp_weight,
        }
    }
}

#[derive(Module, Debug)]
pub struct S3Rec {
    /// Item rows: 0 padding, 1..=N items, N+1 [MASK].
    pub encoder: SasRec,
    /// W_MIP of f(h, e) = σ(hᵀ W_MIP e).
    pub w_mip: Linear,
    /// W_SP of f(s̃, s) = σ(s̃ᵀ W_SP s).
    pub w_sp: Linear,
    pub mask_prob: f64,
    pub mip_weight: f64,
    pub sp_weight: f64,
}

/// The inputs of one pre-training batch; id rows are left-padded to `len` and row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainInputs {
    pub len: usize,
    /// MIP input: each sequence with some items replaced by [MASK].
    pub masked: Vec<i64>,
    /// Flat positions (row × len + column) of the masked items.
    pub mip_rows: Vec<i64>,
    /// The masked items (ids) and one negative per masked item: an item not in the sequence.
    pub mip_pos: Vec<i64>,
    pub mip_neg: Vec<i64>,
    /// SP: the sequence with its segment replaced by [MASK] ...
    pub seg_masked: Vec<i64>,
    /// ... the segment alone at its positions, every other item [MASK] (the positive) ...
    pub seg_pos: Vec<i64>,
    /// ... and a segment of another sequence of the batch at the same positions (the negative).
    pub seg_neg: Vec<i64>,
    /// Each row's segment as [start, end) flat positions (row × len + column).
    pub spans: Vec<(usize, usize)>,
}

/// Draws the MIP masks and SP segments of a batch. Sequences keep their last `max_len` items.
/// A sequence whose Bernoulli draws mask nothing gets one masked item, so every sequence trains
/// MIP; a segment is 1 to ⌊n/2⌋ items long (1 for n = 1) at a uniform start.
pub fn pretrain_inputs(
    seqs: &[&[u32]],
    n_items: usize,
    max_len: usize,
    mask_prob: f64,
    rng: &mut SsiRng,
) -> PretrainInputs {
    let mask = (n_items + 1) as i64;
    let len = batch_len(seqs, max_len, 0);
    let seqs: Vec<&[u32]> = seqs
        .iter()
        .map(|s| &s[s.len().saturating_sub(len)..])
        .collect();
    let b = seqs.len();
    let mut out = PretrainInputs {
        len,
        masked: vec![0; b * len],
        mip_rows: Vec::new(),
        mip_pos: Vec::new(),
        mip_neg: Vec::new(),
        seg_masked: vec![0; b * len],
        seg_pos: vec![0; b * len],
        seg_neg: vec![0; b * len],
        spans: Vec::with_capacity(b),
    };
    for (r, s) in seqs.iter().enumerate() {
        let n = s.len();
        let off = r * len + len - n;
        // MIP.
        let mut picked: Vec<bool> = (0..n).map(|_| rng.random_bool(mask_prob)).collect();
        if n > 0 && !picked.iter().any(|&p| p) {
            picked[rng.random_range(0..n)] = true;
        }
        for (j, (&item, &p)) in s.iter().zip(&picked).enumerate() {
            out.masked[off + j] = if p { mask } else { item as i64 };
            if p {
                out.mip_rows.push((off + j) as i64);
                out.mip_pos.push(item as i64);
                out.mip_neg.push(negative_item(s, n_items, rng) as i64);
            }
        }
        // SP.
        if n == 0 {
            out.spans.push((off, off));
            continue;
        }
        let seg = rng.random_range(1..=(n / 2).max(1));
        let start = rng.random_range(0..=n - seg);
        let other = if b > 1 {
            let o = rng.random_range(0..b - 1);
            seqs[if o >= r { o + 1 } else { o }]
        } else {
            &[][..]
        };
        let other_start = (other.len() >= seg).then(|| rng.random_range(0..=other.len() - seg));
        for (j, &item) in s.iter().enumerate() {
            let inside = (start..start + seg).contains(&j);
            out.seg_masked[off + j] = if inside { mask } else { item as i64 };
            out.seg_pos[off + j] = if inside { item as i64 } else { mask };
            out.seg_neg[off + j] = if !inside {
                mask
            } else if let Some(os) = other_start {
                other[os + j - start] as i64
            } else {
                // No other sequence is long enough: random items stand in.
                rng.random_range(1..=n_items as u32) as i64
            };
        }
        out.spans.push((off + start, off + start + seg));
    }
    out
}

/// A uniformly drawn item that is not in `seq` (any item after 100 failed draws).
fn negative_item(seq: &[u32], n_items: usize, rng: &mut SsiRng) -> u32 {
    let mut item = rng.random_range(1..=n_items as u32);
    for _ in 0..100 {
        if !seq.contains(&item) {
            break;
        }
        item = rng.random_range(1..=n_items as u32);
    }
    item
}

/// −log σ(pos − neg), averaged: S3-Rec's pairwise ranking loss over f-scores.
fn pairwise(pos: Tensor<1>, neg: Tensor<1>) -> Tensor<1> {
    log_sigmoid(pos - neg).mean().neg()
}

impl S3Rec {
    /// L = w_MIP · L_MIP + w_SP · L_SP on bidirectional encodings (S3-Rec §3.3, without the two
    /// attribute objectives). MIP: f(h̃_t, e) = σ(h̃_tᵀ W_MIP e) at each masked position, the true
    /// item against one item outside the sequence. SP: f(s̃, s) = σ(s̃ᵀ W_SP s) between the
    /// sequence with its segment masked and the segment (vs another sequence's segment); a
    /// sequence's representation is the hidden state at its last position.
    pub fn mip_sp_loss(&self, batch: TrainBatch, rng: &mut SsiRng) -> Tensor<1> {
        let n_items = self.encoder.n_items;
        let max_len = self.encoder.max_len;
        let hidden = self.encoder.hidden;
        let inp = pretrain_inputs(batch.items, n_items, max_len, self.mask_prob, rng);
        let device = self.device();
        let b = batch.items.len();
        let l = inp.len;
        let table = self.encoder.item_emb.weight.val();
        // MIP.
        let p = inp.mip_rows.len();
        let h = self
            .encoder
            .states(int2(inp.masked, [b, l], &device), false)
            .reshape([b * l, hidden])
            .select(0, int1(inp.mip_rows, &device));
        let hw = self.w_mip.forward(h);
        let f = |items: Vec<i64>| {
            let e = table.clone().select(0, int1(items, &device));
            sigmoid((hw.clone() * e).sum_dim(1).reshape([p]))
        };
        let mip = pairwise(f(inp.mip_pos), f(inp.mip_neg));
        // SP.
        let last = |ids: Vec<i64>| {
            self.encoder
                .states(int2(ids, [b, l], &device), false)
                .narrow(1, l - 1, 1)
                .reshape([b, hidden])
        };
        let s_tilde = self.w_sp.forward(last(inp.seg_masked));
        let f_sp = |s: Tensor<2>| sigmoid((s_tilde.clone() * s).sum_dim(1).reshape([b]));
        let sp = pairwise(f_sp(last(inp.seg_pos)), f_sp(last(inp.seg_neg)));
        mip.mul_scalar(self.mip_weight) + sp.mul_scalar(self.sp_weight)
    }
}

impl crate::model::ModelSpec for S3RecConfig {
    crate::model::spec_basics!(S3Rec);
    fn defaults(n_items: usize, _n_users: usize) -> Self {
        Self::new(n_items)
    }

    fn pretrain_epochs(&self) -> Option<usize> {
        Some(self.pretrain_epochs)
    }
}

impl SequentialModel for S3Rec {
    fn kind(&self) -> ModelKind {
        ModelKind::S3rec
    }
    fn n_items(&self) -> usize {
        self.encoder.n_items
    }
    fn device(&self) -> Device {
        self.encoder.device()
    }
    fn max_len(&self) -> usize {
        self.encoder.max_len
    }
    fn encode(&self, batch: Batch) -> Tensor<2> {
        self.encoder.encode(batch)
    }
    fn item_table(&self) -> Tensor<2> {
        self.encoder.item_table()
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        None
    }
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        self.encoder.train_loss(batch, softmax, rng)
    }
    fn pretrain_loss(&self, batch: TrainBatch, rng: &mut SsiRng) -> Option<Tensor<1>> {
        Some(self.mip_sp_loss(batch, rng))
    }
}
