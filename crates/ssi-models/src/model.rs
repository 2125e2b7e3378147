//! The common recommender trait of every burn model, and the macro behind the list of models
//! (invoked in `lib.rs`): the kind, config and model enums that let the CLI, the trainer and the
//! browser hold any model all follow from that one list. Adding a model: a file implementing
//! [`SequentialModel`] for the model and [`ModelSpec`] for its config, and one line in the list.

use crate::common::{Batch, TrainBatch};
use crate::loss::Softmax;
use crate::{ModelConfig, ModelKind};
use burn::tensor::{Device, Int, Tensor};
use ssi_data::rng::SsiRng;

/// The accessors every model implements the same way (inside an `impl SequentialModel` block).
macro_rules! basics {
    ($kind:ident, $len:ident) => {
        fn kind(&self) -> $crate::ModelKind {
            $crate::ModelKind::$kind
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

/// The [`ModelSpec`] items every config implements the same way: its model, built by its `init`,
/// and its `n_items` field.
macro_rules! spec_basics {
    ($model:ty) => {
        type Model = $model;
        fn build(&self, device: &burn::tensor::Device) -> $model {
            self.init(device)
        }
        fn n_items(&self) -> usize {
            self.n_items
        }
    };
}
pub(crate) use spec_basics;

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

    /// The loss of a self-supervised pre-training stage run before training (S3-Rec's), if the
    /// model has one.
    fn pretrain_loss(&self, _batch: TrainBatch, _rng: &mut SsiRng) -> Option<Tensor<1>> {
        None
    }

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

/// What the model list needs of a model's configuration; each model file implements it.
pub trait ModelSpec {
    type Model;
    /// The small configuration (hidden 64, 2 layers, 2 heads, max length 50) for a dataset.
    fn defaults(n_items: usize, n_users: usize) -> Self;
    fn build(&self, device: &Device) -> Self::Model;
    fn n_items(&self) -> usize;
    /// Epochs of the self-supervised pre-training stage, for models that have one.
    fn pretrain_epochs(&self) -> Option<usize> {
        None
    }
    /// The name a run of this config goes by as an SSI teacher, when not the model's own name.
    fn teacher_name(&self) -> Option<String> {
        None
    }
    /// The config with every setting its model will use written out (a setting left `null` to
    /// mean a default that depends on other settings), so that a run's saved config says what it
    /// trained with.
    fn resolved(self) -> Self
    where
        Self: Sized,
    {
        self
    }
    /// The training settings a new run of this model gets where no setting names them: a
    /// model's own training defaults, the same on every dataset.
    fn train_defaults(&self) -> TrainDefaults {
        TrainDefaults::default()
    }
    /// A model's own limits beyond the shared ranges of `ModelConfig::validate`: the setting at
    /// fault and what it allows.
    fn check(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// A model's own defaults for training settings (`TrainConfig` fields of the same names);
/// `None`: the trainer's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrainDefaults {
    /// The L2 penalty (`weight_decay`).
    pub weight_decay: Option<f64>,
    /// Adam's epsilon (`adam_epsilon`).
    pub adam_epsilon: Option<f64>,
}

/// Declares the models, one line each: `module::Variant(Config, Model) = "cli-name", "Display";`
/// (attributes such as `#[cfg(test)]` may precede a line). It declares each `module` (the
/// model's file, `src/module.rs`), so it is invoked in `lib.rs`; everything that enumerates
/// models — kind, config and model enums, their dispatch, the CLI's value list — follows from it.
macro_rules! model_list {
    ($($(#[$attr:meta])* $module:ident :: $kind:ident($config:ident, $model:ident) = $id:literal, $display:literal;)*) => {
        $($(#[$attr])* pub mod $module;)*

        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum ModelKind {
            $($(#[$attr])* $kind,)*
        }

        impl ModelKind {
            pub const ALL: [ModelKind; [$($(#[$attr])* $id),*].len()] =
                [$($(#[$attr])* ModelKind::$kind),*];

            /// The name in tables and messages.
            pub fn name(self) -> &'static str {
                match self {
                    $($(#[$attr])* ModelKind::$kind => $display,)*
                }
            }

            /// The name on the command line and in config files.
            pub fn id(self) -> &'static str {
                match self {
                    $($(#[$attr])* ModelKind::$kind => $id,)*
                }
            }
        }

        /// A model's full configuration; serialises to JSON with a `"model"` tag.
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "model", rename_all = "lowercase")]
        pub enum ModelConfig {
            $($(#[$attr])* $kind($module::$config),)*
        }

        impl ModelConfig {
            /// Defaults of the small configuration (hidden 64, 2 layers, 2 heads, max length 50).
            pub fn new(kind: ModelKind, n_items: usize, n_users: usize) -> Self {
                use $crate::model::ModelSpec;
                match kind {
                    $($(#[$attr])* ModelKind::$kind => ModelConfig::$kind($module::$config::defaults(n_items, n_users)),)*
                }
            }

            pub fn kind(&self) -> ModelKind {
                match self {
                    $($(#[$attr])* ModelConfig::$kind(_) => ModelKind::$kind,)*
                }
            }

            pub fn init(&self, device: &burn::tensor::Device) -> AnyModel {
                match self {
                    $($(#[$attr])* ModelConfig::$kind(c) => AnyModel::$kind($crate::model::ModelSpec::build(c, device)),)*
                }
            }

            /// Items the model scores (its item table's rows).
            pub fn n_items(&self) -> usize {
                match self {
                    $($(#[$attr])* ModelConfig::$kind(c) => $crate::model::ModelSpec::n_items(c),)*
                }
            }

            /// Epochs of the self-supervised pre-training stage, for models that have one.
            pub fn pretrain_epochs(&self) -> Option<usize> {
                match self {
                    $($(#[$attr])* ModelConfig::$kind(c) => $crate::model::ModelSpec::pretrain_epochs(c),)*
                }
            }

            /// The config with every setting its model will use written out (see
            /// `ModelSpec::resolved`).
            pub fn resolved(self) -> Self {
                match self {
                    $($(#[$attr])* ModelConfig::$kind(c) => ModelConfig::$kind($crate::model::ModelSpec::resolved(c)),)*
                }
            }

            /// The training settings a new run of this model gets unless a setting names them.
            pub fn train_defaults(&self) -> $crate::model::TrainDefaults {
                match self {
                    $($(#[$attr])* ModelConfig::$kind(c) => $crate::model::ModelSpec::train_defaults(c),)*
                }
            }

            /// The model's own limits (see `ModelSpec::check`).
            fn own_check(&self) -> Result<(), (&'static str, String)> {
                match self {
                    $($(#[$attr])* ModelConfig::$kind(c) => $crate::model::ModelSpec::check(c),)*
                }
            }

            /// The name a run of this config goes by as an SSI teacher: its consistency task for
            /// a consistency teacher, else the model's name in lower case.
            pub fn teacher_name(&self) -> String {
                let own = match self {
                    $($(#[$attr])* ModelConfig::$kind(c) => $crate::model::ModelSpec::teacher_name(c),)*
                };
                own.unwrap_or_else(|| self.kind().id().to_string())
            }
        }

        /// Any of the models, as one burn module.
        // Variants differ by ~200 bytes of handles; boxing would buy nothing measurable per step.
        #[allow(clippy::large_enum_variant)]
        #[derive(burn::module::Module, Debug)]
        pub enum AnyModel {
            $($(#[$attr])* $kind($module::$model),)*
        }

        impl $crate::model::SequentialModel for AnyModel {
            fn kind(&self) -> ModelKind {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.kind(),)* }
            }
            fn n_items(&self) -> usize {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.n_items(),)* }
            }
            fn device(&self) -> burn::tensor::Device {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.device(),)* }
            }
            fn max_len(&self) -> usize {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.max_len(),)* }
            }
            fn encode(&self, batch: $crate::common::Batch) -> burn::tensor::Tensor<2> {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.encode(batch),)* }
            }
            fn item_table(&self) -> burn::tensor::Tensor<2> {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.item_table(),)* }
            }
            fn item_bias(&self) -> Option<burn::tensor::Tensor<1>> {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.item_bias(),)* }
            }
            fn train_loss(
                &self,
                batch: $crate::common::TrainBatch,
                softmax: $crate::loss::Softmax,
                rng: &mut ssi_data::rng::SsiRng,
            ) -> burn::tensor::Tensor<1> {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.train_loss(batch, softmax, rng),)* }
            }
            fn pretrain_loss(
                &self,
                batch: $crate::common::TrainBatch,
                rng: &mut ssi_data::rng::SsiRng,
            ) -> Option<burn::tensor::Tensor<1>> {
                match self { $($(#[$attr])* AnyModel::$kind(m) => m.pretrain_loss(batch, rng),)* }
            }
        }
    };
}
pub(crate) use model_list;

impl std::str::FromStr for ModelKind {
    type Err = crate::ConfigError;
    fn from_str(s: &str) -> Result<Self, crate::ConfigError> {
        let s = s.trim().to_ascii_lowercase();
        ModelKind::ALL
            .iter()
            .copied()
            .find(|k| k.id() == s || k.name().to_ascii_lowercase() == s)
            .ok_or_else(|| {
                let ids: Vec<&str> = ModelKind::ALL.iter().map(|k| k.id()).collect();
                crate::ConfigError::UnknownName {
                    what: "model",
                    given: s.clone(),
                    expected: ids.join(", "),
                }
            })
    }
}

/// Allowed values of the float settings, whichever models have them.
type FloatRange = (&'static [&'static str], fn(f64) -> bool, &'static str);
const FLOAT_RANGES: [FloatRange; 5] = [
    (
        &["dropout", "p_unknown_user"],
        |x| (0.0..1.0).contains(&x),
        "a probability in [0, 1)",
    ),
    (
        &["mask_prob", "gap_prob"],
        |x| x > 0.0 && x <= 1.0,
        "a probability in (0, 1]",
    ),
    (
        &["last_mask_prob", "last_gap_prob", "negative_prob"],
        |x| (0.0..=1.0).contains(&x),
        "a probability in [0, 1]",
    ),
    (
        &["init_std"],
        |x| x.is_finite() && x > 0.0 && x <= 1.0,
        "a standard deviation in (0, 1], or null",
    ),
    (
        &["consistency_weight", "mip_weight", "sp_weight"],
        // Bounded so that the weighted f32 loss stays finite.
        |x| (0.0..=1e6).contains(&x),
        "a weight in [0, 1e6]",
    ),
];

impl ModelConfig {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("configs serialise")
    }

    /// Reads a model's settings as `config.json` and bundle headers hold them; an error names
    /// the setting at fault (serde names none inside a tagged enum, only a column).
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value::<Self>(v.clone()).map_err(|e| {
            let kind = v
                .get("model")
                .and_then(serde_json::Value::as_str)
                .and_then(|m| m.parse::<ModelKind>().ok());
            let culprit = kind.and_then(|kind| {
                // The first setting that fails on its own among the model's defaults.
                let base = ModelConfig::new(kind, 1, 1).to_json();
                v.as_object()?
                    .iter()
                    .filter(|(k, _)| *k != "model")
                    .find(|(k, val)| {
                        let mut one = base.clone();
                        one[k.as_str()] = (*val).clone();
                        serde_json::from_value::<ModelConfig>(one).is_err()
                    })
                    .map(|(k, val)| format!("the setting {k:?} = {val}: {e}"))
            });
            culprit.unwrap_or_else(|| e.to_string())
        })
    }

    /// Refuses settings that describe more weights than `weight_bytes` of f32 values can hold,
    /// before the model is built: every model has an item table of `hidden` columns and at
    /// least a `hidden` x `hidden` map per layer, so a header or `config.json` whose sizes were
    /// raised would otherwise allocate them (hundreds of GB) before the shapes are compared.
    pub fn check_fits_weights(&self, weight_bytes: usize) -> Result<(), String> {
        let v = self.to_json();
        let get = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        let hidden = get("hidden");
        let least = (self.n_items() as f64 + 1.0) * hidden + get("layers") * hidden * hidden;
        if least * 4.0 <= weight_bytes as f64 {
            return Ok(());
        }
        Err(format!(
            "its {} settings (hidden {hidden}, layers {}) describe at least {least:.0} weights, and the file holds {weight_bytes} bytes ({} f32 values): the settings were raised, or the weights belong to a smaller model",
            self.kind().name(),
            get("layers"),
            weight_bytes / 4
        ))
    }

    /// Applies `key = value` overrides (values parsed as JSON, else taken as strings). Keys that
    /// this model does not have are reported as errors, so a typo never passes silently.
    pub fn with_overrides(
        &self,
        overrides: &[(String, serde_json::Value)],
    ) -> Result<Self, crate::ConfigError> {
        let mut v = self.to_json();
        let obj = v.as_object_mut().expect("config is an object");
        for (k, val) in overrides {
            if k == "model" || !obj.contains_key(k) {
                let mut keys: Vec<_> = obj.keys().filter(|k| *k != "model").cloned().collect();
                keys.sort();
                return Err(crate::ConfigError::UnknownSetting {
                    model: self.kind().name(),
                    setting: k.clone(),
                    settings: keys.join(", "),
                });
            }
            obj.insert(k.clone(), val.clone());
        }
        serde_json::from_value(v).map_err(|e| {
            // Name the setting at fault: the first override that fails on its own.
            let culprit = overrides.iter().find(|(k, val)| {
                let mut one = self.to_json();
                one[k.as_str()] = val.clone();
                serde_json::from_value::<ModelConfig>(one).is_err()
            });
            match culprit {
                Some((k, val)) => crate::ConfigError::Invalid {
                    model: self.kind().name(),
                    setting: k.clone(),
                    value: val.to_string(),
                    detail: e.to_string(),
                },
                None => crate::ConfigError::Other(e.to_string()),
            }
        })
    }

    /// Checks every setting against its allowed range before anything is built or written (a
    /// bad value would otherwise panic inside burn, or train a meaningless model). The error
    /// names the setting, its value and what is allowed.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let v = self.to_json();
        let obj = v.as_object().expect("config is an object");
        let name = self.kind().name();
        let int = |k: &str| obj.get(k).and_then(|x| x.as_u64());
        let float = |k: &str| obj.get(k).and_then(|x| x.as_f64());
        let bad = |k: &str, allowed: &str| {
            Err(crate::ConfigError::OutOfRange {
                model: name,
                setting: k.into(),
                value: obj.get(k).map(|x| x.to_string()).unwrap_or_default(),
                allowed: allowed.into(),
            })
        };
        // Sizes that allocate memory: positive and bounded, so a typo cannot ask for terabytes.
        // A training window (max_len) holds an input and its next item: at least 2.
        for (k, min, max) in [
            ("hidden", 1, 8192),
            ("layers", 1, 64),
            ("heads", 1, 256),
            ("max_len", 2, 4096),
            ("window", 1, 4096),
            ("n_items", 1, 50_000_000),
            ("ngram", 1, 64),
            ("ngrams", 1, 64),
        ] {
            if let Some(x) = int(k)
                && (x < min || x > max)
            {
                return bad(k, &format!("an integer in {min}..={max}"));
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
        for (keys, ok, allowed) in FLOAT_RANGES {
            for &k in keys {
                if let Some(x) = float(k)
                    && !ok(x)
                {
                    return bad(k, allowed);
                }
            }
        }
        if let Some(d) = obj.get("dilations").and_then(|d| d.as_array())
            && (d.is_empty()
                || d.iter()
                    .any(|x| !x.as_u64().is_some_and(|x| (1..=64).contains(&x))))
        {
            return bad("dilations", "a non-empty list of integers in 1..=64");
        }
        self.own_check().or_else(|(k, allowed)| bad(k, &allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_list_is_consistent() {
        for &kind in &ModelKind::ALL {
            assert_eq!(kind.id().parse::<ModelKind>(), Ok(kind));
            assert_eq!(kind.name().parse::<ModelKind>(), Ok(kind));
            // `--baselines "hgn, sasrec"`: entries are trimmed, as `--teachers` are.
            assert_eq!(format!(" {} ", kind.id()).parse::<ModelKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.id());
            let cfg = ModelConfig::new(kind, 30, 4);
            assert_eq!(cfg.kind(), kind);
            assert_eq!(cfg.n_items(), 30);
            assert_eq!(cfg.to_json()["model"], kind.id());
            cfg.validate().unwrap();
            let model = cfg.init(&Device::flex());
            assert_eq!((model.kind(), model.n_items()), (kind, 30));
        }
        let err = "lstm".parse::<ModelKind>().unwrap_err();
        assert!(
            err.to_string().contains("grec") && err.to_string().contains("sasrec"),
            "{err}"
        );
        let s3 = ModelConfig::new(ModelKind::S3rec, 30, 4);
        assert!(s3.pretrain_epochs().is_some());
        assert_eq!(
            ModelConfig::new(ModelKind::Sasrec, 30, 4).pretrain_epochs(),
            None
        );
        assert_eq!(s3.teacher_name(), "s3rec");
    }

    /// The test-only `Bag` model (its file and one line in the list) trains through `AnyModel`,
    /// and its weights survive a save and load as any listed model's do.
    #[test]
    fn a_model_from_one_file_trains_saves_and_loads() {
        use burn::module::Module;
        use burn::optim::{AdamConfig, GradientsParams};
        use burn::store::ModuleRecord;
        let kind: ModelKind = "bag".parse().unwrap();
        let cfg = ModelConfig::new(kind, 12, 4);
        let json = cfg.to_json();
        assert_eq!(json["model"], "bag");
        let cfg: ModelConfig = serde_json::from_value(json).unwrap();
        let device = Device::flex().autodiff();
        device.seed(5);
        let mut model = cfg.init(&device);
        assert_eq!((model.kind(), model.n_items()), (kind, 12));
        // Item i is followed by i + 1: a rule the mean of a short history can learn.
        let seqs: Vec<Vec<u32>> = (1..=10).map(|i| vec![i, i + 1, i + 2]).collect();
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let users: Vec<usize> = (0..refs.len()).collect();
        let mut rng = ssi_data::rng::seeded(1);
        let mut optim = AdamConfig::new().init();
        let mut losses = Vec::new();
        for _ in 0..60 {
            let batch = TrainBatch {
                items: &refs,
                users: &users,
            };
            let loss = model.train_loss(batch, Softmax::Full, &mut rng);
            losses.push(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(5e-2, model, grads);
        }
        assert!(losses[59] < 0.5 * losses[0], "loss {losses:?}");

        let model = model.valid();
        let bytes = model.clone().into_record().into_bytes().unwrap();
        let record = ModuleRecord::from_bytes(bytes).unwrap();
        let loaded = cfg.init(&Device::flex()).load_record(record);
        let hist: Vec<&[u32]> = seqs.iter().map(|s| &s[..2]).collect();
        let seen: Vec<Option<usize>> = (0..hist.len()).map(Some).collect();
        let batch = Batch {
            items: &hist,
            users: &seen,
        };
        let (a, b) = (model.score_all(batch), loaded.score_all(batch));
        assert_eq!(a.dims(), [10, 12]);
        a.into_data().assert_eq(&b.into_data(), true);
    }
}
