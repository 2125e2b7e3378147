//! GRU4Rec (Hidasi et al., ICLR 2016): item embedding -> GRU -> next-item scores, trained with
//! cross-entropy at every position. The GRU is written out (rather than burn's `Gru`) so that
//! padding steps leave the state untouched: a left-padded sequence gives exactly the state of
//! the unpadded one.

use crate::common::{Batch, TrainBatch, batch_len, int2, left_pad, small_init};
use crate::loss::{Softmax, next_item_loss};
use crate::model::{SequentialModel, basics};
use crate::sasrec::{PadTo, shifted};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Int, Tensor};
use ssi_data::rng::SsiRng;

#[derive(Config, Debug)]
pub struct Gru4RecConfig {
    pub n_items: usize,
    #[config(default = 64)]
    pub hidden: usize,
    #[config(default = 50)]
    pub max_len: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
}

#[derive(Module, Debug)]
pub struct Gru4Rec {
    pub item_emb: Embedding,
    /// Input projections of the reset, update and candidate gates, computed for all steps at once.
    pub input_proj: Linear,
    pub hidden_proj: Linear,
    pub dropout: Dropout,
    pub out_bias: Param<Tensor<1>>,
    pub n_items: usize,
    pub hidden: usize,
    pub max_len: usize,
}

impl Gru4RecConfig {
    pub fn init(&self, device: &Device) -> Gru4Rec {
        Gru4Rec {
            item_emb: EmbeddingConfig::new(self.n_items + 1, self.hidden)
                .with_initializer(small_init())
                .init(device),
            input_proj: LinearConfig::new(self.hidden, 3 * self.hidden).init(device),
            hidden_proj: LinearConfig::new(self.hidden, 3 * self.hidden).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            out_bias: Param::from_tensor(Tensor::zeros([self.n_items], device)),
            n_items: self.n_items,
            hidden: self.hidden,
            max_len: self.max_len,
        }
    }
}

impl Gru4Rec {
    /// States after every step: [batch, len, hidden]. Padding steps copy the previous state.
    pub fn hidden_states(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = ids.dims();
        let hd = self.hidden;
        let valid = ids.clone().not_equal_elem(0).float().unsqueeze_dim::<3>(2); // [B, L, 1]
        let x = crate::transformer::dropout(&self.dropout, self.item_emb.forward(ids));
        // Time-major [L, B, 3H], so each step's input is a contiguous block rather than a
        // strided slice copied at every step.
        let xp = crate::transformer::linear_rows(&self.input_proj, x.swap_dims(0, 1));
        let mut h = Tensor::<2>::zeros([b, hd], &xp.device());
        let mut outs = Vec::with_capacity(l);
        // The backward pass of a slice fills a zero tensor of its source's shape: steps sliced
        // from blocks of about √L steps (sliced from `xp`) cost 2√L copies of `xp` in the
        // backward pass instead of L. Same values and gradients.
        let block = (l as f64).sqrt().ceil().max(1.0) as usize;
        let mut chunk = None;
        for t in 0..l {
            if t % block == 0 {
                chunk = Some(xp.clone().narrow(0, t, block.min(l - t)));
            }
            let xt = chunk
                .clone()
                .expect("set at the block's first step")
                .narrow(0, t % block, 1)
                .reshape([b, 3 * hd]);
            let hp = self.hidden_proj.forward(h.clone());
            let r = sigmoid(xt.clone().narrow(1, 0, hd) + hp.clone().narrow(1, 0, hd));
            let z = sigmoid(xt.clone().narrow(1, hd, hd) + hp.clone().narrow(1, hd, hd));
            let n = tanh(xt.narrow(1, 2 * hd, hd) + r * hp.narrow(1, 2 * hd, hd));
            let new_h = n.clone() + z * (h.clone() - n);
            let m = valid.clone().narrow(1, t, 1).reshape([b, 1]);
            h = h.clone() + m * (new_h - h);
            outs.push(h.clone());
        }
        crate::transformer::dropout(&self.dropout, Tensor::stack(outs, 1))
    }
}

impl crate::model::ModelSpec for Gru4RecConfig {
    crate::model::spec_basics!(Gru4Rec);
    fn defaults(n_items: usize, _n_users: usize) -> Self {
        Self::new(n_items)
    }
}

impl SequentialModel for Gru4Rec {
    basics!(Gru4rec, max_len);
    fn encode(&self, batch: Batch) -> Tensor<2> {
        let b = batch.items.len();
        let l = batch_len(batch.items, self.max_len, 0);
        let ids = int2(left_pad(batch.items, l), [b, l], &self.device());
        self.hidden_states(ids)
            .narrow(1, l - 1, 1)
            .reshape([b, self.hidden])
    }
    fn item_table(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items)
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        Some(self.out_bias.val())
    }
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        let (ids, targets, rows) = shifted(batch.items, self.max_len, PadTo::Batch, &self.device());
        let l = ids.dims()[1];
        let h = self
            .hidden_states(ids)
            .reshape([batch.items.len() * l, self.hidden]);
        next_item_loss(
            h.select(0, rows),
            self.item_table(),
            self.item_bias(),
            targets,
            softmax,
            rng,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recurrence with every step sliced from the whole [B, L, 3H] projection (no blocks).
    fn reference(m: &Gru4Rec, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = ids.dims();
        let hd = m.hidden;
        let valid = ids.clone().not_equal_elem(0).float().unsqueeze_dim::<3>(2);
        let xp = m.input_proj.forward(m.item_emb.forward(ids));
        let mut h = Tensor::<2>::zeros([b, hd], &xp.device());
        let mut outs = Vec::new();
        for t in 0..l {
            let xt = xp.clone().narrow(1, t, 1).reshape([b, 3 * hd]);
            let hp = m.hidden_proj.forward(h.clone());
            let r = sigmoid(xt.clone().narrow(1, 0, hd) + hp.clone().narrow(1, 0, hd));
            let z = sigmoid(xt.clone().narrow(1, hd, hd) + hp.clone().narrow(1, hd, hd));
            let n = tanh(xt.narrow(1, 2 * hd, hd) + r * hp.narrow(1, 2 * hd, hd));
            let new_h = n.clone() + z * (h.clone() - n);
            let mk = valid.clone().narrow(1, t, 1).reshape([b, 1]);
            h = h.clone() + mk * (new_h - h);
            outs.push(h.clone());
        }
        Tensor::stack(outs, 1)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    /// Steps sliced from blocks of about √L steps give the states and gradients of slicing each
    /// step from the whole projection, for lengths with full, partial and single-step blocks.
    #[test]
    fn block_slicing_equals_slicing_every_step() {
        let dev = Device::flex().autodiff();
        let m = Gru4RecConfig::new(20)
            .with_hidden(8)
            .with_dropout(0.0)
            .init(&dev);
        for l in [1usize, 2, 4, 5, 10] {
            let b = 3;
            let ids: Vec<i64> = (0..b * l)
                .map(|i| if i % 4 == 0 { 0 } else { (i % 20 + 1) as i64 })
                .collect();
            let run = |f: &dyn Fn(&Gru4Rec, Tensor<2, Int>) -> Tensor<3>| {
                let out = f(&m, int2(ids.clone(), [b, l], &dev));
                let grads = (out.clone() * out.clone()).sum().backward();
                (
                    values(out),
                    values(m.input_proj.weight.val().grad(&grads).unwrap()),
                    values(m.hidden_proj.weight.val().grad(&grads).unwrap()),
                )
            };
            let ours = run(&|m, ids| m.hidden_states(ids));
            let reference = run(&reference);
            for (a, r) in [
                (&ours.0, &reference.0),
                (&ours.1, &reference.1),
                (&ours.2, &reference.2),
            ] {
                for (x, y) in a.iter().zip(r.iter()) {
                    assert!((x - y).abs() <= 1e-6 + 1e-5 * y.abs(), "l = {l}: {x} vs {y}");
                }
            }
        }
    }
}
