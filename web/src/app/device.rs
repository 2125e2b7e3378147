//! The burn device behind each [`Backend`].

use super::state::Backend;
#[cfg(feature = "webgpu")]
use crate::browser;
use burn::tensor::Device;

/// The CPU device and how the page names it.
pub fn cpu() -> (Device, String) {
    (Device::flex(), "CPU (burn flex, WebAssembly)".into())
}

/// The device of `backend` and its display name.
pub async fn device_for(backend: Backend) -> Result<(Device, String), String> {
    match backend {
        Backend::Cpu => Ok(cpu()),
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
