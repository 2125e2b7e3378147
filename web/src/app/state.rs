//! What the page's sections share, and the actions that replace the model: load a bundled or
//! uploaded bundle, reload it (reset, backend switch).

use super::device::{self, device_for};
use super::tuning::Tuning;
use crate::browser;
use crate::engine::Engine;
use leptos::prelude::*;
use leptos::task::spawn_local;

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

/// The page's shared state: signals (copyable handles), provided to every section as context.
#[derive(Clone, Copy)]
pub struct AppState {
    /// The loaded model, `None` until the first bundle is in. A signal, so that what reads the
    /// model (predictions, search, item labels) follows it; fine-tuning steps write it untracked
    /// and notify once at the end.
    pub engine: RwSignal<Option<Engine>, LocalStorage>,
    /// The bundle as shipped or uploaded: reset and backend switches reload it.
    bytes: StoredValue<Option<Vec<u8>>, LocalStorage>,
    /// The number of the latest model asked for (picked, uploaded, reloaded): loads finish in
    /// any order, and only the latest one asked for is installed.
    latest: StoredValue<u64>,
    /// The number of the last model asked for whose load ended (installed or failed).
    settled: StoredValue<u64>,
    /// The bundled models (`models/index.json`).
    pub models: RwSignal<Vec<ModelEntry>>,
    /// Name of the loaded bundle (its index entry or its file name).
    pub model_name: RwSignal<String>,
    pub backend: RwSignal<Backend>,
    /// Display name of the device the model runs on.
    pub backend_name: RwSignal<String>,
    pub error: RwSignal<Option<String>>,
    pub notice: RwSignal<Option<String>>,
    pub sequence: RwSignal<Vec<u32>>,
    pub tuning: Tuning,
}

impl AppState {
    pub(crate) fn new() -> AppState {
        AppState {
            engine: RwSignal::new_local(None),
            bytes: StoredValue::new_local(None),
            latest: StoredValue::new(0),
            settled: StoredValue::new(0),
            models: RwSignal::new(Vec::new()),
            model_name: RwSignal::new(String::from("model")),
            backend: RwSignal::new(Backend::Cpu),
            backend_name: RwSignal::new(String::from("-")),
            error: RwSignal::new(None),
            notice: RwSignal::new(None),
            sequence: RwSignal::new(Vec::new()),
            tuning: Tuning::new(),
        }
    }

    /// Lists the bundled models and loads the first (unless a bundle was uploaded meanwhile).
    pub fn load_model_list(self) {
        let ticket = self.ask();
        spawn_local(async move {
            match model_list().await {
                Ok(list) => {
                    if let Some(first) = list.first().cloned()
                        && self.is_latest(ticket)
                    {
                        self.fetch_entry(first, ticket);
                    }
                    self.models.set(list);
                    // Options inserted select the first one: show the loaded model's again.
                    self.model_name.notify();
                }
                Err(e) => self.load_failed(ticket, e),
            }
        });
    }

    /// A number for a model now asked for; a load started before it is no longer installed.
    pub fn ask(self) -> u64 {
        self.latest.update_value(|n| *n += 1);
        self.latest.get_value()
    }

    fn is_latest(self, ticket: u64) -> bool {
        self.latest.get_value() == ticket
    }

    /// Ends the load of the model asked for last if it is still under way (it will not be
    /// installed); whether there was one.
    pub fn cancel_pending_load(self) -> bool {
        let pending = self.settled.get_value() < self.latest.get_value();
        if pending {
            self.ask();
            self.settled.set_value(self.latest.get_value());
        }
        pending
    }

    /// A load asked for as `ticket` ended without installing: the page keeps its model, and the
    /// select shows that model again (a failed entry picked again is then a change).
    pub fn load_failed(self, ticket: u64, error: String) {
        if self.is_latest(ticket) {
            self.settled.set_value(ticket);
            self.error.set(Some(error));
            self.model_name.notify();
        }
    }

    /// Fetches a bundled model and installs it.
    pub fn load_entry(self, entry: ModelEntry) {
        self.fetch_entry(entry, self.ask());
    }

    fn fetch_entry(self, entry: ModelEntry, ticket: u64) {
        spawn_local(async move {
            match browser::fetch_bytes(&entry.file).await {
                Ok(data) => self.install(data, entry.name, ticket, true),
                Err(e) => self.load_failed(ticket, e),
            }
        });
    }

    /// Installs a bundle (asked for as `ticket`) on the chosen backend, unless another model was
    /// asked for since; if it does not load, the page keeps its model. `replaces`: another
    /// model than the loaded one (not a reset or a backend switch), whose fine-tuned weights
    /// are then said to be discarded.
    pub fn install(self, data: Vec<u8>, name: String, ticket: u64, replaces: bool) {
        spawn_local(async move {
            // A backend that fails falls back to the CPU; its error stays on screen.
            let (device, backend_name, backend_error) =
                match device_for(self.backend.get_untracked()).await {
                    Ok((d, n)) => (d, n, None),
                    Err(e) => {
                        self.backend.set(Backend::Cpu);
                        let (d, n) = device::cpu();
                        (d, n, Some(format!("{e}; using the CPU")))
                    }
                };
            if !self.is_latest(ticket) {
                return;
            }
            match Engine::load(&data, &device) {
                Ok(engine) => {
                    self.settled.set_value(ticket);
                    if replaces && self.tuning.tuned.get_untracked() {
                        self.notice.set(Some(
                            "The fine-tuned weights were discarded for the new model (download \
                             them first to keep them)."
                                .into(),
                        ));
                    }
                    self.engine.set(Some(engine));
                    self.bytes.set_value(Some(data));
                    self.model_name.set(name);
                    self.backend_name.set(backend_name);
                    self.error.set(backend_error);
                    self.tuning.clear();
                }
                Err(e) => self.load_failed(ticket, format!("{name}: {e}")),
            }
        });
    }

    /// Reloads the bundle as it was shipped or uploaded, on the chosen backend.
    pub fn reload(self) {
        if let Some(data) = self.bytes.get_value() {
            let ticket = self.ask();
            self.install(data, self.model_name.get_untracked(), ticket, false);
        }
    }

    /// Reloads the model on backend `b` (fine-tuned weights do not survive: the notice says so).
    pub fn switch_backend(self, b: Backend) {
        self.notice.set(self.tuning.tuned.get_untracked().then(|| {
            "The bundle was reloaded on the new backend: the fine-tuned weights were discarded \
             (download them before switching to keep them)."
                .to_string()
        }));
        self.backend.set(b);
        self.reload();
    }

    /// The summary line of the loaded model (empty before one is loaded).
    pub fn model_info(self) -> String {
        let name = self.model_name.get();
        self.engine.with(|e| {
            e.as_ref().map_or_else(String::new, |e| {
                format!(
                    "{name}: {} on {}, {} items, {} parameters{}",
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
                )
            })
        })
    }

    /// Items matching `query` (type-ahead).
    pub fn search(self, query: &str, limit: usize) -> Vec<(u32, String)> {
        self.engine.with(|e| {
            e.as_ref()
                .map(|e| e.search(query, limit))
                .unwrap_or_default()
        })
    }

    /// The name of item `id`, or `None` when the model does not know it.
    pub fn item_label(self, id: u32) -> Option<String> {
        self.engine.with(|e| match e {
            Some(e) if e.is_item(id) => Some(e.item_name(id)),
            _ => None,
        })
    }

    /// The `i`-th example history of the loaded bundle.
    pub fn example(self, i: usize) -> Option<Vec<u32>> {
        self.engine
            .with_untracked(|e| e.as_ref().and_then(|e| e.example(i, 5)))
    }
}

/// Loads the model list shipped with the page.
async fn model_list() -> Result<Vec<ModelEntry>, String> {
    let text = browser::fetch_text("models/index.json").await?;
    let value =
        js_sys::JSON::parse(&text).map_err(|_| "models/index.json: not JSON".to_string())?;
    serde_wasm_bindgen::from_value(value).map_err(|e| format!("models/index.json: {e}"))
}
