//! Each table and figure of the paper from the stages it needs: finished ones are read back,
//! the others trained here in order, and the result written beside the paper's figures.

use super::error::ReproduceError;
use super::paper::{PAPER_TABLE3, paper_rows};
use super::plan::{
    LAYERS, Stage, baseline_stages, continued_stage, imitation_variants, layer_stages,
    single_teacher_students, ssi_student, warm_start,
};
use super::render::{self, Figure, Row};
use super::run::{Output, Runner};
use ssi_models::ModelKind;

/// Table 2: MostPop, the baselines, the teachers and the SSI students.
pub(super) fn table2(r: &mut Runner, teach: &[Stage]) -> Result<Vec<Row>, ReproduceError> {
    let plan = r.plan;
    let a = plan.request();
    let mut rows = vec![r.mostpop()?];
    let baselines = baseline_stages();
    for k in a.trained_baselines() {
        if let Some(s) = baselines.iter().find(|s| s.kind == k) {
            r.run(s)?;
        }
    }
    for s in &baselines {
        rows.extend(r.run_or_read(s, false)?);
    }
    for t in teach {
        rows.extend(r.run_or_read(t, a.needs_teachers())?);
    }
    // The paper's students have a row whether this invocation trains them or not.
    let mut students = a.students.clone();
    for k in [ModelKind::Hgn, ModelKind::Gru4rec, ModelKind::Sasrec] {
        if !students.contains(&k) {
            students.push(k);
        }
    }
    for student in students {
        let train = a.students.contains(&student);
        let mut s = ssi_student(student, teach);
        if a.warm_start {
            s = warm_start(s, a);
            let reference = a.warm_references().contains(&student);
            rows.extend(r.run_or_read(&continued_stage(student), reference)?);
        }
        rows.extend(r.run_or_read(&s, train)?);
    }
    let name = &a.paper_dataset;
    let t = render::table2(name, &rows, &paper_rows(name), &r.imitation_note());
    let files = [
        ("table2.md".into(), t.markdown.as_str()),
        ("table2.csv".into(), &t.csv),
    ];
    r.write(Output::Table2, &files, &t.markdown)?;
    Ok(rows)
}

/// A stage as the plan trains it (with its warm start, if the invocation asks for one).
fn planned(r: &Runner, s: &Stage) -> Result<Stage, ReproduceError> {
    r.plan.stage(&s.name).cloned()
}

/// Table 3: SSI without each imitation term. Without both the objective is the student's own
/// loss: the HGN run (with a warm start, HGN continued alone from the students' start).
pub(super) fn table3(
    r: &mut Runner,
    teach: &[Stage],
    ssi: Option<&Row>,
    hgn: Option<&Row>,
) -> Result<(), ReproduceError> {
    let mut t3 = vec![(
        PAPER_TABLE3[0].0.to_string(),
        ssi.map(|r| r.metrics.clone()),
    )];
    for s in imitation_variants(teach) {
        let row = r.run(&planned(r, &s)?)?;
        t3.push((s.label.clone(), Some(row.metrics)));
    }
    t3.push((
        PAPER_TABLE3[3].0.to_string(),
        hgn.map(|r| r.metrics.clone()),
    ));
    not_trained_notice(r, "Table 3", ssi, hgn);
    let t = render::table3(&t3);
    let files = [
        ("table3.md".into(), t.markdown.as_str()),
        ("table3.csv".into(), &t.csv),
    ];
    r.write(Output::Table3, &files, &t.markdown)
}

/// Figure 3: HGN, SSI-HGN with each teacher alone, and with all three.
pub(super) fn figure3(
    r: &mut Runner,
    teach: &[Stage],
    ssi: Option<&Row>,
    hgn: Option<&Row>,
) -> Result<(), ReproduceError> {
    let mut bars = vec![("HGN".to_string(), ndcg10(hgn), full_ndcg10(hgn))];
    for (t, s) in teach.iter().zip(single_teacher_students(teach)) {
        let row = r.run(&planned(r, &s)?)?;
        let task = t.name.trim_start_matches("teacher-");
        bars.push((
            format!("+{task}"),
            ndcg10(Some(&row)),
            full_ndcg10(Some(&row)),
        ));
    }
    bars.push(("SSI (all three)".into(), ndcg10(ssi), full_ndcg10(ssi)));
    not_trained_notice(r, "Figure 3", ssi, hgn);
    let figure = Figure {
        stem: "figure3",
        title: format!(
            "Figure 3 ({}): NDCG@10 by teacher",
            r.plan.request().paper_dataset
        ),
        categories: bars.iter().map(|b| b.0.clone()).collect(),
        series: vec![("NDCG@10".into(), bars.iter().map(|b| b.1).collect())],
        full: vec![("NDCG@10".into(), bars.iter().map(|b| b.2).collect())],
    };
    write_figure(r, Output::Figure3, &figure)
}

/// Figure 4: the teachers' model (the paper's BERT4Rec) and SSI-HGN with teachers of 1, 2, 4
/// and 8 layers.
pub(super) fn figure4(r: &mut Runner) -> Result<(), ReproduceError> {
    let (mut bert, mut ssi_v, mut bert_full, mut ssi_full) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let teacher = r.plan.request().teacher_model;
    for l in LAYERS {
        let (b, tl, s) = layer_stages(teacher, l, r.plan.base_layers());
        let row = r.run(&planned(r, &b)?)?;
        bert.push(ndcg10(Some(&row)));
        bert_full.push(full_ndcg10(Some(&row)));
        for t in &tl {
            r.run(&planned(r, t)?)?;
        }
        let row = r.run(&planned(r, &s)?)?;
        ssi_v.push(ndcg10(Some(&row)));
        ssi_full.push(full_ndcg10(Some(&row)));
    }
    let figure = Figure {
        stem: "figure4",
        title: format!(
            "Figure 4 ({}): NDCG@10 by teacher depth",
            r.plan.request().paper_dataset
        ),
        categories: LAYERS.iter().map(|l| format!("{l} layers")).collect(),
        series: vec![(teacher.name().into(), bert), ("SSI".into(), ssi_v)],
        full: vec![(teacher.name().into(), bert_full), ("SSI".into(), ssi_full)],
    };
    write_figure(r, Output::Figure4, &figure)
}

fn write_figure(r: &mut Runner, output: Output, f: &Figure) -> Result<(), ReproduceError> {
    let t = f.table();
    let svg = f.svg();
    let files = [
        (format!("{}.md", f.stem), t.markdown.as_str()),
        (format!("{}.csv", f.stem), &t.csv),
        (format!("{}.svg", f.stem), &svg),
    ];
    r.write(output, &files, &t.markdown)
}

/// Says which rows of an ablation come from runs this invocation neither trained nor found
/// (the SSI-HGN student, the HGN baseline): they are marked "not trained" there, and the
/// notice names the option that trains each.
fn not_trained_notice(r: &mut Runner, what: &str, ssi: Option<&Row>, hgn: Option<&Row>) {
    let missing: Vec<&str> = [
        (ssi, "SSI (--students hgn)"),
        (hgn, "HGN (--baselines hgn)"),
    ]
    .into_iter()
    .filter(|(row, _)| row.is_none())
    .map(|(_, label)| label)
    .collect();
    if !missing.is_empty() {
        r.obs.notice(&format!(
            "{what}: {} not trained in this folder, marked \"not trained\"",
            missing.join(" and ")
        ));
    }
}

fn ndcg10(r: Option<&Row>) -> Option<f64> {
    r.and_then(|r| r.metrics["ndcg@10"].as_f64())
}

fn full_ndcg10(r: Option<&Row>) -> Option<f64> {
    r.and_then(|r| r.metrics["full_ndcg@10"].as_f64())
}
