//! The common recommender trait of every burn model, and the enum that lets the CLI, the trainer
//! and the browser hold any of them.

use crate::bert4rec::{Bert4Rec, Bert4RecConfig};
use crate::common::{Batch, TrainBatch};
use crate::grec::{Grec, GrecConfig};
use crate::gru4rec::{Gru4Rec, Gru4RecConfig};
use crate::hgn::{Hgn, HgnConfig};
use crate::loss::Softmax;
use crate::s3rec::{S3Rec, S3RecConfig};
use crate::sasrec::{SasRec, SasRecConfig};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use ssi_data::rng::SsiRng;

/// The accessors every model implements the same way (inside an `impl SequentialModel` block).
macro_rules! basics {
    ($kind:ident, $len:ident) => {
        fn kind(&self) -> $crate::model::ModelKind {
            $crate::model::ModelKind::$kind
        }
        fn n_items(&self) -> usize {
            self.n_items
        }
        fn device(&self) -> burn::tensor::Device {
            self.item_emb.weight.device()
        }
        fn max_len(&self) -> usize {
            self.$len
        }
    };
}
pub(crate) use basics;

/// What every model offers its consumers (trainer, evaluator, imitation, browser).
pub trait SequentialModel {
    fn kind(&self) -> ModelKind;
    fn n_items(&self) -> usize;
    fn device(&self) -> Device;
    /// Longest history the model reads (older items are dropped).
    fn max_len(&self) -> usize;
    /// The representation that scores the next item: [batch, hidden].
    fn encode(&self, batch: Batch) -> Tensor<2>;
    /// Item representations scored against `encode`: [n_items, hidden], row i is item id i + 1.
    /// This is the table that representation imitation (eq. 6) matches.
    fn item_table(&self) -> Tensor<2>;
    /// Per-item output bias, [n_items], if the model has one.
    fn item_bias(&self) -> Option<Tensor<1>>;
    /// The model's own training objective on a batch of training sequences.
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1>;

    /// Scores of every item, [batch, n_items] (column i is item id i + 1).
    fn score_all(&self, batch: Batch) -> Tensor<2> {
        let logits = self.encode(batch).matmul(self.item_table().transpose());
        match self.item_bias() {
            Some(b) => logits + b.unsqueeze_dim(0),
            None => logits,
        }
    }

    /// Scores of candidate items ([batch, C], 0-based indices), [batch, C].
    fn score_candidates(&self, batch: Batch, candidates: Tensor<2, Int>) -> Tensor<2> {
        let [b, c] = candidates.dims();
        let h = self.encode(batch);
        let hidden = h.dims()[1];
        let flat = candidates.reshape([b * c]);
        let emb = self
            .item_table()
            .select(0, flat.clone())
            .reshape([b, c, hidden]);
        let scores = (emb * h.unsqueeze_dim::<3>(1)).sum_dim(2).reshape([b, c]);
        match self.item_bias() {
            Some(bias) => scores + bias.select(0, flat).reshape([b, c]),
            None => scores,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Bert4rec,
    Sasrec,
    Gru4rec,
    Hgn,
    S3rec,
    Grec,
}

impl ModelKind {
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Bert4rec,
        ModelKind::Sasrec,
        ModelKind::Gru4rec,
        ModelKind::Hgn,
        ModelKind::S3rec,
        ModelKind::Grec,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Bert4rec => "BERT4Rec",
            ModelKind::Sasrec => "SASRec",
            ModelKind::Gru4rec => "GRU4Rec",
            ModelKind::Hgn => "HGN",
            ModelKind::S3rec => "S3-Rec",
            ModelKind::Grec => "GREC",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "bert4rec" => Ok(ModelKind::Bert4rec),
            "sasrec" => Ok(ModelKind::Sasrec),
            "gru4rec" => Ok(ModelKind::Gru4rec),
            "hgn" => Ok(ModelKind::Hgn),
            "s3rec" | "s3-rec" => Ok(ModelKind::S3rec),
            "grec" => Ok(ModelKind::Grec),
            _ => Err(format!(
                "unknown model {s:?} (bert4rec, sasrec, gru4rec, hgn, s3rec, grec)"
            )),
        }
    }
}

/// A model's full configuration; serialises to JSON with a `"model"` tag.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum ModelConfig {
    Bert4rec(Bert4RecConfig),
    Sasrec(SasRecConfig),
    Gru4rec(Gru4RecConfig),
    Hgn(HgnConfig),
    S3rec(S3RecConfig),
    Grec(GrecConfig),
}

impl ModelConfig {
    /// Defaults of the small configuration (hidden 64, 2 layers, 2 heads, max length 50).
    pub fn new(kind: ModelKind, n_items: usize, n_users: usize) -> Self {
        match kind {
            ModelKind::Bert4rec => ModelConfig::Bert4rec(Bert4RecConfig::new(n_items)),
            ModelKind::Sasrec => ModelConfig::Sasrec(SasRecConfig::new(n_items)),
            ModelKind::Gru4rec => ModelConfig::Gru4rec(Gru4RecConfig::new(n_items)),
            ModelKind::Hgn => ModelConfig::Hgn(HgnConfig::new(n_items, n_users)),
            ModelKind::S3rec => ModelConfig::S3rec(S3RecConfig::new(n_items)),
            ModelKind::Grec => ModelConfig::Grec(GrecConfig::new(n_items)),
        }
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            ModelConfig::Bert4rec(_) => ModelKind::Bert4rec,
            ModelConfig::Sasrec(_) => ModelKind::Sasrec,
            ModelConfig::Gru4rec(_) => ModelKind::Gru4rec,
            ModelConfig::Hgn(_) => ModelKind::Hgn,
            ModelConfig::S3rec(_) => ModelKind::S3rec,
            ModelConfig::Grec(_) => ModelKind::Grec,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("configs serialise")
    }

    /// Applies `key = value` overrides (values parsed as JSON, else taken as strings). Keys that
    /// this model does not have are reported as errors, so a typo never passes silently.
    pub fn with_overrides(
        &self,
        overrides: &[(String, serde_json::Value)],
    ) -> Result<Self, String> {
        let mut v = self.to_json();
        let obj = v.as_object_mut().expect("config is an object");
        for (k, val) in overrides {
            if k == "model" || !obj.contains_key(k) {
                let mut keys: Vec<_> = obj.keys().filter(|k| *k != "model").cloned().collect();
                keys.sort();
                return Err(format!(
                    "{} has no setting {k:?}; settings: {}",
                    self.kind().name(),
                    keys.join(", ")
                ));
            }
            obj.insert(k.clone(), val.clone());
        }
        serde_json::from_value(v).map_err(|e| format!("invalid setting: {e}"))
    }

    /// Checks every setting against its allowed range before anything is built or written (a
    /// bad value would otherwise panic inside burn, or train a meaningless model). The error
    /// names the setting, its value and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        let v = self.to_json();
        let obj = v.as_object().expect("config is an object");
        let name = self.kind().name();
        let int = |k: &str| obj.get(k).and_then(|x| x.as_u64());
        let float = |k: &str| obj.get(k).and_then(|x| x.as_f64());
        let bad = |k: &str, allowed: &str| {
            Err(format!(
                "{name} setting {k} = {} is out of range: {allowed}",
                obj.get(k).map(|x| x.to_string()).unwrap_or_default()
            ))
        };
        // Sizes that allocate memory: positive and bounded, so a typo cannot ask for terabytes.
        for (k, max) in [
            ("hidden", 8192),
            ("layers", 64),
            ("heads", 256),
            ("max_len", 4096),
            ("window", 4096),
            ("n_items", 50_000_000),
            ("ngram", 64),
            ("ngrams", 64),
        ] {
            if let Some(x) = int(k)
                && (x == 0 || x > max)
            {
                return bad(k, &format!("an integer in 1..={max}"));
            }
        }
        if let (Some(h), Some(heads)) = (int("hidden"), int("heads"))
            && h % heads != 0
        {
            return bad(
                "heads",
                &format!("it must divide hidden ({h}) into equal heads"),
            );
        }
        for k in ["dropout", "p_unknown_user"] {
            if let Some(x) = float(k)
                && !(0.0..1.0).contains(&x)
            {
                return bad(k, "a probability in [0, 1)");
            }
        }
        for k in ["mask_prob", "gap_prob"] {
            if let Some(x) = float(k)
                && !(x > 0.0 && x <= 1.0)
            {
                return bad(k, "a probability in (0, 1]");
            }
        }
        for k in ["last_mask_prob", "last_gap_prob"] {
            if let Some(x) = float(k)
                && !(0.0..=1.0).contains(&x)
            {
                return bad(k, "a probability in [0, 1]");
            }
        }
        for k in ["init_std"] {
            if let Some(x) = float(k)
                && !(x.is_finite() && x > 0.0 && x <= 1.0)
            {
                return bad(k, "a standard deviation in (0, 1], or null");
            }
        }
        for k in ["consistency_weight", "mip_weight", "sp_weight"] {
            if let Some(x) = float(k)
                && !(x.is_finite() && x >= 0.0)
            {
                return bad(k, "a finite weight >= 0");
            }
        }
        if let Some(d) = obj.get("dilations").and_then(|d| d.as_array())
            && (d.is_empty()
                || d.iter()
                    .any(|x| !x.as_u64().is_some_and(|x| (1..=64).contains(&x))))
        {
            return bad("dilations", "a non-empty list of integers in 1..=64");
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> AnyModel {
        match self {
            ModelConfig::Bert4rec(c) => AnyModel::Bert4rec(c.init(device)),
            ModelConfig::Sasrec(c) => AnyModel::Sasrec(c.init(device)),
            ModelConfig::Gru4rec(c) => AnyModel::Gru4rec(c.init(device)),
            ModelConfig::Hgn(c) => AnyModel::Hgn(c.init(device)),
            ModelConfig::S3rec(c) => AnyModel::S3rec(c.init(device)),
            ModelConfig::Grec(c) => AnyModel::Grec(c.init(device)),
        }
    }
}

/// Any of the models, as one burn module.
// Variants differ by ~200 bytes of handles; boxing would buy nothing measurable per step.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyModel {
    Bert4rec(Bert4Rec),
    Sasrec(SasRec),
    Gru4rec(Gru4Rec),
    Hgn(Hgn),
    S3rec(S3Rec),
    Grec(Grec),
}

macro_rules! dispatch {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            AnyModel::Bert4rec($m) => $e,
            AnyModel::Sasrec($m) => $e,
            AnyModel::Gru4rec($m) => $e,
            AnyModel::Hgn($m) => $e,
            AnyModel::S3rec($m) => $e,
            AnyModel::Grec($m) => $e,
        }
    };
}

impl SequentialModel for AnyModel {
    fn kind(&self) -> ModelKind {
        dispatch!(self, m => m.kind())
    }
    fn n_items(&self) -> usize {
        dispatch!(self, m => m.n_items())
    }
    fn device(&self) -> Device {
        dispatch!(self, m => m.device())
    }
    fn max_len(&self) -> usize {
        dispatch!(self, m => m.max_len())
    }
    fn encode(&self, batch: Batch) -> Tensor<2> {
        dispatch!(self, m => m.encode(batch))
    }
    fn item_table(&self) -> Tensor<2> {
        dispatch!(self, m => m.item_table())
    }
    fn item_bias(&self) -> Option<Tensor<1>> {
        dispatch!(self, m => m.item_bias())
    }
    fn train_loss(&self, batch: TrainBatch, softmax: Softmax, rng: &mut SsiRng) -> Tensor<1> {
        dispatch!(self, m => m.train_loss(batch, softmax, rng))
    }
}

impl AnyModel {
    /// The self-supervised pre-training loss of models that have a pre-training stage (S3-Rec);
    /// `None` for the others.
    pub fn pretrain_loss(&self, batch: TrainBatch, rng: &mut SsiRng) -> Option<Tensor<1>> {
        match self {
            AnyModel::S3rec(m) => Some(m.pretrain_loss(batch, rng)),
            _ => None,
        }
    }
}
