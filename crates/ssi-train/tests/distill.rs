//! Self-supervised imitation end to end on a tiny synthetic shop: teachers trained with their
//! consistency tasks, then a student distilled from them, checkpointed, resumed and evaluated.

mod common;

use burn::tensor::Device;
use common::{configs, dataset, trainer};
use ssi_data::Dataset;
use ssi_data::rng::seeded;
use ssi_models::common::{Batch, TrainBatch};
use ssi_models::imitation::{ImitationConfig, ImitationPoints, prediction_imitation};
use ssi_models::loss::Softmax;
use ssi_models::{ModelKind, SequentialModel};
use ssi_train::RunDir;
use ssi_train::checkpoint::DatasetInfo;
use ssi_train::distill::{Distill, DistillSpec, describe_teachers};
use ssi_train::trainer::Objective;
use ssi_train::trainer::{EpochLog, Silent, TrainConfig};
use std::path::{Path, PathBuf};

fn train_teacher(ds: &Dataset, dir: &Path, task: &str) {
    let (m, t) = configs(ModelKind::Bert4rec, ds);
    let m = m
        .with_overrides(&[("consistency".into(), task.into())])
        .unwrap();
    trainer(ds, dir, None)
        .run(
            &m,
            &t.with_epochs(12).with_patience(100),
            false,
            &mut Silent,
        )
        .unwrap();
}

fn distill(
    ds: &Dataset,
    dir: &Path,
    teachers: &[PathBuf],
    imitation: ImitationConfig,
    t: &TrainConfig,
    resume: bool,
    stop: Option<usize>,
) {
    let (student, _) = configs(ModelKind::Hgn, ds);
    let named = describe_teachers(teachers, &DatasetInfo::of(ds, None)).unwrap();
    let tr = trainer(ds, dir, stop);
    let spec = DistillSpec {
        teachers: named.iter().map(|(d, _)| d.clone()).collect(),
        teacher_names: named.iter().map(|(_, n)| n.clone()).collect(),
        imitation,
        teacher_weights: None,
    };
    let run = tr.run_config(&student, t, Some(spec));
    let device = tr.device.clone();
    tr.run_objective(run, resume, &mut Silent, |r| {
        Distill::from_run(r, &device)?.prepare(ds, &device)
    })
    .unwrap();
}

/// Mean KL(teacher ‖ student) on every user's training history.
fn kl_to_teacher(ds: &Dataset, student_dir: &Path, teacher_dir: &Path) -> f32 {
    let d = Device::flex();
    let (_, s) = RunDir::new(student_dir).load_best(&d).unwrap();
    let (_, t) = RunDir::new(teacher_dir).load_best(&d).unwrap();
    let hist: Vec<&[u32]> = ds.sequences.iter().map(|q| &q[..q.len() - 2]).collect();
    let users: Vec<Option<usize>> = (0..hist.len()).map(Some).collect();
    let b = Batch {
        items: &hist,
        users: &users,
    };
    prediction_imitation(t.score_all(b), s.score_all(b), 1.0).into_scalar()
}

#[test]
fn students_imitate_their_teachers_and_runs_resume() {
    let ds = dataset();
    let root = tempfile::tempdir().unwrap();
    let teachers: Vec<PathBuf> = ["temporal", "persona", "global"]
        .iter()
        .map(|task| {
            let dir = root.path().join(task);
            train_teacher(&ds, &dir, task);
            dir
        })
        .collect();
    let (_, t) = configs(ModelKind::Hgn, &ds);
    let t = t.with_epochs(3);
    let long = t.clone().with_epochs(10).with_patience(100);

    // Imitation only on predictions, with λ fixed, against the student's own loss alone
    // (same seed, same batches): imitation must move the student towards the teacher.
    let only_kl = ImitationConfig::new()
        .with_representation(false)
        .with_learn_lambda(false);
    let distilled = root.path().join("distilled");
    distill(&ds, &distilled, &teachers[..1], only_kl, &long, false, None);
    let plain = root.path().join("plain");
    let (student, _) = configs(ModelKind::Hgn, &ds);
    trainer(&ds, &plain, None)
        .run(&student, &long, false, &mut Silent)
        .unwrap();
    let kl_distilled = kl_to_teacher(&ds, &distilled, &teachers[0]);
    let kl_plain = kl_to_teacher(&ds, &plain, &teachers[0]);
    assert!(
        kl_distilled < 0.8 * kl_plain,
        "KL to the teacher: distilled {kl_distilled}, plain {kl_plain}"
    );

    // The full objective with three teachers: λ_i logged per epoch and learned; interrupted
    // after one epoch and resumed, it ends where an uninterrupted run ends.
    let full = root.path().join("full");
    distill(
        &ds,
        &full,
        &teachers,
        ImitationConfig::new(),
        &t,
        false,
        Some(1),
    );
    assert_eq!(RunDir::new(&full).state().unwrap().epoch, 1);
    distill(
        &ds,
        &full,
        &teachers,
        ImitationConfig::new(),
        &t,
        true,
        None,
    );
    let straight = root.path().join("straight");
    distill(
        &ds,
        &straight,
        &teachers,
        ImitationConfig::new(),
        &t,
        false,
        None,
    );
    let log = |dir: &Path| -> Vec<EpochLog> {
        std::fs::read_to_string(dir.join("log.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (a, b) = (log(&full), log(&straight));
    assert_eq!(a.len(), 3);
    // Both protocols every epoch: among all items the target ranks no higher than among 99.
    for x in &a {
        let (sampled, full) = (x.valid_ndcg10.unwrap(), x.valid_full_ndcg10.unwrap());
        assert!(
            (0.0..=sampled).contains(&full),
            "epoch {}: {full} vs {sampled}",
            x.epoch
        );
    }
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.loss, y.loss, "epoch {}", x.epoch);
        assert_eq!(x.extra, y.extra);
    }
    // Teachers' encodings cached (the default) or recomputed every step: the same objective.
    let uncached = root.path().join("uncached");
    distill(
        &ds,
        &uncached,
        &teachers,
        ImitationConfig::new().with_cache_teachers(false),
        &t,
        false,
        None,
    );
    for (x, y) in a.iter().zip(&log(&uncached)) {
        let rel = (x.loss - y.loss).abs() / y.loss.abs();
        assert!(rel < 1e-4, "epoch {}: {} vs {}", x.epoch, x.loss, y.loss);
    }
    // With teacher_full_history the teachers read the whole training history up to the same
    // point; HGN's own window (5) is what the student reads there.
    let full_history = ImitationConfig::new().with_teacher_full_history(true);
    let wide = root.path().join("wide");
    distill(
        &ds,
        &wide,
        &teachers,
        full_history.clone(),
        &t,
        false,
        Some(1),
    );
    let (student, _) = configs(ModelKind::Hgn, &ds);
    let spec = DistillSpec {
        teachers: teachers.clone(),
        teacher_names: vec!["temporal".into(), "persona".into(), "global".into()],
        imitation: full_history,
        teacher_weights: None,
    };
    let device = Device::flex();
    let run = trainer(&ds, &wide, None).run_config(&student, &t, Some(spec));
    let d = Distill::from_run(&run, &device)
        .unwrap()
        .prepare(&ds, &device)
        .unwrap();
    let long = (0..ds.n_users())
        .find(|&u| ds.sequences[u].len() > 8)
        .expect("a long history");
    let (s, th) = d.imitation_points(long)[0];
    let train = &ds.sequences[long][..ds.sequences[long].len() - 2];
    assert_eq!(s, &train[train.len() - 6..train.len() - 1]);
    assert_eq!(th, &train[..train.len() - 1]);
    // The loss reads the prepared encodings (one per teacher and sequence), and they are the
    // teachers' encodings of those longer histories: the same loss as with no cache at all.
    let seq = &train[train.len() - 6..];
    let batch = TrainBatch {
        items: &[seq],
        users: &[long],
    };
    let m = d.init(&device);
    let cached: f32 = d
        .loss(&m, batch, Softmax::Full, &mut seeded(1))
        .into_scalar();
    assert_eq!(d.cache_hits(), 3);
    let mut plain_spec = run.clone();
    plain_spec.distill.as_mut().unwrap().imitation = ImitationConfig::new()
        .with_teacher_full_history(true)
        .with_cache_teachers(false);
    let d2 = Distill::from_run(&plain_spec, &device)
        .unwrap()
        .prepare(&ds, &device)
        .unwrap();
    let fresh: f32 = d2
        .loss(&m, batch, Softmax::Full, &mut seeded(1))
        .into_scalar();
    assert_eq!(d2.cache_hits(), 0);
    assert!(
        (cached - fresh).abs() <= 1e-4 * fresh.abs(),
        "{cached} vs {fresh}"
    );
    // Imitation at both points: the history before the last item and the whole sequence (whose
    // next item is unseen); the teachers read the training history up to each point.
    let mut both_spec = run.clone();
    both_spec.distill.as_mut().unwrap().imitation = ImitationConfig::new()
        .with_teacher_full_history(true)
        .with_points(Some(ImitationPoints::Both));
    let d3 = Distill::from_run(&both_spec, &device)
        .unwrap()
        .prepare(&ds, &device)
        .unwrap();
    let points = d3.imitation_points(long);
    assert_eq!(points.len(), 2);
    assert_eq!(
        points[0],
        (
            &train[train.len() - 6..train.len() - 1],
            &train[..train.len() - 1]
        )
    );
    assert_eq!(points[1], (&train[train.len() - 5..], train));
    let cached: f32 = d3
        .loss(&m, batch, Softmax::Full, &mut seeded(1))
        .into_scalar();
    assert_eq!(d3.cache_hits(), 6);
    both_spec.distill.as_mut().unwrap().imitation.cache_teachers = false;
    let d4 = Distill::from_run(&both_spec, &device)
        .unwrap()
        .prepare(&ds, &device)
        .unwrap();
    let fresh_both: f32 = d4
        .loss(&m, batch, Softmax::Full, &mut seeded(1))
        .into_scalar();
    assert!(
        (cached - fresh_both).abs() <= 1e-4 * fresh_both.abs(),
        "{cached} vs {fresh_both}"
    );
    let lambda = a[2].extra["lambda"].as_object().unwrap();
    let names: Vec<&str> = lambda.keys().map(String::as_str).collect();
    assert_eq!(names, ["global", "persona", "temporal"]);
    // λ starts at 1 and moves (eq. 8 pulls it up while the imitation terms are small).
    for v in lambda.values() {
        let v = v.as_f64().unwrap();
        assert!(v > 0.0 && (v - 1.0).abs() > 1e-4, "{lambda:?}");
    }
    // The distilled student is an ordinary checkpoint: config says HGN, it evaluates.
    let (cfg, model) = RunDir::new(&full).load_best(&Device::flex()).unwrap();
    assert_eq!(cfg.model.kind(), ModelKind::Hgn);
    assert_eq!(model.kind(), ModelKind::Hgn);
    assert_eq!(
        cfg.distill.unwrap().teacher_names,
        ["temporal", "persona", "global"]
    );
}

#[test]
fn teachers_of_another_dataset_are_refused() {
    let ds = dataset();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t");
    train_teacher(&ds, &dir, "temporal");
    // Same users and items, other content: refused by the fingerprint.
    let mut other = ds.clone();
    other.sequences[0].swap(0, 1);
    let err =
        describe_teachers(std::slice::from_ref(&dir), &DatasetInfo::of(&other, None)).unwrap_err();
    assert!(err.to_string().contains("content has changed"), "{err}");
    let mut fewer = ds.clone();
    fewer.sequences.pop();
    fewer.user_ids.pop();
    let err =
        describe_teachers(std::slice::from_ref(&dir), &DatasetInfo::of(&fewer, None)).unwrap_err();
    assert!(err.to_string().contains("users"), "{err}");
    let err = describe_teachers(&[], &DatasetInfo::of(&ds, None)).unwrap_err();
    assert!(err.to_string().contains("at least one teacher"), "{err}");
    let twice = [dir.clone(), root.path().join("t/../t")];
    let err = describe_teachers(&twice, &DatasetInfo::of(&ds, None)).unwrap_err();
    assert!(err.to_string().contains("given twice"), "{err}");
}
