//! `ssi predict`: the next items a bundle recommends after a sequence (what the page shows).

use anyhow::{Context, Result};
use clap::Args;
use ssi_models::SequentialModel;
use ssi_models::common::Batch;
use std::path::PathBuf;

#[derive(Args)]
pub struct PredictArgs {
    /// A bundle written by `ssi export` (bundle.ssib).
    #[arg(long)]
    bundle: PathBuf,
    /// The sequence, oldest first: item ids separated by commas (spaces around them are fine).
    /// The ids are those of the dataset file the model was trained on: after `ssi data ingest`,
    /// the new ids (your log's own ids are mapped in NAME.idmap.tsv). The model reads the last
    /// max_len items (50 by default) of a longer history.
    // Negative numbers reach the parser, which names them, instead of being read as options.
    #[arg(long, value_delimiter = ',', required = true, value_parser = item_id, allow_negative_numbers = true)]
    history: Vec<ItemArg>,
    /// How many items to recommend.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000), allow_negative_numbers = true)]
    top: u64,
    /// Print the recommendations as one JSON object.
    #[arg(long)]
    json: bool,
}

/// An item id of `--history`, as typed in a list like `1, 2, 3`: a whole number of any size
/// (one too large for any catalogue is outside this one, ignored with the others).
#[derive(Clone)]
struct ItemArg {
    id: Option<u32>,
    text: String,
}

fn item_id(s: &str) -> Result<ItemArg, String> {
    match s.trim() {
        "" => Err("an empty item id (an empty --history, or a comma too many)".into()),
        id if {
            let digits = id.strip_prefix('+').unwrap_or(id);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        } =>
        {
            let digits = id.strip_prefix('+').unwrap_or(id);
            Ok(ItemArg {
                id: digits.parse::<u32>().ok(),
                text: digits.trim_start_matches('0').to_string(),
            })
        }
        id => Err(format!("`{id}` is not an item id (a whole number)")),
    }
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let bytes = crate::source::read_bundle(&a.bundle)?;
    let dev = burn::tensor::Device::flex();
    let b = ssi_bundle::Bundle::from_bytes(&bytes, &dev)
        .with_context(|| format!("{}", a.bundle.display()))?;
    let n = b.header.catalogue.n_items();
    let in_catalogue = |i: &ItemArg| i.id.is_some_and(|i| i >= 1 && i as usize <= n);
    let unknown: Vec<&str> = a
        .history
        .iter()
        .filter(|i| !in_catalogue(i))
        .map(|i| {
            if i.text.is_empty() {
                "0"
            } else {
                i.text.as_str()
            }
        })
        .collect();
    if !unknown.is_empty() && unknown.len() == a.history.len() {
        anyhow::bail!(
            "{}: none of the {} given is in its catalogue (ids 1..={n})",
            a.bundle.display(),
            some_items(&unknown)
        );
    }
    if !unknown.is_empty() {
        errln!(
            "note: {} not in the catalogue ({n} items), ignored",
            some_items(&unknown)
        );
    }
    let history: Vec<u32> = a
        .history
        .iter()
        .filter(|i| in_catalogue(i))
        .filter_map(|i| i.id)
        .collect();
    let items: [&[u32]; 1] = [&history];
    let scores = b
        .model
        .score_all(Batch {
            items: &items,
            users: &[None],
        })
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let top = ssi_bundle::top_k(&scores, &history, a.top as usize);
    if top.len() < a.top as usize {
        // Items of the history are never recommended again: say why the list is short.
        let seen = history
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        errln!(
            "note: the history holds {seen} of the catalogue's {n} items, which are not \
             recommended again: {} left to recommend",
            top.len()
        );
    }
    let rows: Vec<serde_json::Value> = top
        .iter()
        .map(|&(item, p)| {
            serde_json::json!({"item": item, "name": b.header.catalogue.name(item), "probability": p})
        })
        .collect();
    if a.json {
        outln!(
            "{}",
            serde_json::json!({"history": history, "ignored": ignored_json(&unknown), "predictions": rows})
        );
    } else {
        for (i, (item, p)) in top.iter().enumerate() {
            // Control characters of a name (an escape sequence in a bundle from elsewhere)
            // are shown escaped, never sent to the terminal.
            let name: String = b
                .header
                .catalogue
                .name(*item)
                .chars()
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect();
            outln!("{:>3}. {:>6.2}%  #{item} {name}", i + 1, p * 100.0);
        }
    }
    Ok(())
}

/// The ids left out, as numbers (as strings past 64 bits, which JSON readers would round).
fn ignored_json(ids: &[&str]) -> Vec<serde_json::Value> {
    ids.iter()
        .map(|t| t.parse::<u64>().map_or_else(|_| (*t).into(), Into::into))
        .collect()
}

/// `items [3, 9]`, or for a long list its count and first ids: a history of thousands of
/// unknown ids would otherwise print them all.
fn some_items<T: std::fmt::Display>(ids: &[T]) -> String {
    const SHOWN: usize = 10;
    let first: Vec<String> = ids.iter().take(SHOWN).map(T::to_string).collect();
    if ids.len() <= SHOWN {
        return format!("items [{}]", first.join(", "));
    }
    format!("{} items ({}, …)", ids.len(), first.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_whole_numbers_of_any_size() {
        let id = |s: &str| super::item_id(s).map(|a| (a.id, a.text));
        assert_eq!(id(" +5 "), Ok((Some(5), "5".into())));
        assert_eq!(id("007"), Ok((Some(7), "7".into())));
        assert_eq!(
            id("18446744073709551617"),
            Ok((None, "18446744073709551617".into()))
        );
        for bad in ["+", "-3", "1.5", "x", "0x10"] {
            assert!(id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_long_list_of_items_is_cut() {
        assert_eq!(super::some_items(&[3, 9]), "items [3, 9]");
        let many: Vec<u32> = (1..=5000).collect();
        assert_eq!(
            super::some_items(&many),
            "5000 items (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …)"
        );
    }
}
