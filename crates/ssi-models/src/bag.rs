//! A model that exists only in the tests (`#[cfg(test)]` in the list of `lib.rs`): the mean of
//! the history's item embeddings scores the next item. It is written as a newcomer would write a
//! model — this file and one line in the list — and the list's tests build, train, score, save
//! and load it like the real models.

use crate::common::{Batch, TrainBatch, batch_len, int2, left_pad, small_init};
use crate::loss::{Softmax, next_item_loss};
use crate::model::{ModelSpec, SequentialModel, basics, spec_basics};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Device, Tensor};
use ssi_data::rng::SsiRng;

#[derive(Config, Debug)]
pub struct BagConfig {
    pub n_items: usize,
    #[config(default = 32)]
    pub hidden: usize,
    #[config(default = 20)]
    pub max_len: usize,
}

#[derive(Module, Debug)]
pub struct Bag {
    pub item_emb: Embedding,
    pub n_items: usize,
    pub hidden: usize,
    pub max_len: usize,
}

impl BagConfig {
    pub fn init(&self, device: &Device) -> Bag {
        Bag {
            item_emb: EmbeddingConfig::new(self.n_items + 1, self.hidden)
                .with_initializer(small_init())
                .init(device),
            n_items: self.n_items,
            hidden: self.hidden,
            max_len: self.max_len,
        }
    }
}

impl Bag {
    /// Mean embedding of each history's last `max_len` items (padding left out): [batch, hidden].
    fn mean(&self, seqs: &[&[u32]]) -> Tensor<2> {
        let b = seqs.len();
        let l = batch_len(seqs, self.max_len, 0);
        let ids = int2(left_pad(seqs, l), [b, l], &self.device());
        let valid = ids.clone().not_equal_elem(0).float(); // [B, L]
        let sum = (self.item_emb.forward(ids) * valid.clone().unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .reshape([b, self.hidden]);
        sum / valid.sum_dim(1).clamp_min(1.0)
    }
}

impl ModelSpec for BagConfig {
    spec_basics!(Bag);
    fn defaults(n_items: usize, _n_users: usize) -> Self {
        Self::new(n_items)
    }
}

impl SequentialModel for Bag {
    basics!(Bag, max_len);
    fn encode(&self, batch: Batch) -> Tensor<2> {
        self.mean(batch.items)
    }
    fn item_table(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items)
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        None
    }
    /// Cross-entropy of each sequence's last item given the items before it.
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        let (targets, inputs): (Vec<i64>, Vec<&[u32]>) = batch
            .items
            .iter()
            .filter_map(|s| s.split_last())
            .map(|(&last, rest)| (last as i64 - 1, rest))
            .unzip();
        next_item_loss(
            self.mean(&inputs),
            self.item_table(),
            None,
            targets,
            softmax,
            rng,
        )
    }
}
