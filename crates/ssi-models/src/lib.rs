//! burn modules of SSI: the sequential recommenders that serve as teachers, students and
//! baselines. Backend-agnostic: the runtime `Device` (flex on CPU, wgpu/WebGPU on GPUs) decides
//! where they run, natively or in the browser.

pub mod common;
pub mod consistency;
pub mod error;
pub mod fused_ce;
pub mod fused_gelu;
pub mod fused_kl;
pub mod fused_softmax;
pub mod imitation;
pub mod loss;
pub mod model;
pub mod transformer;

pub use common::{Batch, TrainBatch};
pub use error::ConfigError;
pub use model::SequentialModel;

// The list of models: each line declares the model's file (`src/<module>.rs`) and its place in
// `ModelKind`, `ModelConfig` and `AnyModel` (see `model_list!` in model.rs).
model::model_list! {
    bert4rec::Bert4rec(Bert4RecConfig, Bert4Rec) = "bert4rec", "BERT4Rec";
    sasrec::Sasrec(SasRecConfig, SasRec) = "sasrec", "SASRec";
    gru4rec::Gru4rec(Gru4RecConfig, Gru4Rec) = "gru4rec", "GRU4Rec";
    hgn::Hgn(HgnConfig, Hgn) = "hgn", "HGN";
    s3rec::S3rec(S3RecConfig, S3Rec) = "s3rec", "S3-Rec";
    grec::Grec(GrecConfig, Grec) = "grec", "GREC";
    // A model that exists only in the tests, proving that a model is one file and this line.
    #[cfg(test)]
    bag::Bag(BagConfig, Bag) = "bag", "Bag";
}
