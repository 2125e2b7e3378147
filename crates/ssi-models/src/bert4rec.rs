//! BERT4Rec (Sun et al., CIKM 2019): a bidirectional transformer trained with the cloze task.
//! Prediction appends [MASK] to the history and reads its hidden state. The output layer is tied
//! to the item embedding, with a bias; logits are formed only at masked positions.

use crate::common::{Batch, TrainBatch, batch_len, int1, int2, left_pad, pad_mask, small_init};
use crate::loss::{Softmax, next_item_loss};
use crate::model::{SequentialModel, basics};
use crate::sasrec::positions;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::activation::gelu;
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
    /// Cloze mask proportion.
    #[config(default = 0.2)]
    pub mask_prob: f64,
    /// Share of training sequences that mask only their last item, as at prediction time.
    #[config(default = 0.2)]
    pub last_mask_prob: f64,
}

#[derive(Module, Debug)]
pub struct Bert4Rec {
    /// Rows: 0 padding, 1..=N items, N+1 [MASK].
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
}

impl Bert4RecConfig {
    pub fn init(&self, device: &Device) -> Bert4Rec {
        Bert4Rec {
            item_emb: EmbeddingConfig::new(self.n_items + 2, self.hidden)
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
            .init(device),
            head: LinearConfig::new(self.hidden, self.hidden).init(device),
            head_norm: LayerNormConfig::new(self.hidden).init(device),
            out_bias: Param::from_tensor(Tensor::zeros([self.n_items], device)),
            n_items: self.n_items,
            hidden: self.hidden,
            max_len: self.max_len,
            mask_prob: self.mask_prob,
            last_mask_prob: self.last_mask_prob,
        }
    }
}

impl Bert4Rec {
    pub fn mask_id(&self) -> u32 {
        self.n_items as u32 + 1
    }

    /// Bidirectional hidden states: [batch, len, hidden]; padding is never attended to.
    pub fn hidden_states(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let x = self.item_emb.forward(ids.clone())
            + self.pos_emb.forward(positions(b, l, self.max_len, &device));
        let x = self.dropout.forward(self.emb_norm.forward(x));
        self.encoder
            .forward(TransformerEncoderInput::new(x).mask_pad(pad_mask(&ids)))
    }

    /// The prediction head applied before scoring against the item table.
    fn project(&self, h: Tensor<2>) -> Tensor<2> {
        self.head_norm.forward(gelu(self.head.forward(h)))
    }

    /// Cloze inputs: the last `max_len` items with some replaced by [MASK]. Returns the masked
    /// ids, the 0-based targets and the flat row indices of the masked positions.
    pub fn cloze(&self, seqs: &[&[u32]], rng: &mut SsiRng) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        let len = batch_len(seqs, self.max_len, 0);
        let mut ids = left_pad(seqs, len);
        let mut targets = Vec::new();
        let mut rows = Vec::new();
        for r in 0..seqs.len() {
            let row = &mut ids[r * len..(r + 1) * len];
            let first = row.iter().position(|&v| v != 0).unwrap_or(len);
            if first == len {
                continue;
            }
            let mut masked: Vec<usize> = if rng.random_bool(self.last_mask_prob) {
                vec![len - 1]
            } else {
                (first..len)
                    .filter(|_| rng.random_bool(self.mask_prob))
                    .collect()
            };
            if masked.is_empty() {
                masked.push(rng.random_range(first..len));
            }
            for p in masked {
                targets.push(row[p] - 1);
                rows.push((r * len + p) as i64);
                row[p] = self.mask_id() as i64;
            }
        }
        (ids, targets, rows)
    }
}

impl SequentialModel for Bert4Rec {
    basics!(Bert4rec, max_len);
    fn encode(&self, batch: Batch) -> Tensor<2> {
        let b = batch.items.len();
        let mask = [self.mask_id()];
        let with_mask: Vec<Vec<u32>> = batch
            .items
            .iter()
            .map(|s| {
                let keep = s.len().min(self.max_len - 1);
                [&s[s.len() - keep..], &mask[..]].concat()
            })
            .collect();
        let refs: Vec<&[u32]> = with_mask.iter().map(Vec::as_slice).collect();
        let l = batch_len(&refs, self.max_len, 0);
        let ids = int2(left_pad(&refs, l), [b, l], &self.device());
        let h = self
            .hidden_states(ids)
            .narrow(1, l - 1, 1)
            .reshape([b, self.hidden]);
        self.project(h)
    }
    fn item_table(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items)
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        Some(self.out_bias.val())
    }
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        let b = batch.items.len();
        let device = self.device();
        let (ids, targets, rows) = self.cloze(batch.items, rng);
        let l = ids.len() / b;
        let h = self
            .hidden_states(int2(ids, [b, l], &device))
            .reshape([b * l, self.hidden]);
        let h = self.project(h.select(0, int1(rows, &device)));
        next_item_loss(
            h,
            self.item_table(),
            self.item_bias(),
            targets,
            softmax,
            rng,
        )
    }
}
