//! Self-supervised imitation (SSI paper §2.4, eq. 5–8): the terms by which a student imitates
//! frozen consistency teachers, and the learnable per-teacher weights.
//!
//! Teacher tensors may come from a device without autodiff: combined with the student's
//! autodiff tensors they act as constants, so no gradient ever reaches a teacher.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};

/// Eq. 5, prediction distribution imitation: D_KL(p_teacher ‖ p_student) over the candidate set
/// (the columns of the logits, [batch, candidates]), averaged over the batch. `temperature`
/// divides both logits (1 in the paper). As tensor operations: the reference of
/// [`crate::fused_kl`].
pub fn prediction_imitation(
    teacher_logits: Tensor<2>,
    student_logits: Tensor<2>,
    temperature: f64,
) -> Tensor<1> {
    prediction_imitation_log_probs(
        tempered_log_probs(teacher_logits, temperature),
        tempered_log_probs(student_logits, temperature),
    )
}

/// The student's side of eq. 5 at a batch of imitation points, shared by every teacher: on the
/// CPU backend its logits (each teacher's term is one fused kernel, [`crate::fused_kl`]), elsewhere
/// its tempered log-probabilities, computed once for all teachers.
pub struct StudentPrediction {
    scores: Tensor<2>,
    temperature: f64,
    fused: bool,
}

impl StudentPrediction {
    /// From the student's logits over the candidates, [points, candidates].
    pub fn new(logits: Tensor<2>, temperature: f64) -> Self {
        let fused = crate::fused_kl::supported(&logits.device())
            && logits.dtype() == burn::tensor::DType::F32
            && temperature.is_finite()
            && temperature > 0.0;
        let scores = if fused {
            logits
        } else {
            tempered_log_probs(logits, temperature)
        };
        Self {
            scores,
            temperature,
            fused,
        }
    }

    /// Eq. 5 against one teacher's logits at the same points: the mean over points of
    /// D_KL(p_teacher ‖ p_student).
    pub fn imitate(&self, teacher_logits: Tensor<2>) -> Tensor<1> {
        if self.fused {
            crate::fused_kl::kl_rows(self.scores.clone(), teacher_logits, self.temperature)
                .mean()
                .reshape([1])
        } else {
            prediction_imitation_log_probs(
                tempered_log_probs(teacher_logits, self.temperature),
                self.scores.clone(),
            )
        }
    }
}

/// log softmax(logits / temperature) over the candidates (dim 1): eq. 5's distributions.
pub fn tempered_log_probs(logits: Tensor<2>, temperature: f64) -> Tensor<2> {
    log_softmax(logits.mul_scalar(1.0 / temperature), 1)
}

/// Eq. 5 from log-probabilities (`tempered_log_probs`): the distiller computes the student's once
/// and reuses it for every teacher (one log-softmax and its backward instead of one per teacher).
pub fn prediction_imitation_log_probs(teacher: Tensor<2>, student: Tensor<2>) -> Tensor<1> {
    let kl = (teacher.clone().exp() * (teacher - student)).sum_dim(1); // [batch, 1]
    kl.mean().reshape([1])
}

/// Eq. 6, item representation imitation: f = mean squared error between the teacher's and the
/// student's item representations ([items, hidden] each, same shape).
pub fn representation_imitation(teacher: Tensor<2>, student: Tensor<2>) -> Tensor<1> {
    (teacher - student).powf_scalar(2.0).mean().reshape([1])
}

/// Eq. 8's regulariser: Σ 1/λ_i + (Σ 1/λ_i)².
pub fn lambda_regulariser(lambda: Tensor<1>) -> Tensor<1> {
    let s = lambda.recip().sum();
    s.clone() + s.powf_scalar(2.0)
}

/// Settings of the imitation objective; the ablations of the paper's Table 3 switch terms off.
#[derive(Config, Debug)]
pub struct ImitationConfig {
    /// Eq. 5 on (the paper) or off (Table 3, "w/o prediction imitation").
    #[config(default = true)]
    pub prediction: bool,
    /// Eq. 6 on (the paper) or off (Table 3, "w/o item representation imitation").
    #[config(default = true)]
    pub representation: bool,
    /// Softmax temperature of eq. 5 (not in the paper: 1 is the faithful value).
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Learn λ_i with eq. 8 (the paper); `false` keeps every λ_i = 1 and drops the regulariser.
    #[config(default = true)]
    pub learn_lambda: bool,
    /// Keep each teacher's encoding of each training history after its first computation and
    /// read it back in later epochs (not in the paper; a speed option). Teachers are frozen and
    /// run without dropout, so the encoding, and with it p_teacher of eq. 5, is the same every
    /// epoch: this skips the teachers' layers from the second epoch on, for the same loss.
    /// Memory: users × hidden floats per teacher.
    #[config(default = true)]
    pub cache_teachers: bool,
    /// What a teacher reads at the imitation point. `false` (as measured first): exactly the
    /// student's input, so with HGN (window 5) the teacher sees the last 5 items. `true`: the
    /// user's whole training history up to the same point, cut only by the teacher's own
    /// `max_len`; same next item, more context. The paper says the teacher reads "the
    /// sequence" and does not address students with short windows.
    #[config(default = false)]
    pub teacher_full_history: bool,
    /// Where in each training sequence the student imitates (see `ImitationPoints`); `None`
    /// (also what run folders written before this setting existed hold) is `Target`.
    pub points: Option<ImitationPoints>,
}

impl ImitationConfig {
    /// The imitation points, `Target` unless set.
    pub fn imitation_points(&self) -> ImitationPoints {
        self.points.unwrap_or(ImitationPoints::Target)
    }
}

/// Where imitation happens in a training sequence q_1..q_n. Eq. 5 has the teacher read "the
/// sequence" with [MASK] appended; the paper does not say which sequence that is in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImitationPoints {
    /// The history q_1..q_{n-1}, whose next item q_n is the student's own last target (as
    /// measured first; the teacher was trained with q_n there, so its prediction is peaked).
    Target,
    /// The whole training sequence q_1..q_n: the [MASK] stands for the unseen next item, so the
    /// student imitates the teachers' forecast, which no label in training constrains.
    Next,
    /// Both points (twice the imitation work).
    Both,
}

impl ImitationPoints {
    pub fn name(self) -> &'static str {
        match self {
            ImitationPoints::Target => "target",
            ImitationPoints::Next => "next",
            ImitationPoints::Both => "both",
        }
    }

    /// The student's histories at the imitation points of one training sequence `seq` (as the
    /// trainer cut it), with how many items of `seq` each leaves out at its end; `max_len` is the
    /// student's.
    pub fn histories(self, seq: &[u32], max_len: usize) -> Vec<(&[u32], usize)> {
        let target = || {
            let end = seq.len().saturating_sub(1).max(1);
            (&seq[..end], seq.len() - end)
        };
        let next = || (&seq[seq.len().saturating_sub(max_len)..], 0);
        match self {
            ImitationPoints::Target => vec![target()],
            ImitationPoints::Next => vec![next()],
            ImitationPoints::Both => vec![target(), next()],
        }
    }
}

impl std::str::FromStr for ImitationPoints {
    type Err = crate::ConfigError;
    fn from_str(s: &str) -> Result<Self, crate::ConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "target" => Ok(ImitationPoints::Target),
            "next" => Ok(ImitationPoints::Next),
            "both" => Ok(ImitationPoints::Both),
            _ => Err(crate::ConfigError::UnknownName {
                what: "imitation points",
                given: s.to_string(),
                expected: "target, next, both".into(),
            }),
        }
    }
}

/// The trainable parts of imitation besides the student: λ_i = exp(ρ_i) (positive by
/// construction, λ_i = 1 at ρ_i = 0 as the paper initialises), and per teacher a linear map of
/// the student's item table into the teacher's width where the two differ (eq. 6 needs equal
/// shapes; the paper does not say how it handles different widths).
#[derive(Module, Debug)]
pub struct ImitationHead {
    pub log_lambda: Param<Tensor<1>>,
    pub projections: Vec<Option<Linear>>,
}

impl ImitationHead {
    /// `widths`: (student hidden, teacher hidden) per teacher.
    pub fn new(widths: &[(usize, usize)], device: &Device) -> Self {
        ImitationHead {
            log_lambda: Param::from_tensor(Tensor::zeros([widths.len()], device)),
            projections: widths
                .iter()
                .map(|&(s, t)| (s != t).then(|| LinearConfig::new(s, t).init(device)))
                .collect(),
        }
    }

    /// λ_i, [teachers].
    pub fn lambda(&self) -> Tensor<1> {
        self.log_lambda.val().exp()
    }

    /// The student's item table as teacher `i` sees it (projected when widths differ).
    pub fn student_items(&self, i: usize, table: Tensor<2>) -> Tensor<2> {
        match &self.projections[i] {
            Some(p) => p.forward(table),
            None => table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    fn close(t: Tensor<1>, want: f32) {
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        assert!((v[0] - want).abs() < 1e-5, "{} vs {want}", v[0]);
    }

    #[test]
    fn imitation_points_cut_the_training_sequence() {
        let seq = [1u32, 2, 3, 4, 5, 6];
        assert_eq!(
            ImitationPoints::Target.histories(&seq, 5),
            vec![(&seq[..5], 1)]
        );
        // The whole sequence, cut to the student's length.
        assert_eq!(
            ImitationPoints::Next.histories(&seq, 5),
            vec![(&seq[1..], 0)]
        );
        assert_eq!(
            ImitationPoints::Next.histories(&seq, 50),
            vec![(&seq[..], 0)]
        );
        assert_eq!(
            ImitationPoints::Both.histories(&seq, 50),
            vec![(&seq[..5], 1), (&seq[..], 0)]
        );
        // A one-item sequence still has a history to imitate on.
        assert_eq!(
            ImitationPoints::Target.histories(&seq[..1], 5),
            vec![(&seq[..1], 0)]
        );
        assert_eq!("Both".parse::<ImitationPoints>(), Ok(ImitationPoints::Both));
        assert!("all".parse::<ImitationPoints>().is_err());
    }

    #[test]
    fn terms_vanish_when_student_equals_teacher() {
        let d = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![0.3f32, -1.0, 2.0, 0.5, 0.1, 0.0], [2, 3]),
            &d,
        );
        close(
            prediction_imitation(logits.clone(), logits.clone(), 1.0),
            0.0,
        );
        close(
            representation_imitation(logits.clone(), logits.clone()),
            0.0,
        );
        // And they do not vanish otherwise.
        let other = logits.clone().mul_scalar(2.0);
        let kl = prediction_imitation(logits.clone(), other.clone(), 1.0);
        assert!(kl.into_scalar::<f32>() > 1e-3);
        let mse: f32 = representation_imitation(logits, other).into_scalar();
        assert!(mse > 1e-3);
    }

    #[test]
    fn kl_matches_a_hand_computation() {
        let d = Device::flex();
        let t = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0], [1, 2]), &d);
        let s = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, (3.0f32).ln()], [1, 2]), &d);
        // p_t = (1/2, 1/2), p_s = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3).
        let want = 0.5 * (2.0f32).ln() + 0.5 * (2.0f32 / 3.0).ln();
        close(prediction_imitation(t, s, 1.0), want);
    }

    #[test]
    fn lambda_regulariser_and_gradient_match_hand_computation() {
        let d = Device::flex().autodiff();
        let lam =
            Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0, 4.0], [3]), &d).require_grad();
        let r = lambda_regulariser(lam.clone());
        // S = 1 + 1/2 + 1/4 = 1.75; R = S + S² = 4.8125.
        let value = r.clone().into_data().try_to_vec::<f32>().unwrap()[0];
        assert!((value - 4.8125).abs() < 1e-5);
        // dR/dλ_i = -(1 + 2S) / λ_i² = -4.5 / λ_i².
        let grads = r.backward();
        let g = lam.grad(&grads).unwrap();
        let want = TensorData::new(vec![-4.5f32, -4.5 / 4.0, -4.5 / 16.0], [3]);
        g.into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
    }

    #[test]
    fn head_starts_at_lambda_one_and_projects_only_when_widths_differ() {
        let d = Device::flex();
        let head = ImitationHead::new(&[(64, 64), (32, 64)], &d);
        head.lambda().into_data().assert_approx_eq::<f32>(
            &TensorData::new(vec![1.0f32, 1.0], [2]),
            Tolerance::default(),
        );
        assert!(head.projections[0].is_none());
        let table = Tensor::<2>::zeros([5, 32], &d);
        assert_eq!(head.student_items(1, table).dims(), [5, 64]);
    }
}
