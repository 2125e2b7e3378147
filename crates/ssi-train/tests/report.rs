//! `ssi report`'s table: rows from finished run folders, both protocols, unreadable runs named.

use ssi_models::{ModelConfig, ModelKind};
use ssi_train::checkpoint::{DatasetInfo, RunConfig};
use ssi_train::report;

/// Why the run folder `name` was skipped, from a report's notes ("" when it was not).
fn reason(skipped: &[String], name: &str) -> String {
    skipped
        .iter()
        .find(|s| s.contains(&format!("/{name}:")))
        .cloned()
        .unwrap_or_default()
}

fn run(dir: &std::path::Path, kind: ModelKind, dataset: &str, ndcg: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = RunConfig {
        model: ModelConfig::new(kind, 10, 3),
        train: ssi_train::TrainConfig::new(),
        dataset: DatasetInfo {
            name: dataset.into(),
            n_items: 10,
            n_users: 3,
            path: None,
            sha256: None,
            catalogue_sha256: None,
            catalogue_raises_items: false,
        },
        distill: None,
        init_from: None,
        pretrain_stage: false,
    };
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&cfg).unwrap(),
    )
    .unwrap();
    let test = serde_json::json!({"recall@10": 0.5, "ndcg@10": ndcg, "full_ndcg@10": 0.05, "full_recall@10": 0.1});
    std::fs::write(dir.join("test.json"), test.to_string()).unwrap();
    let state = ssi_train::checkpoint::TrainState {
        finished: true,
        ..Default::default()
    };
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
}

#[test]
fn finished_runs_become_rows_beside_the_published_figures() {
    let root = tempfile::tempdir().unwrap();
    run(
        &root.path().join("beauty/hgn"),
        ModelKind::Hgn,
        "beauty",
        0.31,
    );
    run(
        &root.path().join("beauty/sasrec"),
        ModelKind::Sasrec,
        "Beauty",
        0.36,
    );
    // A log with a damaged line: the row stays, its curve keeps the good lines, and a note
    // names the file and line.
    std::fs::write(
        root.path().join("beauty/sasrec/log.jsonl"),
        "{\"epoch\":1,\"valid_ndcg10\":0.2}\n{\"epoch\":2,\"valid_nd\n{\"epoch\":3,\"valid_ndcg10\":0.3}\n",
    )
    .unwrap();
    // Unfinished (no test.json) and broken runs.
    std::fs::create_dir_all(root.path().join("beauty/unfinished")).unwrap();
    let broken = root.path().join("broken");
    run(&broken, ModelKind::Grec, "beauty", 0.2);
    std::fs::write(broken.join("config.json"), "{").unwrap();
    // A figure out of range, a test.json that is a folder, and a run that trains on past its
    // test.json (reopened by --resume with new limits) are named, not reported.
    let edited = root.path().join("edited");
    run(&edited, ModelKind::Hgn, "beauty", 5.0);
    let folder = root.path().join("folder");
    run(&folder, ModelKind::Hgn, "beauty", 0.3);
    std::fs::remove_file(folder.join("test.json")).unwrap();
    std::fs::create_dir(folder.join("test.json")).unwrap();
    let reopened = root.path().join("reopened");
    run(&reopened, ModelKind::Hgn, "beauty", 0.3);
    let state = ssi_train::checkpoint::TrainState {
        epoch: 3,
        finished: false,
        ..Default::default()
    };
    std::fs::write(
        reopened.join("state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    // A state.json whose best epoch lies past its own epochs is read as every command reads it.
    let past = root.path().join("past");
    run(&past, ModelKind::Hgn, "beauty", 0.3);
    let state = ssi_train::checkpoint::TrainState {
        epoch: 3,
        best_epoch: Some(9),
        finished: true,
        ..Default::default()
    };
    std::fs::write(
        past.join("state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();

    // So is one that trained for a negative time.
    let negative = root.path().join("negative");
    run(&negative, ModelKind::Hgn, "beauty", 0.3);
    let state = ssi_train::checkpoint::TrainState {
        finished: true,
        train_seconds: -1e300,
        ..Default::default()
    };
    std::fs::write(
        negative.join("state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();

    // Or for longer than a year (the archive, which refuses such a row, would be unreadable),
    // or whose test.json has an NDCG above its recall, which no evaluation gives.
    let long = root.path().join("long");
    run(&long, ModelKind::Hgn, "beauty", 0.3);
    let state = ssi_train::checkpoint::TrainState {
        finished: true,
        train_seconds: 1e300,
        ..Default::default()
    };
    std::fs::write(
        long.join("state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    run(&root.path().join("above"), ModelKind::Hgn, "beauty", 0.9);

    let (rows, skipped) = report::collect(&[root.path().to_path_buf()]);
    assert_eq!(rows.len(), 2);
    assert_eq!(skipped.len(), 9, "{skipped:?}");
    assert!(
        reason(&skipped, "long").contains("train_seconds = 1e300"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "above").contains("test.json: ndcg10 = 0.9 is above recall10 = 0.5"),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(
            |s| s.contains("sasrec/log.jsonl: 1 line(s) are not JSON or out of range (line 2)")
        ),
        "{skipped:?}"
    );
    let sasrec = rows.iter().find(|r| r.kind == "sasrec").unwrap();
    assert_eq!(sasrec.curve, [(1.0, 0.2), (3.0, 0.3)]);
    assert!(
        reason(&skipped, "broken").contains("config.json"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "edited").contains("ndcg@10 = 5"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "folder").contains("not a file"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "reopened").contains("epoch 3, not finished"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "past").contains("best epoch 9"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "negative").contains("train_seconds = -1e300"),
        "{skipped:?}"
    );
    assert_eq!(
        (rows[0].model.as_str(), rows[0].config.as_str()),
        ("HGN", "beauty/hgn")
    );
    assert_eq!(rows[1].dataset, "beauty");
    let paper = |_: &str, m: &str| (m == "HGN").then_some(0.317);
    let csv = report::to_csv(&rows, &paper);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with(
        "dataset,model,config,recall@10,ndcg@10,full_recall@10,full_ndcg@10,train_minutes"
    ));
    assert_eq!(
        lines[1],
        "beauty,HGN,beauty/hgn,0.5000,0.3100,0.1000,0.0500,0.0,0.317,0.3816,0.0611,"
    );
    let md = report::to_markdown(
        &rows,
        &paper,
        &[],
        &report::PageEnd {
            figures: vec!["figures/toys-figure3.svg".into()],
            appendices: vec!["models.md".into()],
            ..Default::default()
        },
    );
    assert!(
        md.contains("| SASRec |  | `beauty/sasrec` | 0.3600 |"),
        "{md}"
    );
    assert!(md.contains("[models.md](models.md)"));
    assert!(md.contains("![figures/toys-figure3.svg](figures/toys-figure3.svg)"));
}

fn row(model: &str, config: &str, ssi: bool, start: Option<&str>) -> report::Row {
    report::Row {
        dataset: "beauty".into(),
        model: model.into(),
        config: config.into(),
        recall10: 0.5,
        ndcg10: 0.3,
        full_recall10: None,
        full_ndcg10: None,
        train_minutes: None,
        command: None,
        seed: 42,
        curve: vec![(1.0, 0.30), (2.0, 0.35), (3.0, 0.36)],
        full_curve: Vec::new(),
        kind: "sasrec".into(),
        ssi,
        init_from: start.map(Into::into),
        path: None,
        setup: ssi.then(|| "best preset".into()),
        select_by: None,
        fingerprint: None,
        dataset_sha256: None,
        kept_by: Default::default(),
    }
}

/// SSI students are charted beside the same model trained alone from the same start; a student
/// with no such reference gets no chart.
#[test]
fn ssi_curves_are_charted_beside_the_student_alone() {
    let rows = vec![
        row("SASRec", "beauty/sasrec-cont", false, Some("/r/sasrec")),
        row("SSI-SASRec", "beauty/ssi-t2", true, Some("/r/sasrec")),
        row("SSI-SASRec", "beauty/ssi-t4", true, Some("/r/sasrec")),
        row("SSI-SASRec", "beauty/ssi-cold", true, None),
        row("SASRec", "beauty/other-start", false, Some("/r/elsewhere")),
    ];
    let charts = report::curve_charts(&rows);
    assert_eq!(charts.len(), 1, "{charts:?}");
    let c = &charts[0];
    assert_eq!(c.file, "curves-beauty-sasrec.svg");
    assert_eq!(c.svg.matches("<polyline").count(), 3);
    assert!(c.svg.contains("beauty/ssi-t4") && !c.svg.contains("other-start"));
    let md = report::to_markdown(&rows, &|_, _| None, &charts, &Default::default());
    assert!(md.contains("(curves-beauty-sasrec.svg)"));
    // Logs with full-ranking validation get a second chart of the same runs.
    let mut rows = rows;
    for r in rows.iter_mut().take(2) {
        r.full_curve = vec![(1.0, 0.05), (2.0, 0.06)];
    }
    let charts = report::curve_charts(&rows);
    let files: Vec<&str> = charts.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(
        files,
        ["curves-beauty-sasrec.svg", "curves-beauty-sasrec-full.svg"]
    );
    assert_eq!(charts[1].svg.matches("<polyline").count(), 2);
    // Datasets whose names differ only where a file name has `-` get a file each.
    let two: Vec<report::Row> = ["a.b", "a-b"]
        .into_iter()
        .flat_map(|d| {
            [false, true].map(|ssi| report::Row {
                dataset: d.into(),
                ..row("SASRec", &format!("{d}/{ssi}"), ssi, Some("/r/sasrec"))
            })
        })
        .collect();
    let files: Vec<String> = report::curve_charts(&two)
        .into_iter()
        .map(|c| c.file)
        .collect();
    assert_eq!(files, ["curves-a-b-sasrec.svg", "curves-a-b-sasrec-2.svg"]);
    // A folder name with a `|` or a line break keeps its row whole.
    let odd = vec![row("SASRec", "beauty/exp|1\nx", false, None)];
    let md = report::to_markdown(&odd, &|_, _| None, &[], &Default::default());
    let line = md.lines().find(|l| l.contains("exp")).unwrap();
    assert!(line.contains("`beauty/exp\\|1 x`"), "{line}");
    assert_eq!(line.replace("\\|", "").matches('|').count(), 10, "{line}");
}

/// An archive rewritten from itself, as every report does, is the same file: numbers that
/// serde_json reads back to within one unit in the last place (17 significant digits, as
/// measured minutes are) do not drift a digit a report.
#[test]
fn an_archive_rewritten_from_itself_is_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(report::ARCHIVE);
    let rows: Vec<report::Row> = [14.239298570983333, 108.51013648026667, 93.09154499259999]
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut r = row("SASRec", &format!("beauty/sasrec-{i}"), false, None);
            r.train_minutes = Some(m);
            r.ndcg10 = 0.30539148084719087;
            r.curve.push((4.0, 0.3610813713080338));
            r
        })
        .collect();
    let first = report::to_archive(&rows);
    std::fs::write(&path, &first).unwrap();
    let mut text = first.clone();
    for _ in 0..3 {
        text = report::to_archive(&report::read_archive(&path).unwrap());
        std::fs::write(&path, &text).unwrap();
    }
    assert_eq!(text, first);
    // Kept to 15 significant digits: a thousandth of a second in a year of minutes.
    let back = report::read_archive(&path).unwrap();
    assert!((back[0].train_minutes.unwrap() - 14.239298570983333).abs() < 1e-12);
}

/// Rows outlive their run folders: the archive is read back whole, a run found again replaces
/// its archived row, and a damaged archive is an error naming the file.
#[test]
fn archived_rows_are_kept_until_their_runs_are_found_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(report::ARCHIVE);
    let old = vec![
        row("SASRec", "beauty/sasrec", false, None),
        row("HGN", "beauty/hgn", false, None),
    ];
    std::fs::write(&path, report::to_archive(&old)).unwrap();
    let back = report::read_archive(&path).unwrap();
    assert_eq!(back, old);

    let mut again = row("SASRec", "beauty/sasrec", false, None);
    again.ndcg10 = 0.4;
    let rows = report::merge(
        back,
        vec![again.clone(), row("GREC", "beauty/grec", false, None)],
    )
    .unwrap();
    let names: Vec<(&str, f64)> = rows.iter().map(|r| (r.config.as_str(), r.ndcg10)).collect();
    assert_eq!(
        names,
        [
            ("beauty/grec", 0.3),
            ("beauty/hgn", 0.3),
            ("beauty/sasrec", 0.4)
        ]
    );

    // A row archived under the same name is replaced by the same run (same folder, or the same
    // starting command from another folder: moved, or read on another machine), not by
    // another run; two found runs of one name are refused; a run found under a new name
    // replaces its row under the old one.
    let with = |r: &report::Row, p: Option<&str>, c: &str| report::Row {
        path: p.map(Into::into),
        command: Some(c.into()),
        ..r.clone()
    };
    let start = "/tmp/ssi-a train --out runs/x/beauty/sasrec";
    let archived = vec![with(&old[0], Some("/a/beauty/sasrec"), start)];
    let retrained = with(&again, Some("/a/beauty/sasrec"), "ssi train --seed 2");
    assert!(report::merge(archived.clone(), vec![retrained]).is_ok());
    let moved = with(
        &again,
        Some("/b/beauty/sasrec"),
        "ssi train --out runs/x/beauty/sasrec\nssi train --resume --out runs/x/beauty/sasrec",
    );
    assert!(report::merge(archived.clone(), vec![moved]).is_ok());
    // The same command run in another folder that still holds its run: not moved, refused.
    let x = dir.path().join("X/run");
    std::fs::create_dir_all(&x).unwrap();
    std::fs::write(x.join("state.json"), "{}").unwrap();
    let in_x = vec![with(&old[0], Some(x.to_str().unwrap()), start)];
    let in_y = with(&again, Some("/b/beauty/sasrec"), start);
    let e = report::merge(in_x, vec![in_y]).unwrap_err();
    assert!(e.contains("which is still there"), "{e}");
    let legacy = vec![with(&old[0], None, start)];
    let other = with(
        &again,
        Some("/b/beauty/sasrec"),
        "ssi reproduce --out runs/y",
    );
    for earlier in [archived.clone(), legacy] {
        let e = report::merge(earlier, vec![other.clone()]).unwrap_err();
        assert!(e.contains("started by `train --out runs/x"), "{e}");
    }
    let renamed = report::Row {
        config: "x/beauty/sasrec".into(),
        ..with(&again, Some("/a/beauty/sasrec"), start)
    };
    let rows = report::merge(archived, vec![renamed]).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let at = |r: &report::Row, p: &str| report::Row {
        path: Some(p.into()),
        ..r.clone()
    };
    let e = report::merge(vec![], vec![at(&again, "/a/x"), at(&again, "/b/x")]).unwrap_err();
    assert!(e.contains("two runs are named beauty/sasrec"), "{e}");

    std::fs::write(&path, "[{\"dataset\": 1}]").unwrap();
    let e = report::read_archive(&path).unwrap_err();
    assert!(e.contains(report::ARCHIVE), "{e}");

    // A row named after a paper's dataset but of another file is marked, as its run would be.
    let mut renamed = old[0].clone();
    renamed.dataset_sha256 = Some("0".repeat(64));
    std::fs::write(&path, report::to_archive(&[renamed])).unwrap();
    assert_eq!(
        report::read_archive(&path).unwrap()[0].dataset,
        "beauty (not the published file)"
    );
    // A row whose dataset carries its file's fingerprint (as pages name two files of one name)
    // is the same name as the row without it: two such rows are refused when read, not after
    // the next report has written them both.
    let mut suffixed = old[0].clone();
    suffixed.dataset_sha256 = Some("a7d098d7".repeat(8));
    suffixed.dataset = "shop (data a7d098d7)".into();
    let mut plain = suffixed.clone();
    plain.dataset = "shop".into();
    plain.ndcg10 += 0.01;
    std::fs::write(&path, report::to_archive(&[suffixed, plain])).unwrap();
    let e = report::read_archive(&path).unwrap_err();
    assert!(e.contains("rows 1 and 2 are both named"), "{e}");
    // A row pasted twice is one row; two rows of one name with other figures are refused.
    let twice = vec![old[0].clone(), old[1].clone(), old[0].clone()];
    std::fs::write(&path, report::to_archive(&twice)).unwrap();
    assert_eq!(report::read_archive(&path).unwrap(), old);
    let mut other = old[0].clone();
    other.ndcg10 += 0.01;
    std::fs::write(
        &path,
        report::to_archive(&[old[0].clone(), old[1].clone(), other]),
    )
    .unwrap();
    let e = report::read_archive(&path).unwrap_err();
    assert!(
        e.contains("rows 1 and 3 are both named beauty/sasrec"),
        "{e}"
    );
}

/// Links that lead out of a root are not followed (a link to `/` would report every run on the
/// machine), and a run whose files are links to nothing or folders is named, not passed over.
#[cfg(unix)]
#[test]
fn links_out_of_a_root_are_not_followed_and_broken_runs_are_named() {
    let root = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    run(&root.path().join("mine"), ModelKind::Sasrec, "beauty", 0.36);
    run(
        &elsewhere.path().join("theirs"),
        ModelKind::Sasrec,
        "beauty",
        0.35,
    );
    std::os::unix::fs::symlink(elsewhere.path(), root.path().join("out")).unwrap();
    let broken = root.path().join("broken");
    run(&broken, ModelKind::Sasrec, "beauty", 0.34);
    std::fs::remove_file(broken.join("test.json")).unwrap();
    std::os::unix::fs::symlink(root.path().join("nothing"), broken.join("test.json")).unwrap();
    let (rows, notes) = report::collect(&[root.path().to_path_buf()]);
    let names: Vec<&str> = rows.iter().map(|r| r.config.as_str()).collect();
    assert_eq!(names, ["mine"]);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("not followed:") && n.contains("out")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("broken") && n.contains("test.json is not a file")),
        "{notes:?}"
    );
}

/// A chart whose runs' curves are gone stays linked under its dataset; new charts and other
/// files are not taken for one.
#[test]
fn charts_of_an_earlier_report_stay_linked() {
    let mut shop = row("SASRec", "shop/sasrec", false, None);
    shop.dataset = "synthetic-shop".into();
    let rows = vec![row("SASRec", "beauty/sasrec", false, None), shop];
    let files: Vec<String> = [
        "curves-beauty-sasrec.svg",
        "curves-synthetic-shop-sasrec.svg",
        "curves-toys-sasrec.svg",
        "recipe.md",
    ]
    .map(String::from)
    .to_vec();
    let fresh = report::Chart {
        dataset: "beauty".into(),
        file: "curves-beauty-sasrec.svg".into(),
        title: "t".into(),
        svg: "<svg/>".into(),
    };
    let earlier = report::earlier_charts(&files, &rows, &[fresh]);
    let got: Vec<(&str, &str, bool)> = earlier
        .iter()
        .map(|c| (c.dataset.as_str(), c.file.as_str(), c.svg.is_empty()))
        .collect();
    assert_eq!(
        got,
        [("synthetic-shop", "curves-synthetic-shop-sasrec.svg", true)]
    );
}

/// A run reached both through a link and directly is named by its own folder.
#[cfg(unix)]
#[test]
fn a_run_reached_through_a_link_is_named_by_its_folder() {
    let root = tempfile::tempdir().unwrap();
    run(
        &root.path().join("sasrec-v2"),
        ModelKind::Sasrec,
        "beauty",
        0.36,
    );
    std::os::unix::fs::symlink("sasrec-v2", root.path().join("latest")).unwrap();
    std::os::unix::fs::symlink(".", root.path().join("again")).unwrap();
    let (rows, _) = report::collect(&[root.path().to_path_buf()]);
    let names: Vec<&str> = rows.iter().map(|r| r.config.as_str()).collect();
    assert_eq!(names, ["sasrec-v2"]);
}

/// A pre-training stage (`RUN/pretrain`) is reported with its run, never as a row of its own,
/// whether it says so (`pretrain_stage`) or was written before stages did; a user's run that
/// happens to be named `pretrain` inside another model's run is a run.
#[test]
fn pre_training_stages_are_not_rows() {
    let root = tempfile::tempdir().unwrap();
    let stage = |dir: &std::path::Path, marked: bool| {
        run(dir, ModelKind::S3rec, "beauty", 0.2);
        let path = dir.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        cfg["pretrain_stage"] = marked.into();
        std::fs::write(&path, cfg.to_string()).unwrap();
    };
    run(&root.path().join("s3"), ModelKind::S3rec, "beauty", 0.33);
    stage(&root.path().join("s3/pretrain"), false);
    run(&root.path().join("new"), ModelKind::S3rec, "beauty", 0.34);
    stage(&root.path().join("new/pretrain"), true);
    run(&root.path().join("mine"), ModelKind::Sasrec, "beauty", 0.35);
    stage(&root.path().join("mine/pretrain"), false);
    let (rows, skipped) = report::collect(&[root.path().to_path_buf()]);
    let mut names: Vec<&str> = rows.iter().map(|r| r.config.as_str()).collect();
    names.sort();
    assert_eq!(names, ["mine", "mine/pretrain", "new", "s3"], "{skipped:?}");
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .all(|s| s.contains("pre-training stage of the run")),
        "{skipped:?}"
    );
}

/// An SSI student that kept another epoch than the presets keep (`select_by`) is not labelled as
/// the preset: its row says how it was selected.
/// A finished SSI-SASRec run on Toys of `teachers` (their names), kept by `by`.
fn student(dir: &std::path::Path, teachers: &[&str], by: Option<ssi_train::config::SelectBy>) {
    run(dir, ModelKind::Sasrec, "toys", 0.37);
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut cfg: RunConfig = serde_json::from_str(&text).unwrap();
    cfg.train.select_by = by;
    cfg.distill = Some(ssi_train::config::DistillSpec {
        teachers: teachers.iter().map(Into::into).collect(),
        teacher_names: teachers.iter().map(|t| t.to_string()).collect(),
        imitation: ssi_models::imitation::ImitationConfig::new(),
        teacher_weights: None,
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&cfg).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_student_selected_by_another_criterion_says_so() {
    use ssi_train::config::SelectBy;
    let root = tempfile::tempdir().unwrap();
    for (name, by) in [("sampled", None), ("both", Some(SelectBy::Both))] {
        student(&root.path().join(name), &["sasrec"], by);
    }
    let (rows, skipped) = report::collect(&[root.path().to_path_buf()]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let setup = |config: &str| {
        rows.iter()
            .find(|r| r.config == config)
            .and_then(|r| r.setup.clone())
            .unwrap()
    };
    assert_eq!(setup("sampled"), "faithful");
    assert_eq!(setup("both"), "faithful, --set select_by=both");
}

/// A dataset name read from a run folder names a chart inside the page's folder (no `/`, `..`
/// or space), and only charts this project draws are ones a report may replace.
#[test]
fn chart_files_stay_in_the_page_folder_and_spare_a_users_files() {
    assert_eq!(report::file_part("../../x y|v2"), "------x-y-v2");
    let mut rows = vec![
        row("SSI-SASRec", "ssi", true, Some("base")),
        row("SASRec", "alone", false, Some("base")),
    ];
    for r in &mut rows {
        r.dataset = "../up/Shop v2".into();
    }
    let charts = report::curve_charts(&rows);
    assert!(!charts.is_empty());
    for c in &charts {
        assert!(
            !c.file.contains('/') && !c.file.contains(' ') && !c.file.contains(".."),
            "{}",
            c.file
        );
        assert!(report::is_our_chart(c.svg.as_bytes()), "{}", c.file);
    }
    assert!(!report::is_our_chart(b"my own chart"));
    assert!(!report::is_our_chart(
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>"
    ));
}

/// A student alone kept by another rule than its SSI student says so in its row and in the
/// comparison, which is then not like for like.
#[test]
fn a_reference_kept_by_another_rule_is_flagged() {
    let mut ssi = row("SSI-SASRec", "ssi", true, Some("base"));
    ssi.setup = Some("best preset".into());
    let mut alone = row("SASRec", "alone", false, Some("base"));
    alone.setup = Some("--set select_by=full".into());
    let page = report::to_markdown(
        &[ssi, alone],
        &|_: &str, _: &str| None,
        &[],
        &Default::default(),
    );
    assert!(
        page.contains("(epochs kept by sampled here, by full in the reference)"),
        "{page}"
    );
}

/// Only the paper's three teachers make the paper's row: a student of two of them says which.
#[test]
fn a_student_of_fewer_teachers_names_them() {
    let root = tempfile::tempdir().unwrap();
    for (name, teachers) in [
        ("three", vec!["temporal", "persona", "global"]),
        ("two", vec!["temporal", "global"]),
    ] {
        student(&root.path().join(name), &teachers, None);
    }
    let (rows, skipped) = report::collect(&[root.path().to_path_buf()]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let label = |config: &str| {
        rows.iter()
            .find(|r| r.config == config)
            .unwrap()
            .model
            .clone()
    };
    assert_eq!(label("three"), "SSI-SASRec");
    assert_eq!(label("two"), "SSI-SASRec (teachers: temporal, global)");
}

/// A pipe where a run's files belong (opening one for reading blocks until a writer comes)
/// neither hangs the report nor costs the run its row.
#[cfg(unix)]
#[test]
fn a_pipe_in_a_run_folder_does_not_hang_the_report() {
    let root = tempfile::tempdir().unwrap();
    let piped = root.path().join("beauty/piped");
    run(&piped, ModelKind::Sasrec, "beauty", 0.36);
    let config_pipe = root.path().join("beauty/config-pipe");
    run(&config_pipe, ModelKind::Hgn, "beauty", 0.31);
    std::fs::remove_file(config_pipe.join("config.json")).unwrap();
    for fifo in [
        piped.join("log.jsonl"),
        piped.join("command.txt"),
        config_pipe.join("config.json"),
    ] {
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo {}", fifo.display());
    }
    let roots = vec![root.path().to_path_buf()];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(report::collect(&roots)).unwrap());
    let (rows, skipped) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the report blocked on a pipe");
    assert_eq!(rows.len(), 1, "{skipped:?}");
    assert_eq!(rows[0].config, "beauty/piped");
    assert_eq!(rows[0].command, None);
    assert!(rows[0].curve.is_empty());
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("log.jsonl: not a regular file")),
        "{skipped:?}"
    );
}

/// A test.json that is not the run's own test (`ssi eval`'s output of another split, other
/// candidates or seed, or without user ids saved over it, another run's file, an edited dataset
/// name, no figures), or one without the
/// state.json that says the run finished, is named and not reported.
#[test]
fn a_test_json_that_is_not_the_runs_own_test_is_not_reported() {
    let root = tempfile::tempdir().unwrap();
    let test = |name: &str, extra: serde_json::Value| {
        let dir = root.path().join(name);
        run(&dir, ModelKind::Hgn, "beauty", 0.3);
        let mut t: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap()).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            t[k] = v.clone();
        }
        std::fs::write(dir.join("test.json"), t.to_string()).unwrap();
        dir
    };
    test(
        "own",
        serde_json::json!({"split": "test", "negatives": 99, "model": "HGN", "dataset": "beauty"}),
    );
    test("valid", serde_json::json!({"split": "valid"}));
    test("nine", serde_json::json!({"negatives": 9}));
    test("file", serde_json::json!({"negatives_file": "neg.txt"}));
    test("bert", serde_json::json!({"model": "BERT4Rec"}));
    test("shop", serde_json::json!({"dataset": "synthetic-shop"}));
    test("seed7", serde_json::json!({"seed": 7}));
    test("anon", serde_json::json!({"anonymous": true}));
    test("nofig", serde_json::json!({"ndcg@10": null}));
    let lost = test("lost", serde_json::json!({}));
    std::fs::remove_file(lost.join("state.json")).unwrap();

    let (rows, skipped) = report::collect(&[root.path().to_path_buf()]);
    assert_eq!(
        rows.iter().map(|r| r.config.as_str()).collect::<Vec<_>>(),
        ["own"],
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "valid").contains("split = \"valid\""),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "nine").contains("negatives = 9"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "file").contains("negatives_file"),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "bert").contains("model = \"BERT4Rec\""),
        "{skipped:?}"
    );
    assert!(
        reason(&skipped, "shop").contains("dataset = \"synthetic-shop\""),
        "{skipped:?}"
    );
    for (name, why) in [
        ("seed7", "seed = 7"),
        ("anon", "anonymous = true"),
        ("nofig", "no figure ndcg@10"),
    ] {
        assert!(reason(&skipped, name).contains(why), "{skipped:?}");
    }
    assert!(
        reason(&skipped, "lost").contains("no state.json"),
        "{skipped:?}"
    );
}

/// A run read from another folder (moved, or reported from another working folder, so that
/// its recorded path differs) replaces its archived row instead of adding a second one.
#[test]
fn a_moved_run_keeps_one_row() {
    let root = tempfile::tempdir().unwrap();
    let before = root.path().join("a/runs/hgn");
    run(&before, ModelKind::Hgn, "beauty", 0.31);
    let (archived, _) = report::collect(&[root.path().join("a/runs")]);
    std::fs::create_dir_all(root.path().join("b")).unwrap();
    std::fs::rename(&before, root.path().join("b/hgn-old")).unwrap();
    let (found, _) = report::collect(&[root.path().join("b")]);
    assert_ne!(archived[0].path, found[0].path);
    let rows = report::merge(archived, found).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.config.as_str()).collect::<Vec<_>>(),
        ["hgn-old"]
    );
}

/// The same model trained by two commands in two folders (deterministic training: the same
/// config and test figures) is two runs, each its folder's reference: both rows stay.
#[test]
fn twin_runs_of_two_commands_keep_a_row_each() {
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("a/hgn");
    run(&first, ModelKind::Hgn, "beauty", 0.31);
    std::fs::write(first.join("command.txt"), "ssi reproduce --out runs/a\n").unwrap();
    let (archived, _) = report::collect(&[root.path().to_path_buf()]);
    std::fs::remove_dir_all(root.path().join("a")).unwrap();
    let twin = root.path().join("b/hgn");
    run(&twin, ModelKind::Hgn, "beauty", 0.31);
    std::fs::write(
        twin.join("command.txt"),
        "ssi reproduce --preset best --out runs/b\n",
    )
    .unwrap();
    let (found, _) = report::collect(&[root.path().to_path_buf()]);
    assert_eq!(archived[0].fingerprint, found[0].fingerprint);
    let rows = report::merge(archived.clone(), found).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.config.as_str()).collect::<Vec<_>>(),
        ["a/hgn", "b/hgn"]
    );
    // Started by the same command (argv[0] aside): the same run, moved; one row.
    std::fs::write(
        twin.join("command.txt"),
        "/bin/ssi reproduce --out runs/a\n",
    )
    .unwrap();
    let (found, _) = report::collect(&[root.path().to_path_buf()]);
    let rows = report::merge(archived, found).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.config.as_str()).collect::<Vec<_>>(),
        ["b/hgn"]
    );
}

/// A run folder copied whole (`cp -r runs/orig runs/copy`: the same files, the same command) is
/// one run: the folder its command wrote keeps the row, and the copy is named in a note.
#[test]
fn a_copied_run_folder_is_one_row() {
    let root = tempfile::tempdir().unwrap();
    for name in ["orig", "copy"] {
        let dir = root.path().join("runs").join(name);
        run(&dir, ModelKind::Hgn, "beauty", 0.31);
        std::fs::write(
            dir.join("command.txt"),
            "ssi train --model hgn --out runs/orig\n",
        )
        .unwrap();
    }
    let (rows, notes) = report::collect(&[root.path().join("runs")]);
    assert_eq!(
        rows.iter().map(|r| r.config.as_str()).collect::<Vec<_>>(),
        ["orig"]
    );
    let note = notes.iter().find(|n| n.contains("a copy of")).unwrap();
    assert!(
        note.contains("runs/copy") && note.contains("runs/orig"),
        "{note}"
    );
    // Its twin trained by another command stays beside it.
    std::fs::write(
        root.path().join("runs/copy/command.txt"),
        "ssi train --model hgn --out runs/copy\n",
    )
    .unwrap();
    let (rows, _) = report::collect(&[root.path().join("runs")]);
    assert_eq!(rows.len(), 2);
}

/// Two folders whose names differ only in bytes that are not UTF-8 keep two names (the
/// bytes written `\xff`), not one lossy name that the report would refuse as two runs of one name.
#[cfg(unix)]
#[test]
fn folder_names_that_are_not_utf8_stay_apart() {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    for (i, b) in [b"run\xff".as_slice(), b"run\xfe"].into_iter().enumerate() {
        let dir = root.path().join(std::ffi::OsStr::from_bytes(b));
        run(&dir, ModelKind::Hgn, "beauty", 0.3 + i as f64 / 100.0);
    }
    let (found, notes) = report::collect(&[root.path().to_path_buf()]);
    let mut names: Vec<&str> = found.iter().map(|r| r.config.as_str()).collect();
    names.sort();
    assert_eq!(names, ["run\\xfe", "run\\xff"], "{notes:?}");
    assert_eq!(report::merge(vec![], found).unwrap().len(), 2);
}

/// A folder that held an archived run and now holds another (a different command trained
/// there since) keeps the old row beside the new one, under its own dataset.
#[test]
fn a_reused_folder_keeps_the_row_of_its_earlier_run() {
    let mut before = row("HGN", "a", false, None);
    before.dataset = "shop".into();
    before.path = Some("runs/a".into());
    before.fingerprint = Some("1".into());
    before.command = Some("ssi train --model hgn --out runs/a".into());
    let mut now = row("SASRec", "a", false, None);
    now.dataset = "small".into();
    now.path = Some("runs/a".into());
    now.fingerprint = Some("2".into());
    now.command = Some("ssi train --model sasrec --data small.txt --out runs/a".into());
    let rows = report::merge(vec![before.clone()], vec![now.clone()]).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Reported from another root, the same run under a new name keeps one row.
    let renamed = report::Row {
        config: "x/a".into(),
        dataset: "shop".into(),
        fingerprint: Some("1".into()),
        command: before.command.clone(),
        ..now
    };
    let rows = report::merge(vec![before], vec![renamed]).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
}

/// Archived rows are range-checked as run folders are: an edited figure is refused, naming the
/// archive, the row and the field.
#[test]
fn an_archived_row_out_of_range_is_refused_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("runs.json");
    let good = row("HGN", "beauty/hgn", false, None);
    let cases: [(&str, report::Row); 8] = [
        (
            "ndcg10 = 5",
            report::Row {
                ndcg10: 5.0,
                ..good.clone()
            },
        ),
        (
            "full_recall10 = -3",
            report::Row {
                full_recall10: Some(-3.0),
                ..good.clone()
            },
        ),
        (
            "train_minutes = 1e308",
            report::Row {
                train_minutes: Some(1e308),
                ..good.clone()
            },
        ),
        (
            "curve has the point (epoch 2, 1e300)",
            report::Row {
                curve: vec![(1.0, 0.3), (2.0, 1e300)],
                ..good.clone()
            },
        ),
        // An epoch past any run would make the chart's axis read 1e300.
        (
            "full_curve has the point (epoch 1e300, 0.05)",
            report::Row {
                full_curve: vec![(1.0, 0.03), (1e300, 0.05)],
                ..good.clone()
            },
        ),
        (
            "kept_by.full.ndcg10 = 7 is not a fraction",
            report::Row {
                kept_by: [(
                    "full".to_string(),
                    report::KeptBy {
                        epoch: 2,
                        ndcg10: 7.0,
                        full_ndcg10: None,
                    },
                )]
                .into(),
                ..good.clone()
            },
        ),
        (
            "ndcg10 = 0.6 is above recall10 = 0.5",
            report::Row {
                ndcg10: 0.6,
                ..good.clone()
            },
        ),
        (
            "curve has the point (epoch 1.5, 0.3)",
            report::Row {
                curve: vec![(1.5, 0.3)],
                ..good.clone()
            },
        ),
    ];
    for (want, bad) in cases {
        std::fs::write(&archive, report::to_archive(&[good.clone(), bad])).unwrap();
        let err = report::read_archive(&archive).unwrap_err();
        assert!(
            err.contains("runs.json: row 2 (beauty/hgn of beauty)"),
            "{err}"
        );
        assert!(err.contains(want), "{want}: {err}");
    }
    std::fs::write(&archive, report::to_archive(&[good])).unwrap();
    assert_eq!(report::read_archive(&archive).unwrap().len(), 1);
}

#[test]
fn a_file_named_like_a_papers_dataset_is_marked_when_its_content_differs() {
    let root = tempfile::tempdir().unwrap();
    let published = ssi_data::published::KNOWN[0].sha256;
    for (name, sha) in [("same", published), ("other", "00ff")] {
        let dir = root.path().join(name);
        run(&dir, ModelKind::Hgn, "Beauty", 0.3);
        let path = dir.join("config.json");
        let mut cfg: RunConfig =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        cfg.dataset.sha256 = Some(sha.into());
        std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    }
    let (rows, skipped) = report::collect(&[root.path().to_path_buf()]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let of = |c: &str| rows.iter().find(|r| r.config == c).unwrap().dataset.clone();
    assert_eq!(of("same"), "beauty");
    assert_eq!(of("other"), "beauty (not the published file)");
    // Its row is not scored against the published figures of Beauty.
    let csv = report::to_csv(&rows, &|_: &str, _: &str| None);
    let line = csv.lines().find(|l| l.contains(",other,")).unwrap();
    assert!(!line.contains("0.3816"), "{line}");
}

#[test]
fn two_files_of_one_name_get_a_table_each() {
    let root = tempfile::tempdir().unwrap();
    for (dir, kind, sha) in [
        ("a/sasrec", ModelKind::Sasrec, "aaaaaaaa11"),
        ("b/sasrec", ModelKind::Sasrec, "bbbbbbbb22"),
        ("c/hgn", ModelKind::Hgn, "aaaaaaaa11"),
    ] {
        let dir = root.path().join(dir);
        run(&dir, kind, "shop", 0.3);
        let path = dir.join("config.json");
        let mut cfg: RunConfig =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        cfg.dataset.sha256 = Some(sha.into());
        std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    }
    // Two roots whose runs have one name: told apart by their data, not refused.
    let found = |roots: &[&str]| {
        let roots: Vec<_> = roots.iter().map(|r| root.path().join(r)).collect();
        report::collect(&roots).0
    };
    let rows = report::merge(Vec::new(), found(&["a", "b", "c"])).unwrap();
    let mut names: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.dataset.clone(), r.config.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("shop (data aaaaaaaa)".to_string(), "hgn".to_string()),
            ("shop (data aaaaaaaa)".into(), "sasrec".into()),
            ("shop (data bbbbbbbb)".into(), "sasrec".into()),
        ]
    );
    // Archived, then reported with one of them only: the labels stay, one row per run.
    let again = report::merge(rows.clone(), found(&["a"])).unwrap();
    assert_eq!(again.len(), 3, "{again:?}");
    let b = again
        .iter()
        .find(|r| r.dataset_sha256.as_deref() == Some("bbbbbbbb22"))
        .unwrap();
    assert_eq!(b.dataset, "shop (data bbbbbbbb)");
    // One file only: the plain name.
    let one = report::merge(Vec::new(), found(&["c"])).unwrap();
    assert_eq!(one[0].dataset, "shop");
}
