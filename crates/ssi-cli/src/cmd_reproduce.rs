//! `ssi reproduce`: the paper's whole pipeline on one dataset and one evaluation sample —
//! baselines, the three consistency teachers, SSI with each student — written as the paper's
//! Table 2 with the paper's values beside ours, plus the ablations (Table 3, Figures 3 and 4).
//!
//! Every model is a run folder under `--out`; a finished one (its `test.json` exists) is read
//! back instead of retrained and an unfinished one is resumed, so rerunning the same command
//! after an interruption continues where it stopped.

use crate::cmd_train::run_job;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;
use ssi_data::Dataset;
use ssi_models::ModelKind;
use ssi_models::imitation::{ImitationConfig, ImitationPoints};
use ssi_train::RunDir;
use ssi_train::{Job, Setting, load_settings_file};
use std::path::{Path, PathBuf};

const PAPER_TABLE2: &str = include_str!("paper_table2.csv");
const SMALL: &str = include_str!("../../../configs/small.json");
const PAPER: &str = include_str!("../../../configs/paper.json");
/// Columns of the paper's Table 2.
const METRICS: [&str; 8] = [
    "recall@5",
    "ndcg@5",
    "recall@10",
    "ndcg@10",
    "recall@15",
    "ndcg@15",
    "recall@20",
    "ndcg@20",
];
/// The paper's Table 3 (Beauty): Recall@10, NDCG@10.
const PAPER_TABLE3: [(&str, f64, f64); 4] = [
    ("SSI", 0.487, 0.329),
    ("w/o item representation imitation", 0.483, 0.325),
    ("w/o prediction distribution imitation", 0.478, 0.321),
    ("w/o both", 0.470, 0.317),
];

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ablation {
    /// Table 3: without item-representation imitation, without prediction imitation, without both.
    Imitation,
    /// Figure 3: one teacher at a time.
    Teachers,
    /// Figure 4: BERT4Rec and SSI with 1, 2, 4 and 8 self-attention layers.
    Layers,
}

#[derive(Args)]
pub struct ReproduceArgs {
    /// S3-Rec format file (e.g. ../shared/data/beauty.txt); omit for the embedded synthetic shop.
    #[arg(long)]
    data: Option<PathBuf>,
    /// small (hidden 64, 2 layers, 2 heads), paper (256, 8, 4), or a JSON settings file.
    #[arg(long, default_value = "small")]
    config: String,
    /// A setting for every run, e.g. --set time_budget_minutes=20 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Output folder: one run folder per model, tables and plots (default runs/reproduce-NAME).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Ablations to run besides Table 2 (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    ablation: Vec<Ablation>,
    /// Baselines of Table 2 to train, comma-separated; `--baselines` with no value trains none.
    /// Finished runs of the others in --out are read back into the table all the same.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_value = "s3rec,grec,gru4rec,bert4rec,hgn,sasrec"
    )]
    baselines: Vec<ModelKind>,
    /// Students of SSI, comma-separated (hgn is the paper's SSI, gru4rec its SSI_GRU4Rec);
    /// `--students` with no value trains none, nor the teachers unless an ablation needs them.
    /// Finished runs of the others in --out are read back into the table.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_value = "hgn,gru4rec,sasrec"
    )]
    students: Vec<ModelKind>,
    /// Dataset name in the paper's table (default: the file's name, e.g. beauty).
    #[arg(long)]
    paper_dataset: Option<String>,
    /// cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Train this many stages at once, each in its own `ssi` process (a stage starts once the
    /// teachers it imitates have finished). Each process uses about one core, so 2 on a
    /// 2-core machine; wall-clock budgets (`time_budget_minutes`) then buy fewer epochs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// Where every SSI student imitates its teachers, as `ssi distill --imitation-points`:
    /// target (the faithful reading, default), next or both.
    #[arg(long, default_value = "target")]
    imitation_points: ImitationPoints,
    /// Teachers of every SSI student read the whole training history, as
    /// `ssi distill --teacher-full-history` (off by default: they read the student's input).
    #[arg(long)]
    teacher_full_history: bool,
    /// Softmax temperature of eq. 5 for every SSI student, as `ssi distill --temperature`
    /// (1, the paper's, by default).
    #[arg(long, default_value_t = 1.0, value_parser = crate::cmd_train::parse_temperature)]
    temperature: f64,
    /// Beyond the paper: each teacher starts from the BERT4Rec run and continues with its
    /// consistency task, each SSI student starts from its own run alone, and that run is also
    /// continued alone from the same weights (`STUDENT-continued`), the same-run reference the
    /// SSI student is compared with (`ssi train --init`; docs/ssi.md).
    #[arg(long)]
    warm_start: bool,
    /// Train only the named stage (run folder name) of this invocation: what --jobs runs.
    #[arg(long, hide = true)]
    stage: Option<String>,
    /// Print Table 2 when done (the quickstart prints its own summary instead).
    #[arg(skip = true)]
    print_table: bool,
}

impl ReproduceArgs {
    /// The pipeline of `ssi quickstart`: the three teachers, `student` alone and as an SSI
    /// student (imitating the teachers' forecast of the next item from the whole history, our
    /// best configuration), with `settings` for every run.
    pub fn quickstart(
        data: Option<PathBuf>,
        out: PathBuf,
        settings: Vec<String>,
        student: ModelKind,
        jobs: u64,
        stage: Option<String>,
    ) -> Self {
        ReproduceArgs {
            data,
            config: "small".into(),
            set: settings,
            out: Some(out),
            ablation: Vec::new(),
            baselines: vec![ModelKind::Bert4rec, student],
            students: vec![student],
            paper_dataset: None,
            device: "cpu".into(),
            jobs,
            imitation_points: ImitationPoints::Next,
            teacher_full_history: true,
            // Softer than T = 2: on Beauty T = 4 keeps the sampled gain without T = 2's
            // full-ranking cost (docs/results/ssi-beauty-warm.md).
            temperature: 4.0,
            warm_start: true,
            stage,
            print_table: false,
        }
    }
}

/// The run folders of `student` trained alone, continued alone (`--warm-start`) and as an SSI
/// student, in a reproduce folder.
pub fn student_runs(student: ModelKind) -> (String, String, String) {
    (
        alone_name(student),
        continued_stage(student).name,
        ssi_student(student, &teachers("", None)).name,
    )
}

fn alone_name(student: ModelKind) -> String {
    baseline_stages()
        .into_iter()
        .find(|s| s.kind == student)
        .map(|s| s.name)
        .unwrap_or_else(|| student.name().to_ascii_lowercase())
}

/// `--warm-start`: `student` alone, continued from its run as long as its SSI student trains.
fn continued_stage(student: ModelKind) -> Stage {
    let alone = alone_name(student);
    let mut s = stage(
        &format!("{alone}-continued"),
        &format!("{} (continued)", student.name()),
        student,
    );
    s.init = Some(alone);
    s
}

/// `--warm-start` on a stage of Table 2: teachers start from the BERT4Rec run, SSI students from
/// their own run alone.
fn warm_start(mut s: Stage) -> Stage {
    if s.distill.is_some() {
        s.init = Some(alone_name(s.kind));
    } else if s.name.starts_with("teacher-") {
        s.init = Some(alone_name(ModelKind::Bert4rec));
    }
    s
}

/// One model of the pipeline.
struct Stage {
    /// Run folder name, and the row's name.
    name: String,
    label: String,
    kind: ModelKind,
    settings: Vec<Setting>,
    distill: Option<(Vec<String>, ImitationConfig)>,
    /// The stage whose best weights this one starts from (`--warm-start`).
    init: Option<String>,
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

/// The finished result of a stage: test metrics and training minutes.
struct Row {
    label: String,
    metrics: Value,
    minutes: Option<f64>,
}

fn base_settings(config: &str) -> Result<Vec<Setting>> {
    let text = match config {
        "small" => SMALL.to_string(),
        "paper" => PAPER.to_string(),
        path => return Ok(load_settings_file(Path::new(path))?),
    };
    let v: serde_json::Map<String, Value> = serde_json::from_str(&text)?;
    Ok(v.into_iter()
        .map(|(key, value)| Setting {
            key,
            value,
            strict: false,
        })
        .collect())
}

fn teachers(prefix: &str, layers: Option<usize>) -> Vec<Stage> {
    ssi_models::consistency::ConsistencyTask::ALL
        .iter()
        .map(|t| {
            let mut s = stage(
                &format!("{prefix}teacher-{}", t.name()),
                &format!("Teacher ({})", t.name()),
                ModelKind::Bert4rec,
            );
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
fn baseline_stages() -> Vec<Stage> {
    vec![
        stage("s3rec", "S3-Rec", ModelKind::S3rec),
        stage("grec", "GREC", ModelKind::Grec),
        stage("gru4rec", "GRU4Rec", ModelKind::Gru4rec),
        stage("bert4rec", "BERT4Rec", ModelKind::Bert4rec),
        stage("hgn", "HGN", ModelKind::Hgn),
        stage("sasrec", "SASRec", ModelKind::Sasrec),
    ]
}

/// SSI with `student`, imitating all three teachers.
fn ssi_student(student: ModelKind, teach: &[Stage]) -> Stage {
    let all: Vec<&Stage> = teach.iter().collect();
    ssi(
        &format!("ssi-{}", student.name().to_ascii_lowercase()),
        &student_label(student),
        student,
        &all,
        ImitationConfig::new(),
    )
}

/// Table 3's two trained variants (without both terms is the HGN run).
fn imitation_variants(teach: &[Stage]) -> Vec<Stage> {
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
fn single_teacher_students(teach: &[Stage]) -> Vec<Stage> {
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

/// Figure 4's layer counts.
const LAYERS: [usize; 4] = [1, 2, 4, 8];

/// The number of layers every run gets from the config and `--set` (`layers` or
/// `bert4rec.layers`, the last one given), if any.
fn configured_layers(common: &[Setting]) -> Option<usize> {
    common
        .iter()
        .rev()
        .find(|s| s.key == "layers" || s.key == "bert4rec.layers")
        .and_then(|s| s.value.as_u64())
        .map(|l| l as usize)
}

/// Figure 4 at `l` layers: BERT4Rec, its three teachers and SSI-HGN imitating them. At the
/// configured depth (`base`) these are Table 2's own runs, reused rather than trained twice.
fn layer_stages(l: usize, base: Option<usize>) -> (Stage, Vec<Stage>, Stage) {
    if base == Some(l) {
        let teach = teachers("", None);
        let student = ssi_student(ModelKind::Hgn, &teach);
        let bert = baseline_stages()
            .into_iter()
            .find(|s| s.kind == ModelKind::Bert4rec)
            .expect("BERT4Rec is a baseline");
        return (bert, teach, student);
    }
    let mut b = stage(
        &format!("l{l}-bert4rec"),
        &format!("BERT4Rec ({l} layers)"),
        ModelKind::Bert4rec,
    );
    b.settings.push(Setting::strict("layers", l));
    let tl = teachers(&format!("l{l}-"), Some(l));
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

/// Teachers are trained when something distils from them; the layers ablation has its own.
fn needs_teachers(a: &ReproduceArgs) -> bool {
    !a.students.is_empty()
        || a.ablation
            .iter()
            .any(|x| matches!(x, Ablation::Imitation | Ablation::Teachers))
}

/// The baselines this invocation trains: `--baselines`, and with `--warm-start` also the runs
/// the warm starts start from (BERT4Rec for the teachers, each student alone).
fn trained_baselines(a: &ReproduceArgs) -> Vec<ModelKind> {
    let mut kinds = a.baselines.clone();
    if a.warm_start {
        for k in std::iter::once(ModelKind::Bert4rec).chain(a.students.iter().copied()) {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    kinds
}

/// Every stage this invocation trains, in the order a single process trains them.
fn plan(a: &ReproduceArgs, base_layers: Option<usize>) -> Vec<Stage> {
    let mut all = baseline_stages();
    let mut out: Vec<Stage> = Vec::new();
    for k in trained_baselines(a) {
        if let Some(i) = all.iter().position(|s| s.kind == k) {
            out.push(all.remove(i));
        }
    }
    let teach = teachers("", None);
    for &k in &a.students {
        out.push(ssi_student(k, &teach));
    }
    if a.warm_start {
        // The same-run references of the students.
        out.extend(a.students.iter().map(|&k| continued_stage(k)));
    }
    if a.ablation.contains(&Ablation::Imitation) {
        out.extend(imitation_variants(&teach));
    }
    if a.ablation.contains(&Ablation::Teachers) {
        out.extend(single_teacher_students(&teach));
    }
    if needs_teachers(a) {
        // Before the students, so that a single process meets them in dependency order.
        let at = out
            .iter()
            .position(|s| s.distill.is_some())
            .unwrap_or(out.len());
        out.splice(at..at, teach);
    }
    if a.ablation.contains(&Ablation::Layers) {
        for l in LAYERS {
            let (b, tl, s) = layer_stages(l, base_layers);
            out.push(b);
            out.extend(tl);
            out.push(s);
        }
    }
    // A stage reached twice (Figure 4 at the configured depth) is trained once, where first met.
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(s.name.clone()));
    if a.warm_start {
        out = out.into_iter().map(warm_start).collect();
    }
    out
}

pub fn reproduce(a: ReproduceArgs) -> Result<()> {
    let ds = crate::source::load(a.data.as_deref(), false)?;
    let name = a
        .paper_dataset
        .clone()
        .unwrap_or_else(|| ds.name.to_ascii_lowercase());
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/reproduce-{name}")));
    if a.warm_start && !a.ablation.is_empty() {
        bail!("--warm-start applies to Table 2 only: run the ablations without it");
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let runner = Runner::new(&a, &ds, &out)?;
    let base_layers = configured_layers(&runner.common);
    let stages = plan(&a, base_layers);
    // Every stage's settings are checked before anything is written or trained.
    for s in &stages {
        let mut settings = runner.common.clone();
        settings.extend(s.settings.iter().cloned());
        let base = ssi_models::ModelConfig::new(s.kind, ds.n_items as usize, ds.n_users());
        ssi_train::apply_settings(&base, &ssi_train::TrainConfig::new(), &settings)
            .with_context(|| format!("stage {}", s.name))?;
    }
    if let Some(only) = &a.stage {
        // A worker of --jobs: this one stage, no tables.
        let s = stages
            .iter()
            .find(|s| &s.name == only)
            .with_context(|| format!("--stage {only}: not a stage of this invocation"))?;
        runner.run(s)?;
        return Ok(());
    }
    if a.jobs > 1 {
        let tasks: Vec<crate::jobs::Task> = stages
            .iter()
            .map(|s| crate::jobs::Task {
                name: s.name.clone(),
                deps: s
                    .distill
                    .iter()
                    .flat_map(|d| d.0.clone())
                    .chain(s.init.clone())
                    .collect(),
            })
            .collect();
        crate::jobs::run_parallel(&out, &tasks, a.jobs as usize)?;
    }
    let mut teach = teachers("", None);
    if a.warm_start {
        teach = teach.into_iter().map(warm_start).collect();
    }
    let rows = table2(&a, &runner, &name, &teach)?;
    let find = |label: &str| rows.iter().find(|r| r.label == label);
    if a.ablation.contains(&Ablation::Imitation) {
        table3(&runner, &teach, find("SSI"), find("HGN"))?;
    }
    if a.ablation.contains(&Ablation::Teachers) {
        figure3(&runner, &name, &teach, find("SSI"), find("HGN"))?;
    }
    if a.ablation.contains(&Ablation::Layers) {
        figure4(&runner, &name, base_layers)?;
    }
    if a.print_table {
        outln!("results in {}", out.display());
    }
    Ok(())
}

/// Table 2: every stage is finished (read back) or trained here in order; written beside the
/// paper's rows.
fn table2(a: &ReproduceArgs, runner: &Runner, name: &str, teach: &[Stage]) -> Result<Vec<Row>> {
    let mut rows = vec![runner.mostpop()?];
    let baselines = baseline_stages();
    for k in trained_baselines(a) {
        if let Some(s) = baselines.iter().find(|s| s.kind == k) {
            runner.run(s)?;
        }
    }
    for s in &baselines {
        rows.extend(runner.run_or_read(s, false)?);
    }
    for t in teach {
        rows.extend(runner.run_or_read(t, needs_teachers(a))?);
    }
    let mut students = a.students.clone();
    for k in [ModelKind::Hgn, ModelKind::Gru4rec, ModelKind::Sasrec] {
        if !students.contains(&k) {
            students.push(k);
        }
    }
    for student in students {
        let mut s = ssi_student(student, teach);
        if a.warm_start {
            s = warm_start(s);
            let c = continued_stage(student);
            rows.extend(runner.run_or_read(&c, a.students.contains(&student))?);
        }
        rows.extend(runner.run_or_read(&s, a.students.contains(&student))?);
    }
    let paper = paper_rows(name);
    write_table2(
        &runner.out,
        name,
        &rows,
        &paper,
        &runner.imitation_note(),
        a.print_table,
    )?;
    Ok(rows)
}

/// Table 3: SSI without each imitation term. Without both the objective is the student's own
/// loss: the HGN run.
fn table3(runner: &Runner, teach: &[Stage], ssi: Option<&Row>, hgn: Option<&Row>) -> Result<()> {
    let mut t3 = vec![ssi.map(|r| (PAPER_TABLE3[0].0.to_string(), r.metrics.clone()))];
    for s in imitation_variants(teach) {
        let r = runner.run(&s)?;
        t3.push(Some((s.label.clone(), r.metrics)));
    }
    t3.push(hgn.map(|r| (PAPER_TABLE3[3].0.to_string(), r.metrics.clone())));
    write_table3(&runner.out, &t3.into_iter().flatten().collect::<Vec<_>>())
}

/// Figure 3: HGN, SSI-HGN with each teacher alone, and with all three.
fn figure3(
    runner: &Runner,
    name: &str,
    teach: &[Stage],
    ssi: Option<&Row>,
    hgn: Option<&Row>,
) -> Result<()> {
    let mut bars = vec![("HGN".to_string(), ndcg10(hgn))];
    for (t, s) in teach.iter().zip(single_teacher_students(teach)) {
        let r = runner.run(&s)?;
        let task = t.name.trim_start_matches("teacher-");
        bars.push((format!("+{task}"), r.metrics["ndcg@10"].as_f64()));
    }
    bars.push(("SSI (all three)".into(), ndcg10(ssi)));
    let cats: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let vals: Vec<f64> = bars.iter().map(|b| b.1.unwrap_or(0.0)).collect();
    write_figure(
        &runner.out,
        "figure3",
        &format!("Figure 3 ({name}): NDCG@10 by teacher"),
        &cats,
        &[("NDCG@10".into(), vals)],
    )
}

/// Figure 4: BERT4Rec and SSI-HGN with teachers of 1, 2, 4 and 8 layers.
fn figure4(runner: &Runner, name: &str, base_layers: Option<usize>) -> Result<()> {
    let (mut bert, mut ssi_v) = (Vec::new(), Vec::new());
    for l in LAYERS {
        let (b, tl, s) = layer_stages(l, base_layers);
        bert.push(ndcg10(Some(&runner.run(&b)?)).unwrap_or(0.0));
        for t in &tl {
            runner.run(t)?;
        }
        ssi_v.push(ndcg10(Some(&runner.run(&s)?)).unwrap_or(0.0));
    }
    let cats: Vec<String> = LAYERS.iter().map(|l| format!("{l} layers")).collect();
    write_figure(
        &runner.out,
        "figure4",
        &format!("Figure 4 ({name}): NDCG@10 by teacher depth"),
        &cats,
        &[("BERT4Rec".into(), bert), ("SSI".into(), ssi_v)],
    )
}

fn ndcg10(r: Option<&Row>) -> Option<f64> {
    r.and_then(|r| r.metrics["ndcg@10"].as_f64())
}

struct Runner<'a> {
    ds: &'a Dataset,
    data: Option<PathBuf>,
    out: PathBuf,
    common: Vec<Setting>,
    device: burn::tensor::Device,
    /// `--imitation-points`, `--teacher-full-history` and `--temperature`, for every
    /// distillation stage.
    imitation: ImitationOptions,
}

/// The imitation options `ssi reproduce` applies to every SSI student.
#[derive(Clone, Copy, PartialEq, Debug)]
struct ImitationOptions {
    points: ImitationPoints,
    full_history: bool,
    temperature: f64,
}

impl ImitationOptions {
    fn of(c: &ImitationConfig) -> Self {
        Self {
            points: c.imitation_points(),
            full_history: c.teacher_full_history,
            temperature: c.temperature,
        }
    }

    /// The paper's reading: target points, the student's input, temperature 1.
    fn is_faithful(&self) -> bool {
        self.points == ImitationPoints::Target && !self.full_history && self.temperature == 1.0
    }

    /// The command-line options that give these settings.
    fn flags(&self) -> String {
        let mut f = format!("--imitation-points {}", self.points.name());
        if self.full_history {
            f.push_str(" --teacher-full-history");
        }
        if self.temperature != 1.0 {
            f.push_str(&format!(" --temperature {}", self.temperature));
        }
        f
    }
}

impl<'a> Runner<'a> {
    /// The runner of an invocation: the settings of `--config` and `--set` for every stage.
    fn new(a: &ReproduceArgs, ds: &'a Dataset, out: &Path) -> Result<Self> {
        let mut common = base_settings(&a.config)?;
        for s in &a.set {
            common.push(Setting::parse(s)?);
        }
        Ok(Runner {
            ds,
            data: a.data.clone(),
            out: out.to_path_buf(),
            common,
            device: crate::source::device(&a.device)?,
            imitation: ImitationOptions {
                points: a.imitation_points,
                full_history: a.teacher_full_history,
                temperature: a.temperature,
            },
        })
    }

    fn mostpop(&self) -> Result<Row> {
        let rec = ssi_data::MostPop::fit(self.ds);
        let report = crate::cmd_eval::evaluate(
            self.ds,
            &rec,
            &crate::cmd_eval::ProtocolArgs::default_test(self.seed()),
            true,
        )?;
        let path = self.out.join("mostpop.json");
        ssi_data::dataset::write_atomic(
            &path,
            serde_json::to_string_pretty(&report.to_json())?.as_bytes(),
        )?;
        Ok(Row {
            label: "MostPop".into(),
            metrics: report.to_json(),
            minutes: None,
        })
    }

    fn seed(&self) -> u64 {
        self.common
            .iter()
            .rev()
            .find(|s| s.key == "seed")
            .and_then(|s| s.value.as_u64())
            .unwrap_or(42)
    }

    /// Trains (or resumes) the stage when `train`, else reads it back only if it has finished.
    fn run_or_read(&self, s: &Stage, train: bool) -> Result<Option<Row>> {
        if train || self.out.join(&s.name).join("test.json").exists() {
            self.run(s).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A sentence for the tables when the imitation options differ from the paper's reading.
    fn imitation_note(&self) -> String {
        if self.imitation.is_faithful() {
            return String::new();
        }
        format!(
            " SSI students imitate with {} (not the faithful default).",
            self.imitation.flags()
        )
    }

    /// A stage's imitation settings with this invocation's imitation options applied.
    fn imitation(&self, base: &ImitationConfig) -> ImitationConfig {
        base.clone()
            .with_points(Some(self.imitation.points))
            .with_teacher_full_history(self.imitation.full_history)
            .with_temperature(self.imitation.temperature)
    }

    /// Refuses to read back (or resume) a distillation run trained with other imitation
    /// options: its row would be labelled with settings it was not trained with.
    fn check_imitation(&self, dir: &Path) -> Result<()> {
        let run = RunDir::new(dir);
        if !run.has_run() {
            return Ok(());
        }
        let Some(spec) = run.config()?.distill else {
            return Ok(());
        };
        let trained = ImitationOptions::of(&spec.imitation);
        if trained != self.imitation {
            anyhow::bail!(
                "{} was trained with {}, but this invocation asks for {}: \
                 use another --out, or the same options",
                dir.display(),
                trained.flags(),
                self.imitation.flags()
            );
        }
        Ok(())
    }

    fn run(&self, s: &Stage) -> Result<Row> {
        let dir = self.out.join(&s.name);
        let test = dir.join("test.json");
        let run = RunDir::new(&dir);
        if run.has_run() {
            // A finished run is read back only if it was trained on this dataset.
            run.config()?.dataset.check_same(
                &ssi_train::checkpoint::DatasetInfo::of(self.ds, self.data.as_deref()),
                &dir.display().to_string(),
            )?;
        }
        if s.distill.is_some() {
            self.check_imitation(&dir)?;
        }
        if run.has_run() && run.config()?.init_from.is_some() != s.init.is_some() {
            let (was, asked) = if s.init.is_some() {
                ("from scratch", "a warm start (--warm-start)")
            } else {
                ("from another run (--warm-start)", "a run from scratch")
            };
            bail!(
                "{} was trained {was}, and this command asks for {asked}: use another --out",
                dir.display()
            );
        }
        if !test.exists() {
            outln!("== {} ({})", s.label, dir.display());
            let mut settings = self.common.clone();
            settings.extend(s.settings.iter().cloned());
            let job = Job {
                kind: s.kind,
                settings,
                data_path: self.data.clone(),
                device: self.device.clone(),
                out: dir.clone(),
                resume: RunDir::new(&dir).has_run(),
                init: s.init.as_ref().map(|i| self.out.join(i)),
                distill: s.distill.as_ref().map(|(t, imitation)| {
                    (
                        t.iter().map(|t| self.out.join(t)).collect(),
                        self.imitation(imitation),
                    )
                }),
                command: std::env::args().collect(),
            };
            let (_, report) = run_job(self.ds, &job, false)?;
            outln!(
                "   test NDCG@10 {:.4}",
                report.sampled.ndcg_at(10).unwrap_or(f64::NAN)
            );
        }
        let text = std::fs::read_to_string(&test).with_context(|| format!("{}", test.display()))?;
        let metrics: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", test.display()))?;
        let minutes = RunDir::new(&dir)
            .state()
            .ok()
            .map(|st| st.train_seconds / 60.0);
        Ok(Row {
            label: s.label.clone(),
            metrics,
            minutes,
        })
    }
}

/// The paper's Table 2 NDCG@10 of a model (by its row name) on a dataset.
pub fn paper_ndcg10(dataset: &str, label: &str) -> Option<f64> {
    let i = METRICS.iter().position(|m| *m == "ndcg@10")?;
    paper_rows(dataset)
        .into_iter()
        .find(|(l, _)| l == label)
        .and_then(|(_, v)| v.get(i).copied())
}

/// The paper's Table 2 rows of one dataset: label → metric values.
fn paper_rows(dataset: &str) -> Vec<(String, Vec<f64>)> {
    PAPER_TABLE2
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() == 10 && f[0] == dataset).then(|| {
                let label = f[1];
                (
                    label.to_string(),
                    f[2..].iter().filter_map(|v| v.parse().ok()).collect(),
                )
            })
        })
        .collect()
}

fn write_table2(
    out: &Path,
    name: &str,
    rows: &[Row],
    paper: &[(String, Vec<f64>)],
    note: &str,
    print: bool,
) -> Result<()> {
    let mut md = format!(
        "# Table 2 on {name}: ours (paper, difference)\n\nSampled protocol (99 negatives), test split, one evaluation sample for every model. \
         Minutes: training wall-clock of the run. Rows without a paper value are not in the paper's table.{note}\n\n| model | {} | minutes |\n|---|{}---|\n",
        METRICS
            .map(|m| m.replace("recall", "Recall").replace("ndcg", "NDCG"))
            .join(" | "),
        "---|".repeat(METRICS.len())
    );
    let mut csv = String::from("dataset,model,metric,ours,paper,difference,minutes\n");
    let mut labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    // Models of the paper's table that this pipeline does not run yet.
    for (label, _) in paper {
        if !labels.contains(&label.as_str()) {
            labels.push(label);
        }
    }
    for label in labels {
        let row = rows.iter().find(|r| r.label == label);
        let p = paper.iter().find(|(l, _)| l == label).map(|(_, v)| v);
        let minutes = row
            .and_then(|r| r.minutes)
            .map(|m| format!("{m:.1}"))
            .unwrap_or_default();
        let mut cells = Vec::new();
        for (i, m) in METRICS.iter().enumerate() {
            let ours = row.and_then(|r| r.metrics[*m].as_f64());
            let theirs = p.and_then(|v| v.get(i).copied());
            cells.push(match (ours, theirs) {
                (Some(o), Some(t)) => format!("{o:.4} ({t:.3}, {:+.3})", o - t),
                (Some(o), None) => format!("{o:.4}"),
                (None, Some(t)) => format!("not run ({t:.3})"),
                (None, None) => "-".into(),
            });
            csv.push_str(&format!(
                "{name},{label},{m},{},{},{},{minutes}\n",
                ours.map(|v| format!("{v:.4}")).unwrap_or_default(),
                theirs.map(|v| format!("{v:.3}")).unwrap_or_default(),
                ours.zip(theirs)
                    .map(|(o, t)| format!("{:.4}", o - t))
                    .unwrap_or_default()
            ));
        }
        md.push_str(&format!(
            "| {label} | {} | {minutes} |\n",
            cells.join(" | ")
        ));
    }
    write(out, "table2.md", &md)?;
    write(out, "table2.csv", &csv)?;
    if print {
        out!("{md}");
    }
    Ok(())
}

fn write_table3(out: &Path, rows: &[(String, Value)]) -> Result<()> {
    let mut md = String::from(
        "# Table 3: effect of the imitation terms (ours; paper's Beauty values in brackets)\n\n| variant | Recall@10 | NDCG@10 |\n|---|---|---|\n",
    );
    let mut csv = String::from("variant,recall@10,ndcg@10,paper_recall@10,paper_ndcg@10\n");
    for (label, m) in rows {
        let p = PAPER_TABLE3.iter().find(|p| p.0 == label);
        let (r, n) = (
            m["recall@10"].as_f64().unwrap_or(f64::NAN),
            m["ndcg@10"].as_f64().unwrap_or(f64::NAN),
        );
        md.push_str(&format!(
            "| {label} | {r:.4}{} | {n:.4}{} |\n",
            p.map(|p| format!(" ({:.3})", p.1)).unwrap_or_default(),
            p.map(|p| format!(" ({:.3})", p.2)).unwrap_or_default()
        ));
        csv.push_str(&format!(
            "{label},{r:.4},{n:.4},{},{}\n",
            p.map(|p| p.1.to_string()).unwrap_or_default(),
            p.map(|p| p.2.to_string()).unwrap_or_default()
        ));
    }
    write(out, "table3.md", &md)?;
    write(out, "table3.csv", &csv)?;
    out!("{md}");
    Ok(())
}

fn write_figure(
    out: &Path,
    stem: &str,
    title: &str,
    cats: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<()> {
    let mut md = format!(
        "# {title}\n\n| | {} |\n|---|{}\n",
        cats.join(" | "),
        "---|".repeat(cats.len())
    );
    let mut csv = format!("series,{}\n", cats.join(","));
    for (name, vals) in series {
        let v: Vec<String> = vals.iter().map(|x| format!("{x:.4}")).collect();
        md.push_str(&format!("| {name} | {} |\n", v.join(" | ")));
        csv.push_str(&format!("{name},{}\n", v.join(",")));
    }
    md.push_str(&format!("\n![{title}]({stem}.svg)\n"));
    write(out, &format!("{stem}.md"), &md)?;
    write(out, &format!("{stem}.csv"), &csv)?;
    write(out, &format!("{stem}.svg"), &bar_chart(title, cats, series))?;
    out!("{md}");
    Ok(())
}

fn write(out: &Path, name: &str, text: &str) -> Result<()> {
    ssi_data::dataset::write_atomic(&out.join(name), text.as_bytes()).map_err(Into::into)
}

/// A grouped bar chart as SVG: one group per category, one bar per series.
pub fn bar_chart(title: &str, cats: &[String], series: &[(String, Vec<f64>)]) -> String {
    const COLORS: [&str; 4] = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"];
    let (w, h, left, bottom, top) = (640.0, 360.0, 50.0, 50.0, 40.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let plot_h = h - bottom - top;
    let group_w = (w - left - 10.0) / cats.len().max(1) as f64;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        esc(title)
    );
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - bottom,
        w - 10.0,
        h - bottom
    ));
    for (si, (name, vals)) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        for (ci, v) in vals.iter().enumerate() {
            let bh = v / max * plot_h;
            let x = left + ci as f64 * group_w + group_w * 0.1 + si as f64 * bar_w;
            let y = h - bottom - bh;
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{v:.3}</text>\n",
                bar_w * 0.95,
                x + bar_w / 2.0,
                y - 3.0
            ));
        }
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            left + 10.0 + si as f64 * 120.0,
            h - 18.0,
            left + 24.0 + si as f64 * 120.0,
            h - 9.0,
            esc(name)
        ));
    }
    for (ci, c) in cats.iter().enumerate() {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            left + ci as f64 * group_w + group_w / 2.0,
            h - bottom + 16.0,
            esc(c)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_rows_of_beauty() {
        let rows = paper_rows("beauty");
        assert_eq!(rows.len(), 8);
        let ssi = rows.iter().find(|r| r.0 == "SSI").unwrap();
        assert_eq!(ssi.1[3], 0.329);
        assert!(paper_rows("nowhere").is_empty());
    }

    #[test]
    fn chart_is_wellformed_svg() {
        let svg = bar_chart(
            "a < b",
            &["x".into(), "y".into()],
            &[("s".into(), vec![0.1, 0.2])],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 1);
        assert!(svg.contains("a &lt; b"));
    }

    #[test]
    fn bad_config_is_an_error() {
        assert!(base_settings("/nonexistent.json").is_err());
        assert_eq!(base_settings("small").unwrap().len(), 6);
    }
}
