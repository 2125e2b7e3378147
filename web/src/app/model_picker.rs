//! The model section: bundled models, upload, the loaded model's summary, backend controls, and
//! the page's notice and error lines.

use super::state::{AppState, Backend};
use crate::browser;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

#[component]
pub fn ModelPicker() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <section id="model" class="card">
            <h2>"Model"</h2>
            <div class="field-row">
                <BundledModels/>
                <label>"or upload a bundle (.ssib): "
                    <input id="upload" type="file" accept=".ssib" disabled=move || state.tuning.training.get()
                        on:change=move |ev| upload(state, &ev)/>
                </label>
            </div>
            <p id="model-info">{move || state.model_info()}</p>
            <BackendControls/>
            <Show when=move || state.notice.get().is_some()>
                <p id="notice" class="muted">{move || state.notice.get().unwrap_or_default()}</p>
            </Show>
            <Show when=move || state.error.get().is_some()>
                <p id="error" class="error">{move || state.error.get().unwrap_or_default()}</p>
            </Show>
        </section>
    }
}

/// The select of the models shipped with the page.
#[component]
fn BundledModels() -> impl IntoView {
    let state = expect_context::<AppState>();
    let on_change = move |ev: leptos::ev::Event| {
        let name = event_target_value(&ev);
        let entry = state
            .models
            .with_untracked(|models| models.iter().find(|m| m.name == name).cloned());
        if let Some(m) = entry {
            state.load_entry(m);
        }
    };
    view! {
        <label>
            "Bundled: "
            // Bound to the loaded model: after an upload no entry is selected, so picking the
            // shipped one again is a change.
            <select id="model-select" disabled=move || state.tuning.training.get() prop:value=move || state.model_name.get() on:change=on_change>
                <For each=move || state.models.get() key=|m| m.name.clone() let:m>
                    <option value=m.name.clone()>{m.name.clone()}" — "{m.description.clone()}</option>
                </For>
            </select>
        </label>
    }
}

/// Installs the bundle file the visitor picked (checked against the size limit first).
fn upload(state: AppState, ev: &leptos::ev::Event) {
    let Some(input) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return;
    };
    let Some(file) = input.files().and_then(|f| f.get(0)) else {
        return;
    };
    // The same file picked again (after another model) is a change too.
    input.set_value("");
    let name = file.name();
    if file.size() > ssi_bundle::MAX_BYTES as f64 {
        state.error.set(Some(format!(
            "{name}: {} bytes, above the {} byte limit",
            file.size(),
            ssi_bundle::MAX_BYTES
        )));
        return;
    }
    let ticket = state.ask();
    spawn_local(async move {
        match browser::file_bytes(&file).await {
            Ok(data) => state.install(data, name, ticket, true),
            Err(e) => state.load_failed(ticket, format!("{name}: {e}")),
        }
    });
}

/// Which backend computes, and the buttons that change it.
#[component]
fn BackendControls() -> impl IntoView {
    let state = expect_context::<AppState>();
    let gpu = browser::has_webgpu();
    let title = if gpu {
        WEBGPU_TITLE
    } else {
        Some("this browser has no WebGPU (navigator.gpu)")
    };
    view! {
        <p class="backend">
            "Backend: "<strong id="backend">{move || state.backend_name.get()}</strong>" "
            <button id="use-cpu" disabled=move || state.tuning.training.get() on:click=move |_| state.switch_backend(Backend::Cpu)>"Use CPU"</button>
            " "
            <button id="use-webgpu" disabled=move || !gpu || state.tuning.training.get() title=title on:click=move |_| use_webgpu(state)>{WEBGPU_LABEL}</button>
        </p>
    }
}

#[cfg(feature = "webgpu")]
const WEBGPU_LABEL: &str = "Use WebGPU";
#[cfg(feature = "webgpu")]
const WEBGPU_TITLE: Option<&str> = None;

/// This build has both backends: switch in the page.
#[cfg(feature = "webgpu")]
fn use_webgpu(state: AppState) {
    state.switch_backend(Backend::WebGpu);
}

// The default build is CPU only, to keep its download small; the WebGPU build lives beside it.
#[cfg(not(feature = "webgpu"))]
const WEBGPU_LABEL: &str = "Use WebGPU (loads the WebGPU build)";
#[cfg(not(feature = "webgpu"))]
const WEBGPU_TITLE: Option<&str> = Some(
    "Opens webgpu/, a second, larger build of this page with both backends, with this sequence \
     and the first bundled model (an uploaded bundle and fine-tuned weights are not carried over: \
     download them first, and upload them there)",
);

/// Opens the WebGPU build with the current sequence in the URL.
#[cfg(not(feature = "webgpu"))]
fn use_webgpu(state: AppState) {
    let url = format!(
        "webgpu/{}",
        super::seq_hash::format(&state.sequence.get_untracked())
    );
    if let Err(e) = location().assign(&url) {
        state.error.set(Some(format!("{url}: {e:?}")));
    }
}
