//! Data layer of SSI: datasets, leave-one-out splits, negative samplers, ranking metrics and the
//! non-neural recommenders. Deliberately free of burn so that it builds fast, everywhere (wasm32
//! included), and so every model is evaluated by exactly the same code.

pub mod catalogue;
pub mod dataset;
pub mod error;
pub mod eval;
pub mod files;
pub mod ingest;
pub mod metrics;
pub mod published;
pub mod recommender;
pub mod rng;
pub mod split;
pub mod synth;

pub use catalogue::Catalogue;
pub use dataset::{Dataset, LoadReport, Skip};
pub use error::DataError;
pub use eval::{EvalConfig, EvalReport, Evaluator, Split};
pub use metrics::{MetricSet, RankAccumulator};
pub use recommender::{MarkovChain, MostPop, Query, Recommender};
