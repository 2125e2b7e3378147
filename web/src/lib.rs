//! The SSI browser app. `engine` is the model work (no browser API: tested natively and in
//! headless Chromium); `app` is the Leptos page around it; `browser` the few browser calls.

pub mod engine;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
mod browser;
