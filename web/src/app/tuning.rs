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
    /// (steps committed, learning rate) of each run on the loaded model, for the download's note.
    pub runs: RwSignal<Vec<(usize, f64)>>,
    /// Fine-tuning and download errors, shown next to their buttons.
    pub error: RwSignal<Option<String>>,
}

/// What the visitor typed in the fine-tuning form, read when "Fine-tune" is clicked (a box
/// that does not hold a number is named then, not passed over).
#[derive(Clone, Copy)]
pub struct Settings {
    pub epochs: RwSignal<String>,
    pub lr: RwSignal<String>,
    /// Whether the sequence built on the page is trained on too.
    pub with_mine: RwSignal<bool>,
}

impl Settings {
    pub fn new() -> Settings {
        Settings {
            epochs: RwSignal::new("3".into()),
            lr: RwSignal::new("0.001".into()),
            with_mine: RwSignal::new(false),
        }
    }

    /// (learning rate, epochs), or what is wrong with the boxes.
    pub fn read(self) -> Result<(f64, usize), String> {
        let (epochs, lr) = (self.epochs.get_untracked(), self.lr.get_untracked());
        let epochs = match epochs.trim().parse::<usize>() {
            Ok(e) if (1..=50).contains(&e) => e,
            _ => {
                return Err(format!(
                    "epochs: \"{epochs}\" is not a whole number from 1 to 50"
                ));
            }
        };
        // As `ssi train` bounds it: below 1e-12 Adam's steps round to nothing.
        let lr = match lr.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && (1e-12..=1.0).contains(&v) => v,
            _ => {
                return Err(format!(
                    "learning rate: \"{lr}\" is not a number from 1e-12 to 1"
                ));
            }
        };
        Ok((lr, epochs))
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
            runs: RwSignal::new(Vec::new()),
            error: RwSignal::new(None),
        }
    }

    /// Forgets the results of fine-tuning another model.
    pub fn clear(self) {
        self.losses.set(Vec::new());
        self.progress.set((0, 0));
        self.pace.set(None);
        self.valid_before.set(None);
        self.valid_after.set(None);
        self.tuned.set(false);
        self.runs.set(Vec::new());
        self.error.set(None);
    }

    /// The download's note: "120 steps in the browser, lr 0.001" (each run's, in order).
    pub fn note(self) -> String {
        self.runs.with_untracked(|runs| {
            runs.iter()
                .map(|(steps, lr)| format!("{steps} steps in the browser, lr {lr}"))
                .collect::<Vec<_>>()
                .join("; then ")
        })
    }
}

/// Starts fine-tuning the loaded model with `settings` and runs it in the background.
pub fn start(state: AppState, settings: Settings) {
    let t = state.tuning;
    if t.training.get_untracked() {
        return;
    }
    let (lr, epochs) = match settings.read() {
        Ok(x) => x,
        Err(e) => {
            t.error.set(Some(e));
            return;
        }
    };
    t.error.set(None);
    // A model still loading would replace this one under the run: it is not installed.
    if state.engine.with_untracked(Option::is_some) && state.cancel_pending_load() {
        state.notice.set(Some(
            "The model that was still loading was not installed: fine-tuning runs on the model \
             shown (pick the other one again after it)."
                .into(),
        ));
    }
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
    spawn_local(run(state, total, batch, lr));
}

/// Runs `total` steps (or until stopped or failed), then validates and shows the new model.
async fn run(state: AppState, total: usize, batch: usize, lr: f64) {
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
    // The last step's result has no loss of its own yet.
    if let Err(e) = check(state.engine).await {
        t.error.set(Some(e));
    }
    t.valid_after.set(
        state
            .engine
            .with_untracked(|e| e.as_ref().and_then(|e| e.validate())),
    );
    // A run stopped or failed before its first step leaves the model as it was.
    let committed = state
        .engine
        .with_untracked(|e| e.as_ref().map_or(0, |e| e.steps_done()));
    if committed > 0 {
        t.runs.update(|r| r.push((committed, lr)));
        t.tuned.set(true);
    }
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
    let value = read_loss(loss).await?;
    let committed = engine
        .write_untracked()
        .as_mut()
        .map(|e| e.commit_step(value));
    if let Some(Err(e)) = committed {
        return Err(e.to_string());
    }
    Ok(Some(value))
}

/// Checks the model a run ends with (see [`Engine::launch_check`]); nothing to do when the run
/// already ended on a non-finite loss.
async fn check(engine: RwSignal<Option<Engine>, LocalStorage>) -> Result<(), String> {
    let launched = engine
        .write_untracked()
        .as_mut()
        .filter(|e| e.is_tuning())
        .map(|e| e.launch_check());
    let loss = match launched {
        Some(Ok(loss)) => loss,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Ok(()),
    };
    let value = read_loss(loss).await?;
    match engine
        .write_untracked()
        .as_mut()
        .map(|e| e.commit_check(value))
    {
        Some(Err(e)) => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// A loss launched on the device, read back without blocking (NaN when it holds no value).
async fn read_loss(loss: burn::tensor::Tensor<1>) -> Result<f32, String> {
    Ok(loss
        .into_data_async()
        .await
        .map_err(|e| format!("reading the step's loss back from the device failed: {e:?}"))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN))
}

/// Offers the fine-tuned model as a bundle file.
pub fn download(state: AppState) {
    let t = state.tuning;
    t.error.set(None);
    let note = t.note();
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
