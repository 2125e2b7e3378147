//! The Leptos page: pick a model, build a sequence, read the predictions, fine-tune.

use crate::browser;
use crate::engine::{Engine, FineTuneConfig, Validation};
use burn::tensor::Device;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

/// One entry of `models/index.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ModelEntry {
    pub name: String,
    /// Path of the bundle file, relative to the page.
    pub file: String,
    #[serde(default)]
    pub description: String,
}

/// Which burn backend computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    WebGpu,
}

const TOP_K: usize = 10;

async fn device_for(backend: Backend) -> Result<(Device, String), String> {
    match backend {
        Backend::Cpu => Ok((Device::flex(), "CPU (burn flex, WebAssembly)".into())),
        Backend::WebGpu => webgpu_device().await,
    }
}

#[cfg(feature = "webgpu")]
thread_local! {
    /// burn registers one WebGPU device per page: a second `init_async` is refused, so every
    /// switch to WebGPU after the first reuses it.
    static WEBGPU: std::cell::RefCell<Option<(Device, String)>> = const { std::cell::RefCell::new(None) };
}

#[cfg(feature = "webgpu")]
async fn webgpu_device() -> Result<(Device, String), String> {
    if let Some(d) = WEBGPU.with(|w| w.borrow().clone()) {
        return Ok(d);
    }
    if !browser::has_webgpu() {
        return Err("this browser has no WebGPU (navigator.gpu)".into());
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| format!("WebGPU: {e:?}"))?;
    let d = (
        device,
        format!("WebGPU ({})", browser::adapter_name().await),
    );
    WEBGPU.with(|w| *w.borrow_mut() = Some(d.clone()));
    Ok(d)
}

#[cfg(not(feature = "webgpu"))]
async fn webgpu_device() -> Result<(Device, String), String> {
    Err("this build of the page has no WebGPU backend (build with --features webgpu)".into())
}

/// Loads the model list shipped with the page.
async fn model_list() -> Result<Vec<ModelEntry>, String> {
    let text = browser::fetch_text("models/index.json").await?;
    let value =
        js_sys::JSON::parse(&text).map_err(|_| "models/index.json: not JSON".to_string())?;
    serde_wasm_bindgen::from_value(value).map_err(|e| format!("models/index.json: {e}"))
}

#[component]
pub fn App() -> impl IntoView {
    let engine = StoredValue::new_local(None::<Engine>);
    let bytes = StoredValue::new_local(None::<Vec<u8>>);
    let models = RwSignal::new(Vec::<ModelEntry>::new());
    let model_info = RwSignal::new(String::new());
    let model_label = RwSignal::new(String::from("model"));
    let backend = RwSignal::new(Backend::Cpu);
    let backend_name = RwSignal::new(String::from("-"));
    let error = RwSignal::new(None::<String>);
    // Fine-tuning and download errors, shown next to their buttons.
    let tune_error = RwSignal::new(None::<String>);
    let version = RwSignal::new(0u32);
    let sequence = RwSignal::new(Vec::<u32>::new());
    let query = RwSignal::new(String::new());
    let preds = RwSignal::new(Vec::<(u32, String, f32)>::new());
    let predict_ms = RwSignal::new(0.0f64);
    let epochs = RwSignal::new(3usize);
    let lr = RwSignal::new(1e-3f64);
    let with_mine = RwSignal::new(false);
    let training = RwSignal::new(false);
    let stop = RwSignal::new(false);
    let losses = RwSignal::new(Vec::<f32>::new());
    let progress = RwSignal::new((0usize, 0usize));
    let valid_before = RwSignal::new(None::<Validation>);
    let valid_after = RwSignal::new(None::<Validation>);
    let tuned = RwSignal::new(false);
    let examples_shown = RwSignal::new(0usize);
    let notice = RwSignal::new(None::<String>);

    // Installs a bundle on the chosen backend.
    let install = move |data: Vec<u8>, label: String| {
        spawn_local(async move {
            let (device, name) = match device_for(backend.get_untracked()).await {
                Ok(d) => d,
                Err(e) => {
                    error.set(Some(e));
                    backend.set(Backend::Cpu);
                    (Device::flex(), "CPU (burn flex, WebAssembly)".into())
                }
            };
            match Engine::load(&data, &device) {
                Ok(e) => {
                    model_info.set(format!(
                        "{label}: {} on {}, {} items, {} parameters{}",
                        e.header.model.kind().name(),
                        e.header.provenance.dataset,
                        e.n_items(),
                        e.num_params(),
                        e.header
                            .provenance
                            .fine_tuned
                            .as_ref()
                            .map(|f| format!(" (fine-tuned: {f})"))
                            .unwrap_or_default()
                    ));
                    engine.set_value(Some(e));
                    bytes.set_value(Some(data));
                    model_label.set(label.clone());
                    backend_name.set(name);
                    error.set(None);
                    losses.set(Vec::new());
                    valid_before.set(None);
                    valid_after.set(None);
                    tuned.set(false);
                    version.update(|v| *v += 1);
                }
                // The page keeps the model it had.
                Err(e) => error.set(Some(format!("{label}: {e}"))),
            }
        });
    };

    let load_url = move |entry: ModelEntry| {
        spawn_local(async move {
            match browser::fetch_bytes(&entry.file).await {
                Ok(data) => install(data, entry.name.clone()),
                Err(e) => error.set(Some(e)),
            }
        });
    };

    // Bundled models: list them and load the first.
    spawn_local(async move {
        match model_list().await {
            Ok(list) => {
                if let Some(first) = list.first().cloned() {
                    load_url(first);
                }
                models.set(list);
            }
            Err(e) => error.set(Some(e)),
        }
    });

    // Predictions follow the sequence (and the model).
    Effect::new(move |_| {
        let seq = sequence.get();
        version.get();
        let launched = engine.with_value(|e| e.as_ref().map(|e| e.scores(&seq)));
        let Some(scores) = launched else { return };
        let t0 = browser::now_ms();
        spawn_local(async move {
            let data = scores.into_data_async().await;
            let Ok(data) = data else {
                error.set(Some("could not read the scores back".into()));
                return;
            };
            let values = data
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap_or_default();
            let top = engine.with_value(|e| {
                e.as_ref()
                    .map(|e| e.top_k(values, &seq, TOP_K))
                    .unwrap_or_default()
            });
            predict_ms.set(browser::now_ms() - t0);
            preds.set(
                top.into_iter()
                    .map(|p| (p.item, p.name, p.probability))
                    .collect(),
            );
        });
    });

    let search_results = move || {
        version.get();
        let q = query.get();
        engine.with_value(|e| e.as_ref().map(|e| e.search(&q, 12)).unwrap_or_default())
    };
    let item_label = move |id: u32| {
        engine.with_value(|e| match e {
            Some(e) if e.is_item(id) => Some(e.item_name(id)),
            _ => None,
        })
    };
    let add_typed = move || {
        let q = query.get_untracked();
        if let Ok(id) = q.trim().parse::<u32>() {
            // Kept even if unknown: flagged in the list, left out of the model's input.
            sequence.update(|s| s.push(id));
            query.set(String::new());
        } else if let Some((id, _)) = search_results().first().cloned() {
            sequence.update(|s| s.push(id));
            query.set(String::new());
        }
    };

    let on_upload = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        let name = file.name();
        if file.size() > ssi_bundle::MAX_BYTES as f64 {
            error.set(Some(format!(
                "{name}: {} bytes, above the {} byte limit",
                file.size(),
                ssi_bundle::MAX_BYTES
            )));
            return;
        }
        spawn_local(async move {
            match browser::file_bytes(&file).await {
                Ok(data) => install(data, name),
                Err(e) => error.set(Some(format!("{name}: {e}"))),
            }
        });
    };

    // Reloads the bundle as it was shipped or uploaded, on the chosen backend.
    let reload = move || {
        if let Some(data) = bytes.get_value() {
            install(data, model_label.get_untracked());
        }
    };
    let switch_backend = move |b: Backend| {
        notice.set(tuned.get_untracked().then(|| {
            "The bundle was reloaded on the new backend: the fine-tuned weights were discarded \
             (download them before switching to keep them)."
                .to_string()
        }));
        backend.set(b);
        reload();
    };

    let fine_tune = move || {
        if training.get_untracked() {
            return;
        }
        let (rate, n) = (lr.get_untracked(), epochs.get_untracked());
        if !(rate.is_finite() && rate > 0.0 && rate <= 1.0) || !(1..=50).contains(&n) {
            tune_error.set(Some(format!(
                "fine-tuning needs a learning rate in (0, 1] and 1 to 50 epochs (got {rate} and {n})"
            )));
            return;
        }
        tune_error.set(None);
        let extra = if with_mine.get_untracked() {
            vec![sequence.get_untracked()]
        } else {
            Vec::new()
        };
        let cfg = FineTuneConfig {
            lr: lr.get_untracked(),
            extra,
            ..Default::default()
        };
        let started = engine.write_value().as_mut().map(|e| {
            let before = e.validate();
            e.start_fine_tune(&cfg)
                .map(|_| (before, e.steps_per_epoch()))
        });
        let (before, steps) = match started {
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                tune_error.set(Some(e.to_string()));
                return;
            }
            None => return,
        };
        valid_before.set(before);
        valid_after.set(None);
        losses.set(Vec::new());
        stop.set(false);
        training.set(true);
        let total = steps * epochs.get_untracked();
        progress.set((0, total));
        spawn_local(async move {
            for step in 0..total {
                if stop.get_untracked() {
                    break;
                }
                let launched = engine.write_value().as_mut().map(|e| e.launch_step());
                let loss = match launched {
                    Some(Ok((_, loss))) => loss,
                    Some(Err(e)) => {
                        tune_error.set(Some(e.to_string()));
                        break;
                    }
                    None => break,
                };
                let value = match loss.into_data_async().await {
                    Ok(d) => d
                        .convert::<f32>()
                        .try_into_vec::<f32>()
                        .ok()
                        .and_then(|v| v.first().copied())
                        .unwrap_or(f32::NAN),
                    Err(e) => {
                        tune_error.set(Some(format!("{e:?}")));
                        break;
                    }
                };
                let committed = engine.write_value().as_mut().map(|e| e.commit_step(value));
                if let Some(Err(e)) = committed {
                    tune_error.set(Some(e.to_string()));
                    break;
                }
                losses.update(|l| l.push(value));
                progress.set((step + 1, total));
                // Paint, handle clicks (the stop button), then go on.
                browser::yield_now().await;
            }
            valid_after.set(engine.with_value(|e| e.as_ref().and_then(|e| e.validate())));
            tuned.set(true);
            training.set(false);
            version.update(|v| *v += 1);
        });
    };

    let download = move || {
        tune_error.set(None);
        let note = format!(
            "{} steps in the browser, lr {}",
            progress.get_untracked().0,
            lr.get_untracked()
        );
        let out = engine.with_value(|e| e.as_ref().map(|e| e.to_bundle(Some(note.clone()))));
        match out {
            Some(Ok(b)) => {
                if let Err(e) = browser::download("fine-tuned.ssib", &b) {
                    tune_error.set(Some(e));
                }
            }
            Some(Err(e)) => tune_error.set(Some(e.to_string())),
            None => {}
        }
    };

    let curve = move || loss_curve(&losses.get());
    let fmt_valid = move |v: Option<Validation>| match v {
        Some(v) => format!(
            "NDCG@10 {:.4}, Recall@10 {:.4} ({} users)",
            v.ndcg10, v.recall10, v.users
        ),
        None if backend.get() == Backend::WebGpu => "- (validation runs on the CPU backend)".into(),
        None => "-".into(),
    };
    let fmt_after = move || {
        let (before, after) = (valid_before.get(), valid_after.get());
        match (before, &after) {
            (Some(b), Some(a)) => format!(
                "{} — NDCG@10 {:+.4} from before",
                fmt_valid(after.clone()),
                a.ndcg10 - b.ndcg10
            ),
            _ => fmt_valid(after),
        }
    };

    view! {
        <main>
            <h1>"SSI — next-item recommendation in your browser"</h1>
            <p class="intro">"A sequential recommender reads the items a shopper picked, in order, and ranks what they will pick next. \
                The model here was trained with SSI (Yuan et al., IJCAI 2021) and runs entirely in this page: build a sequence or try an example, read the ranking, and fine-tune it on the CPU or WebGPU."</p>
            <section id="model">
                <h2>"Model"</h2>
                <label>
                    "Bundled: "
                    <select id="model-select" on:change=move |ev| {
                        let name = event_target_value(&ev);
                        if let Some(m) = models.get_untracked().into_iter().find(|m| m.name == name) {
                            load_url(m);
                        }
                    }>
                        <For each=move || models.get() key=|m| m.name.clone() let:m>
                            <option value=m.name.clone()>{m.name.clone()}" — "{m.description.clone()}</option>
                        </For>
                    </select>
                </label>
                <label>" or upload a bundle (.ssib): "<input id="upload" type="file" accept=".ssib" on:change=on_upload/></label>
                <p id="model-info">{move || model_info.get()}</p>
                <p>
                    "Backend: "<strong id="backend">{move || backend_name.get()}</strong>" "
                    <button id="use-cpu" on:click=move |_| switch_backend(Backend::Cpu)>"Use CPU"</button>
                    <button id="use-webgpu" disabled=move || !browser::has_webgpu() on:click=move |_| switch_backend(Backend::WebGpu)>"Use WebGPU"</button>
                </p>
                <Show when=move || notice.get().is_some()>
                    <p id="notice" class="muted">{move || notice.get().unwrap_or_default()}</p>
                </Show>
                <Show when=move || error.get().is_some()>
                    <p id="error" class="error">{move || error.get().unwrap_or_default()}</p>
                </Show>
            </section>
            <section id="sequence">
                <h2>"Your sequence"</h2>
                <input id="search" type="text" placeholder="search items by name or id, Enter adds"
                    prop:value=move || query.get()
                    on:input=move |ev| query.set(event_target_value(&ev))
                    on:keydown=move |ev| if ev.key() == "Enter" { add_typed() }/>
                <ul id="search-results">
                    <For each=search_results key=|(id, _)| *id let:hit>
                        <li><button class="add" on:click=move |_| sequence.update(|s| s.push(hit.0))>{format!("+ {} (#{})", hit.1, hit.0)}</button></li>
                    </For>
                </ul>
                <ol id="sequence-list">
                    {move || sequence.get().into_iter().enumerate().map(|(pos, id)| {
                        let label = item_label(id);
                        let known = label.is_some();
                        view! {
                            <li class:unknown=!known>
                                {label.unwrap_or_else(|| format!("unknown item {id} (ignored by the model)"))}
                                " "
                                <button on:click=move |_| sequence.update(|s| if pos > 0 { s.swap(pos, pos - 1) })>"↑"</button>
                                <button on:click=move |_| sequence.update(|s| if pos + 1 < s.len() { s.swap(pos, pos + 1) })>"↓"</button>
                                <button on:click=move |_| sequence.update(|s| { s.remove(pos); })>"✕"</button>
                            </li>
                        }
                    }).collect_view()}
                </ol>
                <button id="example" on:click=move |_| {
                    let i = examples_shown.get_untracked();
                    examples_shown.set(i + 1);
                    if let Some(ex) = engine.with_value(|e| e.as_ref().and_then(|e| e.example(i, 5))) {
                        sequence.set(ex);
                    }
                }>"Try an example"</button>
                " "
                <button id="clear" on:click=move |_| sequence.set(Vec::new())>"Clear"</button>
            </section>
            <section id="predictions">
                <h2>"Next items"</h2>
                <table id="prediction-table">
                    <tr><th>"#"</th><th>"item"</th><th>"probability"</th></tr>
                    {move || preds.get().into_iter().enumerate().map(|(i, (id, name, p))| view! {
                        <tr class="prediction" data-item=id.to_string() data-probability=p.to_string()>
                            <td>{i + 1}</td><td>{name}</td><td>{format!("{:.2}%", p * 100.0)}</td>
                        </tr>
                    }).collect_view()}
                </table>
                <p class="muted">{move || format!("computed in {:.1} ms", predict_ms.get())}</p>
            </section>
            <section id="fine-tune">
                <h2>"Fine-tune in the browser"</h2>
                <label>"epochs "<input id="epochs" type="number" min="1" max="50" prop:value=move || epochs.get().to_string()
                    on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { epochs.set(v) }/></label>
                <label>" learning rate "<input id="lr" type="number" step="0.0005" prop:value=move || lr.get().to_string()
                    on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { lr.set(v) }/></label>
                <label>" include my sequence "<input id="with-mine" type="checkbox" prop:checked=move || with_mine.get()
                    on:change=move |ev| with_mine.set(event_target_checked(&ev))/></label>
                <p>
                    <button id="train" disabled=move || training.get() on:click=move |_| fine_tune()>"Fine-tune"</button>
                    <button id="stop" disabled=move || !training.get() on:click=move |_| stop.set(true)>"Stop"</button>
                    <button id="download" disabled=move || !tuned.get() || training.get() on:click=move |_| download()>"Download bundle"</button>
                    <button id="reset" disabled=move || !tuned.get() || training.get() on:click=move |_| { notice.set(None); reload() }>"Reset to the original"</button>
                </p>
                <p id="progress">{move || { let (d, t) = progress.get(); format!("step {d} of {t}") }}</p>
                <svg id="loss-curve" width="420" height="140" viewBox="0 0 420 140">
                    <rect width="420" height="140" fill="#f7f7f7"/>
                    <polyline fill="none" stroke="#4c72b0" stroke-width="2" points=curve/>
                    <text x="12" y="12" font-size="10" fill="#555">{move || curve_label(&losses.get(), true)}</text>
                    <text x="12" y="136" font-size="10" fill="#555">{move || curve_label(&losses.get(), false)}</text>
                    <text x="408" y="136" font-size="10" fill="#555" text-anchor="end">{move || format!("step {}", losses.get().len())}</text>
                </svg>
                <p id="valid-before">"validation before: "{move || fmt_valid(valid_before.get())}</p>
                <p id="valid-after">"validation after: "{fmt_after}</p>
                <Show when=move || tune_error.get().is_some()>
                    <p id="tune-error" class="error">{move || tune_error.get().unwrap_or_default()}</p>
                </Show>
            </section>
        </main>
    }
}

/// The loss at the top (`top`: the highest) or bottom of the curve's box.
fn curve_label(losses: &[f32], top: bool) -> String {
    let pick = if top { f32::max } else { f32::min };
    match losses.iter().copied().reduce(pick) {
        Some(v) => format!("loss {v:.3}"),
        None => String::new(),
    }
}

/// SVG polyline points of a loss curve in a 420×140 box.
pub fn loss_curve(losses: &[f32]) -> String {
    if losses.len() < 2 {
        return String::new();
    }
    let (lo, hi) = losses
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = (hi - lo).max(1e-6);
    losses
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = 10.0 + 400.0 * i as f32 / (losses.len() - 1) as f32;
            let y = 130.0 - 120.0 * (v - lo) / span;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
