//! Entry point of the page built by trunk.

#[cfg(target_arch = "wasm32")]
fn main() {
    leptos::mount::mount_to_body(ssi_web::app::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "ssi-web is the browser app: build it with `trunk build --release` (see web/README.md)"
    );
    std::process::exit(2);
}
