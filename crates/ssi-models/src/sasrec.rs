//! SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the history; the hidden state
//! at each position scores the next item against the (tied) item embeddings. Trained with
//! softmax cross-entropy over items at every non-padding position (Klenitskiy & Vasilev, RecSys
//! 2023) rather than the original binary loss with one negative.
//!
//! With `consistency` set it is an SSI teacher beyond the paper (whose teachers are BERT4Rec):
//! L_next + λ·L_aux, the consistency task (eq. 1–3) reading the causal state at the last item in
//! a second pass over the (augmented) sequence; eq. 3's global input has its n-gram cut out
//! (SASRec has no mask token, so a plain SASRec run can be continued as a teacher).

use crate::common::{
    torch_biases,
    Batch, TrainBatch, batch_len, int2, left_pad, masked_batch_len, pad_loss_rows, pad_mask,
    small_init, transformer_init,
};
use crate::consistency::{
    Consistency, ConsistencyEncoder, ConsistencyMlp, ConsistencyTask, cut_span, defaults,
};
use crate::loss::{Softmax, next_item_loss};
use crate::model::{SequentialModel, basics};
use crate::transformer::{dropout, encode, encode_last_causal};
use burn::config::Config;
use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Device, Int, Tensor};
use ssi_data::rng::SsiRng;

#[derive(Config, Debug)]
pub struct SasRecConfig {
    pub n_items: usize,
    #[config(default = 64)]
    pub hidden: usize,
    #[config(default = 2)]
    pub layers: usize,
    #[config(default = 2)]
    pub heads: usize,
    #[config(default = 50)]
    pub max_len: usize,
    /// 0.5, Kang & McAuley's value for sparse data: on Beauty 0.2 stops improving at epoch 10
    /// (test NDCG@10 0.3375, docs/results/gpu.md) where 0.5 keeps pace with the PyTorch reference
    /// to epoch 44 and beyond (0.3601, docs/results/recipe.md); 0.5 is measured on all three files.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// σ of the N(0, σ) initialisation of the attention and feed-forward weights; `null`: burn's
    /// Kaiming-uniform default (docs/results/recipe.md measures both).
    #[config(default = "Some(0.02)")]
    pub init_std: Option<f64>,
    /// `true`: every sequence is left-padded to `max_len` and its items may attend to the padding
    /// (the PyTorch reference's behaviour, `bench/quality_ref.py`, where padding can act as a
    /// place to put attention that should go nowhere); `false`: padding is masked and batches
    /// are trimmed to their longest sequence (Kang & McAuley's SASRec). New runs get `true`
    /// (`defaults`: higher plateaus on Beauty, Toys and Sports, docs/results/recipe.md); `null`,
    /// in configs and bundles written before it existed, reads as `false`, as they were trained.
    #[config(default = "None")]
    pub attend_padding: Option<bool>,
    /// `true`: the padding row of the item table keeps its initial value (no gradient reaches
    /// it), as `padding_idx` does in the PyTorch reference; `null`/`false`: it is trained like
    /// any row. Matters only with `attend_padding`, where items read the padding.
    #[config(default = "None")]
    pub freeze_padding: Option<bool>,
    /// `true`: the transformer's biases start as PyTorch's `nn.TransformerEncoderLayer` starts
    /// them (attention projections 0, feed-forward U(±1/√fan_in)); `null`/`false`: burn's, drawn
    /// with the weights' initialiser (N(0, `init_std`)). New runs get `true` (`defaults`: the
    /// first epochs learn as the reference's, docs/results/recipe.md); `null`, in configs written
    /// before it existed, reads as `false`, as they were trained.
    #[config(default = "None")]
    pub torch_biases: Option<bool>,
    /// SSI teacher task (eq. 1–3, beyond the paper: its teachers are BERT4Rec); `None`: plain
    /// SASRec. The next four are BERT4Rec's settings of the same names, with its defaults (λ 1,
    /// n-grams of 2, one n-gram per negative, negatives with probability 0.5), written into a
    /// teacher's config when it is made; `null` on a plain SASRec (and in configs written before
    /// they existed).
    #[config(default = "None")]
    pub consistency: Option<ConsistencyTask>,
    #[config(default = "None")]
    pub consistency_weight: Option<f64>,
    #[config(default = "None")]
    pub ngram: Option<usize>,
    #[config(default = "None")]
    pub ngrams: Option<usize>,
    #[config(default = "None")]
    pub negative_prob: Option<f64>,
}

#[derive(Module, Debug)]
pub struct SasRec {
    pub item_emb: Embedding,
    pub pos_emb: Embedding,
    pub encoder: TransformerEncoder,
    pub norm: LayerNorm,
    pub dropout: Dropout,
    pub n_items: usize,
    pub hidden: usize,
    pub max_len: usize,
    #[module(skip)]
    pub attend_padding: bool,
    #[module(skip)]
    pub freeze_padding: bool,
    /// Present on temporal and persona teachers.
    pub consistency_mlp: Option<ConsistencyMlp>,
    /// Present on global teachers: eq. 3 compares projections of the states, so that InfoNCE
    /// does not pull the state that predicts the next item towards the cut n-gram.
    pub global_proj: Option<Linear>,
    #[module(skip)]
    pub consistency: Option<Consistency>,
}

impl SasRecConfig {
    pub fn init(&self, device: &Device) -> SasRec {
        let mut model = self.init_plain(device);
        if self.torch_biases == Some(true) {
            model.encoder = torch_biases(model.encoder, device);
        }
        model
    }

    fn init_plain(&self, device: &Device) -> SasRec {
        SasRec {
            item_emb: EmbeddingConfig::new(self.n_items + 1, self.hidden)
                .with_initializer(small_init())
                .init(device),
            pos_emb: EmbeddingConfig::new(self.max_len, self.hidden)
                .with_initializer(small_init())
                .init(device),
            encoder: TransformerEncoderConfig::new(
                self.hidden,
                4 * self.hidden,
                self.heads,
                self.layers,
            )
            .with_dropout(self.dropout)
            .with_norm_first(true)
            .with_initializer(transformer_init(self.init_std))
            .init(device),
            norm: LayerNormConfig::new(self.hidden).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_items: self.n_items,
            hidden: self.hidden,
            max_len: self.max_len,
            attend_padding: self.attend_padding.unwrap_or(false),
            freeze_padding: self.freeze_padding.unwrap_or(false),
            consistency_mlp: ConsistencyMlp::for_task(self.consistency, self.hidden, device),
            global_proj: (self.consistency == Some(ConsistencyTask::Global))
                .then(|| LinearConfig::new(self.hidden, self.hidden).init(device)),
            consistency: self.consistency.map(|task| Consistency {
                task,
                weight: self.consistency_weight.unwrap_or(defaults::WEIGHT),
                ngram: self.ngram.unwrap_or(defaults::NGRAM),
                ngrams: self.ngrams.unwrap_or(defaults::NGRAMS),
                negative_prob: self.negative_prob.unwrap_or(defaults::NEGATIVE_PROB),
            }),
        }
    }
}

/// Positions of a right-aligned window of `len` out of `max_len`: the most recent item always has
/// position `max_len - 1`, however much padding the batch was trimmed by. [batch, len].
pub fn positions(batch: usize, len: usize, max_len: usize, device: &Device) -> Tensor<2, Int> {
    let row: Vec<i64> = ((max_len - len) as i64..max_len as i64).collect();
    int2(row.repeat(batch), [batch, len], device)
}

impl SasRec {
    /// How far batches are padded: attended padding changes the outputs, so it is always there.
    fn pad_to(&self) -> PadTo {
        if self.attend_padding {
            PadTo::MaxLen
        } else {
            PadTo::Masked
        }
    }

    /// Hidden states at every position: [batch, len, hidden]. Position t only sees positions
    /// <= t, and padding only with `attend_padding`.
    pub fn hidden_states(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.states(ids, true)
    }

    /// Hidden states with causal attention (`causal`) or bidirectional attention (S3-Rec's
    /// pre-training reads the whole sequence).
    pub fn states(&self, ids: Tensor<2, Int>, causal: bool) -> Tensor<3> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let attn = causal.then(|| generate_autoregressive_mask(b, l, &device));
        let padding = (!self.attend_padding).then(|| pad_mask(&ids));
        let x = dropout(&self.dropout, self.embed(ids));
        self.norm.forward(encode(&self.encoder, x, padding, attn))
    }

    /// The encoder's input: item embeddings × √hidden plus the positions of a right-aligned
    /// window, [batch, len, hidden] (before dropout).
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = ids.dims();
        let mut items = self.item_emb.forward(ids.clone());
        if self.freeze_padding {
            // Padding positions read a detached copy of the row: its gradient is zero.
            let real = ids.not_equal_elem(0).float().unsqueeze_dim::<3>(2);
            let pad = real.clone().neg().add_scalar(1.0);
            items = items.clone() * real + items.detach() * pad;
        }
        items.mul_scalar((self.hidden as f32).sqrt())
            + self.pos_emb.forward(positions(b, l, self.max_len, &self.device()))
    }

    /// The auxiliary loss of a teacher (eq. 1, 2 or 3) on a batch of training sequences (their
    /// last `max_len` items), or `None` for a plain SASRec.
    pub fn consistency_loss(&self, seqs: &[&[u32]], rng: &mut SsiRng) -> Option<Tensor<1>> {
        let c = self.consistency.as_ref()?;
        let seqs: Vec<&[u32]> = seqs
            .iter()
            .map(|s| &s[s.len().saturating_sub(self.max_len)..])
            .collect();
        c.loss(self.consistency_mlp.as_ref(), &seqs, self, rng)
    }

    /// The causal state at the last item of each sequence (its last `max_len` items):
    /// [batch, hidden]. The same as [`Self::hidden_states`] at the last position, without the
    /// last layer's work at the other positions.
    fn last_states(&self, seqs: &[&[u32]]) -> Tensor<2> {
        let b = seqs.len();
        let device = self.device();
        let l = self.pad_to().len(seqs, self.max_len, &device);
        let ids = int2(left_pad(seqs, l), [b, l], &device);
        let padding = (!self.attend_padding).then(|| pad_mask(&ids));
        let x = dropout(&self.dropout, self.embed(ids));
        self.norm
            .forward(encode_last_causal(&self.encoder, x, None, padding))
    }

    /// [`Self::last_states`] at inference with `attend_padding`: every sequence is still read
    /// as padded to `max_len`, but the padding's states are computed once for the batch
    /// ([`encode_last_causal`]), so the cost follows the longest sequence, not `max_len`. No
    /// dropout: only for models without autodiff.
    fn last_states_inference(&self, seqs: &[&[u32]]) -> Tensor<2> {
        let device = self.device();
        let (b, len) = (seqs.len(), self.max_len);
        let n = PadTo::Masked.len(seqs, len, &device);
        let x = self.embed(int2(left_pad(seqs, n), [b, n], &device));
        let pad = self.embed(int2(vec![0; len], [1, len], &device));
        self.norm
            .forward(encode_last_causal(&self.encoder, x, Some(pad), None))
    }
}

/// A SASRec teacher summarises a sequence by its state at the last item, and hides eq. 3's
/// n-gram by cutting it out.
impl ConsistencyEncoder for SasRec {
    fn summary(&self, seqs: &[Vec<u32>]) -> Tensor<2> {
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let h = self.last_states(&refs);
        match &self.global_proj {
            Some(p) => p.forward(h),
            None => h,
        }
    }
    fn hide_span(&self, seq: &[u32], span: std::ops::Range<usize>) -> Vec<u32> {
        cut_span(seq, span)
    }
}

impl crate::model::ModelSpec for SasRecConfig {
    crate::model::spec_basics!(SasRec);
    fn defaults(n_items: usize, _n_users: usize) -> Self {
        Self::new(n_items)
            .with_attend_padding(Some(true))
            .with_torch_biases(Some(true))
    }

    /// PyTorch's Adam epsilon (1e-8, against burn's 1e-5): with PyTorch's bias initialisation it
    /// makes the first epochs learn as the PyTorch reference does (docs/results/recipe.md).
    fn train_defaults(&self) -> crate::model::TrainDefaults {
        crate::model::TrainDefaults {
            adam_epsilon: Some(1e-8),
            ..Default::default()
        }
    }

    /// A teacher's consistency settings written out with their defaults; a plain SASRec keeps
    /// them `null` (it has no task). `attend_padding: null` is written as what it means, `false`.
    fn resolved(mut self) -> Self {
        self.attend_padding = self.attend_padding.or(Some(false));
        if self.consistency.is_some() {
            self.consistency_weight = self.consistency_weight.or(Some(defaults::WEIGHT));
            self.ngram = self.ngram.or(Some(defaults::NGRAM));
            self.ngrams = self.ngrams.or(Some(defaults::NGRAMS));
            self.negative_prob = self.negative_prob.or(Some(defaults::NEGATIVE_PROB));
        }
        self
    }

    /// `sasrec-TASK`: not one of the paper's (BERT4Rec) teachers.
    fn teacher_name(&self) -> Option<String> {
        self.consistency.map(|t| format!("sasrec-{}", t.name()))
    }
}

impl SequentialModel for SasRec {
    basics!(Sasrec, max_len);
    fn encode(&self, batch: Batch) -> Tensor<2> {
        if self.attend_padding && !self.device().is_autodiff() {
            self.last_states_inference(batch.items)
        } else {
            self.last_states(batch.items)
        }
    }
    fn item_table(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items)
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        None
    }
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        let (ids, targets, rows) =
            shifted(batch.items, self.max_len, self.pad_to(), &self.device());
        let l = ids.dims()[1];
        let h = self
            .hidden_states(ids)
            .reshape([batch.items.len() * l, self.hidden]);
        let h = h.select(0, rows);
        let next = next_item_loss(
            h,
            self.item_table(),
            self.item_bias(),
            targets,
            softmax,
            rng,
        );
        // Eq. 4 with SASRec's own loss in place of L_MLM, for a teacher.
        match (self.consistency_loss(batch.items, rng), &self.consistency) {
            (Some(aux), Some(c)) => next + aux.mul_scalar(c.weight),
            _ => next,
        }
    }
}

/// How far a batch of left-padded sequences is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadTo {
    /// To the longest sequence (models that read padding, like a GRU from the left).
    Batch,
    /// To the longest sequence, or `max_len` on a bucketed device ([`masked_batch_len`]):
    /// models that mask padding, so its length changes no output.
    Masked,
    /// Always `max_len`: models whose outputs depend on how much padding there is.
    MaxLen,
}

impl PadTo {
    pub fn len(self, seqs: &[&[u32]], max_len: usize, device: &Device) -> usize {
        match self {
            PadTo::Batch => batch_len(seqs, max_len, 0),
            PadTo::Masked => masked_batch_len(seqs, max_len, 0, device),
            PadTo::MaxLen => max_len,
        }
    }
}

/// Next-item training pairs of causal models: inputs `s[..n-1]`, targets `s[1..]`, both the last
/// (at most) `max_len` of them, left-padded as `pad_to` says. Returns the input ids, the 0-based targets at
/// non-padding positions, and the flat row indices (batch * len) of those positions, padded by
/// [`pad_loss_rows`].
pub fn shifted(
    seqs: &[&[u32]],
    max_len: usize,
    pad_to: PadTo,
    device: &Device,
) -> (Tensor<2, Int>, Vec<i64>, Tensor<1, Int>) {
    let inputs: Vec<&[u32]> = seqs
        .iter()
        .map(|s| &s[..s.len().saturating_sub(1)])
        .collect();
    let outputs: Vec<&[u32]> = seqs
        .iter()
        .map(|s| if s.is_empty() { *s } else { &s[1..] })
        .collect();
    let len = pad_to.len(&inputs, max_len, device);
    let ids = left_pad(&inputs, len);
    let tgt = left_pad(&outputs, len);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (i, &t) in tgt.iter().enumerate() {
        if t != 0 {
            rows.push(i as i64);
            targets.push(t - 1);
        }
    }
    pad_loss_rows(&mut rows, &mut targets, device);
    (
        int2(ids, [seqs.len(), len], device),
        targets,
        crate::common::int1(rows, device),
    )
}
