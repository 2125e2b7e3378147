//! The Leptos page: pick a model, build a sequence, read the predictions, fine-tune.
//!
//! One [`AppState`] (signals, shared through the context) holds what the sections share; each
//! section is a component of its own. Tensor work stays in [`crate::engine::Engine`].

mod device;
mod fine_tune;
mod loss_curve;
mod model_picker;
mod predictions;
mod seq_hash;
mod sequence;
mod state;
mod tuning;

use leptos::prelude::*;

pub use loss_curve::loss_curve;
pub use state::{AppState, Backend, ModelEntry};

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    state.load_model_list();
    let from_url = move || {
        if let Some(seq) = seq_hash::current() {
            state.notice.set(seq.notice());
            state.sequence.set(seq.ids);
        }
    };
    from_url();
    // Navigating to the same page with another `#seq=` does not reload it: follow the hash.
    let on_hash = window_event_listener(leptos::ev::hashchange, move |_| from_url());
    on_cleanup(move || on_hash.remove());

    view! {
        <header class="page-header">
            <h1>"SSI — next-item recommendation in your browser"</h1>
            <p class="intro">"A sequential recommender reads the items a shopper picked, in order, and ranks what they will pick next. \
                The model here was trained with SSI (Yuan et al., IJCAI 2021) and runs entirely in this page: build a sequence or try an example, read the ranking, and fine-tune it on the CPU or WebGPU."</p>
        </header>
        <main>
            <model_picker::ModelPicker/>
            <sequence::SequenceBuilder/>
            <predictions::Predictions/>
            <fine_tune::FineTune/>
        </main>
    }
}
