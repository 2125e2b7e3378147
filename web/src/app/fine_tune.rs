//! The fine-tuning section: settings, run/stop/download/reset, progress, loss curve, validation.

use super::loss_curve::LossCurve;
use super::state::{AppState, Backend};
use super::tuning::{self, Settings};
use crate::engine::Validation;
use leptos::prelude::*;

#[component]
pub fn FineTune() -> impl IntoView {
    let state = expect_context::<AppState>();
    let t = state.tuning;
    let settings = Settings::new();
    view! {
        <section id="fine-tune" class="card">
            <h2>"Fine-tune in the browser"</h2>
            <SettingsForm settings/>
            <TuneButtons settings/>
            <p id="progress">{move || progress_line(t.progress.get(), t.pace.get())}</p>
            <LossCurve/>
            <p id="valid-before">"validation before: "{move || fmt_valid(t.valid_before.get(), state.backend.get())}</p>
            <p id="valid-after">"validation after: "{move || fmt_after(state)}</p>
            <Show when=move || t.error.get().is_some()>
                <p id="tune-error" class="error">{move || t.error.get().unwrap_or_default()}</p>
            </Show>
        </section>
    }
}

/// Epochs, learning rate, and whether the page's sequence is trained on.
#[component]
fn SettingsForm(settings: Settings) -> impl IntoView {
    let Settings {
        epochs,
        lr,
        with_mine,
    } = settings;
    view! {
        <div class="field-row">
            // The boxes set their signals and are never written back while typed in (a number
            // box reads "" half-way through "2.5": writing that back would wipe what is typed).
            <label>"epochs "<input id="epochs" type="number" min="1" max="50" prop:value=epochs.get_untracked()
                on:input=move |ev| epochs.set(event_target_value(&ev))/></label>
            <label>"learning rate "<input id="lr" type="number" step="0.0005" prop:value=lr.get_untracked()
                on:input=move |ev| lr.set(event_target_value(&ev))/></label>
            <label class="check">"include my sequence "<input id="with-mine" type="checkbox" prop:checked=move || with_mine.get()
                on:change=move |ev| with_mine.set(event_target_checked(&ev))/></label>
        </div>
    }
}

/// Start, stop, download the result, go back to the bundle as loaded.
#[component]
fn TuneButtons(settings: Settings) -> impl IntoView {
    let state = expect_context::<AppState>();
    let t = state.tuning;
    let idle_untuned = move || !t.tuned.get() || t.training.get();
    let reset = move |_| {
        state.notice.set(None);
        state.reload();
    };
    view! {
        <p class="buttons">
            <button id="train" class="primary" disabled=move || t.training.get() on:click=move |_| tuning::start(state, settings)>"Fine-tune"</button>
            " "
            <button id="stop" disabled=move || !t.training.get() on:click=move |_| t.stop.set(true)>"Stop"</button>
            " "
            <button id="download" disabled=idle_untuned on:click=move |_| tuning::download(state)>"Download bundle"</button>
            " "
            <button id="reset" disabled=idle_untuned on:click=reset>"Reset to the original"</button>
        </p>
    }
}

/// A validation line; without figures, says why when it is the backend.
fn fmt_valid(v: Option<Validation>, backend: Backend) -> String {
    match v {
        Some(v) => format!(
            "NDCG@10 {:.4}, Recall@10 {:.4} ({} users)",
            v.ndcg10, v.recall10, v.users
        ),
        None if backend == Backend::WebGpu => "- (validation runs on the CPU backend)".into(),
        None => "-".into(),
    }
}

/// The validation line after fine-tuning, with the change from before.
fn fmt_after(state: AppState) -> String {
    let t = state.tuning;
    let (before, after) = (t.valid_before.get(), t.valid_after.get());
    let line = fmt_valid(after, state.backend.get());
    match (before, after) {
        (Some(b), Some(a)) => format!("{line} — NDCG@10 {:+.4} from before", a.ndcg10 - b.ndcg10),
        _ => line,
    }
}

/// "step 12 of 47 · 1,400 seq/s · about 3 s left" (the pace once a step has been timed).
fn progress_line((done, total): (usize, usize), pace: Option<(f64, f64)>) -> String {
    let mut line = format!("step {done} of {total}");
    if let Some((seq_per_s, left)) = pace {
        line.push_str(&format!(" · {seq_per_s:.0} seq/s"));
        if done < total {
            line.push_str(&format!(" · about {left:.0} s left"));
        }
    }
    line
}
