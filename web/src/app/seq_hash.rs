//! The sequence carried in the page's URL hash, `#seq=12,7,301`: the CPU build hands it to the
//! WebGPU build, and either page presets its sequence from it.

use leptos::prelude::location_hash;

/// The sequence in the current URL hash, if it has one.
pub fn current() -> Option<Vec<u32>> {
    parse(&location_hash()?)
}

/// The sequence in a hash (with or without its `#`); ids that are not numbers are skipped.
pub fn parse(hash: &str) -> Option<Vec<u32>> {
    let hash = hash.strip_prefix('#').unwrap_or(hash);
    let list = hash.split('&').find_map(|part| part.strip_prefix("seq="))?;
    Some(
        list.split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect(),
    )
}

/// The hash that carries `seq` (empty for an empty sequence).
/// (The WebGPU build switches in-page and has no use for it.)
#[cfg(not(feature = "webgpu"))]
pub fn format(seq: &[u32]) -> String {
    if seq.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = seq.iter().map(u32::to_string).collect();
    format!("#seq={}", ids.join(","))
}
