//! Why a reproduction stops: a refused plan, a run folder that belongs to another invocation,
//! or an error of training or of the files.

use crate::config::TrainError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    /// A stage's settings do not apply to its model (checked before anything is written).
    #[error("stage {stage}")]
    StageSettings {
        stage: String,
        #[source]
        source: TrainError,
    },
    #[error("--stage {0}: not a stage of this invocation")]
    UnknownStage(String),
    /// A stage trained on its own before a run it imitates or starts from has finished.
    #[error(
        "--stage {stage}: it needs {}, which has not finished: train that stage first (or run the command without --stage, which trains them in order)",
        needs.display()
    )]
    Unfinished { stage: String, needs: PathBuf },
    /// A finished distillation whose teachers' weights changed since it was trained.
    #[error("{}: {detail}", dir.display())]
    OtherTeachers { dir: PathBuf, detail: String },
    /// A setting the pipeline gives each stage itself (`consistency`: which teacher a stage
    /// is) set for every stage, which would turn baselines and students into teachers.
    #[error(
        "setting {0}: the pipeline sets it per stage (each teacher its own task); leave it out"
    )]
    PipelineSetting(String),
    /// A distillation run trained with other imitation options than this invocation's.
    #[error(
        "{} was trained with {trained}, but this invocation asks for {asked}: use another --out, or the same options",
        dir.display()
    )]
    OtherImitation {
        dir: PathBuf,
        trained: String,
        asked: String,
    },
    /// A run trained from scratch where a warm start is asked for, or the other way round.
    #[error("{} was trained {was}, and this command asks for {asked}: use another --out", dir.display())]
    OtherStart {
        dir: PathBuf,
        was: &'static str,
        asked: &'static str,
    },
    /// A run trained with other settings than the plan's for its stage.
    #[error(
        "{} was trained with other settings than this command asks ({}): {hint}",
        dir.display(),
        differ.join(", ")
    )]
    OtherSettings {
        dir: PathBuf,
        differ: Vec<String>,
        hint: String,
    },
    /// An output folder that is itself one model's run (`ssi train`, `distill`, `pretrain`).
    #[error(
        "{} is the run folder of one model (it holds config.json): a pipeline writes one run folder per stage inside --out; choose another --out",
        path.display()
    )]
    OutIsRun { path: PathBuf },
    #[error("cannot create {}", path.display())]
    CreateOut {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", path.display())]
    ReadResult {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid JSON", path.display())]
    ResultJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Data(#[from] ssi_data::DataError),
}
