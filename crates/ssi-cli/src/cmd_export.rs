//! `ssi export`: a trained run as a self-describing bundle for the browser app.

use anyhow::{Context, Result};
use clap::Args;
use ssi_bundle::{Bundle, FILE_NAME, Header, Provenance};
use ssi_data::Catalogue;
use ssi_train::RunDir;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// Run folder of a trained model (its best epoch is exported).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Output folder, e.g. public/models/NAME/ (bundle.ssib and a readable bundle.json).
    #[arg(long)]
    out: PathBuf,
    /// Display name (default: the output folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Full sequences of this many users ship with the bundle, for fine-tuning and validation in
    /// the browser.
    #[arg(long, default_value_t = 1000)]
    sequences: usize,
    /// Replace a bundle already in --out.
    #[arg(long)]
    force: bool,
    /// The dataset the run was trained on, when it has moved from the path its config.json
    /// records (its content is checked against the run's).
    #[arg(long)]
    data: Option<PathBuf>,
}

impl ExportArgs {
    /// Export that replaces a bundle already in `out` (the quickstart's own folder).
    pub fn new(checkpoint: PathBuf, out: PathBuf, name: String) -> Self {
        ExportArgs {
            checkpoint,
            out,
            name: Some(name),
            sequences: 1000,
            force: true,
            data: None,
        }
    }
}

pub fn export(a: ExportArgs) -> Result<()> {
    if let Some(what) = ssi_data::files::not_a_folder(&a.out) {
        anyhow::bail!(
            "--out {} is {what}: a bundle is a folder (bundle.ssib and bundle.json); choose another --out",
            a.out.display()
        );
    }
    if a.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        anyhow::bail!("--name is empty: give the name the page shows for this model");
    }
    // The name is printed here and shown on the page: a control character would act on a terminal.
    if let Some(c) = a
        .name
        .as_deref()
        .and_then(|n| n.chars().find(|c| c.is_control()))
    {
        anyhow::bail!(
            "--name holds the control character {:?}: give a name of printable characters",
            c
        );
    }
    let dir = RunDir::new(&a.checkpoint);
    let cfg = dir.config()?;
    ssi_data::dataset::check_outputs(
        &[a.out.join(FILE_NAME), a.out.join("bundle.json")],
        &[],
        a.force,
    )?;
    crate::cmd_train::unfinished_note(&a.checkpoint, "run");
    let ds = crate::source::load_for_run(
        &a.checkpoint,
        cfg.dataset.path.as_deref(),
        a.data.as_deref(),
        true,
    )?;
    cfg.dataset.check_same(
        &ssi_train::checkpoint::DatasetInfo::of(
            &ds,
            a.data.as_deref().or(cfg.dataset.path.as_deref()),
        ),
        &a.checkpoint.display().to_string(),
    )?;
    let (_, model) = dir.load_best(&burn::tensor::Device::flex())?;
    // A test.json beside a run that trains on is of an earlier stop: not this model's. One that
    // describes another evaluation (`ssi eval` saved over it) would ship wrong figures.
    let metrics = if !dir.state().is_ok_and(|s| s.finished) {
        serde_json::Value::Null
    } else {
        let checked = if !dir.has_result() {
            Err("missing, or of another epoch than the one the run keeps".to_string())
        } else {
            dir.read_json::<serde_json::Value>("test.json")
                .map_err(|e| e.to_string())
                .and_then(|m| ssi_train::report::check_test_json(&m, &cfg).map(|()| m))
        };
        match checked {
            Ok(m) => m,
            Err(e) => {
                errln!(
                    "note: the bundle ships without test metrics: {} ({e}); `ssi eval --checkpoint {}` gives them",
                    dir.file("test.json").display(),
                    a.checkpoint.display()
                );
                serde_json::Value::Null
            }
        }
    };
    let command = std::fs::read_to_string(dir.file("command.txt"))
        .ok()
        .map(|c| c.trim().to_string());
    check_catalogue(
        &a.checkpoint,
        &cfg.dataset,
        a.data.as_deref().or(cfg.dataset.path.as_deref()),
        &ds,
    )?;
    let catalogue = ds.catalogue.clone().unwrap_or_else(|| {
        let mut c = Catalogue::with_items(ds.n_items as usize);
        for id in 1..=ds.n_items {
            c.names[id as usize] = ds.item_name(id);
        }
        c
    });
    // `--out .` has no file name of its own: the folder's real one is meant.
    let name = a.name.clone().unwrap_or_else(|| {
        let out = a.out.canonicalize().unwrap_or_else(|_| a.out.clone());
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let header = Header {
        name,
        model: cfg.model.clone(),
        provenance: Provenance {
            dataset: ds.name.clone(),
            n_users: ds.n_users(),
            command,
            metrics,
            created: today(),
            fine_tuned: None,
            dataset_sha256: cfg.dataset.sha256.clone(),
        },
        catalogue,
        sequences: ds.sequences.iter().take(a.sequences).cloned().collect(),
        weights_len: 0,
        weights_sha256: None,
    };
    let bytes = Bundle::to_bytes(header, &model)?;
    // Read it back before writing: what we ship must load.
    let back = Bundle::from_bytes(&bytes, &burn::tensor::Device::flex())?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let _lock = lock_out(&a.out)?;
    // Again under the lock: another export may have written here since the first check.
    ssi_data::dataset::check_outputs(
        &[a.out.join(FILE_NAME), a.out.join("bundle.json")],
        &[],
        a.force,
    )?;
    // Only this command's temporaries: --out is the user's folder, other files there are theirs.
    ssi_data::dataset::remove_stale_temps_of(&a.out.join(FILE_NAME));
    ssi_data::dataset::remove_stale_temps_of(&a.out.join("bundle.json"));
    ssi_data::dataset::write_atomic(&a.out.join(FILE_NAME), &bytes)?;
    let mut readable = serde_json::to_value(&back.header)?;
    readable["catalogue"] = format!("{} items", back.header.catalogue.n_items()).into();
    readable["sequences"] = format!("{} users", back.header.sequences.len()).into();
    // Which bundle this copy describes: a kill between the two renames leaves the new bundle
    // beside the previous readable copy, told apart by this digest.
    readable["bundle_sha256"] = ssi_data::dataset::sha256_hex(&bytes).into();
    ssi_data::dataset::write_atomic(
        &a.out.join("bundle.json"),
        serde_json::to_string_pretty(&readable)?.as_bytes(),
    )?;
    outln!(
        "exported {} ({}, {} items, {:.1} MB) to {}",
        back.header.name,
        back.header.model.kind().name(),
        back.header.catalogue.n_items(),
        bytes.len() as f64 / 1e6,
        a.out.join(FILE_NAME).display()
    );
    Ok(())
}

/// An exclusive lock on the folder `out` itself (no lock file to ship with the bundle or to
/// leave behind) while its two files are written: two exports into one folder at once would
/// leave the header of one beside the weights of the other. Released when the process ends.
fn lock_out(out: &std::path::Path) -> Result<std::fs::File> {
    let dir = std::fs::File::open(out).with_context(|| format!("cannot open {}", out.display()))?;
    match dir.try_lock() {
        Ok(()) => Ok(dir),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `ssi export` is writing into {}: wait for it, or choose another --out",
            out.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", out.display()))
        }
    }
}

/// Today's UTC date, YYYY-MM-DD.
fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The names a bundle ships are those the run was trained with: a catalogue that has gone from
/// beside the dataset, or another in its place, is refused by name (a run recorded without a
/// catalogue digest, written before it existed, is noted when it gets ids for names).
fn check_catalogue(
    run: &std::path::Path,
    trained: &ssi_train::checkpoint::DatasetInfo,
    data: Option<&std::path::Path>,
    ds: &ssi_data::Dataset,
) -> Result<()> {
    let file = data
        .map(|p| ssi_data::dataset::catalogue_path(p).display().to_string())
        .unwrap_or_else(|| "its catalogue".into());
    let now = ssi_train::checkpoint::DatasetInfo::of(ds, None).catalogue_sha256;
    match (&trained.catalogue_sha256, &now) {
        (Some(_), None) => anyhow::bail!(
            "{} was trained with item names, and their catalogue {file} is not there any more: put it back (the bundle would name items by id)",
            run.display()
        ),
        (Some(a), Some(b)) if a != b => anyhow::bail!(
            "{file} is not the catalogue {} was trained with (its SHA-256 differs): put that one back, so the bundle names the items the model learned",
            run.display()
        ),
        (None, None) => errln!(
            "note: no item catalogue beside the dataset ({file}): the bundle names items by their ids"
        ),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_is_a_date() {
        let t = super::today();
        assert_eq!(t.len(), 10);
        assert!(t.starts_with("20"));
    }
}
