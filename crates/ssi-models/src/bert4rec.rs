//! BERT4Rec (Sun et al., CIKM 2019): a bidirectional transformer trained with the cloze task.
//! Prediction appends [MASK] to the history and reads its hidden state. The output layer is tied
//! to the item embedding, with a bias; logits are formed only at masked positions.
//!
//! With `consistency` set, the same model is an SSI teacher (eq. 4): L_MLM + λ·L_aux, where the
//! auxiliary consistency task (eq. 1–3, see [`crate::consistency`]) reads the hidden state of an
//! [INT] token appended to the unmasked sequence in a second encoder pass.

use crate::common::{
    Batch, GROUP_OVERHEAD, TrainBatch, int1, int2, left_pad, length_groups, masked_batch_len,
    pad_loss_rows, pad_mask, small_init, transformer_init, ungroup,
};
use crate::consistency::{
    Consistency, ConsistencyEncoder, ConsistencyMlp, ConsistencyTask, mask_span,
};
use crate::loss::{Softmax, next_item_loss};
use crate::model::{SequentialModel, basics};
use crate::sasrec::positions;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use crate::fused_gelu::gelu;
use burn::tensor::{Device, Int, Tensor};
use ssi_data::rng::{Rng, SsiRng};

#[derive(Config, Debug)]
pub struct Bert4RecConfig {
    pub n_items: usize,
    #[config(default = 64)]
    pub hidden: usize,
    #[config(default = 2)]
    pub layers: usize,
    #[config(default = 2)]
    pub heads: usize,
    /// Input length including the appended [MASK] at prediction time.
    #[config(default = 50)]
    pub max_len: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
    /// σ of the N(0, σ) initialisation of the attention and feed-forward weights; `null`: burn's
    /// Kaiming-uniform default. Stays `null` here: with 0.02 the temporal consistency task of a
    /// small teacher stays at chance (tests/models.rs), and BERT4Rec teachers were not re-measured
    /// with it (SASRec was: docs/results/recipe.md).
    #[config(default = "None")]
    pub init_std: Option<f64>,
    /// Cloze mask proportion: 0.6, the BERT4Rec paper's value for Beauty, which reached its
    /// published figure where 0.2 did not (docs/results/models.md, docs/results/gpu.md).
    #[config(default = 0.6)]
    pub mask_prob: f64,
    /// Share of training sequences that mask only their last item, as at prediction time.
    #[config(default = 0.2)]
    pub last_mask_prob: f64,
    /// SSI teacher task (eq. 1–3); `None`: plain BERT4Rec.
    #[config(default = "None")]
    pub consistency: Option<ConsistencyTask>,
    /// λ of eq. 4 (the paper sets 1).
    #[config(default = 1.0)]
    pub consistency_weight: f64,
    /// Longest n-gram the consistency tasks shuffle, replace or mask.
    #[config(default = 2)]
    pub ngram: usize,
    /// n-grams swapped (temporal) or replaced (persona) per negative.
    #[config(default = 1)]
    pub ngrams: usize,
    /// Probability that a sequence becomes a negative (temporal, persona).
    #[config(default = 0.5)]
    pub negative_prob: f64,
}

#[derive(Module, Debug)]
pub struct Bert4Rec {
    /// Rows: 0 padding, 1..=N items, N+1 [MASK], N+2 [INT].
    pub item_emb: Embedding,
    pub pos_emb: Embedding,
    pub emb_norm: LayerNorm,
    pub dropout: Dropout,
    pub encoder: TransformerEncoder,
    pub head: Linear,
    pub head_norm: LayerNorm,
    pub out_bias: Param<Tensor<1>>,
    pub n_items: usize,
    pub hidden: usize,
    pub max_len: usize,
    pub mask_prob: f64,
    pub last_mask_prob: f64,
    /// Present on temporal and persona teachers.
    pub consistency_mlp: Option<ConsistencyMlp>,
    #[module(skip)]
    pub consistency: Option<Consistency>,
}

impl Bert4RecConfig {
    pub fn init(&self, device: &Device) -> Bert4Rec {
        Bert4Rec {
            item_emb: EmbeddingConfig::new(self.n_items + 3, self.hidden)
                .with_initializer(small_init())
                .init(device),
            pos_emb: EmbeddingConfig::new(self.max_len, self.hidden)
                .with_initializer(small_init())
                .init(device),
            emb_norm: LayerNormConfig::new(self.hidden).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
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
            head: LinearConfig::new(self.hidden, self.hidden).init(device),
            head_norm: LayerNormConfig::new(self.hidden).init(device),
            out_bias: Param::from_tensor(Tensor::zeros([self.n_items], device)),
            n_items: self.n_items,
            hidden: self.hidden,
            max_len: self.max_len,
            mask_prob: self.mask_prob,
            last_mask_prob: self.last_mask_prob,
            consistency_mlp: ConsistencyMlp::for_task(self.consistency, self.hidden, device),
            consistency: self.consistency.map(|task| Consistency {
                task,
                weight: self.consistency_weight,
                ngram: self.ngram,
                ngrams: self.ngrams,
                negative_prob: self.negative_prob,
            }),
        }
    }
}

impl Bert4Rec {
    pub fn mask_id(&self) -> u32 {
        self.n_items as u32 + 1
    }

    pub fn int_id(&self) -> u32 {
        self.n_items as u32 + 2
    }

    /// Hidden state of `token` appended to each sequence (its last `max_len - 1` items):
    /// [batch, hidden]. [MASK] gives the prediction state, [INT] the consistency tasks' input.
    pub fn with_last_token<S: AsRef<[u32]>>(&self, seqs: &[S], token: u32) -> Tensor<2> {
        let tail = [token];
        let with_tok: Vec<Vec<u32>> = seqs
            .iter()
            .map(|s| {
                let s = s.as_ref();
                let keep = s.len().min(self.max_len - 1);
                [&s[s.len() - keep..], &tail[..]].concat()
            })
            .collect();
        self.last_states(&with_tok)
    }

    pub fn int_states(&self, seqs: &[Vec<u32>]) -> Tensor<2> {
        self.with_last_token(seqs, self.int_id())
    }

    /// Hidden state at the last position of each (left-padded) sequence: [batch, hidden],
    /// computed by groups of similar length ([`length_groups`]).
    fn last_states(&self, seqs: &[Vec<u32>]) -> Tensor<2> {
        let device = self.device();
        let lens: Vec<usize> = seqs.iter().map(|s| s.len().min(self.max_len)).collect();
        let groups = length_groups(&lens, GROUP_OVERHEAD, &device);
        let parts = groups
            .iter()
            .map(|g| {
                let refs: Vec<&[u32]> = g.iter().map(|&i| seqs[i].as_slice()).collect();
                let l = masked_batch_len(&refs, self.max_len, 0, &device);
                let ids = int2(left_pad(&refs, l), [refs.len(), l], &device);
                self.hidden_states(ids)
                    .narrow(1, l - 1, 1)
                    .reshape([refs.len(), self.hidden])
            })
            .collect();
        if groups.len() == 1 {
            return Tensor::cat(parts, 0);
        }
        ungroup(parts, &groups, &device)
    }

    /// The auxiliary loss of a teacher (eq. 1, 2 or 3) on a batch of training sequences, or
    /// `None` for a plain BERT4Rec.
    pub fn consistency_loss(&self, seqs: &[&[u32]], rng: &mut SsiRng) -> Option<Tensor<1>> {
        let c = self.consistency.as_ref()?;
        let keep = self.max_len - 1;
        let seqs: Vec<&[u32]> = seqs
            .iter()
            .map(|s| &s[s.len().saturating_sub(keep)..])
            .collect();
        c.loss(self.consistency_mlp.as_ref(), &seqs, self, rng)
    }

    /// Bidirectional hidden states: [batch, len, hidden]; padding is never attended to.
    pub fn hidden_states(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let x = self.item_emb.forward(ids.clone())
            + self.pos_emb.forward(positions(b, l, self.max_len, &device));
        let x = crate::transformer::dropout(&self.dropout, self.emb_norm.forward(x));
        crate::transformer::encode(&self.encoder, x, Some(pad_mask(&ids)), None)
    }

    /// The prediction head applied before scoring against the item table.
    fn project(&self, h: Tensor<2>) -> Tensor<2> {
        self.head_norm.forward(gelu(self.head.forward(h)))
    }

    /// Cloze inputs: the last `max_len` items with some replaced by [MASK]. Returns the masked
    /// ids, the 0-based targets and the flat row indices of the masked positions (padded by
    /// [`pad_loss_rows`]: the number of masked positions changes every batch).
    pub fn cloze(&self, seqs: &[&[u32]], rng: &mut SsiRng) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        let masks = self.cloze_positions(seqs, rng);
        let len = masked_batch_len(seqs, self.max_len, 0, &self.device());
        let masks: Vec<&[usize]> = masks.iter().map(Vec::as_slice).collect();
        self.cloze_ids(seqs, &masks, len)
    }

    /// The positions the cloze task masks in each sequence's last `max_len` items (0: the
    /// oldest kept), drawn sequence by sequence: the draws do not depend on the padding.
    fn cloze_positions(&self, seqs: &[&[u32]], rng: &mut SsiRng) -> Vec<Vec<usize>> {
        seqs.iter()
            .map(|s| {
                let n = s.len().min(self.max_len);
                if n == 0 {
                    return Vec::new();
                }
                let mut masked: Vec<usize> = if rng.random_bool(self.last_mask_prob) {
                    vec![n - 1]
                } else {
                    (0..n).filter(|_| rng.random_bool(self.mask_prob)).collect()
                };
                if masked.is_empty() {
                    masked.push(rng.random_range(0..n));
                }
                masked
            })
            .collect()
    }

    /// [`Self::cloze`]'s outputs for `seqs` padded to `len`, masked at `masks`.
    fn cloze_ids(
        &self,
        seqs: &[&[u32]],
        masks: &[&[usize]],
        len: usize,
    ) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        let mut ids = left_pad(seqs, len);
        let mut targets = Vec::new();
        let mut rows = Vec::new();
        for (r, (s, masked)) in seqs.iter().zip(masks).enumerate() {
            let first = len - s.len().min(len);
            for &p in *masked {
                let at = r * len + first + p;
                targets.push(ids[at] - 1);
                rows.push(at as i64);
                ids[at] = self.mask_id() as i64;
            }
        }
        pad_loss_rows(&mut rows, &mut targets, &self.device());
        (ids, targets, rows)
    }

    /// The projected hidden states at the cloze task's masked positions, and their targets,
    /// computed by groups of similar length ([`length_groups`]): the loss rows in group order.
    fn cloze_states(&self, seqs: &[&[u32]], rng: &mut SsiRng) -> (Tensor<2>, Vec<i64>) {
        let device = self.device();
        let masks = self.cloze_positions(seqs, rng);
        let lens: Vec<usize> = seqs.iter().map(|s| s.len().min(self.max_len)).collect();
        let (mut states, mut all_targets) = (Vec::new(), Vec::new());
        let groups = length_groups(&lens, GROUP_OVERHEAD, &device);
        let single = groups.len() == 1;
        for g in groups {
            let group: Vec<&[u32]> = g.iter().map(|&i| seqs[i]).collect();
            let group_masks: Vec<&[usize]> = g.iter().map(|&i| masks[i].as_slice()).collect();
            let l = masked_batch_len(&group, self.max_len, 0, &device);
            let (ids, targets, rows) = self.cloze_ids(&group, &group_masks, l);
            // Only a group of empty sequences has nothing masked: it adds nothing to the loss
            // (the grouping never splits them, so another group has rows).
            if rows.is_empty() && !single {
                continue;
            }
            let h = self
                .hidden_states(int2(ids, [group.len(), l], &device))
                .reshape([group.len() * l, self.hidden]);
            states.push(h.select(0, int1(rows, &device)));
            all_targets.extend(targets);
        }
        (self.project(Tensor::cat(states, 0)), all_targets)
    }
}

impl crate::model::ModelSpec for Bert4RecConfig {
    crate::model::spec_basics!(Bert4Rec);
    fn defaults(n_items: usize, _n_users: usize) -> Self {
        Self::new(n_items)
    }

    fn teacher_name(&self) -> Option<String> {
        self.consistency.map(|t| t.name().to_string())
    }
}

impl SequentialModel for Bert4Rec {
    basics!(Bert4rec, max_len);
    fn encode(&self, batch: Batch) -> Tensor<2> {
        let h = self.with_last_token(batch.items, self.mask_id());
        self.project(h)
    }
    fn item_table(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items)
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        Some(self.out_bias.val())
    }
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        let (h, targets) = self.cloze_states(batch.items, rng);
        let mlm = next_item_loss(
            h,
            self.item_table(),
            self.item_bias(),
            targets,
            softmax,
            rng,
        );
        // Eq. 4: L_MLM + λ·L_aux for a teacher.
        match (self.consistency_loss(batch.items, rng), &self.consistency) {
            (Some(aux), Some(c)) => mlm + aux.mul_scalar(c.weight),
            _ => mlm,
        }
    }
}

/// The paper's teacher input: an [INT] token appended to each sequence, and [MASK] over the
/// global task's n-gram.
impl ConsistencyEncoder for Bert4Rec {
    fn summary(&self, seqs: &[Vec<u32>]) -> Tensor<2> {
        self.int_states(seqs)
    }
    fn hide_span(&self, seq: &[u32], span: std::ops::Range<usize>) -> Vec<u32> {
        mask_span(seq, span, self.mask_id())
    }
}
