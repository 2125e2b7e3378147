//! The live loss curve of fine-tuning, an SVG that scales with its box.

use super::state::AppState;
use leptos::prelude::*;

#[component]
pub fn LossCurve() -> impl IntoView {
    let losses = expect_context::<AppState>().tuning.losses;
    view! {
        <svg id="loss-curve" width="100%" viewBox="0 0 420 140" preserveAspectRatio="xMidYMid meet" role="img" aria-label="training loss per step">
            <rect width="420" height="140" fill="#f7f7f7"/>
            <polyline fill="none" stroke="#4c72b0" stroke-width="2" points=move || losses.with(|l| loss_curve(l))/>
            <text x="12" y="12" font-size="10" fill="#555">{move || losses.with(|l| curve_label(l, true))}</text>
            <text x="12" y="136" font-size="10" fill="#555">{move || losses.with(|l| curve_label(l, false))}</text>
            <text x="408" y="136" font-size="10" fill="#555" text-anchor="end">{move || format!("step {}", losses.with(Vec::len))}</text>
        </svg>
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
