//! `ssi data ...`: generate, inspect, ingest and download datasets.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use ssi_data::ingest::{IngestConfig, ingest, read_names};
use ssi_data::synth::{SynthConfig, generate};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Generate the synthetic shop (S3-Rec text format plus an item catalogue beside it).
    Synth(SynthArgs),
    /// Print the paper's Table 1 figures for a dataset file.
    Stats {
        /// S3-Rec format file (`user item item ...`); omit for the embedded synthetic shop.
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Convert a raw interaction log (CSV/TSV with user, item, timestamp) to the S3-Rec format.
    Ingest(IngestArgs),
    /// Download a public S3-Rec dataset (beauty, toys, sports) with sha256 checks.
    Fetch(crate::fetch::FetchArgs),
    /// Write the 99 sampled negatives of every user (S3-Rec `*_sample.txt` layout: `user neg...`),
    /// the candidates `ssi eval` ranks, for an outside reference to rank the same ones.
    Negatives {
        /// S3-Rec format file; omit for the embedded synthetic shop.
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, default_value = "test")]
        split: ssi_data::Split,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output file (refused if it exists, unless --force, or is the dataset itself).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
pub struct SynthArgs {
    /// Output file, e.g. data/shop.txt (the catalogue goes to data/shop.items.tsv).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = SynthConfig::default().users)]
    users: usize,
    #[arg(long, default_value_t = SynthConfig::default().categories)]
    categories: usize,
    #[arg(long, default_value_t = SynthConfig::default().products_per_category)]
    products_per_category: usize,
    #[arg(long, default_value_t = SynthConfig::default().p_noise, allow_negative_numbers = true)]
    p_noise: f64,
    #[arg(long, default_value_t = SynthConfig::default().p_accessory, allow_negative_numbers = true)]
    p_accessory: f64,
    /// Shortest history.
    #[arg(long, default_value_t = SynthConfig::default().min_len)]
    min_len: usize,
    /// Mean number of items beyond --min-len (geometric).
    #[arg(long, default_value_t = SynthConfig::default().mean_extra_len, allow_negative_numbers = true)]
    mean_extra_len: f64,
    /// Longest history.
    #[arg(long, default_value_t = SynthConfig::default().max_len)]
    max_len: usize,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct IngestArgs {
    /// The raw log (CSV or TSV).
    input: PathBuf,
    /// Output dataset file; `.items.tsv` and `.idmap.tsv` are written beside it.
    #[arg(long)]
    out: PathBuf,
    /// User column: header name or 0-based index.
    #[arg(long, default_value = "0")]
    user_col: String,
    #[arg(long, default_value = "1")]
    item_col: String,
    #[arg(long, default_value = "2")]
    time_col: String,
    /// Field separator: one character, or `tab` / `\t` (default: tab if the first line has
    /// one, else comma).
    #[arg(long, value_parser = delimiter)]
    delimiter: Option<char>,
    /// Keep users and items with at least this many interactions (iteratively).
    #[arg(long, default_value_t = 5)]
    k_core: usize,
    /// Optional catalogue `item,name[,category]` keyed by the original item ids.
    #[arg(long)]
    names: Option<PathBuf>,
    /// Replace existing output files (never the input files).
    #[arg(long)]
    force: bool,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Synth(a) => synth(a),
        DataCommand::Stats { file, json } => stats(file, json),
        DataCommand::Ingest(a) => ingest_log(a),
        DataCommand::Fetch(a) => crate::fetch::run(a),
        DataCommand::Negatives {
            data,
            split,
            seed,
            out,
            force,
        } => negatives(data, split, seed, out, force),
    }
}

/// A synthetic-shop message with the settings this command takes named as its options
/// (`p_accessory` is `--p-accessory` here).
fn synth_flags(msg: &str) -> String {
    const FLAGS: [&str; 8] = [
        "users",
        "categories",
        "products_per_category",
        "p_noise",
        "p_accessory",
        "min_len",
        "mean_extra_len",
        "max_len",
    ];
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if FLAGS.contains(&word.as_str()) {
            out.push_str(&format!("--{}", word.replace('_', "-")));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in msg.chars() {
        if c.is_ascii_lowercase() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn synth(a: SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        seed: a.seed,
        users: a.users,
        categories: a.categories,
        products_per_category: a.products_per_category,
        p_noise: a.p_noise,
        p_accessory: a.p_accessory,
        min_len: a.min_len,
        mean_extra_len: a.mean_extra_len,
        max_len: a.max_len,
        // Not an option: with fewer categories than a persona favours, it favours them all.
        persona_categories: SynthConfig::default()
            .persona_categories
            .min(a.categories.max(1)),
        ..Default::default()
    };
    let ds = generate(&cfg).map_err(|e| anyhow::anyhow!(synth_flags(&e.to_string())))?;
    ssi_data::dataset::check_outputs(&ds.outputs(&a.out), &[], a.force)?;
    remove_stale_temps_beside(&a.out);
    ds.save(&a.out)?;
    let st = ds.stats();
    outln!(
        "wrote {} ({} users, {} items, {} interactions) and its catalogue {}",
        a.out.display(),
        st.users,
        st.max_item_id,
        st.interactions,
        ssi_data::dataset::catalogue_path(&a.out).display()
    );
    Ok(())
}

fn stats(file: Option<PathBuf>, json: bool) -> Result<()> {
    let ds = crate::source::load(file.as_deref(), json)?;
    let st = ds.stats();
    if json {
        outln!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        outln!("dataset                  {}", ds.name);
        outln!("users                    {}", st.users);
        // `items` counts the ids that occur, as in the JSON; the id range is what models size.
        outln!(
            "items                    {} (of the ids 1..={})",
            st.items,
            st.max_item_id
        );
        outln!("interactions             {}", st.interactions);
        outln!(
            "actions without test     {} (the paper's Table 1 \"# Actions\")",
            st.actions_without_test
        );
        outln!("avg actions per user     {:.2}", st.avg_actions_per_user);
        outln!(
            "avg actions per item     {:.2} (over the {} items that occur)",
            st.avg_actions_per_item,
            st.items
        );
        outln!("sequence length          {}..={}", st.min_len, st.max_len);
        outln!(
            "density                  {:.5} (over all {} item ids)",
            st.density,
            st.max_item_id
        );
    }
    Ok(())
}

fn ingest_log(a: IngestArgs) -> Result<()> {
    let text = ssi_data::dataset::read_text(&a.input)?;
    let names = match &a.names {
        Some(p) => {
            // A catalogue of names: far smaller than the log it names.
            let t = ssi_data::dataset::read_text_max(p, 256 << 20)?;
            Some(read_names(&t, p)?)
        }
        None => None,
    };
    let cfg = IngestConfig {
        user_col: a.user_col,
        item_col: a.item_col,
        time_col: a.time_col,
        delimiter: a.delimiter,
        k_core: a.k_core,
    };
    let ing = ingest(&text, &a.input, &cfg, names.as_ref())?;
    if let (Some(names), Some(p)) = (&names, &a.names) {
        let named = ing
            .item_map
            .iter()
            .filter(|i| names.contains_key(*i))
            .count();
        if named == 0 {
            let first: Vec<&str> = ing.item_map.iter().take(3).map(String::as_str).collect();
            bail!(
                "{}: none of its {} names is of an item of the log (the log's items are ids such as {}): check the item column of both files",
                p.display(),
                names.len(),
                first.join(", ")
            );
        }
        if named < ing.item_map.len() {
            errln!(
                "note: {} names {named} of the {} items; the others keep their ids as names",
                p.display(),
                ing.item_map.len()
            );
        }
    }
    if let Some(h) = &ing.guessed_header {
        errln!(
            "note: line {} ({}) is read as a header, as its time column {} is not a number; if it is an interaction, give it a numeric timestamp",
            ing.delimiter.line,
            h.join(&ing.delimiter.char.to_string()),
            cfg.time_col
        );
    }
    crate::ui::report_skips(&ssi_data::LoadReport {
        skipped: ing.skipped.clone(),
        warnings: Vec::new(),
    });
    if ing.dataset.n_users() == 0 {
        bail!("no user left after filtering");
    }
    let short = ing
        .dataset
        .sequences
        .iter()
        .filter(|s| s.len() < ssi_data::dataset::MIN_SEQ_LEN)
        .count();
    // Caught here, in the log's own ids: the written file would be refused when loaded.
    if short == ing.dataset.n_users() {
        let (user, len) = ing
            .dataset
            .sequences
            .iter()
            .zip(&ing.user_map)
            .map(|(s, u)| (u, s.len()))
            .max_by_key(|&(_, len)| len)
            .expect("at least one user");
        bail!(
            "{}: no user has the {} items leave-one-out needs (after {}-core filtering), the \
             longest is user {user:?} with {len}; nothing written",
            a.input.display(),
            ssi_data::dataset::MIN_SEQ_LEN,
            cfg.k_core
        );
    }
    let mut inputs = vec![a.input.as_path()];
    inputs.extend(a.names.as_deref());
    ssi_data::dataset::check_outputs(&ing.outputs(&a.out), &inputs, a.force)?;
    remove_stale_temps_beside(&a.out);
    let files = ing.save(&a.out)?;
    outln!(
        "read {} rows; {} dropped by {}-core filtering; {} users, {} items",
        ing.rows,
        ing.dropped_by_k_core,
        cfg.k_core,
        ing.dataset.n_users(),
        ing.dataset.n_items
    );
    if short > 0 {
        errln!(
            "note: {short} user(s) have fewer than 3 items and will be skipped when the file is loaded"
        );
    }
    if ing.repeated_rows > 0 {
        errln!(
            "note: {} row(s) repeat an earlier row exactly (same user, item and timestamp; counted before k-core filtering); repeats are kept as interactions",
            ing.repeated_rows
        );
    }
    for f in files {
        outln!("wrote {}", f.display());
    }
    Ok(())
}

fn negatives(
    data: Option<PathBuf>,
    split: ssi_data::Split,
    seed: u64,
    out: PathBuf,
    force: bool,
) -> Result<()> {
    let ds = crate::source::load(data.as_deref(), false)?;
    // The dataset's catalogue and id map are read with it: inputs too.
    let read: Vec<PathBuf> = data
        .iter()
        .flat_map(|d| {
            [
                d.clone(),
                ssi_data::dataset::catalogue_path(d),
                ssi_data::ingest::idmap_path(d),
            ]
        })
        .collect();
    let inputs: Vec<&std::path::Path> = read.iter().map(|p| p.as_path()).collect();
    ssi_data::dataset::check_outputs(std::slice::from_ref(&out), &inputs, force)?;
    remove_stale_temps_beside(&out);
    let cfg = ssi_data::EvalConfig {
        seed,
        split,
        ..Default::default()
    };
    let text = ssi_data::eval::negatives_text(&ds, &cfg);
    ssi_data::dataset::write_atomic(&out, text.as_bytes())?;
    outln!(
        "wrote {} ({} users, {} split, seed {seed})",
        out.display(),
        ds.n_users(),
        split.as_str()
    );
    // A user who has seen all but a few items gets every one of those, as `ssi eval` draws them.
    let short: Vec<&str> = text
        .lines()
        .filter(|l| l.split(' ').count() - 1 < cfg.n_negatives)
        .filter_map(|l| l.split(' ').next())
        .collect();
    if let Some(first) = short.first() {
        errln!(
            "note: {} user(s) have fewer than {} items outside their history (user {first} first); their lines list all of those, as `ssi eval` draws them",
            short.len(),
            cfg.n_negatives
        );
    }
    Ok(())
}

/// `--delimiter`: one character, or a tab written as `tab` or `\t` (a shell passes `'\t'` as
/// two characters).
fn delimiter(s: &str) -> Result<char, String> {
    match s {
        "tab" | "\\t" => Ok('\t'),
        _ => {
            let mut c = s.chars();
            match (c.next(), c.next()) {
                (Some(d), None) => Ok(d),
                _ => Err(format!(
                    "{s:?} is not one character (write a tab as `tab` or `\\t`)"
                )),
            }
        }
    }
}

/// Temporaries an interrupted earlier write of `out` left beside it (see
/// `remove_stale_temps_of`): other files of the user's folder are never touched.
fn remove_stale_temps_beside(out: &std::path::Path) {
    ssi_data::dataset::remove_stale_temps_of(out);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tab_delimiter_can_be_typed() {
        for s in ["tab", "\\t", "\t"] {
            assert_eq!(super::delimiter(s), Ok('\t'));
        }
        assert_eq!(super::delimiter(";"), Ok(';'));
        assert!(super::delimiter("ab").unwrap_err().contains("tab"));
        assert!(super::delimiter("").is_err());
    }

    #[test]
    fn synth_errors_name_the_options() {
        let cfg = ssi_data::synth::SynthConfig {
            p_accessory: 0.9,
            p_noise: 0.5,
            ..Default::default()
        };
        let msg = ssi_data::synth::generate(&cfg).unwrap_err().to_string();
        let named = super::synth_flags(&msg);
        assert!(
            named.contains("--p-accessory, --p-noise >= 0 and --p-accessory + --p-noise <= 1"),
            "{named}"
        );
    }
}
