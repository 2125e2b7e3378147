//! The sequence section: type-ahead search, the sequence with its reorder and remove buttons, an
//! example, clear.

use super::state::AppState;
use leptos::prelude::*;

/// Search hits shown under the box.
const SEARCH_HITS: usize = 12;

#[component]
pub fn SequenceBuilder() -> impl IntoView {
    let state = expect_context::<AppState>();
    // Which example comes next: each click shows another.
    let examples_shown = StoredValue::new(0usize);
    let example = move |_| {
        let i = examples_shown.get_value();
        examples_shown.set_value(i + 1);
        if let Some(ex) = state.example(i) {
            state.sequence.set(ex);
        }
    };
    view! {
        <section id="sequence" class="card">
            <h2>"Your sequence"</h2>
            <Search/>
            <SequenceList/>
            <div class="buttons">
                <button id="example" on:click=example>"Try an example"</button>
                " "
                <button id="clear" on:click=move |_| state.sequence.set(Vec::new())>"Clear"</button>
            </div>
        </section>
    }
}

/// The search box and its hits; Enter adds the typed id, or else the first hit.
#[component]
fn Search() -> impl IntoView {
    let state = expect_context::<AppState>();
    let query = RwSignal::new(String::new());
    let hits = move || state.search(&query.get(), SEARCH_HITS);
    let add_typed = move || {
        let q = query.get_untracked();
        let id = match q.trim().parse::<u32>() {
            // Kept even if unknown: flagged in the list, left out of the model's input.
            Ok(id) => Some(id),
            Err(_) => untrack(hits).first().map(|(id, _)| *id),
        };
        if let Some(id) = id {
            state.sequence.update(|s| s.push(id));
            query.set(String::new());
        }
    };
    view! {
        <input id="search" type="text" placeholder="search items by name or id, Enter adds"
            prop:value=move || query.get()
            on:input=move |ev| query.set(event_target_value(&ev))
            on:keydown=move |ev| if ev.key() == "Enter" { add_typed() }/>
        <ul id="search-results">
            <For each=hits key=|(id, _)| *id let:hit>
                <li><button class="add" on:click=move |_| state.sequence.update(|s| s.push(hit.0))>{format!("+ {} (#{})", hit.1, hit.0)}</button></li>
            </For>
        </ul>
    }
}

/// The sequence, oldest first; unknown ids are flagged.
#[component]
fn SequenceList() -> impl IntoView {
    let state = expect_context::<AppState>();
    let seq = state.sequence;
    let row = move |(pos, id): (usize, u32)| {
        let label = state.item_label(id);
        let known = label.is_some();
        view! {
            <li class:unknown=!known>
                <span class="name">{label.unwrap_or_else(|| format!("unknown item {id} (ignored by the model)"))}</span>
                " "
                <span class="moves">
                    <button title="earlier" on:click=move |_| seq.update(|s| if pos > 0 { s.swap(pos, pos - 1) })>"↑"</button>
                    <button title="later" on:click=move |_| seq.update(|s| if pos + 1 < s.len() { s.swap(pos, pos + 1) })>"↓"</button>
                    <button title="remove" on:click=move |_| seq.update(|s| { s.remove(pos); })>"✕"</button>
                </span>
            </li>
        }
    };
    view! {
        <ol id="sequence-list">
            {move || seq.get().into_iter().enumerate().map(row).collect_view()}
        </ol>
    }
}
