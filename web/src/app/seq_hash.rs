//! The sequence carried in the page's URL hash, `#seq=12,7,301`: the CPU build hands it to the
//! WebGPU build, and either page presets its sequence from it.

use leptos::prelude::location_hash;

/// Longest sequence taken from a URL (the models read at most their last `max_len` items).
const MAX_IDS: usize = 500;

/// A sequence read from the URL, with what was left out of it.
pub struct FromUrl {
    pub ids: Vec<u32>,
    /// Entries that are not item ids (words, negative or too large numbers).
    pub bad: Vec<String>,
    /// Entries beyond `MAX_IDS`, dropped from the front.
    pub dropped: usize,
}

impl FromUrl {
    /// What the page tells the visitor about the left-out entries, if any.
    pub fn notice(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.bad.is_empty() {
            let shown: Vec<&str> = self.bad.iter().take(5).map(String::as_str).collect();
            parts.push(format!(
                "{} entr{} of the URL's #seq= {} not item ids and left out ({})",
                self.bad.len(),
                if self.bad.len() == 1 { "y" } else { "ies" },
                if self.bad.len() == 1 { "is" } else { "are" },
                shown.join(", ")
            ));
        }
        if self.dropped > 0 {
            parts.push(format!(
                "the URL's #seq= has more than {MAX_IDS} ids: the first {} were left out",
                self.dropped
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The sequence in the current URL hash, if it has one.
pub fn current() -> Option<FromUrl> {
    parse(&location_hash()?)
}

/// The sequence in a hash (with or without its `#`).
pub fn parse(hash: &str) -> Option<FromUrl> {
    let hash = hash.strip_prefix('#').unwrap_or(hash);
    let list = hash.split('&').find_map(|part| part.strip_prefix("seq="))?;
    let (mut ids, mut bad) = (Vec::new(), Vec::new());
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.parse::<u32>() {
            Ok(id) => ids.push(id),
            Err(_) => bad.push(entry.chars().take(20).collect()),
        }
    }
    let dropped = ids.len().saturating_sub(MAX_IDS);
    ids.drain(..dropped);
    Some(FromUrl { ids, bad, dropped })
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
