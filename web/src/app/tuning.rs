//! Fine-tuning in the page: its shared progress and results, starting a run, stepping it without
//! blocking the page, and downloading the result.

use super::state::AppState;
use crate::browser;
use crate::engine::{Engine, FineTuneConfig, Validation};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Progress and results of fine-tuning, shared by its controls and the loss curve.
#[derive(Clone, Copy)]
pub struct Tuning {
    pub training: RwSignal<bool>,
    /// Asks the running loop to end after its current step.
    pub stop: RwSignal<bool>,
    pub losses: RwSignal<Vec<f32>>,
    /// (steps done, steps planned).
    pub progress: RwSignal<(usize, usize)>,
    /// Sequences per second so far and the seconds left at that pace.
    pub pace: RwSignal<Option<(f64, f64)>>,
    pub valid_before: RwSignal<Option<Validation>>,
    pub valid_after: RwSignal<Option<Validation>>,
    /// Whether the loaded model has been fine-tuned (it differs from its bundle).
    pub tuned: RwSignal<bool>,
    /// Fine-tuning and download errors, shown next to their buttons.
    pub error: RwSignal<Option<String>>,
}

/// What the visitor set in the fine-tuning form.
#[derive(Clone, Copy)]
pub struct Settings {
    pub epochs: RwSignal<usize>,
    pub lr: RwSignal<f64>,
    /// Whether the sequence built on the page is trained on too.
    pub with_mine: RwSignal<bool>,
}

impl Settings {
    pub fn new() -> Settings {
        Settings {
            epochs: RwSignal::new(3),
            lr: RwSignal::new(1e-3),
            with_mine: RwSignal::new(false),
        }
    }
}

impl Tuning {
    pub fn new() -> Tuning {
        Tuning {
            training: RwSignal::new(false),
            stop: RwSignal::new(false),
            losses: RwSignal::new(Vec::new()),
            progress: RwSignal::new((0, 0)),
            pace: RwSignal::new(None),
            valid_before: RwSignal::new(None),
            valid_after: RwSignal::new(None),
            tuned: RwSignal::new(false),
            error: RwSignal::new(None),
        }
    }

    /// Forgets the results of fine-tuning another model.
    pub fn clear(self) {
        self.losses.set(Vec::new());
        self.valid_before.set(None);
        self.valid_after.set(None);
        self.tuned.set(false);
    }
}

/// Starts fine-tuning the loaded model with `settings` and runs it in the background.
pub fn start(state: AppState, settings: Settings) {
    let t = state.tuning;
    if t.training.get_untracked() {
        return;
    }
    let (lr, epochs) = (settings.lr.get_untracked(), settings.epochs.get_untracked());
    let valid = lr.is_finite() && lr > 0.0 && lr <= 1.0 && (1..=50).contains(&epochs);
    if !valid {
        t.error.set(Some(format!(
            "fine-tuning needs a learning rate in (0, 1] and 1 to 50 epochs (got {lr} and {epochs})"
        )));
        return;
    }
    t.error.set(None);
    let extra = if settings.with_mine.get_untracked() {
        vec![state.sequence.get_untracked()]
    } else {
        Vec::new()
    };
    let cfg = FineTuneConfig {
        lr,
        extra,
        ..Default::default()
    };
    let batch = cfg.batch_size;
    let started = state.engine.write_untracked().as_mut().map(|e| {
        let before = e.validate();
        e.start_fine_tune(&cfg)
            .map(|_| (before, e.steps_per_epoch()))
    });
    let (before, steps) = match started {
        Some(Ok(x)) => x,
        Some(Err(e)) => {
            t.error.set(Some(e.to_string()));
            return;
        }
        None => return,
    };
    t.valid_before.set(before);
    t.valid_after.set(None);
    t.losses.set(Vec::new());
    t.stop.set(false);
    t.training.set(true);
    let total = steps * epochs;
    t.progress.set((0, total));
    t.pace.set(None);
    spawn_local(run(state, total, batch));
}

/// Runs `total` steps (or until stopped or failed), then validates and shows the new model.
async fn run(state: AppState, total: usize, batch: usize) {
    let t = state.tuning;
    let start = browser::now_ms();
    for done in 1..=total {
        if t.stop.get_untracked() {
            break;
        }
        match step(state.engine).await {
            Ok(Some(loss)) => {
                t.losses.update(|l| l.push(loss));
                t.progress.set((done, total));
                let seconds = (browser::now_ms() - start) / 1000.0;
                if seconds > 0.0 {
                    let per_step = seconds / done as f64;
                    let left = (total - done) as f64 * per_step;
                    t.pace.set(Some(((done * batch) as f64 / seconds, left)));
                }
            }
            Ok(None) => break,
            Err(e) => {
                t.error.set(Some(e));
                break;
            }
        }
        // Paint, handle clicks (the stop button), then go on.
        browser::yield_now().await;
    }
    t.valid_after.set(
        state
            .engine
            .with_untracked(|e| e.as_ref().and_then(|e| e.validate())),
    );
    t.tuned.set(true);
    t.training.set(false);
    // The steps wrote the model untracked: what reads it follows now.
    state.engine.notify();
}

/// One step: launch it, read its loss back without blocking, commit it. `Ok(None)` when no model
/// is loaded.
async fn step(engine: RwSignal<Option<Engine>, LocalStorage>) -> Result<Option<f32>, String> {
    let launched = engine.write_untracked().as_mut().map(|e| e.launch_step());
    let loss = match launched {
        Some(Ok((_, loss))) => loss,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Ok(None),
    };
    let value = loss
        .into_data_async()
        .await
        .map_err(|e| format!("{e:?}"))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN);
    let committed = engine
        .write_untracked()
        .as_mut()
        .map(|e| e.commit_step(value));
    if let Some(Err(e)) = committed {
        return Err(e.to_string());
    }
    Ok(Some(value))
}

/// Offers the fine-tuned model as a bundle file.
pub fn download(state: AppState, settings: Settings) {
    let t = state.tuning;
    t.error.set(None);
    let note = format!(
        "{} steps in the browser, lr {}",
        t.progress.get_untracked().0,
        settings.lr.get_untracked()
    );
    let out = state
        .engine
        .with_untracked(|e| e.as_ref().map(|e| e.to_bundle(Some(note.clone()))));
    match out {
        Some(Ok(bytes)) => {
            if let Err(e) = browser::download("fine-tuned.ssib", &bytes) {
                t.error.set(Some(e));
            }
        }
        Some(Err(e)) => t.error.set(Some(e.to_string())),
        None => {}
    }
}
