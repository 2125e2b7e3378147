//! HGN, Hierarchical Gating Network (Ma et al., KDD 2019): feature gating and instance gating
//! over the last `window` items, plus the user term and the item-item product:
//! score(u, j) = (u + s + sum_l e_l) . q_j + b_j.
//!
//! Users typed into the browser have no id: row 0 of the user table is a learned "unknown user"
//! vector, trained by hiding the user of a share (`p_unknown_user`) of the training windows.

use crate::common::{Batch, TrainBatch, int1, int2, left_pad, small_init};
use crate::loss::{Softmax, next_item_loss};
use crate::model::{SequentialModel, basics};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor};
use ssi_data::rng::{Rng, SsiRng};

#[derive(Config, Debug)]
pub struct HgnConfig {
    pub n_items: usize,
    pub n_users: usize,
    #[config(default = 64)]
    pub hidden: usize,
    /// L in the HGN paper: how many recent items are gated.
    #[config(default = 5)]
    pub window: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
    #[config(default = 0.1)]
    pub p_unknown_user: f64,
}

#[derive(Module, Debug)]
pub struct Hgn {
    pub item_emb: Embedding,
    /// Output item table q_j (separate from the input embeddings, as in HGN).
    pub out_emb: Param<Tensor<2>>,
    pub out_bias: Param<Tensor<1>>,
    /// Row 0 is the unknown user; user index i is row i + 1.
    pub user_emb: Embedding,
    pub feature_item: Linear,
    pub feature_user: Linear,
    pub instance_item: Linear,
    pub instance_user: Linear,
    pub dropout: Dropout,
    pub n_items: usize,
    pub n_users: usize,
    pub hidden: usize,
    pub window: usize,
    pub p_unknown_user: f64,
}

impl HgnConfig {
    pub fn init(&self, device: &Device) -> Hgn {
        let h = self.hidden;
        Hgn {
            item_emb: EmbeddingConfig::new(self.n_items + 1, h)
                .with_initializer(small_init())
                .init(device),
            out_emb: small_init().init([self.n_items, h], device),
            out_bias: Param::from_tensor(Tensor::zeros([self.n_items], device)),
            user_emb: EmbeddingConfig::new(self.n_users + 1, h)
                .with_initializer(small_init())
                .init(device),
            feature_item: LinearConfig::new(h, h).init(device),
            feature_user: LinearConfig::new(h, h).with_bias(false).init(device),
            instance_item: LinearConfig::new(h, 1).with_bias(false).init(device),
            instance_user: LinearConfig::new(h, self.window)
                .with_bias(false)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_items: self.n_items,
            n_users: self.n_users,
            hidden: h,
            window: self.window,
            p_unknown_user: self.p_unknown_user,
        }
    }
}

impl Hgn {
    /// `ids`: [batch, window] left-padded recent items; `users`: [batch] table rows (0 = unknown).
    pub fn forward(&self, ids: Tensor<2, Int>, users: Tensor<1, Int>) -> Tensor<2> {
        let [b, l] = ids.dims();
        let h = self.hidden;
        let valid = ids.clone().not_equal_elem(0).float(); // [B, L]
        let e = crate::transformer::dropout(&self.dropout, self.item_emb.forward(ids)); // [B, L, H]
        let u = self
            .user_emb
            .forward(users.unsqueeze_dim::<2>(1))
            .reshape([b, h]);
        // Feature gating: S_F = E * sigmoid(E W1 + u W2 + b).
        let gate_f = sigmoid(
            crate::transformer::linear_rows(&self.feature_item, e.clone())
                + self.feature_user.forward(u.clone()).unsqueeze_dim::<3>(1),
        );
        let s_f = e.clone() * gate_f;
        // Instance gating: one weight per item, sigmoid(S_F w3 + u W4); padding gets weight 0.
        let gate_i = sigmoid(
            crate::transformer::linear_rows(&self.instance_item, s_f.clone()).reshape([b, l])
                + self.instance_user.forward(u.clone()),
        );
        let gate_i = gate_i * valid.clone();
        let s = (s_f * gate_i.clone().unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .reshape([b, h])
            / (gate_i.sum_dim(1) + 1e-8);
        let e_sum = (e * valid.unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, h]);
        u + s + e_sum
    }

    fn user_rows(&self, users: impl Iterator<Item = Option<usize>>) -> Vec<i64> {
        users
            .map(|u| match u {
                Some(i) if i < self.n_users => i as i64 + 1,
                _ => 0,
            })
            .collect()
    }
}

impl crate::model::ModelSpec for HgnConfig {
    crate::model::spec_basics!(Hgn);
    fn defaults(n_items: usize, n_users: usize) -> Self {
        Self::new(n_items, n_users)
    }
}

impl SequentialModel for Hgn {
    basics!(Hgn, window);
    fn encode(&self, batch: Batch) -> Tensor<2> {
        let b = batch.items.len();
        let device = self.device();
        let ids = int2(
            left_pad(batch.items, self.window),
            [b, self.window],
            &device,
        );
        let users = int1(self.user_rows(batch.users.iter().copied()), &device);
        self.forward(ids, users)
    }
    fn item_table(&self) -> Tensor<2> {
        self.out_emb.val()
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        Some(self.out_bias.val())
    }
    /// Every position t >= 1 of every sequence is a target, predicted from the `window` items
    /// before it (HGN's sliding windows), with cross-entropy instead of HGN's BPR.
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        let device = self.device();
        let mut windows: Vec<&[u32]> = Vec::new();
        let mut users = Vec::new();
        let mut targets = Vec::new();
        for (s, &u) in batch.items.iter().zip(batch.users) {
            for t in 1..s.len() {
                windows.push(&s[t.saturating_sub(self.window)..t]);
                users.push((!rng.random_bool(self.p_unknown_user)).then_some(u));
                targets.push(s[t] as i64 - 1);
            }
        }
        let n = windows.len();
        let ids = int2(left_pad(&windows, self.window), [n, self.window], &device);
        let users = int1(self.user_rows(users.into_iter()), &device);
        let h = self.forward(ids, users);
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
