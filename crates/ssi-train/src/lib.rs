//! Training engine of SSI: batching, Adam, validation with the paper's protocol, early stopping,
//! atomic checkpoints that a killed run resumes from, and NaN guards. Backend-agnostic: the
//! caller picks the device (flex natively, WebGPU in the browser). `reproduce` plans, trains and
//! reports the paper's pipeline on top of `train_job`.

pub mod checkpoint;
pub mod config;
pub mod distill;
pub mod job;
pub mod recommender;
pub mod report;
pub mod reproduce;
pub mod settings;
pub mod stages;
pub mod trainer;

pub use checkpoint::{Checkpoint, RunDir};
pub use job::{Job, train_job};
pub use recommender::ModelRecommender;
pub use settings::{Setting, apply_settings, load_settings_file, parse_sets, run_config_model};
pub use trainer::{EpochLog, TrainConfig, TrainError, TrainObserver, Trainer};
