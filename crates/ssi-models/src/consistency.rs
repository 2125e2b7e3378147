//! Self-supervised consistency pre-training (SSI paper §2.3, eq. 1–4): the three auxiliary
//! tasks that turn a BERT4Rec (the paper's teacher) — or, beyond the paper, a SASRec — into a
//! consistency-enhanced teacher.
//!
//! The augmentations are plain functions over item ids (tested on crafted sequences); the
//! losses ([`Consistency::loss`]) run on the teacher's encoder through [`ConsistencyEncoder`]:
//! BERT4Rec reads an appended [INT] token, SASRec its causal state at the last item.
//!
//! Choices the paper leaves open (each is a field of the teacher's config, see `docs/ssi.md`):
//! - n-gram length `ngram` (default 2) and number of n-grams changed per negative `ngrams`
//!   (default 1); shorter sequences use shorter n-grams.
//! - A sequence becomes a negative with probability `negative_prob` (default 0.5: the
//!   "Bernoulli distribution" of §2.3), otherwise it is a positive (the original sequence).
//! - [INT] is appended after the last item of the *unmasked* sequence in a separate encoder pass:
//!   the cloze (MLM) pass never sees [INT], so prediction (history + [MASK]) is unchanged.
//! - Eq. 3's local representation d(q_{n:m}) is the summary state of the n-gram encoded alone;
//!   the global one is the summary state of the sequence with q_{n:m} hidden (BERT4Rec: the
//!   [INT] state, the n-gram masked; SASRec: the last state, the n-gram cut out).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Tensor};
use ssi_data::rng::{Rng, SsiRng};
use std::ops::Range;

/// The defaults of a teacher's consistency settings (BERT4Rec's config defaults; a SASRec
/// teacher's `null` settings take them).
pub mod defaults {
    /// λ of eq. 4 (the paper sets 1).
    pub const WEIGHT: f64 = 1.0;
    pub const NGRAM: usize = 2;
    pub const NGRAMS: usize = 1;
    pub const NEGATIVE_PROB: f64 = 0.5;
}

/// The consistency settings a teacher carries (not parameters).
#[derive(Debug, Clone)]
pub struct Consistency {
    pub task: ConsistencyTask,
    /// λ of eq. 4.
    pub weight: f64,
    pub ngram: usize,
    pub ngrams: usize,
    pub negative_prob: f64,
}

/// h^t / h^p of eq. 1–2: an MLP from the teacher's summary state to one logit.
#[derive(Module, Debug)]
pub struct ConsistencyMlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl ConsistencyMlp {
    /// The classifier of a temporal or persona teacher; None for the others.
    pub fn for_task(task: Option<ConsistencyTask>, hidden: usize, device: &Device) -> Option<Self> {
        match task {
            Some(ConsistencyTask::Temporal | ConsistencyTask::Persona) => Some(ConsistencyMlp {
                fc1: LinearConfig::new(hidden, hidden).init(device),
                fc2: LinearConfig::new(hidden, 1).init(device),
            }),
            _ => None,
        }
    }

    pub fn forward(&self, h: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(h)))
    }
}

/// What a teacher's encoder gives the consistency tasks.
pub trait ConsistencyEncoder {
    /// One summary state per sequence: [sequences, hidden].
    fn summary(&self, seqs: &[Vec<u32>]) -> Tensor<2>;
    /// Eq. 3's global input: `seq` with the n-gram `span` hidden from the encoder.
    fn hide_span(&self, seq: &[u32], span: Range<usize>) -> Vec<u32>;
}

impl Consistency {
    /// The auxiliary loss of eq. 1, 2 or 3 on a batch of training sequences (already cut to
    /// what the encoder reads); `mlp` is the temporal or persona classifier.
    pub fn loss(
        &self,
        mlp: Option<&ConsistencyMlp>,
        seqs: &[&[u32]],
        encoder: &impl ConsistencyEncoder,
        rng: &mut SsiRng,
    ) -> Option<Tensor<1>> {
        match self.task {
            ConsistencyTask::Temporal | ConsistencyTask::Persona => {
                let (inputs, labels) = binary_task_inputs(
                    self.task,
                    seqs,
                    self.ngram,
                    self.ngrams,
                    self.negative_prob,
                    rng,
                );
                let logits = mlp?.forward(encoder.summary(&inputs));
                let n = labels.len();
                let labels = crate::common::float2(labels, [n, 1], &logits.device());
                Some(bce_with_logits(logits, labels))
            }
            ConsistencyTask::Global => {
                let mut hidden = Vec::new();
                let mut local = Vec::new();
                for s in seqs {
                    if let Some(span) = global_span(s.len(), self.ngram, rng) {
                        hidden.push(encoder.hide_span(s, span.clone()));
                        local.push(s[span].to_vec());
                    }
                }
                if hidden.is_empty() {
                    return None;
                }
                Some(info_nce(encoder.summary(&hidden), encoder.summary(&local)))
            }
        }
    }
}

/// Binary cross-entropy of eq. 1–2 on logits (the MLP's output before the sigmoid), mean over
/// the batch; written as softplus(x) − y·x for numerical stability.
pub fn bce_with_logits(logits: Tensor<2>, labels: Tensor<2>) -> Tensor<1> {
    let softplus = relu(logits.clone()) + logits.clone().abs().neg().exp().log1p();
    (softplus - logits * labels).mean().reshape([1])
}

/// Eq. 3 as InfoNCE: row i of `global` should score its own n-gram `local[i]` above the other
/// rows' n-grams. Mean over the batch.
pub fn info_nce(global: Tensor<2>, local: Tensor<2>) -> Tensor<1> {
    let b = global.dims()[0];
    let scores = global.matmul(local.transpose());
    let targets = crate::common::int1((0..b as i64).collect(), &scores.device());
    crate::loss::nll(log_softmax(scores, 1), targets)
}

/// Which consistency a teacher learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencyTask {
    /// Eq. 1: is the sequence in its original order?
    Temporal,
    /// Eq. 2: does the whole sequence come from one user?
    Persona,
    /// Eq. 3: mutual information between a sequence and its masked-out n-gram.
    Global,
}

impl ConsistencyTask {
    pub const ALL: [ConsistencyTask; 3] = [
        ConsistencyTask::Temporal,
        ConsistencyTask::Persona,
        ConsistencyTask::Global,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ConsistencyTask::Temporal => "temporal",
            ConsistencyTask::Persona => "persona",
            ConsistencyTask::Global => "global",
        }
    }
}

impl std::str::FromStr for ConsistencyTask {
    type Err = crate::ConfigError;
    fn from_str(s: &str) -> Result<Self, crate::ConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "temporal" => Ok(ConsistencyTask::Temporal),
            "persona" => Ok(ConsistencyTask::Persona),
            "global" => Ok(ConsistencyTask::Global),
            _ => Err(crate::ConfigError::UnknownName {
                what: "consistency task",
                given: s.to_string(),
                expected: "temporal, persona, global".into(),
            }),
        }
    }
}

/// The n-gram length used on a sequence of `len` items: at most `ngram`, and short enough that
/// `parts` n-grams fit.
fn gram_len(ngram: usize, len: usize, parts: usize) -> usize {
    ngram.min(len / parts.max(1)).max(1)
}

/// Temporal negative (eq. 1): exchanges the positions of two non-overlapping n-grams, `swaps`
/// times. Keeps the multiset of items; returns `None` when no order change is possible (fewer
/// than two items, or all items equal).
pub fn temporal_negative(
    seq: &[u32],
    ngram: usize,
    swaps: usize,
    rng: &mut SsiRng,
) -> Option<Vec<u32>> {
    let n = seq.len();
    if n < 2 || seq.iter().all(|&x| x == seq[0]) {
        return None;
    }
    let g = gram_len(ngram, n, 2);
    // A few tries: swapping two identical n-grams changes nothing.
    for _ in 0..16 {
        let mut out = seq.to_vec();
        for _ in 0..swaps.max(1) {
            // a: first start, b: second start, b >= a + g, b + g <= n.
            let a = rng.random_range(0..=n - 2 * g);
            let b = rng.random_range(a + g..=n - g);
            let mut swapped = Vec::with_capacity(n);
            swapped.extend_from_slice(&out[..a]);
            swapped.extend_from_slice(&out[b..b + g]);
            swapped.extend_from_slice(&out[a + g..b]);
            swapped.extend_from_slice(&out[a..a + g]);
            swapped.extend_from_slice(&out[b + g..]);
            out = swapped;
        }
        if out != seq {
            return Some(out);
        }
    }
    // Fallback that always changes the order: swap the first two differing neighbours.
    let i = (0..n - 1).find(|&i| seq[i] != seq[i + 1])?;
    let mut out = seq.to_vec();
    out.swap(i, i + 1);
    Some(out)
}

/// Persona negative (eq. 2): replaces `grams` n-grams of `seq` with n-grams taken from `other`
/// (another user's sequence). Returns `None` when the result would equal `seq`.
pub fn persona_negative(
    seq: &[u32],
    other: &[u32],
    ngram: usize,
    grams: usize,
    rng: &mut SsiRng,
) -> Option<Vec<u32>> {
    if seq.is_empty() || other.is_empty() {
        return None;
    }
    let g = gram_len(ngram, seq.len().min(other.len()), 1);
    for _ in 0..16 {
        let mut out = seq.to_vec();
        for _ in 0..grams.max(1) {
            let a = rng.random_range(0..=seq.len() - g);
            let c = rng.random_range(0..=other.len() - g);
            out[a..a + g].copy_from_slice(&other[c..c + g]);
        }
        if out != seq {
            return Some(out);
        }
    }
    None
}

/// Global-session span (eq. 3): the n-gram q_{n:m} to mask, as a half-open range. At least one
/// item stays unmasked, so sequences need two items.
pub fn global_span(len: usize, ngram: usize, rng: &mut SsiRng) -> Option<std::ops::Range<usize>> {
    if len < 2 {
        return None;
    }
    let g = ngram.clamp(1, len - 1);
    let start = rng.random_range(0..=len - g);
    Some(start..start + g)
}

/// The sequence with `span` cut out (a causal teacher's global input: it has no mask token).
pub fn cut_span(seq: &[u32], span: Range<usize>) -> Vec<u32> {
    [&seq[..span.start], &seq[span.end..]].concat()
}

/// The masked sequence \hat{q}_{n:m}: the span's items replaced by `mask_id`.
pub fn mask_span(seq: &[u32], span: Range<usize>, mask_id: u32) -> Vec<u32> {
    let mut out = seq.to_vec();
    for x in &mut out[span] {
        *x = mask_id;
    }
    out
}

/// Inputs of a binary consistency task (eq. 1 or 2) for one batch: each sequence stays positive
/// (label 1) or becomes a negative (label 0) with probability `negative_prob`.
pub fn binary_task_inputs(
    task: ConsistencyTask,
    seqs: &[&[u32]],
    ngram: usize,
    ngrams: usize,
    negative_prob: f64,
    rng: &mut SsiRng,
) -> (Vec<Vec<u32>>, Vec<f32>) {
    let mut out = Vec::with_capacity(seqs.len());
    let mut labels = Vec::with_capacity(seqs.len());
    for (i, s) in seqs.iter().enumerate() {
        let negative = if rng.random_bool(negative_prob) {
            match task {
                ConsistencyTask::Temporal => temporal_negative(s, ngram, ngrams, rng),
                ConsistencyTask::Persona if seqs.len() > 1 => {
                    // Another user of the batch donates the n-grams.
                    let j = (i + rng.random_range(1..seqs.len())) % seqs.len();
                    persona_negative(s, seqs[j], ngram, ngrams, rng)
                }
                _ => None,
            }
        } else {
            None
        };
        match negative {
            Some(neg) => {
                out.push(neg);
                labels.push(0.0);
            }
            None => {
                out.push(s.to_vec());
                labels.push(1.0);
            }
        }
    }
    (out, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssi_data::rng::seeded;

    fn sorted(v: &[u32]) -> Vec<u32> {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    }

    #[test]
    fn bert4rec_teachers_default_to_the_shared_consistency_defaults() {
        let c = crate::bert4rec::Bert4RecConfig::new(10);
        assert_eq!(c.consistency_weight, defaults::WEIGHT);
        assert_eq!(c.ngram, defaults::NGRAM);
        assert_eq!(c.ngrams, defaults::NGRAMS);
        assert_eq!(c.negative_prob, defaults::NEGATIVE_PROB);
    }

    #[test]
    fn temporal_keeps_items_and_changes_order() {
        let mut rng = seeded(1);
        let seq = [1, 2, 3, 4, 5, 6, 7, 8];
        for _ in 0..200 {
            let neg = temporal_negative(&seq, 2, 1, &mut rng).unwrap();
            assert_eq!(sorted(&neg), sorted(&seq));
            assert_ne!(neg, seq);
        }
        // Repeated items: still a real order change.
        let seq = [3, 3, 3, 9];
        for _ in 0..50 {
            let neg = temporal_negative(&seq, 2, 1, &mut rng).unwrap();
            assert_eq!(sorted(&neg), sorted(&seq));
            assert_ne!(neg, seq);
        }
        assert!(temporal_negative(&[5], 2, 1, &mut rng).is_none());
        assert!(temporal_negative(&[5, 5, 5], 2, 1, &mut rng).is_none());
    }

    #[test]
    fn temporal_swaps_whole_ngrams() {
        let mut rng = seeded(2);
        // With n = 4 and g = 2 the only swap is of the two halves.
        let neg = temporal_negative(&[1, 2, 3, 4], 2, 1, &mut rng).unwrap();
        assert_eq!(neg, vec![3, 4, 1, 2]);
    }

    #[test]
    fn persona_inserts_items_of_the_other_user() {
        let mut rng = seeded(3);
        let seq = [1, 2, 3, 4, 5, 6];
        let other = [100, 101, 102, 103];
        for _ in 0..200 {
            let neg = persona_negative(&seq, &other, 2, 1, &mut rng).unwrap();
            assert_eq!(neg.len(), seq.len());
            let foreign: Vec<u32> = neg.iter().copied().filter(|x| *x >= 100).collect();
            assert_eq!(foreign.len(), 2, "{neg:?}");
            // The foreign items form one n-gram of the donor, in the donor's order.
            let at = other.iter().position(|&x| x == foreign[0]).unwrap();
            assert_eq!(&other[at..at + 2], &foreign[..]);
            // Every other position keeps its own item.
            for (i, x) in neg.iter().enumerate() {
                assert!(*x >= 100 || *x == seq[i]);
            }
        }
        assert!(persona_negative(&[1, 2], &[1, 2], 2, 1, &mut rng).is_none());
    }

    #[test]
    fn global_masks_exactly_the_span() {
        let mut rng = seeded(4);
        let seq = [11, 12, 13, 14, 15];
        for _ in 0..100 {
            let span = global_span(seq.len(), 2, &mut rng).unwrap();
            assert_eq!(span.len(), 2);
            let masked = mask_span(&seq, span.clone(), 99);
            for (i, x) in masked.iter().enumerate() {
                if span.contains(&i) {
                    assert_eq!(*x, 99);
                } else {
                    assert_eq!(*x, seq[i]);
                }
            }
        }
        // Two items: one stays visible.
        let span = global_span(2, 3, &mut rng).unwrap();
        assert_eq!(span.len(), 1);
        assert!(global_span(1, 2, &mut rng).is_none());
        // A causal teacher cuts the span out instead.
        assert_eq!(cut_span(&seq, 1..3), vec![11, 14, 15]);
    }

    #[test]
    fn binary_inputs_label_what_they_changed() {
        let mut rng = seeded(5);
        let a = [1u32, 2, 3, 4, 5];
        let b = [6u32, 7, 8, 9];
        let seqs: Vec<&[u32]> = vec![&a, &b, &a, &b];
        for task in [ConsistencyTask::Temporal, ConsistencyTask::Persona] {
            let mut negatives = 0;
            for _ in 0..50 {
                let (out, labels) = binary_task_inputs(task, &seqs, 2, 1, 0.5, &mut rng);
                for ((o, l), s) in out.iter().zip(&labels).zip(&seqs) {
                    if *l == 1.0 {
                        assert_eq!(o.as_slice(), *s);
                    } else {
                        negatives += 1;
                        assert_ne!(o.as_slice(), *s);
                    }
                }
            }
            // About half of 200 sequences.
            assert!((60..140).contains(&negatives), "{task:?}: {negatives}");
        }
    }
}
