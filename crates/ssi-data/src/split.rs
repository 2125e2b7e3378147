//! Leave-one-out split (paper §3.1): the last item of each user is the test target, the second
//! last the validation target, the rest is training. The input for a target is everything before it.

use crate::dataset::Dataset;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Valid,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }

    /// Distinguishes the negative draws of the two splits.
    pub fn tag(self) -> u64 {
        match self {
            Split::Valid => 0x7661_6c69,
            Split::Test => 0x7465_7374,
        }
    }
}

/// A split name that is neither `valid` nor `test`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown split {0:?} (valid, test)")]
pub struct UnknownSplit(pub String);

impl std::str::FromStr for Split {
    type Err = UnknownSplit;
    fn from_str(s: &str) -> Result<Self, UnknownSplit> {
        match s {
            "valid" | "validation" => Ok(Split::Valid),
            "test" => Ok(Split::Test),
            _ => Err(UnknownSplit(s.to_string())),
        }
    }
}

/// The training part of a sequence: all but the last two items.
pub fn train_part(seq: &[u32]) -> &[u32] {
    &seq[..seq.len().saturating_sub(2)]
}

/// (input history, target) of a sequence for a split.
pub fn input_target(seq: &[u32], split: Split) -> (&[u32], u32) {
    let end = match split {
        Split::Valid => seq.len() - 2,
        Split::Test => seq.len() - 1,
    };
    (&seq[..end], seq[end])
}

/// Training sequences of every user (the part a model may learn from).
pub fn train_sequences(ds: &Dataset) -> Vec<&[u32]> {
    ds.sequences.iter().map(|s| train_part(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_one_out() {
        let s = [5, 6, 7, 8, 9];
        assert_eq!(train_part(&s), &[5, 6, 7]);
        assert_eq!(input_target(&s, Split::Valid), (&[5, 6, 7][..], 8));
        assert_eq!(input_target(&s, Split::Test), (&[5, 6, 7, 8][..], 9));
        let s = [1, 2, 3];
        assert_eq!(train_part(&s), &[1]);
        assert_eq!(input_target(&s, Split::Test), (&[1, 2][..], 3));
    }
}
