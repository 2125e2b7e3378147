//! GREC (Yuan et al., WWW 2020, "Future Data Helps Training: Modeling Future Contexts for
//! Session-based Recommendation"): an encoder–decoder trained by gap-filling.
//!
//! Training: some items of a sequence are replaced by a gap token. The encoder, a stack of
//! NextItNet residual blocks with *non-causal* dilated convolutions, reads this partially complete
//! sequence, so it sees the future of every gap. The decoder, the same blocks with *causal*
//! dilated convolutions, reads the complement (the gap items at their positions, every other
//! position a gap token) plus a projection of the encoder's states, and predicts each gap item
//! from the position before it (cross-entropy over all items). Prediction: the encoder reads the
//! history with a gap appended, the decoder reads gaps only, and the decoder's state at the last
//! history position scores the next item — the history alone, as at training time for a gap at
//! the end. Choices the paper leaves open are fields here and are documented in `docs/ssi.md`.

use crate::common::{Batch, TrainBatch, batch_len, int1, int2, small_init, transformer_init};
use crate::loss::{Softmax, next_item_loss};
use crate::model::{SequentialModel, basics};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor};
use ssi_data::rng::{Rng, SsiRng};

#[derive(Config, Debug)]
pub struct GrecConfig {
    pub n_items: usize,
    #[config(default = 64)]
    pub hidden: usize,
    /// Dilations of the residual blocks of the encoder and of the decoder (each block holds two
    /// kernel-3 convolutions with dilations d and 2d, as in NextItNet).
    #[config(default = "vec![1, 2, 4]")]
    pub dilations: Vec<usize>,
    #[config(default = 50)]
    pub max_len: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Probability that an item (after the first) becomes a gap. 0.5: more gaps per sequence
    /// learn more per epoch than 0.3 on Beauty and Toys (docs/results/grec.md).
    #[config(default = 0.5)]
    pub gap_prob: f64,
    /// Share of training sequences whose only gap is their last item, as at prediction time.
    #[config(default = 0.2)]
    pub last_gap_prob: f64,
    /// σ of the N(0, σ) initialisation of the convolutions and the projector (NextItNet's and
    /// GREC's code: 0.02); `null`: burn's Kaiming-uniform default.
    #[config(default = "None")]
    pub init_std: Option<f64>,
    /// What the decoder reads: `complement` (the gap items at their positions, every other
    /// position the gap token) or `sequence` (every item: the causal decoder sees the whole past
    /// of each gap, as in NextItNet, while the encoder still sees the gaps as gaps). `null`
    /// (and run folders written before this setting existed): `complement`.
    #[config(default = "None")]
    pub decoder_input: Option<DecoderInput>,
}

/// The decoder's input in training and prediction (see [`GrecConfig::decoder_input`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderInput {
    Complement,
    Sequence,
}

/// A kernel-3 dilated convolution over [batch, len, hidden], causal (taps t−2d, t−d, t) or not
/// (taps t−d, t, t+d). Written as one linear map of shifted copies: plain matmuls, fast on every
/// backend.
#[derive(Module, Debug)]
pub struct DilatedConv {
    pub linear: Linear,
    pub dilation: usize,
    pub causal: bool,
}

/// `x` shifted by `s` along the length (positive: towards later positions), zero-filled.
fn shift(x: Tensor<3>, s: isize) -> Tensor<3> {
    let [b, l, h] = x.dims();
    let k = s.unsigned_abs();
    if s == 0 {
        return x;
    }
    if k >= l {
        return Tensor::zeros([b, l, h], &x.device());
    }
    let zeros = Tensor::zeros([b, k, h], &x.device());
    if s > 0 {
        Tensor::cat(vec![zeros, x.narrow(1, 0, l - k)], 1)
    } else {
        Tensor::cat(vec![x.narrow(1, k, l - k), zeros], 1)
    }
}

impl DilatedConv {
    fn new(hidden: usize, dilation: usize, causal: bool, init: &Initializer, device: &Device) -> Self {
        DilatedConv {
            linear: LinearConfig::new(3 * hidden, hidden)
                .with_initializer(init.clone())
                .init(device),
            dilation,
            causal,
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let d = self.dilation as isize;
        let taps = if self.causal {
            [2 * d, d, 0]
        } else {
            [d, 0, -d]
        };
        let cat = Tensor::cat(taps.iter().map(|&s| shift(x.clone(), s)).collect(), 2);
        self.linear.forward(cat)
    }
}

/// NextItNet's residual block: LayerNorm → ReLU → conv(d) → LayerNorm → ReLU → conv(2d), plus the
/// input.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub norm1: LayerNorm,
    pub conv1: DilatedConv,
    pub norm2: LayerNorm,
    pub conv2: DilatedConv,
}

impl ResidualBlock {
    fn new(hidden: usize, dilation: usize, causal: bool, init: &Initializer, device: &Device) -> Self {
        ResidualBlock {
            norm1: LayerNormConfig::new(hidden).init(device),
            conv1: DilatedConv::new(hidden, dilation, causal, init, device),
            norm2: LayerNormConfig::new(hidden).init(device),
            conv2: DilatedConv::new(hidden, 2 * dilation, causal, init, device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = self.conv1.forward(relu(self.norm1.forward(x.clone())));
        let y = self.conv2.forward(relu(self.norm2.forward(y)));
        x + y
    }
}

#[derive(Module, Debug)]
pub struct Grec {
    /// Rows: 0 padding, 1..=N items, N+1 gap. Shared by encoder input, decoder input and output.
    pub item_emb: Embedding,
    pub encoder: Vec<ResidualBlock>,
    /// The projector between encoder and decoder: a two-layer bottleneck MLP whose output is added
    /// to the decoder's input embeddings.
    pub proj1: Linear,
    pub proj2: Linear,
    pub decoder: Vec<ResidualBlock>,
    pub norm: LayerNorm,
    pub out_bias: Param<Tensor<1>>,
    pub dropout: Dropout,
    pub n_items: usize,
    pub hidden: usize,
    pub max_len: usize,
    pub gap_prob: f64,
    pub last_gap_prob: f64,
    /// [`DecoderInput::Sequence`] when true.
    pub decoder_reads_sequence: bool,
}

impl GrecConfig {
    pub fn init(&self, device: &Device) -> Grec {
        let init = transformer_init(self.init_std);
        let blocks = |causal: bool| {
            self.dilations
                .iter()
                .map(|&d| ResidualBlock::new(self.hidden, d, causal, &init, device))
                .collect()
        };
        Grec {
            item_emb: EmbeddingConfig::new(self.n_items + 2, self.hidden)
                .with_initializer(small_init())
                .init(device),
            encoder: blocks(false),
            proj1: LinearConfig::new(self.hidden, self.hidden / 2)
                .with_initializer(init.clone())
                .init(device),
            proj2: LinearConfig::new(self.hidden / 2, self.hidden)
                .with_initializer(init.clone())
                .init(device),
            decoder: blocks(true),
            norm: LayerNormConfig::new(self.hidden).init(device),
            out_bias: Param::from_tensor(Tensor::zeros([self.n_items], device)),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_items: self.n_items,
            hidden: self.hidden,
            max_len: self.max_len,
            gap_prob: self.gap_prob,
            last_gap_prob: self.last_gap_prob,
            decoder_reads_sequence: self.decoder_input == Some(DecoderInput::Sequence),
        }
    }
}

/// Encoder input, decoder input and targets of one gap-filling batch.
#[derive(Debug, Clone, PartialEq)]
pub struct GapInputs {
    pub len: usize,
    /// Each sequence with its gaps replaced by the gap token (left-padded, row-major).
    pub encoder: Vec<i64>,
    /// The complement: the gap items at their positions, every other position the gap token.
    pub decoder: Vec<i64>,
    /// Flat decoder positions (row × len + column) just before each gap ...
    pub rows: Vec<i64>,
    /// ... and the gap items they predict (0-based).
    pub targets: Vec<i64>,
}

/// Draws the gaps of a batch: with probability `last_gap_prob` only the last item, otherwise
/// each item after the first with probability `gap_prob` (at least one). The first item never
/// becomes a gap: no position precedes it to predict it from.
pub fn gap_inputs(
    seqs: &[&[u32]],
    n_items: usize,
    max_len: usize,
    gap_prob: f64,
    last_gap_prob: f64,
    rng: &mut SsiRng,
) -> GapInputs {
    let gap = (n_items + 1) as i64;
    let len = batch_len(seqs, max_len, 0);
    let mut out = GapInputs {
        len,
        encoder: vec![0; seqs.len() * len],
        decoder: vec![0; seqs.len() * len],
        rows: Vec::new(),
        targets: Vec::new(),
    };
    for (r, s) in seqs.iter().enumerate() {
        let s = &s[s.len().saturating_sub(len)..];
        let n = s.len();
        let off = r * len + len - n;
        let mut gaps = vec![false; n];
        if n >= 2 {
            if rng.random_bool(last_gap_prob) {
                gaps[n - 1] = true;
            } else {
                for g in gaps.iter_mut().skip(1) {
                    *g = rng.random_bool(gap_prob);
                }
                if !gaps.iter().any(|&g| g) {
                    gaps[rng.random_range(1..n)] = true;
                }
            }
        }
        for (j, (&item, &g)) in s.iter().zip(&gaps).enumerate() {
            out.encoder[off + j] = if g { gap } else { item as i64 };
            out.decoder[off + j] = if g { item as i64 } else { gap };
            if g {
                out.rows.push((off + j - 1) as i64);
                out.targets.push(item as i64 - 1);
            }
        }
    }
    out
}

impl Grec {
    /// Decoder states [batch, len, hidden] for encoder and decoder inputs of the same layout.
    /// Padding positions are zeroed after every block, so padding is inert.
    pub fn hidden_states(&self, enc: Tensor<2, Int>, dec: Tensor<2, Int>) -> Tensor<3> {
        let keep = enc.clone().not_equal_elem(0).float().unsqueeze_dim::<3>(2);
        let mut e =
            crate::transformer::dropout(&self.dropout, self.item_emb.forward(enc)) * keep.clone();
        for block in &self.encoder {
            e = block.forward(e) * keep.clone();
        }
        let projected = self.proj2.forward(relu(self.proj1.forward(e)));
        let mut d = (crate::transformer::dropout(&self.dropout, self.item_emb.forward(dec))
            + projected)
            * keep.clone();
        for block in &self.decoder {
            d = block.forward(d) * keep.clone();
        }
        self.norm.forward(d)
    }
}

impl crate::model::ModelSpec for GrecConfig {
    crate::model::spec_basics!(Grec);
    fn defaults(n_items: usize, _n_users: usize) -> Self {
        Self::new(n_items)
    }

    /// The projector's bottleneck has `hidden / 2` units: hidden 1 would leave it none.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.hidden < 2 {
            return Err(("hidden", "an integer in 2..=8192 (GREC's projector halves it)".into()));
        }
        Ok(())
    }

    /// GREC overfits without a penalty (its validation peaks early while its training loss
    /// falls); its public code trains with an L2 penalty, and 1e-4 is the value measured on all
    /// three files (docs/results/grec.md).
    fn train_defaults(&self) -> crate::model::TrainDefaults {
        crate::model::TrainDefaults {
            weight_decay: Some(1e-4),
            ..Default::default()
        }
    }
}

impl SequentialModel for Grec {
    basics!(Grec, max_len);
    fn encode(&self, batch: Batch) -> Tensor<2> {
        let b = batch.items.len();
        // History plus the appended gap; at least 2 so a position precedes the gap.
        let l = batch_len(batch.items, self.max_len, 1).max(2);
        let gap = (self.n_items + 1) as i64;
        let mut enc = vec![0i64; b * l];
        let mut dec = vec![0i64; b * l];
        for (r, s) in batch.items.iter().enumerate() {
            let s = &s[s.len().saturating_sub(l - 1)..];
            let off = r * l + l - 1 - s.len();
            for (j, &item) in s.iter().enumerate() {
                enc[off + j] = item as i64;
                dec[off + j] = if self.decoder_reads_sequence {
                    item as i64
                } else {
                    gap
                };
            }
            enc[r * l + l - 1] = gap;
            dec[r * l + l - 1] = gap;
        }
        let device = self.device();
        self.hidden_states(int2(enc, [b, l], &device), int2(dec, [b, l], &device))
            .narrow(1, l - 2, 1)
            .reshape([b, self.hidden])
    }
    fn item_table(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items)
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        Some(self.out_bias.val())
    }
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        let inp = gap_inputs(
            batch.items,
            self.n_items,
            self.max_len,
            self.gap_prob,
            self.last_gap_prob,
            rng,
        );
        let b = batch.items.len();
        let l = inp.len;
        let device = self.device();
        let gap = (self.n_items + 1) as i64;
        let decoder = if self.decoder_reads_sequence {
            // Every item: a gap's item from the decoder input, the others from the encoder's.
            inp.encoder
                .iter()
                .zip(&inp.decoder)
                .map(|(&e, &d)| if e == gap { d } else { e })
                .collect()
        } else {
            inp.decoder
        };
        let h = self
            .hidden_states(
                int2(inp.encoder, [b, l], &device),
                int2(decoder, [b, l], &device),
            )
            .reshape([b * l, self.hidden])
            .select(0, int1(inp.rows, &device));
        next_item_loss(
            h,
            self.item_table(),
            self.item_bias(),
            inp.targets,
            softmax,
            rng,
        )
    }
}
