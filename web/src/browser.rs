//! The few browser calls the page needs: fetch bytes, offer a download, yield to the event loop,
//! a clock, and WebGPU detection.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

fn window() -> Result<web_sys::Window, String> {
    web_sys::window().ok_or_else(|| "no window".to_string())
}

fn js_err(e: wasm_bindgen::JsValue) -> String {
    e.as_string()
        .or_else(|| {
            js_sys::Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// GET `url` as bytes; a non-2xx status is an error naming the URL.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let resp: web_sys::Response = JsFuture::from(window()?.fetch_with_str(url))
        .await
        .map_err(js_err)?
        .dyn_into()
        .map_err(js_err)?;
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(js_err)?)
        .await
        .map_err(js_err)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// GET `url` as text.
pub async fn fetch_text(url: &str) -> Result<String, String> {
    String::from_utf8(fetch_bytes(url).await?).map_err(|e| format!("{url}: {e}"))
}

/// The bytes of a file the user picked.
pub async fn file_bytes(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(file.array_buffer()).await.map_err(js_err)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// Offers `bytes` as a download named `name`.
pub fn download(name: &str, bytes: &[u8]) -> Result<(), String> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/octet-stream");
    let blob =
        web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts).map_err(js_err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_err)?;
    let doc = window()?.document().ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(js_err)?
        .dyn_into()
        .map_err(|_| "<a> is not an anchor element".to_string())?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url).map_err(js_err)?;
    Ok(())
}

/// Milliseconds since page load.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Lets the browser paint and handle input (a zero-delay timeout).
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Whether the browser exposes WebGPU at all (an adapter may still be refused).
pub fn has_webgpu() -> bool {
    web_sys::window()
        .map(|w| {
            let nav = w.navigator();
            js_sys::Reflect::get(&nav, &"gpu".into())
                .map(|g| !g.is_undefined() && !g.is_null())
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// A readable name of the WebGPU adapter (vendor, architecture, description), or "adapter".
#[cfg(feature = "webgpu")]
pub async fn adapter_name() -> String {
    async fn inner() -> Option<String> {
        let nav = web_sys::window()?.navigator();
        let gpu = js_sys::Reflect::get(&nav, &"gpu".into()).ok()?;
        let request: js_sys::Function = js_sys::Reflect::get(&gpu, &"requestAdapter".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
        let adapter = JsFuture::from(promise).await.ok()?;
        let info = js_sys::Reflect::get(&adapter, &"info".into()).ok()?;
        let field = |k: &str| {
            js_sys::Reflect::get(&info, &k.into())
                .ok()
                .and_then(|v| v.as_string())
                .filter(|s| !s.is_empty())
        };
        let parts: Vec<String> = ["vendor", "architecture", "description"]
            .iter()
            .filter_map(|k| field(k))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
    inner().await.unwrap_or_else(|| "adapter".into())
}
