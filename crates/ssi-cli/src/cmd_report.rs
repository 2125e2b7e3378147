//! `ssi report`: the results page and table generated from run folders.

use anyhow::{Context, Result, bail};
use clap::Args;
use ssi_train::report;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// Folders searched (four levels deep) for finished runs: folders with config.json and
    /// test.json. Default: runs (when it exists; without it the page is made from runs.json).
    roots: Vec<PathBuf>,
    /// Where table2.csv and README.md are written; the other Markdown files there are linked as
    /// experiment notes. Every row is also kept in runs.json there: runs not found again under
    /// the folders (trained on another machine) keep their rows from it.
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
}

pub fn report(mut a: ReportArgs) -> Result<()> {
    if a.roots.is_empty() && std::path::Path::new("runs").is_dir() {
        a.roots.push(PathBuf::from("runs"));
    }
    for r in &a.roots {
        if !r.is_dir() {
            bail!(
                "{} is {}",
                r.display(),
                ssi_data::files::not_a_folder(r).unwrap_or_else(|| "not there".into())
            );
        }
    }
    if let Some(what) = ssi_data::files::not_a_folder(&a.out) {
        bail!(
            "--out {} is {what}: the page and its table go in a folder",
            a.out.display()
        );
    }
    // One report at a time per folder: each reads runs.json and writes it back with its rows,
    // so two at once would keep only the last one's. The folder is made to hold the lock; a
    // refused report removes both again.
    let created = !a.out.exists();
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the folder {}", a.out.display()))?;
    let lock_path = a.out.join(LOCK);
    let lock_created = !lock_path.exists();
    let lock = match ssi_train::job::try_lock_file(&lock_path)
        .with_context(|| format!("cannot lock {}", lock_path.display()))?
    {
        Some(f) => f,
        None => {
            errln!(
                "note: another `ssi report` is writing {}; waiting for it",
                a.out.display()
            );
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&lock_path)
                .with_context(|| format!("cannot lock {}", lock_path.display()))?;
            f.lock()
                .with_context(|| format!("cannot lock {}", lock_path.display()))?;
            f
        }
    };
    let written = write_page(&a);
    drop(lock);
    // A refused report leaves the folder as it found it (a user's folder gets no lock file).
    if written.is_err() && lock_created {
        let _ = std::fs::remove_file(&lock_path);
    }
    if written.is_err() && created {
        let _ = std::fs::remove_dir(&a.out);
    }
    written
}

/// The lock file a report holds in its `--out` (ignored by git).
const LOCK: &str = ".report.lock";

/// Reads the runs and the archive of `--out` and writes the page, table, archive and charts.
fn write_page(a: &ReportArgs) -> Result<()> {
    let (found, skipped) = report::collect(&a.roots);
    let (ablations, skipped_ablations) = report::collect_ablations(&a.roots);
    for s in skipped.iter().chain(&skipped_ablations) {
        errln!("note: {s}");
    }
    let archive = a.out.join(report::ARCHIVE);
    // A damaged archive is reported, never overwritten.
    let archived = if archive.exists() {
        report::read_archive(&archive).map_err(anyhow::Error::msg)?
    } else {
        Vec::new()
    };
    let n_found = found.len();
    let rows = report::merge(archived, found).map_err(anyhow::Error::msg)?;
    if rows.is_empty() {
        let roots: Vec<String> = a.roots.iter().map(|r| r.display().to_string()).collect();
        bail!(
            "no finished run (a folder with config.json and test.json) under {}, and no {}",
            if roots.is_empty() {
                "runs (not here)".to_string()
            } else {
                roots.join(", ")
            },
            archive.display()
        );
    }
    let mut notes: Vec<String> = std::fs::read_dir(&a.out)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".md") && n != "README.md")
                .collect()
        })
        .unwrap_or_default();
    notes.sort();
    let mut charts = report::curve_charts(&rows);
    let files: Vec<String> = std::fs::read_dir(&a.out)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    charts.extend(report::earlier_charts(&files, &rows, &charts));
    let paper = |d: &str, m: &str| ssi_train::reproduce::paper_ndcg10(d, m);
    let csv_path = a.out.join("table2.csv");
    let md_path = a.out.join("README.md");
    // Only pages an earlier report wrote are replaced: --out may be a folder with a README of
    // its own.
    for path in [&md_path, &csv_path] {
        ssi_data::dataset::check_replaceable(path, "ssi report", report::is_our_page)?;
    }
    for c in charts.iter().filter(|c| !c.svg.is_empty()) {
        ssi_data::dataset::check_replaceable(
            &a.out.join(&c.file),
            "ssi report",
            report::is_our_chart,
        )?;
    }
    let figures_dir = a.out.join("figures");
    if !ablations.is_empty()
        && let Some(what) = ssi_data::files::not_a_folder(&figures_dir)
    {
        bail!(
            "{} is {what}: the ablations' tables and charts go in a folder there",
            figures_dir.display()
        );
    }
    for f in &ablations {
        ssi_data::dataset::check_replaceable(&figures_dir.join(&f.name), "ssi report", |b| {
            report::is_our_ablation(&f.name, b)
        })?;
    }
    ssi_data::dataset::write_atomic(&csv_path, report::to_csv(&rows, &paper).as_bytes())?;
    ssi_data::dataset::write_atomic(&archive, report::to_archive(&rows).as_bytes())?;
    for c in charts.iter().filter(|c| !c.svg.is_empty()) {
        ssi_data::dataset::write_atomic(&a.out.join(&c.file), c.svg.as_bytes())?;
    }
    if !ablations.is_empty() {
        std::fs::create_dir_all(&figures_dir)
            .with_context(|| format!("cannot create the folder {}", figures_dir.display()))?;
    }
    for f in &ablations {
        ssi_data::dataset::write_atomic(&figures_dir.join(&f.name), f.text.as_bytes())?;
    }
    // Those copied now and those kept from runs gone since.
    let (tables, figures) = kept_ablations(&figures_dir);
    let n_ablations = tables.len() + figures.len();
    let end = report::PageEnd {
        tables,
        figures,
        appendices: notes,
    };
    ssi_data::dataset::write_atomic(
        &md_path,
        report::to_markdown(&rows, &paper, &charts, &end).as_bytes(),
    )?;
    outln!(
        "{n_found} runs found, {} kept from {}, {} charts, {} ablation files -> {} and {}",
        rows.len() - n_found,
        archive.display(),
        charts.len(),
        n_ablations,
        csv_path.display(),
        md_path.display()
    );
    Ok(())
}

/// The ablation files kept under `figures/`: the tables (read, to show on the page) and the
/// charts (paths relative to the page), each sorted by name. Any SVG there is shown (a chart
/// copied by hand too); a table that cannot be read, or that `ssi reproduce` did not write, is
/// left off the page with a note.
fn kept_ablations(dir: &std::path::Path) -> (Vec<report::AblationFile>, Vec<String>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut tables = Vec::new();
    for n in names.iter().filter(|n| n.ends_with("-table3.md")) {
        let path = dir.join(n);
        match ssi_data::dataset::read_text_max(&path, ssi_data::dataset::MAX_FILE_BYTES) {
            Ok(text) if report::is_our_ablation(n, text.as_bytes()) => {
                tables.push(report::AblationFile {
                    name: n.clone(),
                    text,
                })
            }
            Ok(_) => errln!(
                "note: {} is not a Table 3 that `ssi reproduce` writes: left off the page",
                path.display()
            ),
            Err(e) => errln!("note: {e}: left off the page"),
        }
    }
    let figures = names
        .iter()
        .filter(|n| n.ends_with(".svg"))
        .map(|n| format!("figures/{n}"))
        .collect();
    (tables, figures)
}
