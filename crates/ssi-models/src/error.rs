//! The errors of model settings: each names the setting (or name) at fault and what is allowed.

/// A model setting, or the name of a model, task or option, that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A name (`--model`, `--task`, `--imitation-points`) that is none of the known ones.
    #[error("unknown {what} {given:?} ({expected})")]
    UnknownName {
        what: &'static str,
        given: String,
        expected: String,
    },
    /// A setting the model does not have.
    #[error("{model} has no setting {setting:?}; settings: {settings}")]
    UnknownSetting {
        model: &'static str,
        setting: String,
        settings: String,
    },
    /// A value of the wrong type for its setting.
    #[error("{model} setting {setting} = {value} is not valid: {detail}")]
    Invalid {
        model: &'static str,
        setting: String,
        value: String,
        detail: String,
    },
    /// A value outside the setting's allowed range.
    #[error("{model} setting {setting} = {value} is out of range: {allowed}")]
    OutOfRange {
        model: &'static str,
        setting: String,
        value: String,
        allowed: String,
    },
    /// A training setting (epochs, batch size, learning rate…) outside its allowed range.
    #[error("setting {setting} = {value} is out of range: {allowed}")]
    TrainingOutOfRange {
        setting: String,
        value: String,
        allowed: String,
    },
    /// Settings that do not form a config, no single one at fault.
    #[error("invalid setting: {0}")]
    Other(String),
}

impl ConfigError {
    /// The setting at fault, when one is.
    pub fn setting(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownSetting { setting, .. }
            | ConfigError::Invalid { setting, .. }
            | ConfigError::OutOfRange { setting, .. }
            | ConfigError::TrainingOutOfRange { setting, .. } => Some(setting),
            ConfigError::UnknownName { .. } | ConfigError::Other(_) => None,
        }
    }
}
