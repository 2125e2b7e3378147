//! `ssi bench`: training throughput and inference latency of every model on a backend, on
//! synthetic batches of fixed shape (so runs are comparable across machines and versions).

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use clap::Args;
use ssi_data::rng::{Rng, seeded};
use ssi_models::common::{Batch, TrainBatch};
use ssi_models::loss::Softmax;
use ssi_models::{ModelConfig, ModelKind, SequentialModel};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Models to measure (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sasrec,bert4rec,gru4rec,hgn"
    )]
    models: Vec<ModelKind>,
    /// Catalogue size (Beauty has 12,101 items).
    #[arg(long, default_value_t = 12101)]
    items: usize,
    /// Sequences per training step.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Length of every training sequence (no padding: the worst case).
    #[arg(long, default_value_t = 50)]
    len: usize,
    /// Width of every model's item vectors and layers.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Timed training steps per model.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed training steps before them (GPU backends compile and autotune kernels on the
    /// first steps of each shape).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Batch shapes: bucketed on GPU backends and exact on the CPU (auto), or forced either way,
    /// to measure what bucketing gains (`ssi_models::common::Shapes`).
    #[arg(long, default_value = "auto", value_parser = ["auto", "exact", "bucketed"])]
    shapes: String,
    /// 0: full softmax; k: sampled softmax with k shared negatives.
    #[arg(long, default_value_t = 0)]
    sampled_negatives: usize,
    /// Full-softmax cross-entropy as trained (fused: one kernel with its own backward on the CPU
    /// backend, logsumexp elsewhere), as tensor operations (logsumexp: logsumexp minus the target's
    /// logit), or the straightforward log-softmax + gather (log-softmax), to measure the gains.
    #[arg(long, default_value = "fused", value_parser = ["fused", "logsumexp", "log-softmax"])]
    ce: String,
    /// Dropout masks as trained (auto: Xoshiro256++ masks drawn on the CPU for the CPU backend,
    /// burn's on-device `Dropout` on a GPU), or forced to either (fast, burn), to measure the gain.
    #[arg(long, default_value = "auto", value_parser = ["auto", "fast", "burn"])]
    dropout: String,
    /// GELU of the transformers as trained (fused: one vectorised pass forward and one backward on
    /// the CPU backend, burn's elsewhere), or burn's own everywhere, to measure the gain.
    #[arg(long, default_value = "fused", value_parser = ["fused", "burn"])]
    gelu: String,
    /// The attention's softmax as trained (fused: three passes forward and two backward per row
    /// on the CPU backend, burn's elsewhere), or burn's own everywhere, to measure the gain.
    #[arg(long, default_value = "fused", value_parser = ["fused", "burn"])]
    softmax: String,
    /// Eq. 5 (prediction imitation) as trained (fused: one kernel per teacher with its own
    /// backward on the CPU backend, tensor operations elsewhere), or as tensor operations
    /// everywhere, to measure the gain (with --imitation).
    #[arg(long, default_value = "fused", value_parser = ["fused", "tensor"])]
    kl: String,
    /// Also time eq. 5 of a distillation step: a student imitating three teachers over the whole
    /// catalogue at --batch points (forward and backward of the student's side).
    #[arg(long)]
    imitation: bool,
    /// Dropout probability of the models (0.5: `configs/small.json`'s SASRec).
    #[arg(long, default_value_t = 0.2)]
    dropout_prob: f64,
    /// BERT4Rec's share of masked positions (its default, 0.6): the rows its output layer scores.
    #[arg(long, default_value_t = 0.6)]
    mask_prob: f64,
    /// cpu (burn's flex backend) or wgpu (a build with `--features wgpu`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Freed memory kept in the heap for the next step (keep, as `ssi` runs) or handed back to
    /// the OS at once (return, glibc's default), to measure the difference.
    #[arg(long, default_value = "keep", value_parser = ["keep", "return"])]
    freed_memory: String,
    /// Also run the PyTorch reference (bench/torch_ref.py) with this Python, same shapes, and
    /// report burn's throughput as a ratio of PyTorch's (full softmax only).
    #[arg(long, value_name = "PYTHON")]
    pytorch: Option<String>,
    /// The PyTorch reference script.
    #[arg(long, default_value = "bench/torch_ref.py")]
    pytorch_script: std::path::PathBuf,
    /// Where PyTorch runs: cpu or cuda. Default: cuda when --device is wgpu (GPU against GPU),
    /// else cpu.
    #[arg(long)]
    pytorch_device: Option<String>,
    /// Print the measurements as one JSON array (one object per model).
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Row {
    model: String,
    backend: String,
    train_ms_per_step: f64,
    train_seqs_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    infer_ms_batch1: Option<f64>,
    /// Top-N inference for `infer_users` users at once (the batch, at most 256).
    #[serde(skip_serializing_if = "Option::is_none")]
    infer_ms_batch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    infer_users: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pytorch_ms_per_step: Option<f64>,
    /// burn throughput / PyTorch throughput (> 1: burn is faster).
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_vs_pytorch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pytorch_device: Option<String>,
}

fn pytorch_device(a: &BenchArgs) -> String {
    match (&a.pytorch_device, a.device.as_str()) {
        (Some(d), _) => d.clone(),
        (None, "wgpu" | "gpu") => "cuda".into(),
        (None, _) => "cpu".into(),
    }
}

/// Runs the PyTorch reference; returns ms per training step by model name.
fn pytorch(a: &BenchArgs, python: &str) -> Result<std::collections::HashMap<String, f64>> {
    if a.sampled_negatives != 0 {
        anyhow::bail!("--pytorch compares the full-softmax step only: drop --sampled-negatives");
    }
    let models: Vec<String> = a
        .models
        .iter()
        .map(|m| m.name().to_ascii_lowercase())
        .collect();
    let out = std::process::Command::new(python)
        .arg(&a.pytorch_script)
        .args(["--models", &models.join(",")])
        .args([
            "--items",
            &a.items.to_string(),
            "--batch",
            &a.batch.to_string(),
        ])
        .args([
            "--len",
            &a.len.to_string(),
            "--hidden",
            &a.hidden.to_string(),
        ])
        .args(["--steps", &a.steps.to_string()])
        .args(["--warmup", &a.warmup.to_string()])
        .args(["--mask-prob", &a.mask_prob.to_string()])
        .args(["--device", &pytorch_device(a)])
        .output()
        .with_context(|| format!("cannot run {python} {}", a.pytorch_script.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!(
            "the PyTorch reference ({python} {}) failed ({}): {}",
            a.pytorch_script.display(),
            out.status,
            if stderr.trim().is_empty() {
                "it printed no error".into()
            } else {
                stderr
            }
        );
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .context("the PyTorch reference printed no JSON list")?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r["model"].as_str()?.to_string(),
                r["train_ms_per_step"].as_f64()?,
            ))
        })
        .collect())
}

/// Milliseconds per call of `f` after `warmup` untimed calls; the first failure (a GPU out of
/// memory surfaces at the read-back) stops the measurement.
fn time<E: std::fmt::Display, F: FnMut() -> Result<(), E>>(
    warmup: usize,
    reps: usize,
    mut f: F,
) -> Result<f64> {
    let mut run = || f().map_err(|e| anyhow::anyhow!(ssi_models::common::brief(&e.to_string())));
    for _ in 0..warmup.max(1) {
        run()?;
    }
    let t = Instant::now();
    for _ in 0..reps {
        run()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1000.0 / reps as f64)
}

pub fn bench(a: BenchArgs) -> Result<()> {
    check_sizes(&a)?;
    for note in unused_options(&a) {
        errln!("note: {note}");
    }
    let softmax = softmax(&a)?;
    let configs: Vec<ModelConfig> = a
        .models
        .iter()
        .map(|&kind| model_config(&a, kind))
        .collect::<Result<_>>()?;
    let dev = crate::source::device(&a.device)?;
    ssi_models::transformer::set_dropout_masks(match a.dropout.as_str() {
        "fast" => ssi_models::transformer::DropoutMasks::Fast,
        "burn" => ssi_models::transformer::DropoutMasks::Burn,
        _ => ssi_models::transformer::DropoutMasks::Auto,
    });
    ssi_models::fused_gelu::set_burn_gelu(a.gelu == "burn");
    ssi_models::fused_softmax::set_burn_softmax(a.softmax == "burn");
    ssi_models::fused_kl::set_tensor_kl(a.kl == "tensor");
    ssi_models::common::set_shapes(crate::source::shapes(&a.shapes));
    crate::keep_freed_memory(a.freed_memory == "keep");
    let mut rng = seeded(1);
    let seqs: Vec<Vec<u32>> = (0..a.batch)
        .map(|_| {
            (0..a.len + 1)
                .map(|_| rng.random_range(1..=a.items as u32))
                .collect()
        })
        .collect();
    let reference = match &a.pytorch {
        Some(py) => Some(pytorch(&a, py)?),
        None => None,
    };
    let mut rows = Vec::new();
    for cfg in &configs {
        let torch_ms = reference
            .as_ref()
            .and_then(|r| r.get(&cfg.kind().name().to_ascii_lowercase()).copied());
        let row = bench_model(&a, cfg, &dev, &seqs, softmax, torch_ms)?;
        if !a.json {
            print_row(&a, &row);
        }
        rows.push(row);
    }
    if a.imitation {
        let row = bench_imitation(&a, &dev)?;
        if !a.json {
            print_row(&a, &row);
        }
        rows.push(row);
    }
    if a.json {
        outln!("{}", serde_json::to_string(&rows)?);
    }
    Ok(())
}

/// Refuses sizes of zero and sizes beyond one machine's memory, before allocating anything.
fn check_sizes(a: &BenchArgs) -> Result<()> {
    for (name, v) in [
        ("--items", a.items),
        ("--batch", a.batch),
        ("--len", a.len),
        ("--hidden", a.hidden),
        ("--steps", a.steps),
    ] {
        if v == 0 {
            anyhow::bail!("{name} must be at least 1");
        }
    }
    // A step takes milliseconds to seconds: a million is days of benchmark, and a count near
    // usize::MAX would overflow the sum with --warmup.
    if a.steps.saturating_add(a.warmup) > 1_000_000 {
        anyhow::bail!(
            "--steps {} with --warmup {} is more than a million steps per model: a benchmark times a few (default 5); train with `ssi train`",
            a.steps,
            a.warmup
        );
    }
    // The logits of one step are batch x len x items floats.
    let logits = (a.batch as f64) * (a.len as f64) * (a.items as f64);
    let positions = (a.batch as f64) * (a.len as f64 + 1.0);
    if logits > 2e9 || positions > 1e7 || a.items > 50_000_000 || a.hidden > 8192 {
        anyhow::bail!(
            "--batch {} x --len {} x --items {} ({logits:.1e} logits per step) or --hidden {} is beyond what one machine's memory holds (at most 2e9 logits, 1e7 positions, 50M items, hidden 8192)",
            a.batch,
            a.len,
            a.items,
            a.hidden
        );
    }
    if matches!(a.device.as_str(), "cpu" | "flex") {
        logits_fit(a, ssi_train::job::available_memory())?;
    }
    // Attention models hold batch x len^2 scores per head and layer, with their gradients.
    let attends = a
        .models
        .iter()
        .any(|&m| ModelConfig::new(m, 10, 10).to_json().get("heads").is_some());
    let scores = (a.batch as f64) * (a.len as f64 + 1.0).powi(2);
    if attends && scores > 2.5e8 {
        anyhow::bail!(
            "--batch {} x --len {}^2 is {scores:.1e} attention scores per head and layer, beyond what one machine's memory holds with their gradients (at most 2.5e8): lower --batch or --len",
            a.batch,
            a.len
        );
    }
    if a.sampled_negatives >= a.items {
        anyhow::bail!(
            "--sampled-negatives {} is not below --items {}: sample fewer (as `train` requires), or 0 for the full softmax",
            a.sampled_negatives,
            a.items
        );
    }
    // The item table in weights, gradients and Adam's two moments: 16 bytes an entry.
    let table = (a.items as f64 + 1.0) * a.hidden as f64;
    if table > 1e9 {
        anyhow::bail!(
            "--items {} x --hidden {} is an item table of {table:.1e} entries, about {:.0} GiB with its gradients and Adam's moments (at most 1e9 entries)",
            a.items,
            a.hidden,
            table * 16.0 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

/// Options given that this invocation does not use, said so that a measurement is not read as
/// theirs.
fn unused_options(a: &BenchArgs) -> Vec<String> {
    let mut notes = Vec::new();
    let defaults = <Cli as clap::Parser>::parse_from(["bench"]).bench;
    if a.mask_prob != defaults.mask_prob && !a.models.contains(&ModelKind::Bert4rec) {
        notes.push("--mask-prob applies to BERT4Rec, which is not in --models".to_string());
    }
    if a.kl != defaults.kl && !a.imitation {
        notes.push("--kl applies to eq. 5, measured with --imitation only".to_string());
    }
    if a.pytorch.is_none()
        && (a.pytorch_device.is_some() || a.pytorch_script != defaults.pytorch_script)
    {
        notes.push("--pytorch-device and --pytorch-script apply with --pytorch only".to_string());
    }
    notes
}

/// `bench`'s options alone, to read their defaults.
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// Host memory per logit on the CPU, measured as the slope of peak RSS (`/usr/bin/time -f %M`)
/// over the catalogue size: a model's step holds its logits with their gradient and softmax;
/// eq. 5 (`--imitation`) the student's logits and gradient and three teachers', with the fused
/// KL's saved rows or, as tensor operations, each teacher's log-softmax, exponent and products.
const MODEL_BYTES_PER_LOGIT: f64 = 12.0;
const IMITATION_BYTES_PER_LOGIT: [(&str, f64); 2] = [("fused", 26.0), ("tensor", 50.0)];

/// A step needing more than the free memory (`free`, where the OS tells it) would be killed by
/// the OS mid-run: refused with the sizes, for the models' steps and eq. 5's alike.
fn logits_fit(a: &BenchArgs, free: Option<u64>) -> Result<()> {
    let Some(free) = free else {
        return Ok(());
    };
    let gib = |b: f64| b / (1u64 << 30) as f64;
    let logits = (a.batch as f64) * (a.len as f64) * (a.items as f64);
    let bytes = logits * MODEL_BYTES_PER_LOGIT;
    if !a.models.is_empty() && bytes > free as f64 {
        anyhow::bail!(
            "--batch {} x --len {} x --items {} is {logits:.1e} logits per step, about {:.1} GiB with their gradients, more than the {:.1} GiB free: lower --batch, --len or --items",
            a.batch,
            a.len,
            a.items,
            gib(bytes),
            gib(free as f64)
        );
    }
    let per = IMITATION_BYTES_PER_LOGIT
        .iter()
        .find(|(kl, _)| *kl == a.kl)
        .map_or(IMITATION_BYTES_PER_LOGIT[1].1, |(_, b)| *b);
    let logits = (a.batch as f64) * (a.items as f64);
    let bytes = logits * per;
    if a.imitation && bytes > free as f64 {
        anyhow::bail!(
            "--imitation: --batch {} x --items {} is {logits:.1e} logits for the student and each of three teachers, about {:.1} GiB with eq. 5's own ({} KL), more than the {:.1} GiB free: lower --batch or --items",
            a.batch,
            a.items,
            gib(bytes),
            a.kl,
            gib(free as f64)
        );
    }
    Ok(())
}

fn softmax(a: &BenchArgs) -> Result<Softmax> {
    if a.sampled_negatives != 0 && a.ce != "fused" {
        anyhow::bail!(
            "--ce {} applies to the full softmax only: drop --sampled-negatives",
            a.ce
        );
    }
    Ok(match (a.sampled_negatives, a.ce.as_str()) {
        (0, "log-softmax") => Softmax::FullLogSoftmax,
        (0, "logsumexp") => Softmax::FullTensor,
        (0, _) => Softmax::Full,
        (k, _) => Softmax::Sampled(k),
    })
}

/// The model bench measures: `kind` at `--hidden`, `--len`, `--dropout-prob` and `--mask-prob`,
/// range-checked (for every model before any is measured).
fn model_config(a: &BenchArgs, kind: ModelKind) -> Result<ModelConfig> {
    // JSON has no NaN or infinity: they would be read as null.
    if !a.dropout_prob.is_finite() {
        anyhow::bail!("--dropout-prob {}: a probability in [0, 1)", a.dropout_prob);
    }
    if !a.mask_prob.is_finite() {
        anyhow::bail!("--mask-prob {}: a probability in (0, 1]", a.mask_prob);
    }
    let cfg = ModelConfig::new(kind, a.items, a.batch)
        .with_overrides(&[
            ("hidden".into(), a.hidden.into()),
            ("dropout".into(), a.dropout_prob.into()),
        ])
        .map_err(|e| anyhow::anyhow!("{e} (from --hidden and --dropout-prob)"))?;
    // Models that read a fixed window (HGN) have no max_len; only BERT4Rec masks.
    let json = cfg.to_json();
    let mut extra: Vec<(String, serde_json::Value)> = Vec::new();
    if json.get("max_len").is_some() {
        extra.push(("max_len".into(), a.len.into()));
    }
    if json.get("mask_prob").is_some() {
        extra.push(("mask_prob".into(), a.mask_prob.into()));
    }
    // The model's hidden and max_len are bench's --hidden and --len: an error names those.
    let flags = |e: String| {
        anyhow::anyhow!(
            "{e} (ssi bench sets the model's hidden from --hidden {}, max_len from --len {}, dropout from --dropout-prob {} and BERT4Rec's mask_prob from --mask-prob {}; the transformers have 2 heads, so --hidden must be even)",
            a.hidden,
            a.len,
            a.dropout_prob,
            a.mask_prob
        )
    };
    let cfg = cfg
        .with_overrides(&extra)
        .map_err(|e| flags(e.to_string()))?;
    cfg.validate().map_err(|e| flags(e.to_string()))?;
    Ok(cfg)
}

/// One model: `--steps` training steps on `seqs`, then top-N inference for 1 and 256 users.
fn bench_model(
    a: &BenchArgs,
    cfg: &ModelConfig,
    dev: &burn::tensor::Device,
    seqs: &[Vec<u32>],
    softmax: Softmax,
    torch_ms: Option<f64>,
) -> Result<Row> {
    let kind = cfg.kind();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let users: Vec<usize> = (0..a.batch).collect();
    let train_dev = dev.clone().autodiff();
    let mut model = cfg.init(&train_dev);
    let mut optim = AdamConfig::new().init();
    let mut step_rng = seeded(2);
    let train_ms = time(a.warmup, a.steps, || {
        let loss = model.train_loss(
            TrainBatch {
                items: &refs,
                users: &users,
            },
            softmax,
            &mut step_rng,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model.clone(), grads);
        dev.sync()
    })
    .with_context(|| {
        format!(
            "{} training step on {} (--batch {} --len {} --items {})",
            kind.name(),
            a.device,
            a.batch,
            a.len,
            a.items
        )
    })?;
    let eval = model.valid();
    let hist: Vec<&[u32]> = refs.iter().map(|s| &s[..a.len]).collect();
    let u: Vec<Option<usize>> = (0..a.batch).map(Some).collect();
    let infer = |n: usize| {
        time(1, 5, || {
            let s = eval.score_all(Batch {
                items: &hist[..n],
                users: &u[..n],
            });
            s.try_into_data().map(|_| ())
        })
        .with_context(|| format!("{} inference for {n} users on {}", kind.name(), a.device))
    };
    Ok(Row {
        pytorch_ms_per_step: torch_ms,
        ratio_vs_pytorch: torch_ms.map(|t| t / train_ms),
        pytorch_device: torch_ms.map(|_| pytorch_device(a)),
        model: kind.name().into(),
        backend: a.device.clone(),
        train_ms_per_step: train_ms,
        train_seqs_per_s: a.batch as f64 / (train_ms / 1000.0),
        infer_ms_batch1: Some(infer(1)?),
        infer_ms_batch: Some(infer(a.batch.min(256))?),
        infer_users: Some(a.batch.min(256)),
    })
}

/// Eq. 5 of one distillation step at T = 4: the student's logits at --batch points against three
/// frozen teachers' (a device without autodiff, as `ssi distill` holds them), forward and the
/// backward of the student's side.
fn bench_imitation(a: &BenchArgs, dev: &burn::tensor::Device) -> Result<Row> {
    use burn::tensor::{Tensor, TensorData};
    const TEACHERS: u64 = 3;
    let shape = [a.batch, a.items];
    let random = |seed: u64| {
        let mut rng = seeded(seed);
        let v: Vec<f32> = (0..a.batch * a.items)
            .map(|_| 8.0 * (rng.random::<f32>() - 0.5))
            .collect();
        TensorData::new(v, shape)
    };
    let train_dev = dev.clone().autodiff();
    let student = Tensor::<2>::from_data(random(0), &train_dev).require_grad();
    let teachers: Vec<Tensor<2>> = (1..=TEACHERS)
        .map(|i| Tensor::from_data(random(i), dev))
        .collect();
    let ms = time(a.warmup, a.steps, || {
        let prediction = ssi_models::imitation::StudentPrediction::new(student.clone(), 4.0);
        let loss = teachers
            .iter()
            .map(|t| prediction.imitate(t.clone()))
            .reduce(|x, y| x + y)
            .expect("three teachers");
        let grads = loss.backward();
        let _grad = student.grad(&grads);
        dev.sync()
    })
    .with_context(|| {
        format!(
            "eq. 5 on {} (--batch {} --items {})",
            a.device, a.batch, a.items
        )
    })?;
    Ok(Row {
        model: format!("eq. 5 x{TEACHERS} ({})", a.kl),
        backend: a.device.clone(),
        train_ms_per_step: ms,
        train_seqs_per_s: a.batch as f64 / (ms / 1000.0),
        infer_ms_batch1: None,
        infer_ms_batch: None,
        infer_users: None,
        pytorch_ms_per_step: None,
        ratio_vs_pytorch: None,
        pytorch_device: None,
    })
}

fn print_row(a: &BenchArgs, row: &Row) {
    let (Some(one), Some(many), Some(users)) =
        (row.infer_ms_batch1, row.infer_ms_batch, row.infer_users)
    else {
        outln!(
            "{:<9} {:<5} train {:>8.1} ms/step {:>8.0} points/s",
            row.model,
            row.backend,
            row.train_ms_per_step,
            row.train_seqs_per_s
        );
        return;
    };
    outln!(
        "{:<9} {:<5} train {:>8.1} ms/step {:>8.0} seq/s   top-N inference: {:>7.2} ms (1 user) {:>8.1} ms ({} users)",
        row.model,
        row.backend,
        row.train_ms_per_step,
        row.train_seqs_per_s,
        one,
        many,
        users
    );
    if let (Some(t), Some(r)) = (row.pytorch_ms_per_step, row.ratio_vs_pytorch) {
        outln!(
            "{:<9} torch train {t:>8.1} ms/step ({})   burn/PyTorch throughput {r:.2}x",
            "",
            pytorch_device(a)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser;

    #[test]
    fn logits_beyond_the_free_memory_are_refused_with_the_sizes() {
        let a = Cli::parse_from([
            "bench", "--models", "gru4rec", "--items", "250", "--batch", "3000", "--len", "2500",
        ])
        .bench;
        // 1.9e9 logits: about 21 GiB.
        let err = super::logits_fit(&a, Some(8 << 30))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1.9e9 logits per step") && err.contains("8.0 GiB free"),
            "{err}"
        );
        super::logits_fit(&a, Some(64 << 30)).unwrap();
        // Where the OS does not tell, the fixed bounds of check_sizes are all there is.
        super::logits_fit(&a, None).unwrap();
        // Eq. 5 holds more per logit than a model's step: a short --len does not hide it.
        let a = Cli::parse_from([
            "bench",
            "--models",
            "hgn",
            "--items",
            "4000000",
            "--batch",
            "256",
            "--len",
            "1",
            "--imitation",
        ])
        .bench;
        // 1.0e9 logits: about 12 GiB for HGN's step, about 25 GiB for eq. 5.
        let err = super::logits_fit(&a, Some(16 << 30))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--imitation")
                && err.contains("1.0e9 logits")
                && err.contains("16.0 GiB free"),
            "{err}"
        );
        super::logits_fit(&a, Some(32 << 30)).unwrap();
    }

    #[test]
    fn options_this_run_does_not_use_are_named() {
        let notes = |args: &[&str]| {
            let a = Cli::parse_from([&["bench"], args].concat()).bench;
            super::unused_options(&a)
        };
        assert!(notes(&[]).is_empty());
        assert!(notes(&["--models", "bert4rec", "--mask-prob", "0.4"]).is_empty());
        let n = notes(&[
            "--models",
            "hgn",
            "--mask-prob",
            "0.4",
            "--kl",
            "tensor",
            "--pytorch-device",
            "cpu",
        ]);
        assert_eq!(n.len(), 3, "{n:?}");
        assert!(
            n[0].contains("--mask-prob")
                && n[1].contains("--kl")
                && n[2].contains("--pytorch-device")
        );
    }
}
