//! The predictions section: the top items after the sequence, recomputed whenever the sequence or
//! the model changes.

use super::state::AppState;
use crate::browser;
use crate::engine::Prediction;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Rows of the table.
const TOP_K: usize = 10;

#[component]
pub fn Predictions() -> impl IntoView {
    let state = expect_context::<AppState>();
    let preds = RwSignal::new(Vec::<Prediction>::new());
    let predict_ms = RwSignal::new(0.0f64);
    Effect::new(move |_| predict(state, preds, predict_ms));
    let row = |(rank, p): (usize, Prediction)| {
        let percent = p.probability * 100.0;
        view! {
            <tr class="prediction" data-item=p.item.to_string() data-probability=p.probability.to_string()>
                <td class="rank">{rank + 1}</td>
                <td class="item">{p.name}</td>
                <td class="probability">
                    <span class="bar" aria-hidden="true"><span style:width=format!("{percent:.2}%")></span></span>
                    <span class="value">{format!("{percent:.2}%")}</span>
                </td>
            </tr>
        }
    };
    view! {
        <section id="predictions" class="card">
            <h2>"Next items"</h2>
            <table id="prediction-table">
                <thead><tr><th class="rank">"#"</th><th class="item">"item"</th><th class="probability">"probability"</th></tr></thead>
                <tbody>{move || preds.get().into_iter().enumerate().map(row).collect_view()}</tbody>
            </table>
            <p class="muted">{move || format!("computed in {:.1} ms", predict_ms.get())}</p>
        </section>
    }
}

/// Launches the scores of the current sequence on the current model and, once they are read
/// back (asynchronously: WebGPU cannot block), shows the top items. Tracks both.
fn predict(state: AppState, preds: RwSignal<Vec<Prediction>>, predict_ms: RwSignal<f64>) {
    let seq = state.sequence.get();
    // The CPU backend computes while launching: the clock starts before.
    let t0 = browser::now_ms();
    let launched = state.engine.with(|e| e.as_ref().map(|e| e.scores(&seq)));
    let Some(scores) = launched else { return };
    spawn_local(async move {
        let Ok(data) = scores.into_data_async().await else {
            state
                .error
                .set(Some("could not read the scores back".into()));
            return;
        };
        let values = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        let top = state.engine.with_untracked(|e| {
            e.as_ref()
                .map(|e| e.top_k(values, &seq, TOP_K))
                .unwrap_or_default()
        });
        predict_ms.set(browser::now_ms() - t0);
        preds.set(top);
    });
}
