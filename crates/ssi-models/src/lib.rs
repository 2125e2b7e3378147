//! burn modules of SSI: the sequential recommenders that serve as teachers, students and
//! baselines. Backend-agnostic: the runtime `Device` (flex on CPU, wgpu/WebGPU on GPUs) decides
//! where they run, natively or in the browser.

pub mod bert4rec;
pub mod common;
pub mod consistency;
pub mod error;
pub mod grec;
pub mod gru4rec;
pub mod hgn;
pub mod imitation;
pub mod loss;
pub mod model;
pub mod s3rec;
pub mod sasrec;
pub mod transformer;

pub use common::{Batch, TrainBatch};
pub use error::ConfigError;
pub use model::{AnyModel, ModelConfig, ModelKind, SequentialModel};
