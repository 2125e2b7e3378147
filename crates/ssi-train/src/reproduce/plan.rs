//! What an invocation of `reproduce` trains: every stage (one run folder each) with its model,
//! settings, teachers and warm start, in an order that meets each stage's dependencies first.
//! A [`Plan`] is checked whole when it is made, so a bad setting of the last stage is refused
//! before the first one trains.

use super::error::ReproduceError;
use super::paper::PAPER_TABLE3;
use crate::config::{TrainConfig, TrainError};
use crate::settings::{Setting, apply_settings, in_precedence, load_settings_file};
use serde_json::Value;
use ssi_data::Dataset;
use ssi_models::consistency::ConsistencyTask;
use ssi_models::imitation::{ImitationConfig, ImitationPoints};
use ssi_models::{ModelConfig, ModelKind};
use std::path::Path;

const SMALL: &str = include_str!("../../../../configs/small.json");
const PAPER: &str = include_str!("../../../../configs/paper.json");

/// Figure 4's layer counts.
pub(super) const LAYERS: [usize; 4] = [1, 2, 4, 8];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ablation {
    /// Table 3: without item-representation imitation, without prediction imitation, without both.
    Imitation,
    /// Figure 3: one teacher at a time.
    Teachers,
    /// Figure 4: BERT4Rec and SSI with 1, 2, 4 and 8 self-attention layers.
    Layers,
}

/// The imitation options every SSI student of an invocation gets.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct ImitationOptions {
    pub points: ImitationPoints,
    pub full_history: bool,
    pub temperature: f64,
}

impl ImitationOptions {
    /// The paper's reading: target points, the student's input, temperature 1.
    pub const FAITHFUL: Self = Self {
        points: ImitationPoints::Target,
        full_history: false,
        temperature: 1.0,
    };

    /// Our best configuration, the same on every dataset (`ssi reproduce --preset best`, the
    /// quickstart): imitate the teachers' forecast of the next item from the whole history,
    /// at T = 4 — on Beauty T = 4 keeps T = 2's sampled gain without its full-ranking cost
    /// (docs/results/ssi-beauty-warm.md). Used with warm starts.
    pub const BEST: Self = Self {
        points: ImitationPoints::Next,
        full_history: true,
        temperature: 4.0,
    };

    pub fn of(c: &ImitationConfig) -> Self {
        Self {
            points: c.imitation_points(),
            full_history: c.teacher_full_history,
            temperature: c.temperature,
        }
    }

    pub fn is_faithful(&self) -> bool {
        *self == Self::FAITHFUL
    }

    /// The command-line options that give these settings.
    pub fn flags(&self) -> String {
        let mut f = format!("--imitation-points {}", self.points.name());
        if self.full_history {
            f.push_str(" --teacher-full-history");
        }
        if self.temperature != 1.0 {
            f.push_str(&format!(" --temperature {}", self.temperature));
        }
        f
    }

    /// A stage's imitation settings with these options applied.
    pub fn apply(&self, base: &ImitationConfig) -> ImitationConfig {
        base.clone()
            .with_points(Some(self.points))
            .with_teacher_full_history(self.full_history)
            .with_temperature(self.temperature)
    }
}

/// What an invocation asks for.
#[derive(Clone, Debug)]
pub struct Request {
    /// The settings of every run, later ones winning (see [`base_settings`]).
    pub settings: Vec<Setting>,
    pub ablations: Vec<Ablation>,
    /// Baselines of Table 2 to train; finished runs of the others are read back all the same.
    pub baselines: Vec<ModelKind>,
    /// Students of SSI to train (and their teachers); finished runs of the others are read back.
    pub students: Vec<ModelKind>,
    pub imitation: ImitationOptions,
    /// Teachers start from the run of their model alone and each SSI student from its own run
    /// alone, which is also continued alone from the same weights as the student's reference.
    pub warm_start: bool,
    /// With `warm_start`: the teachers train from scratch, each with its own seed (the
    /// invocation's seed + 1, + 2, + 3), instead of continuing their model's run alone; the
    /// students still start from their own runs. Teachers that continue the student's own run
    /// stay close to it, and their committee is what imitation can hand over
    /// (docs/results/ssi-sasrec-teachers.md).
    pub teachers_from_scratch: bool,
    /// The model of the three consistency teachers: BERT4Rec (the paper's) or SASRec (beyond
    /// the paper: its next-item loss plus the consistency task, `SasRecConfig::consistency`).
    pub teacher_model: ModelKind,
    /// The dataset's name in the paper's tables (e.g. beauty).
    pub paper_dataset: String,
}

impl Request {
    /// Teachers are trained when something distils from them; the layers ablation has its own.
    pub(super) fn needs_teachers(&self) -> bool {
        !self.students.is_empty()
            || self
                .ablations
                .iter()
                .any(|x| matches!(x, Ablation::Imitation | Ablation::Teachers))
    }

    /// The students whose runs alone a warm start continues alone, as their same-run
    /// references: those asked for, and HGN when an ablation trains SSI-HGN variants (they
    /// start from HGN's run and are compared with HGN continued).
    pub(super) fn warm_references(&self) -> Vec<ModelKind> {
        let mut kinds = self.students.clone();
        if self.warm_start && !self.ablations.is_empty() && !kinds.contains(&ModelKind::Hgn) {
            kinds.push(ModelKind::Hgn);
        }
        kinds
    }

    /// The baselines this invocation trains: those asked for, and with a warm start also the
    /// runs the warm starts start from (the teachers' model when teachers are trained, each
    /// student alone, HGN for the ablations' students).
    pub(super) fn trained_baselines(&self) -> Vec<ModelKind> {
        let mut kinds = self.baselines.clone();
        if self.warm_start {
            let teachers_start = (self.needs_teachers() && !self.teachers_from_scratch)
                .then_some(self.teacher_model);
            for k in teachers_start.into_iter().chain(self.warm_references()) {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        kinds
    }

    /// The invocation's seed (the last `seed` setting, else the default of new runs).
    pub(super) fn seed(&self) -> u64 {
        self.last_u64(&["seed"])
            .unwrap_or(crate::config::TrainConfig::new().seed)
    }

    /// The seed of every run's sampled negatives (the last `eval_seed` setting, else the
    /// default of new runs), so MostPop's row ranks among the same candidates as the models'.
    pub(super) fn eval_seed(&self) -> u64 {
        self.last_u64(&["eval_seed"])
            .unwrap_or(crate::config::EVAL_SEED)
    }

    /// The number of layers the teachers' model gets (`layers` or `MODEL.layers` of the
    /// teachers' model, the one that wins), if any.
    fn configured_layers(&self) -> Option<usize> {
        let scoped = format!("{}.layers", self.teacher_model.id());
        self.last_u64(&["layers", &scoped]).map(|l| l as usize)
    }

    /// The value of the setting of any of `keys` that wins ([`in_precedence`]), when it is an
    /// integer.
    fn last_u64(&self, keys: &[&str]) -> Option<u64> {
        in_precedence(&self.settings)
            .into_iter()
            .rev()
            .find(|s| keys.contains(&s.key.as_str()))
            .and_then(|s| s.value.as_u64())
    }
}

/// The settings of a preset, `small` (hidden 64, 2 layers, 2 heads) or `paper` (256, 8, 4), or
/// of a JSON settings file at any other path.
pub fn base_settings(config: &str) -> Result<Vec<Setting>, TrainError> {
    match config {
        "small" | "paper" if std::fs::symlink_metadata(config).is_ok() => {
            Err(TrainError::Config(format!(
                "--config {config}: names both the preset and the file {config} in this folder; give ./{config} for the file, or move the file to use the preset"
            )))
        }
        "small" | "paper" => Ok(preset_settings(config)),
        path if std::fs::symlink_metadata(path).is_err() => Err(TrainError::Config(format!(
            "--config {path}: neither a preset (small, paper) nor a settings file that exists"
        ))),
        path => load_settings_file(Path::new(path)),
    }
}

/// The settings of the preset `small`, or of `paper` for any other name (callers give one of
/// the two).
pub(crate) fn preset_settings(preset: &str) -> Vec<Setting> {
    let text = if preset == "small" { SMALL } else { PAPER };
    let v: serde_json::Map<String, Value> =
        serde_json::from_str(text).expect("the presets are JSON objects");
    v.into_iter()
        .map(|(key, value)| Setting::lenient(key, value, None))
        .collect()
}

/// One model of the pipeline.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Run folder name, and the row's name.
    pub name: String,
    pub label: String,
    pub kind: ModelKind,
    /// Settings of this stage alone, after the invocation's.
    pub settings: Vec<Setting>,
    /// The teachers' stage names and how to imitate them.
    pub distill: Option<(Vec<String>, ImitationConfig)>,
    /// The stage whose best weights this one starts from (warm start).
    pub init: Option<String>,
}

impl Stage {
    /// The stages that must have finished before this one starts.
    pub fn deps(&self) -> Vec<String> {
        self.distill
            .iter()
            .flat_map(|d| d.0.clone())
            .chain(self.init.clone())
            .collect()
    }
}

/// Every stage an invocation trains, checked, in the order a single process trains them.
#[derive(Debug)]
pub struct Plan {
    request: Request,
    stages: Vec<Stage>,
    base_layers: Option<usize>,
}

impl Plan {
    /// The plan of `request` on `ds`, refused if a stage's settings do not apply to its model.
    pub fn new(request: Request, ds: &Dataset) -> Result<Self, ReproduceError> {
        if let Some(s) = request
            .settings
            .iter()
            .find(|s| s.key.rsplit('.').next() == Some("consistency"))
        {
            return Err(ReproduceError::PipelineSetting(s.key.clone()));
        }
        // Table 2 ranks every model, MostPop too, among one sample of candidates.
        if let Some(s) = request
            .settings
            .iter()
            .find(|s| s.key.ends_with(".eval_seed"))
        {
            return Err(ReproduceError::Train(TrainError::Config(format!(
                "setting {}: every model of the tables is evaluated on one sample of candidates; set `eval_seed` for all of them",
                s.key
            ))));
        }
        let base_layers = request.configured_layers();
        let plan = Plan {
            stages: ordered_stages(&request, base_layers),
            request,
            base_layers,
        };
        for s in &plan.stages {
            let base = ModelConfig::new(s.kind, ds.n_items as usize, ds.n_users());
            apply_settings(
                &base,
                &TrainConfig::defaults_for(&base),
                &plan.settings_of(s),
            )
            .map_err(|e| ReproduceError::StageSettings {
                stage: s.name.clone(),
                source: e,
            })?;
        }
        Ok(plan)
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage named `name` (a run folder name).
    pub fn stage(&self, name: &str) -> Result<&Stage, ReproduceError> {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ReproduceError::UnknownStage(name.into()))
    }

    /// The invocation's settings, then the stage's own.
    pub fn settings_of(&self, s: &Stage) -> Vec<Setting> {
        let mut settings = self.request.settings.clone();
        // Scoped to the stage's model and after the invocation's, so what makes the stage what
        // it is (its depth, task, seed) beats an invocation's `MODEL.key` too.
        settings.extend(s.settings.iter().map(|x| x.scoped_to(s.kind)));
        settings
    }

    /// Layers every run gets from the settings, if set: Figure 4 reuses Table 2's runs there.
    pub(super) fn base_layers(&self) -> Option<usize> {
        self.base_layers
    }

    /// The teachers of Table 2, warm-started if the invocation asks for it.
    pub(super) fn table2_teachers(&self) -> Vec<Stage> {
        let teach = teachers(self.request.teacher_model, "", None);
        if self.request.warm_start {
            let r = &self.request;
            return teach.into_iter().map(|s| warm_start(s, r)).collect();
        }
        teach
    }
}

/// Every stage `a` trains, in the order a single process trains them.
fn ordered_stages(a: &Request, base_layers: Option<usize>) -> Vec<Stage> {
    let mut all = baseline_stages();
    let mut out: Vec<Stage> = Vec::new();
    for k in a.trained_baselines() {
        if let Some(i) = all.iter().position(|s| s.kind == k) {
            out.push(all.remove(i));
        }
    }
    let teach = teachers(a.teacher_model, "", None);
    for &k in &a.students {
        out.push(ssi_student(k, &teach));
    }
    if a.warm_start {
        // The same-run references of the students.
        out.extend(a.warm_references().into_iter().map(continued_stage));
    }
    if a.ablations.contains(&Ablation::Imitation) {
        out.extend(imitation_variants(&teach));
    }
    if a.ablations.contains(&Ablation::Teachers) {
        out.extend(single_teacher_students(&teach));
    }
    if a.needs_teachers() {
        // Before the students, so that a single process meets them in dependency order.
        let at = out
            .iter()
            .position(|s| s.distill.is_some())
            .unwrap_or(out.len());
        out.splice(at..at, teach);
    }
    if a.ablations.contains(&Ablation::Layers) {
        for l in LAYERS {
            let (b, tl, s) = layer_stages(a.teacher_model, l, base_layers);
            out.push(b);
            out.extend(tl);
            out.push(s);
        }
    }
    // A stage reached twice (Figure 4 at the configured depth) is trained once, where first met.
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(s.name.clone()));
    if a.warm_start {
        out = out.into_iter().map(|s| warm_start(s, a)).collect();
    }
    out
}

/// The run folders of `student` trained alone, continued alone (warm start) and as an SSI
/// student, in a reproduce folder.
pub fn student_runs(student: ModelKind) -> (String, String, String) {
    (
        alone_name(student),
        continued_stage(student).name,
        ssi_name(student),
    )
}

fn alone_name(student: ModelKind) -> String {
    baseline_stages()
        .into_iter()
        .find(|s| s.kind == student)
        .map(|s| s.name)
        .unwrap_or_else(|| student.name().to_ascii_lowercase())
}

/// Warm start: `student` alone, continued from its run as long as its SSI student trains.
pub(super) fn continued_stage(student: ModelKind) -> Stage {
    let alone = alone_name(student);
    let mut s = stage(
        &format!("{alone}-continued"),
        &format!("{} (continued)", student.name()),
        student,
    );
    s.init = Some(alone);
    s
}

/// Warm start on a stage: teachers start from the run of their model alone (Figure 4's
/// `l4-teacher-…` from `l4-…`, the model alone at that depth), SSI students (the ablations'
/// too) from their own run alone. With `teachers_from_scratch` the teachers start from scratch,
/// with seeds of their own.
pub(super) fn warm_start(mut s: Stage, a: &Request) -> Stage {
    if s.distill.is_some() {
        s.init = Some(alone_name(s.kind));
    } else if s.name.contains("teacher-") && a.teachers_from_scratch {
        let task = ConsistencyTask::ALL
            .iter()
            .position(|t| s.name.ends_with(&format!("teacher-{}", t.name())))
            .unwrap_or(0);
        s.settings
            .push(Setting::strict("seed", a.seed() + 1 + task as u64));
    } else if let Some(at) = s.name.find("teacher-") {
        let depth = &s.name[..at];
        s.init = Some(if depth.is_empty() {
            alone_name(s.kind)
        } else {
            format!("{depth}{}", s.kind.id())
        });
    }
    s
}

fn stage(name: &str, label: &str, kind: ModelKind) -> Stage {
    Stage {
        name: name.into(),
        label: label.into(),
        kind,
        settings: Vec::new(),
        distill: None,
        init: None,
    }
}

/// The three consistency teachers of model `kind`, named `{prefix}teacher-TASK`.
pub(super) fn teachers(kind: ModelKind, prefix: &str, layers: Option<usize>) -> Vec<Stage> {
    ConsistencyTask::ALL
        .iter()
        .map(|t| {
            // Labels as `ssi report` names teachers: the task alone for the paper's BERT4Rec.
            let label = match kind {
                ModelKind::Bert4rec => format!("Teacher ({})", t.name()),
                k => format!("Teacher ({}-{})", k.id(), t.name()),
            };
            let mut s = stage(&format!("{prefix}teacher-{}", t.name()), &label, kind);
            s.settings.push(Setting::strict("consistency", t.name()));
            if let Some(l) = layers {
                s.settings.push(Setting::strict("layers", l));
            }
            s
        })
        .collect()
}

fn ssi(
    name: &str,
    label: &str,
    student: ModelKind,
    teachers: &[&Stage],
    imitation: ImitationConfig,
) -> Stage {
    let mut s = stage(name, label, student);
    s.distill = Some((teachers.iter().map(|t| t.name.clone()).collect(), imitation));
    s
}

fn student_label(kind: ModelKind) -> String {
    match kind {
        ModelKind::Hgn => "SSI".into(),
        k => format!("SSI-{}", k.name()),
    }
}

/// The baselines of Table 2, in the paper's row order.
pub(super) fn baseline_stages() -> Vec<Stage> {
    vec![
        stage("s3rec", "S3-Rec", ModelKind::S3rec),
        stage("grec", "GREC", ModelKind::Grec),
        stage("gru4rec", "GRU4Rec", ModelKind::Gru4rec),
        stage("bert4rec", "BERT4Rec", ModelKind::Bert4rec),
        stage("hgn", "HGN", ModelKind::Hgn),
        stage("sasrec", "SASRec", ModelKind::Sasrec),
    ]
}

fn ssi_name(student: ModelKind) -> String {
    format!("ssi-{}", student.name().to_ascii_lowercase())
}

/// SSI with `student`, imitating all three teachers.
pub(super) fn ssi_student(student: ModelKind, teach: &[Stage]) -> Stage {
    let all: Vec<&Stage> = teach.iter().collect();
    ssi(
        &ssi_name(student),
        &student_label(student),
        student,
        &all,
        ImitationConfig::new(),
    )
}

/// Table 3's two trained variants (without both terms is the HGN run).
pub(super) fn imitation_variants(teach: &[Stage]) -> Vec<Stage> {
    let all: Vec<&Stage> = teach.iter().collect();
    [
        (
            "ssi-hgn-no-representation",
            PAPER_TABLE3[1].0,
            ImitationConfig::new().with_representation(false),
        ),
        (
            "ssi-hgn-no-prediction",
            PAPER_TABLE3[2].0,
            ImitationConfig::new().with_prediction(false),
        ),
    ]
    .into_iter()
    .map(|(dir, label, imitation)| ssi(dir, label, ModelKind::Hgn, &all, imitation))
    .collect()
}

/// Figure 3: SSI-HGN with one teacher at a time.
pub(super) fn single_teacher_students(teach: &[Stage]) -> Vec<Stage> {
    teach
        .iter()
        .map(|t| {
            let task = t.name.trim_start_matches("teacher-");
            ssi(
                &format!("ssi-hgn-only-{task}"),
                &format!("SSI ({task} only)"),
                ModelKind::Hgn,
                &[t],
                ImitationConfig::new(),
            )
        })
        .collect()
}

/// Figure 4 at `l` layers: the teachers' model alone (the paper's BERT4Rec), its three teachers
/// and SSI-HGN imitating them. At the configured depth (`base`) these are Table 2's own runs,
/// reused rather than trained twice.
pub(super) fn layer_stages(
    teacher: ModelKind,
    l: usize,
    base: Option<usize>,
) -> (Stage, Vec<Stage>, Stage) {
    if base == Some(l) {
        let teach = teachers(teacher, "", None);
        let student = ssi_student(ModelKind::Hgn, &teach);
        let alone = baseline_stages()
            .into_iter()
            .find(|s| s.kind == teacher)
            .expect("the teachers' model is a baseline");
        return (alone, teach, student);
    }
    let mut b = stage(
        &format!("l{l}-{}", teacher.id()),
        &format!("{} ({l} layers)", teacher.name()),
        teacher,
    );
    b.settings.push(Setting::strict("layers", l));
    let tl = teachers(teacher, &format!("l{l}-"), Some(l));
    let refs: Vec<&Stage> = tl.iter().collect();
    let s = ssi(
        &format!("l{l}-ssi-hgn"),
        &format!("SSI ({l} layers)"),
        ModelKind::Hgn,
        &refs,
        ImitationConfig::new(),
    );
    (b, tl, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_config_is_an_error() {
        let err = base_settings("/nonexistent.json").unwrap_err().to_string();
        assert!(err.contains("neither a preset (small, paper)"), "{err}");
        assert_eq!(base_settings("small").unwrap().len(), 6);
    }

    fn shop() -> Dataset {
        let cfg = ssi_data::synth::SynthConfig {
            users: 50,
            ..Default::default()
        };
        ssi_data::synth::generate(&cfg).unwrap()
    }

    fn request(students: &[ModelKind], warm_start: bool) -> Request {
        Request {
            settings: base_settings("small").unwrap(),
            ablations: Vec::new(),
            baselines: vec![ModelKind::Hgn],
            students: students.to_vec(),
            imitation: ImitationOptions::FAITHFUL,
            warm_start,
            teachers_from_scratch: false,
            teacher_model: ModelKind::Bert4rec,
            paper_dataset: "shop".into(),
        }
    }

    /// The settings a stage trains with.
    fn applied(plan: &Plan, s: &Stage) -> (ModelConfig, TrainConfig) {
        let ds = shop();
        let base = ModelConfig::new(s.kind, ds.n_items as usize, ds.n_users());
        apply_settings(
            &base,
            &TrainConfig::defaults_for(&base),
            &plan.settings_of(s),
        )
        .unwrap()
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.stages().iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn every_stage_comes_after_the_stages_it_needs() {
        let ds = shop();
        let plan = Plan::new(request(&[ModelKind::Hgn], true), &ds).unwrap();
        assert_eq!(
            names(&plan),
            [
                "hgn",
                "bert4rec",
                "teacher-temporal",
                "teacher-persona",
                "teacher-global",
                "ssi-hgn",
                "hgn-continued"
            ]
        );
        for (i, s) in plan.stages().iter().enumerate() {
            for d in s.deps() {
                assert!(
                    names(&plan)[..i].contains(&d.as_str()),
                    "{} needs {d}",
                    s.name
                );
            }
        }
        let ssi = plan.stage("ssi-hgn").unwrap();
        assert_eq!(ssi.init.as_deref(), Some("hgn"));
        assert_eq!(ssi.deps().len(), 4);
        assert!(matches!(
            plan.stage("nothing"),
            Err(ReproduceError::UnknownStage(_))
        ));
    }

    #[test]
    fn sasrec_teachers_continue_the_sasrec_run() {
        let mut r = request(&[ModelKind::Hgn, ModelKind::Sasrec], true);
        r.teacher_model = ModelKind::Sasrec;
        let plan = Plan::new(r, &shop()).unwrap();
        let n = names(&plan);
        // SASRec alone is trained first (the teachers' and SSI-SASRec's start); no BERT4Rec.
        assert!(!n.contains(&"bert4rec"), "{n:?}");
        let at = |name: &str| n.iter().position(|x| *x == name).unwrap();
        for t in plan.table2_teachers() {
            assert_eq!(t.kind, ModelKind::Sasrec);
            assert_eq!(t.init.as_deref(), Some("sasrec"));
            assert!(t.label.starts_with("Teacher (sasrec-"), "{}", t.label);
            assert!(at("sasrec") < at(&t.name) && at(&t.name) < at("ssi-hgn"));
        }
        let ssi = plan.stage("ssi-sasrec").unwrap();
        assert_eq!(ssi.init.as_deref(), Some("sasrec"));
        assert_eq!(
            plan.stage("sasrec-continued").unwrap().init.as_deref(),
            Some("sasrec")
        );
        // A model without a consistency task cannot teach.
        let mut r = request(&[ModelKind::Hgn], false);
        r.teacher_model = ModelKind::Gru4rec;
        assert!(Plan::new(r, &shop()).is_err());
    }

    /// `teachers_from_scratch`: a warm start whose teachers start from nothing, each with its
    /// own seed, while the students still continue their runs alone; the teachers' model alone
    /// is then not trained for them.
    #[test]
    fn teachers_from_scratch_have_their_own_seeds() {
        let mut r = request(&[ModelKind::Hgn], true);
        r.teachers_from_scratch = true;
        r.settings.push(Setting::parse("seed=7").unwrap());
        let plan = Plan::new(r, &shop()).unwrap();
        let mut seeds = Vec::new();
        for t in plan.table2_teachers() {
            let staged = plan.stage(&t.name).unwrap();
            assert_eq!(staged.init, None, "{}", t.name);
            seeds.push(applied(&plan, staged).1.seed);
        }
        assert_eq!(seeds, [8, 9, 10]);
        // A seed scoped to the teachers' model does not make them one seed.
        let mut r = request(&[ModelKind::Hgn], true);
        r.teachers_from_scratch = true;
        r.settings.push(Setting::parse("bert4rec.seed=5").unwrap());
        let plan = Plan::new(r, &shop()).unwrap();
        let seeds: Vec<u64> = plan
            .table2_teachers()
            .iter()
            .map(|t| applied(&plan, plan.stage(&t.name).unwrap()).1.seed)
            .collect();
        assert_eq!(seeds, [43, 44, 45]);
        assert_eq!(plan.stage("ssi-hgn").unwrap().init.as_deref(), Some("hgn"));
        assert!(!names(&plan).contains(&"bert4rec"), "{:?}", names(&plan));
    }

    #[test]
    fn no_students_no_teachers() {
        let plan = Plan::new(request(&[], false), &shop()).unwrap();
        assert_eq!(names(&plan), ["hgn"]);
    }

    #[test]
    fn plans_are_refused_before_anything_runs() {
        let ds = shop();
        let mut bad = request(&[ModelKind::Hgn], false);
        bad.settings.push(Setting::strict("hidden", 0));
        let err = Plan::new(bad, &ds).unwrap_err();
        assert!(err.to_string().starts_with("stage "), "{err}");
        let mut one = request(&[ModelKind::Hgn], false);
        one.settings
            .push(Setting::parse("hgn.eval_seed=7").unwrap());
        let err = Plan::new(one, &ds).unwrap_err().to_string();
        assert!(
            err.contains("hgn.eval_seed") && err.contains("one sample"),
            "{err}"
        );
        // Which teacher a stage is comes from the pipeline, never from a setting of all stages.
        for key in ["consistency", "sasrec.consistency"] {
            let mut teach = request(&[ModelKind::Hgn], false);
            teach.settings.push(Setting::strict(key, "global"));
            let err = Plan::new(teach, &ds).unwrap_err();
            assert!(matches!(err, ReproduceError::PipelineSetting(_)), "{err}");
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    /// Figure 4's depths beat a depth set for the teachers' model (`bert4rec.layers`), which
    /// sets Table 2's depth only; one set for another model leaves Table 2 at its own.
    #[test]
    fn figure4_depths_beat_a_scoped_depth() {
        let layers = |plan: &Plan, name: &str| {
            applied(plan, plan.stage(name).unwrap()).0.to_json()["layers"].as_u64()
        };
        let mut a = request(&[], false);
        a.ablations.push(Ablation::Layers);
        a.settings
            .push(Setting::parse("bert4rec.layers=3").unwrap());
        let plan = Plan::new(a, &shop()).unwrap();
        for l in [1, 2, 4, 8] {
            assert_eq!(layers(&plan, &format!("l{l}-teacher-global")), Some(l));
        }
        let mut a = request(&[], false);
        a.ablations.push(Ablation::Layers);
        a.teacher_model = ModelKind::Sasrec;
        a.settings
            .push(Setting::parse("bert4rec.layers=4").unwrap());
        let plan = Plan::new(a, &shop()).unwrap();
        // The preset's 2 layers, not BERT4Rec's 4: the 4-layer column is a run of its own.
        assert_eq!(plan.base_layers(), Some(2));
        assert_eq!(layers(&plan, "l4-sasrec"), Some(4));
    }

    #[test]
    fn figure4_reuses_table2_runs_at_the_configured_depth() {
        let mut a = request(&[], false);
        a.ablations.push(Ablation::Layers);
        let plan = Plan::new(a, &shop()).unwrap();
        let n = names(&plan);
        assert!(n.contains(&"l1-ssi-hgn") && n.contains(&"l8-teacher-global"));
        assert!(!n.iter().any(|s| s.starts_with("l2-")), "{n:?}");
        assert_eq!(n.iter().filter(|s| **s == "ssi-hgn").count(), 1);
    }

    #[test]
    fn warm_ablations_start_from_the_runs_alone() {
        let mut a = request(&[ModelKind::Sasrec], true);
        a.teacher_model = ModelKind::Sasrec;
        a.baselines.clear();
        a.ablations = vec![Ablation::Imitation, Ablation::Teachers, Ablation::Layers];
        let plan = Plan::new(a, &shop()).unwrap();
        let n = names(&plan);
        // HGN alone is trained (the ablations' students start from it), and continued alone.
        assert!(n.contains(&"hgn") && n.contains(&"hgn-continued"), "{n:?}");
        for s in plan.stages().iter().filter(|s| s.distill.is_some()) {
            let want = if s.kind == ModelKind::Sasrec {
                "sasrec"
            } else {
                "hgn"
            };
            assert_eq!(s.init.as_deref(), Some(want), "{}", s.name);
        }
        for (name, init) in [
            ("teacher-global", "sasrec"),
            ("l4-teacher-persona", "l4-sasrec"),
            ("l1-teacher-temporal", "l1-sasrec"),
        ] {
            assert_eq!(plan.stage(name).unwrap().init.as_deref(), Some(init));
        }
        // Figure 4's models alone at each depth start fresh.
        assert_eq!(plan.stage("l4-sasrec").unwrap().init, None);
        for (i, s) in plan.stages().iter().enumerate() {
            for d in s.deps() {
                assert!(n[..i].contains(&d.as_str()), "{} needs {d}", s.name);
            }
        }
    }
}
