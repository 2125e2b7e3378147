//! One results table from run folders: every finished run (a folder with `config.json` and
//! `test.json`) becomes a row `dataset,model,config,recall@10,ndcg@10,full_recall@10,
//! full_ndcg@10,train_minutes`, beside the paper's figure and the best published one.
//!
//! Run folders do not outlive the machine they were trained on, so every row a report shows is
//! also kept in an archive beside the page (`runs.json`): the next report reads it back and
//! replaces only the rows whose run folders it finds again.

use crate::checkpoint::{RunConfig, TrainState};
use ssi_models::ModelConfig;
use std::path::{Path, PathBuf};

/// Best published test NDCG@10 on these files (`../shared/reference/s3rec-tables.md` and the
/// papers named there): (dataset, sampled-99, full ranking).
pub const BEST_PUBLISHED: &[(&str, f64, f64)] = &[
    ("beauty", 0.3816, 0.0611),
    ("toys", 0.3695, 0.0580),
    ("sports", 0.3559, 0.0323),
];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub dataset: String,
    /// Display name: `SASRec`, `Teacher (temporal)`, `SSI-HGN`…
    pub model: String,
    /// The run folder, relative to the root it was found under.
    pub config: String,
    pub recall10: f64,
    pub ndcg10: f64,
    pub full_recall10: Option<f64>,
    pub full_ndcg10: Option<f64>,
    pub train_minutes: Option<f64>,
    /// The command that started the run (`command.txt`) and its seed.
    pub command: Option<String>,
    pub seed: u64,
    /// Validation NDCG@10 per epoch (`log.jsonl`), for the curves of SSI against its student.
    pub curve: Vec<(f64, f64)>,
    /// The model's id (`sasrec`), whether the run is an SSI student, and the run it started from.
    pub kind: String,
    pub ssi: bool,
    pub init_from: Option<PathBuf>,
}

/// The archive's file name, beside the page.
pub const ARCHIVE: &str = "runs.json";

/// The rows of an archive written by [`to_archive`]; an error names the file.
pub fn read_archive(path: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not an archive of results rows (line {}): {e}",
            path.display(),
            e.line()
        )
    })
}

/// The archive of `rows`: a JSON list, one row per line-group, readable by [`read_archive`].
pub fn to_archive(rows: &[Row]) -> String {
    let mut text = serde_json::to_string_pretty(rows).expect("rows serialise");
    text.push('\n');
    text
}

/// The rows of a report: every `found` row, and the `archived` rows of runs (dataset and run
/// folder) not found this time, in the table's order. A run folder is named relative to the
/// folder the report searched, so point reports at the same folders to replace a run's row
/// (a row is removed by deleting it from the archive).
pub fn merge(archived: Vec<Row>, found: Vec<Row>) -> Vec<Row> {
    let key = |r: &Row| (r.dataset.clone(), r.config.clone());
    let seen: std::collections::HashSet<_> = found.iter().map(key).collect();
    let mut rows: Vec<Row> = archived
        .into_iter()
        .filter(|r| !seen.contains(&key(r)))
        .collect();
    rows.extend(found);
    sort_rows(&mut rows);
    rows
}

fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        (a.dataset.as_str(), a.model.as_str(), a.config.as_str()).cmp(&(
            b.dataset.as_str(),
            b.model.as_str(),
            b.config.as_str(),
        ))
    });
}

/// One chart of the results page: validation NDCG@10 per epoch of SSI students and their
/// students trained alone from the same start.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub dataset: String,
    /// File name (`curves-beauty-sasrec.svg`), written beside the page.
    pub file: String,
    pub title: String,
    pub svg: String,
}

/// The per-epoch charts: for each dataset and student model (and start, for warm-started runs),
/// every SSI student's validation curve beside those of the same model trained without
/// imitation from the same start (none: a fresh start). Groups with no such reference are left
/// out: the chart is a comparison.
pub fn curve_charts(rows: &[Row]) -> Vec<Chart> {
    let mut charts = Vec::new();
    let mut groups: Vec<(&str, &str, Option<&PathBuf>)> = rows
        .iter()
        .filter(|r| r.ssi && !r.curve.is_empty())
        .map(|r| (r.dataset.as_str(), r.kind.as_str(), r.init_from.as_ref()))
        .collect();
    groups.dedup();
    for (dataset, kind, start) in groups {
        let members: Vec<&Row> = rows
            .iter()
            .filter(|r| r.dataset == dataset && r.kind == kind && r.init_from.as_ref() == start)
            .filter(|r| !r.curve.is_empty())
            .collect();
        if !members.iter().any(|r| !r.ssi) {
            continue;
        }
        let series: Vec<(String, Vec<(f64, f64)>)> = members
            .iter()
            .map(|r| (format!("{} ({})", r.model, r.config), r.curve.clone()))
            .collect();
        let n = charts
            .iter()
            .filter(|c: &&Chart| c.dataset == dataset && c.file.contains(&format!("-{kind}")))
            .count();
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{}", n + 1)
        };
        let student = members
            .iter()
            .find(|r| !r.ssi)
            .map(|r| r.model.clone())
            .unwrap_or_default();
        let title = format!("{dataset}: SSI against {student} alone, validation NDCG@10");
        charts.push(Chart {
            dataset: dataset.to_string(),
            file: format!("curves-{dataset}-{kind}{suffix}.svg"),
            svg: crate::reproduce::line_chart(&title, "epoch", "validation NDCG@10", &series),
            title,
        });
    }
    charts
}

/// Charts an earlier report wrote (`files`: names in the page's folder) whose runs' curves are
/// no longer at hand: each stays linked under its dataset, as it is (an empty `svg`: nothing to
/// rewrite).
pub fn earlier_charts(files: &[String], rows: &[Row], charts: &[Chart]) -> Vec<Chart> {
    let mut datasets: Vec<&str> = rows.iter().map(|r| r.dataset.as_str()).collect();
    // The longest name first: `curves-synthetic-shop-…` is not a chart of `synthetic`.
    datasets.sort_by_key(|d| std::cmp::Reverse(d.len()));
    let mut out: Vec<Chart> = files
        .iter()
        .filter(|f| f.starts_with("curves-") && f.ends_with(".svg"))
        .filter(|f| !charts.iter().any(|c| &c.file == *f))
        .filter_map(|f| {
            let d = datasets
                .iter()
                .find(|d| f.starts_with(&format!("curves-{d}-")))?;
            Some(Chart {
                dataset: d.to_string(),
                file: f.clone(),
                title: format!("{d}: validation NDCG@10 per epoch (a chart of an earlier report)"),
                svg: String::new(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// (epoch, validation NDCG@10) of every validated epoch in a run's `log.jsonl`.
fn read_curve(dir: &Path) -> Vec<(f64, f64)> {
    let Ok(text) = std::fs::read_to_string(dir.join("log.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v.get("epoch")?.as_f64()?, v.get("valid_ndcg10")?.as_f64()?)))
        .collect()
}

/// The row name of a run: SSI students by their student, teachers by their consistency task;
/// ablation runs (one teacher, one imitation term, another depth) say so, so that only the
/// paper's configurations sit next to the paper's figures.
pub fn model_label(cfg: &RunConfig) -> String {
    let kind = cfg.model.kind().name();
    let mut label = match &cfg.distill {
        Some(_) if cfg.model.kind() == ssi_models::ModelKind::Hgn => "SSI".to_string(),
        Some(_) => format!("SSI-{kind}"),
        None => {
            let role = cfg.model.teacher_name();
            if role != cfg.model.kind().id() {
                format!("Teacher ({role})")
            } else {
                kind.to_string()
            }
        }
    };
    if let Some(d) = &cfg.distill {
        let paper_teacher = |n: &String| {
            ssi_models::consistency::ConsistencyTask::ALL
                .iter()
                .any(|t| t.name() == n)
        };
        if d.teacher_names.len() == 1 {
            label.push_str(&format!(" (teacher: {})", d.teacher_names[0]));
        } else if !d.teacher_names.iter().all(paper_teacher) {
            // Teachers other than the paper's BERT4Rec ones: not the paper's configuration.
            label.push_str(&format!(" (teachers: {})", d.teacher_names.join(", ")));
        }
        if !d.imitation.prediction {
            label.push_str(" w/o prediction imitation");
        }
        if !d.imitation.representation {
            label.push_str(" w/o representation imitation");
        }
    }
    let layers = cfg.model.to_json().get("layers").and_then(|l| l.as_u64());
    let default_layers = ModelConfig::new(cfg.model.kind(), 1, 1)
        .to_json()
        .get("layers")
        .and_then(|l| l.as_u64());
    if let Some(l) = layers
        && layers != default_layers
    {
        label.push_str(&format!(" ({l} layers)"));
    }
    label
}

/// Run folders under `root` (itself included), at most `depth` levels down, sorted.
fn run_folders(root: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if root.join("test.json").is_file() && root.join("config.json").is_file() {
        out.push(root.to_path_buf());
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        run_folders(&d, depth - 1, out);
    }
}

/// Reads every finished run under `roots`. A folder whose files cannot be read is reported in
/// the second list (path and reason) rather than failing the whole report.
pub fn collect(roots: &[PathBuf]) -> (Vec<Row>, Vec<String>) {
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    for root in roots {
        let mut found = Vec::new();
        run_folders(root, 4, &mut found);
        for dir in found {
            match read_row(root, &dir) {
                Ok(r) => rows.push(r),
                Err(e) => skipped.push(format!("{}: {e}", dir.display())),
            }
        }
    }
    sort_rows(&mut rows);
    (rows, skipped)
}

fn read_row(root: &Path, dir: &Path) -> Result<Row, String> {
    let read = |name: &str| -> Result<serde_json::Value, String> {
        let text = std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))
    };
    let cfg: RunConfig =
        serde_json::from_value(read("config.json")?).map_err(|e| format!("config.json: {e}"))?;
    let test = read("test.json")?;
    let metric = |k: &str| test.get(k).and_then(|v| v.as_f64());
    let (Some(recall10), Some(ndcg10)) = (metric("recall@10"), metric("ndcg@10")) else {
        return Err("test.json has no recall@10 / ndcg@10".into());
    };
    let minutes = read("state.json")
        .ok()
        .and_then(|s| serde_json::from_value::<TrainState>(s).ok())
        .map(|s| s.train_seconds / 60.0);
    let config = dir
        .strip_prefix(root)
        .ok()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(dir)
        .display()
        .to_string();
    Ok(Row {
        dataset: cfg.dataset.name.to_ascii_lowercase(),
        model: model_label(&cfg),
        config,
        recall10,
        ndcg10,
        full_recall10: metric("full_recall@10"),
        full_ndcg10: metric("full_ndcg@10"),
        train_minutes: minutes,
        command: std::fs::read_to_string(dir.join("command.txt"))
            .ok()
            .map(|c| c.trim().to_string()),
        seed: cfg.train.seed,
        curve: read_curve(dir),
        kind: cfg.model.kind().id().to_string(),
        ssi: cfg.distill.is_some(),
        init_from: cfg.init_from.clone(),
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

/// `table2.csv`: one line per run; `paper_ndcg10(dataset, model)` gives the paper's figure.
pub fn to_csv(rows: &[Row], paper_ndcg10: &dyn Fn(&str, &str) -> Option<f64>) -> String {
    let mut w = csv_writer();
    w.write_record([
        "dataset",
        "model",
        "config",
        "recall@10",
        "ndcg@10",
        "full_recall@10",
        "full_ndcg@10",
        "train_minutes",
        "paper_ndcg@10",
        "best_published_ndcg@10",
        "best_published_full_ndcg@10",
    ])
    .expect("writing to memory");
    for r in rows {
        let best = BEST_PUBLISHED.iter().find(|b| b.0 == r.dataset);
        w.write_record([
            r.dataset.clone(),
            r.model.clone(),
            r.config.clone(),
            format!("{:.4}", r.recall10),
            format!("{:.4}", r.ndcg10),
            opt(r.full_recall10, 4),
            opt(r.full_ndcg10, 4),
            opt(r.train_minutes, 1),
            opt(paper_ndcg10(&r.dataset, &r.model), 3),
            opt(best.map(|b| b.1), 4),
            opt(best.map(|b| b.2), 4),
        ])
        .expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8 fields")
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::new())
}

/// The results page: per dataset, a table of every run with both protocols and minutes, then the
/// dataset's `charts` (files beside the page); `figures` (paths relative to the page) and
/// `appendices` are linked at the end.
pub fn to_markdown(
    rows: &[Row],
    paper_ndcg10: &dyn Fn(&str, &str) -> Option<f64>,
    charts: &[Chart],
    figures: &[String],
    appendices: &[String],
) -> String {
    let mut md = String::from(
        "# Results\n\nGenerated by `ssi report` from the run folders, and from `runs.json` for runs \
         trained on earlier machines (do not edit by hand). Test split; \
         NDCG@10 and Recall@10 against 99 sampled negatives (the paper's protocol) and against all \
         items (full); minutes of training on the machine of the run (unless a note says otherwise: \
         burn's CPU backend on a 2-core machine, often shared with other work). One seed per row; \
         the command of each run follows its table.\n",
    );
    let mut datasets: Vec<&str> = rows.iter().map(|r| r.dataset.as_str()).collect();
    datasets.dedup();
    for d in datasets {
        md.push_str(&format!("\n## {d}\n\n"));
        if let Some(b) = BEST_PUBLISHED.iter().find(|b| b.0 == d) {
            md.push_str(&format!(
                "Best published: NDCG@10 {:.4} sampled, {:.4} full.\n\n",
                b.1, b.2
            ));
        }
        md.push_str(
            "| model | run | NDCG@10 | Recall@10 | full NDCG@10 | full Recall@10 | minutes | paper NDCG@10 |\n|---|---|---|---|---|---|---|---|\n",
        );
        for r in rows.iter().filter(|r| r.dataset == d) {
            md.push_str(&format!(
                "| {} | `{}` | {:.4} | {:.4} | {} | {} | {} | {} |\n",
                r.model,
                r.config,
                r.ndcg10,
                r.recall10,
                opt(r.full_ndcg10, 4),
                opt(r.full_recall10, 4),
                opt(r.train_minutes, 1),
                opt(paper_ndcg10(d, &r.model), 3),
            ));
        }
        md.push('\n');
        for r in rows.iter().filter(|r| r.dataset == d) {
            md.push_str(&format!(
                "- `{}` (seed {}): `{}`\n",
                r.config,
                r.seed,
                r.command.as_deref().unwrap_or("command not recorded")
            ));
        }
        for c in charts.iter().filter(|c| c.dataset == d) {
            md.push_str(&format!("\n![{}]({})\n", c.title, c.file));
        }
    }
    if !figures.is_empty() {
        md.push_str("\n## Figures\n\n");
        for f in figures {
            md.push_str(&format!("![{f}]({f})\n\n"));
        }
    }
    if !appendices.is_empty() {
        md.push_str("\n## Experiment notes\n\n");
        for a in appendices {
            md.push_str(&format!("- [{a}]({a})\n"));
        }
    }
    md
}
