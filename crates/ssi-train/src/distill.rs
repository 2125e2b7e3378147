//! Self-supervised imitation training (SSI paper §2.4): a student learns its own next-item task
//! while imitating frozen teachers' predictions (eq. 5) and item representations (eq. 6), with
//! learnable per-teacher weights (eq. 7–8).
//!
//! Where imitation happens: by default each training sequence q_1..q_n gives one imitation
//! point, the history q_1..q_{n-1}; the teacher reads it with [MASK] appended (its prediction
//! mode) and the student reads it as it reads any history. The student's own loss L_s is its
//! usual training loss on the whole sequence. (The paper does not say at which positions it
//! imitates; this one is the position the student's own last next-item target uses, and costs
//! one teacher forward per sequence. `ImitationPoints` offers the whole sequence, whose next
//! item is unseen, instead or as well.)

use crate::checkpoint::{RunConfig, RunDir};
pub use crate::config::DistillSpec;
use crate::trainer::{Objective, TrainError};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use ssi_data::Dataset;
use ssi_data::rng::SsiRng;
use ssi_data::split::train_part;
use ssi_models::common::{Batch, TrainBatch};
use ssi_models::imitation::{
    ImitationConfig, ImitationHead, StudentPrediction, lambda_regulariser, representation_imitation,
};
use ssi_models::loss::Softmax;
use ssi_models::{AnyModel, ModelConfig, SequentialModel};
use std::collections::HashMap;
use std::path::PathBuf;

/// The module a distillation run trains and checkpoints: the student and the imitation weights.
#[derive(Module, Debug)]
pub struct Distiller {
    pub student: AnyModel,
    pub head: ImitationHead,
}

/// A frozen teacher: its model without autodiff, its item table and output bias (constants).
pub struct Teacher {
    pub name: String,
    pub model: AnyModel,
    pub items: Tensor<2>,
    pub bias: Option<Tensor<1>>,
}

/// An imitation point: the user and the hash of the student's history there.
type PointKey = (usize, u64);

/// Per teacher: imitation point → the teacher's encoding of what it reads there.
type EncodingCache = Vec<HashMap<PointKey, Vec<f32>>>;

pub struct Distill {
    pub student: ModelConfig,
    pub teachers: Vec<Teacher>,
    pub imitation: ImitationConfig,
    /// The student's starting weights (`--init`: a trained run of the student's model); None: a
    /// fresh init.
    pub student_start: Option<AnyModel>,
    /// Filled by `prepare`: per user, the student's history at each of its imitation points,
    points: HashMap<usize, Vec<Vec<u32>>>,
    /// the teachers' (longer) history at each point (`teacher_full_history`),
    full_history: HashMap<PointKey, Vec<u32>>,
    /// and per teacher its encoding of what it reads there (`cache_teachers`).
    cache: EncodingCache,
    /// Teacher encodings read from `cache` so far (so a test can see the cache is used).
    hits: std::sync::atomic::AtomicUsize,
}

fn history_hash(items: &[u32]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    items.hash(&mut h);
    h.finish()
}

/// Reads the teachers' run folders: their names, and a check that they fit the dataset.
pub fn describe_teachers(
    dirs: &[PathBuf],
    dataset: &crate::checkpoint::DatasetInfo,
) -> Result<Vec<(PathBuf, String)>, TrainError> {
    if dirs.is_empty() {
        return Err(TrainError::Config(
            "distillation needs at least one teacher".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for d in dirs {
        if !seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())) {
            return Err(TrainError::Config(format!(
                "teacher {} is given twice: each teacher is one term of the loss, with its own weight",
                d.display()
            )));
        }
    }
    dirs.iter()
        .map(|d| {
            let cfg = RunDir::new(d)
                .config()
                .map_err(|e| TrainError::Config(format!("teacher {}: {e}", d.display())))?;
            cfg.dataset
                .check_same(dataset, &format!("teacher {}", d.display()))?;
            Ok((d.clone(), cfg.model.teacher_name()))
        })
        .collect()
}

impl Distill {
    /// Loads the teachers of `run` (frozen, without autodiff) for training on `device`.
    pub fn from_run(run: &RunConfig, device: &Device) -> Result<Self, TrainError> {
        let spec = run.distill.as_ref().ok_or_else(|| {
            TrainError::Config("this run folder holds no distillation run".into())
        })?;
        let mut teachers = Vec::new();
        for (dir, name) in spec.teachers.iter().zip(&spec.teacher_names) {
            let (tcfg, model) = RunDir::new(dir)
                .load_best(device)
                .map_err(|e| TrainError::Config(format!("teacher {}: {e}", dir.display())))?;
            tcfg.dataset
                .check_same(&run.dataset, &format!("teacher {}", dir.display()))?;
            // valid(): no dropout, no autodiff, so no gradient can reach a teacher.
            let model = model.valid();
            let items = model.item_table();
            let bias = model.item_bias();
            teachers.push(Teacher {
                name: name.clone(),
                model,
                items,
                bias,
            });
        }
        Ok(Distill {
            student: run.model.clone(),
            points: HashMap::new(),
            full_history: HashMap::new(),
            cache: vec![HashMap::new(); teachers.len()],
            hits: Default::default(),
            teachers,
            imitation: spec.imitation.clone(),
            student_start: None,
        })
    }

    /// Teacher `i`'s logits over all items at the imitation points of `b` (the student's
    /// histories): its `score_all`, with the encoding read from the cache when it is there.
    fn teacher_logits(&self, i: usize, b: Batch) -> Tensor<2> {
        let t = &self.teachers[i];
        let h = match self.cached_encoding(i, b) {
            Some(h) => h,
            None => match self.teacher_histories(b) {
                Some(items) => t.model.encode(Batch {
                    items: &items,
                    users: b.users,
                }),
                None => t.model.encode(b),
            },
        };
        let logits = h.matmul(t.items.clone().transpose());
        match &t.bias {
            Some(bias) => logits + bias.clone().unsqueeze_dim(0),
            None => logits,
        }
    }

    /// The entry of `map` for each imitation point of `b` (user and student history), if every
    /// one is there.
    fn lookup<'s, T>(map: &'s HashMap<PointKey, T>, b: Batch) -> Option<Vec<&'s T>> {
        b.users
            .iter()
            .zip(b.items)
            .map(|(u, h)| map.get(&((*u)?, history_hash(h))))
            .collect()
    }

    fn cached_encoding(&self, i: usize, b: Batch) -> Option<Tensor<2>> {
        let t = &self.teachers[i];
        let rows = Self::lookup(&self.cache[i], b)?;
        self.hits
            .fetch_add(rows.len(), std::sync::atomic::Ordering::Relaxed);
        let width = t.items.dims()[1];
        let flat: Vec<f32> = rows.into_iter().flatten().copied().collect();
        Some(Tensor::from_data(
            TensorData::new(flat, [b.items.len(), width]),
            &t.items.device(),
        ))
    }

    /// The teachers' own histories at `b`'s imitation points (`teacher_full_history`).
    fn teacher_histories(&self, b: Batch) -> Option<Vec<&[u32]>> {
        Self::lookup(&self.full_history, b).map(|v| v.into_iter().map(Vec::as_slice).collect())
    }

    /// How many teacher encodings were read from the cache instead of computed.
    pub fn cache_hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the student and the teachers read at `user`'s imitation points, once `prepare`d.
    pub fn imitation_points(&self, user: usize) -> Vec<(&[u32], &[u32])> {
        let Some(points) = self.points.get(&user) else {
            return Vec::new();
        };
        points
            .iter()
            .map(|student| {
                let teacher = self
                    .full_history
                    .get(&(user, history_hash(student)))
                    .map_or(student.as_slice(), Vec::as_slice);
                (student.as_slice(), teacher)
            })
            .collect()
    }

    /// Reads what the objective needs from the dataset before training: each user's imitation
    /// points (from the trainer's training sequence of that user, cut to the student's length),
    /// the teachers' longer histories there (`teacher_full_history`), and every teacher's
    /// encoding of them (`cache_teachers`). Encodings are computed in fixed batches of points,
    /// so a resumed run reads exactly the encodings an uninterrupted one reads.
    pub fn prepare(mut self, ds: &Dataset, device: &Device) -> Result<Self, TrainError> {
        let (full, cache) = (
            self.imitation.teacher_full_history,
            self.imitation.cache_teachers,
        );
        if !full && !cache {
            return Ok(self);
        }
        let max_len = self.student.init(device).max_len();
        let users: Vec<usize> = (0..ds.n_users())
            .filter(|&u| train_part(&ds.sequences[u]).len() >= 2)
            .collect();
        let mut order: Vec<(usize, Vec<u32>)> = Vec::new();
        for &u in &users {
            // As the trainer cuts a training sequence, and `loss` its histories.
            let s = train_part(&ds.sequences[u]);
            let seq = &s[s.len().saturating_sub(max_len + 1)..];
            for (student, left_out) in self.imitation.imitation_points().histories(seq, max_len) {
                let key = (u, history_hash(student));
                if full {
                    self.full_history
                        .insert(key, s[..s.len() - left_out].to_vec());
                }
                self.points.entry(u).or_default().push(student.to_vec());
                order.push((u, student.to_vec()));
            }
        }
        if !cache {
            return Ok(self);
        }
        for chunk in order.chunks(256) {
            let student: Vec<&[u32]> = chunk.iter().map(|(_, h)| h.as_slice()).collect();
            let who: Vec<Option<usize>> = chunk.iter().map(|&(u, _)| Some(u)).collect();
            let b = Batch {
                items: &student,
                users: &who,
            };
            // Field by field (not through `&self` methods): `cache` is borrowed mutably below.
            let read: Option<Vec<&[u32]>> = Self::lookup(&self.full_history, b)
                .map(|v| v.into_iter().map(Vec::as_slice).collect());
            for (t, cache) in self.teachers.iter().zip(self.cache.iter_mut()) {
                let h = match &read {
                    Some(items) => t.model.encode(Batch { items, users: &who }),
                    None => t.model.encode(b),
                };
                let width = h.dims()[1];
                let values = h
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| TrainError::Config(format!("teacher {}: {e:?}", t.name)))?;
                for ((u, h), row) in chunk.iter().zip(values.chunks(width)) {
                    cache.insert((*u, history_hash(h)), row.to_vec());
                }
            }
        }
        Ok(self)
    }

    fn widths(&self, student_hidden: usize) -> Vec<(usize, usize)> {
        self.teachers
            .iter()
            .map(|t| (student_hidden, t.items.dims()[1]))
            .collect()
    }
}

impl Objective for Distill {
    type Module = Distiller;

    fn init(&self, device: &Device) -> Distiller {
        let student = match &self.student_start {
            Some(m) => m.clone(),
            None => self.student.init(device),
        };
        let hidden = student.item_table().dims()[1];
        Distiller {
            head: ImitationHead::new(&self.widths(hidden), device),
            student,
        }
    }

    fn load(&self, bytes: Vec<u8>, device: &Device) -> Result<Distiller, TrainError> {
        let record = ssi_models::common::weights_record(bytes).map_err(TrainError::Weights)?;
        self.init(device).try_load_record(record).map_err(|e| {
            TrainError::Weights(format!(
                "checkpoint does not fit the distillation config: {}",
                ssi_models::common::brief(&e.to_string())
            ))
        })
    }

    /// Eq. 7 + 8: L_s + Σ λ_i (L¹_IL,i + L²_IL,i) + Σ 1/λ_i + (Σ 1/λ_i)².
    fn loss(
        &self,
        m: &Distiller,
        batch: TrainBatch,
        softmax: Softmax,
        rng: &mut SsiRng,
    ) -> Tensor<1> {
        let own = m.student.train_loss(batch, softmax, rng);
        let cfg = &self.imitation;
        let max_len = m.student.max_len();
        let mut hist: Vec<&[u32]> = Vec::new();
        let mut users: Vec<Option<usize>> = Vec::new();
        for (s, &u) in batch.items.iter().zip(batch.users) {
            for (h, _) in cfg.imitation_points().histories(s, max_len) {
                hist.push(h);
                users.push(Some(u));
            }
        }
        let b = Batch {
            items: &hist,
            users: &users,
        };
        // The student's scores are the same for every teacher: computed once.
        let student_prediction = cfg
            .prediction
            .then(|| StudentPrediction::new(m.student.score_all(b), cfg.temperature));
        let student_items = cfg.representation.then(|| m.student.item_table());
        let lambda = if cfg.learn_lambda {
            m.head.lambda()
        } else {
            m.head.lambda().detach().ones_like()
        };
        let mut total = own;
        for (i, t) in self.teachers.iter().enumerate() {
            let mut term: Option<Tensor<1>> = None;
            if let Some(s) = &student_prediction {
                term = Some(s.imitate(self.teacher_logits(i, b)));
            }
            if let Some(s) = &student_items {
                let mse =
                    representation_imitation(t.items.clone(), m.head.student_items(i, s.clone()));
                term = Some(match term {
                    Some(x) => x + mse,
                    None => mse,
                });
            }
            if let Some(term) = term {
                total = total + lambda.clone().narrow(0, i, 1) * term;
            }
        }
        if cfg.learn_lambda {
            total = total + lambda_regulariser(lambda);
        }
        total
    }

    fn model<'m>(&self, m: &'m Distiller) -> &'m AnyModel {
        &m.student
    }

    fn log_extra(&self, m: &Distiller) -> serde_json::Map<String, serde_json::Value> {
        let values = m
            .head
            .lambda()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        let lambda: serde_json::Map<String, serde_json::Value> = self
            .teachers
            .iter()
            .zip(values)
            .map(|(t, v)| (t.name.clone(), serde_json::json!(v)))
            .collect();
        let mut out = serde_json::Map::new();
        out.insert("lambda".into(), lambda.into());
        out
    }
}
