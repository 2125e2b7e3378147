//! Entry point of the page built by trunk.

#[cfg(target_arch = "wasm32")]
fn main() {
    // A panic in wasm otherwise surfaces as a bare "unreachable" trap: log its message.
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&info.to_string().into());
    }));
    leptos::mount::mount_to_body(ssi_web::app::App);
    // The page's first paint says what is loading; the app replaces it.
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("loading"))
    {
        el.remove();
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "ssi-web is the browser app: build it with `trunk build --release` (see web/README.md)"
    );
    std::process::exit(2);
}
