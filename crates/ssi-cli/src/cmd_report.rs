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
    // The folders this report makes (--out and any missing above it), deepest first.
    let created: Vec<PathBuf> = a
        .out
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .map(PathBuf::from)
        .collect();
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the folder {}", a.out.display()))?;
    let lock_path = a.out.join(LOCK);
    let (lock, lock_created) = lock_out(&lock_path, &a.out)?;
    let written = write_page(&a);
    // A refused report leaves the folder as it found it (a user's folder gets no lock file).
    // Removed while held: a report waiting on it finds the file gone once it gets the lock, and
    // locks the new one (see `lock_out`), so two reports never hold two files at once.
    if written.is_err() && lock_created {
        let _ = std::fs::remove_file(&lock_path);
    }
    drop(lock);
    if written.is_err() {
        for d in &created {
            let _ = std::fs::remove_dir(d);
        }
    }
    written
}

/// Locks `path` (made if missing), waiting for another report that holds it. The lock is taken
/// on the file at `path` when it is got: one locked after its holder removed it is let go and
/// the path locked again. Returns whether this report made the file.
fn lock_out(path: &std::path::Path, out: &std::path::Path) -> Result<(std::fs::File, bool)> {
    let cannot = || format!("cannot lock {}", path.display());
    let mut noted = false;
    loop {
        let created = !path.exists();
        let (file, made) = match ssi_train::job::try_lock_file(path).with_context(cannot)? {
            Some(f) => (f, created),
            None => {
                if !noted {
                    errln!(
                        "note: another `ssi report` is writing {}; waiting for it",
                        out.display()
                    );
                    noted = true;
                }
                // Gone since (its holder failed and removed it): try again.
                let f = match std::fs::OpenOptions::new().write(true).open(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    opened => opened.with_context(cannot)?,
                };
                f.lock().with_context(cannot)?;
                (f, false)
            }
        };
        if same_file(&file, path) {
            return Ok((file, made));
        }
    }
}

/// Whether the open `file` is the one now at `path`.
fn same_file(file: &std::fs::File, path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
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
            "no finished run (a folder with config.json and test.json) under {}, and {} {}",
            if roots.is_empty() {
                "runs (not here)".to_string()
            } else {
                roots.join(", ")
            },
            if archive.exists() { "no rows in" } else { "no" },
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
    // Written as one: a failure leaves the page, table, archive and charts as they were.
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (csv_path.clone(), report::to_csv(&rows, &paper).into_bytes()),
        (archive.clone(), report::to_archive(&rows).into_bytes()),
    ];
    for c in charts.iter().filter(|c| !c.svg.is_empty()) {
        files.push((a.out.join(&c.file), c.svg.clone().into_bytes()));
    }
    for f in &ablations {
        files.push((figures_dir.join(&f.name), f.text.clone().into_bytes()));
    }
    // The page lists the ablation files: those of this report and those kept from runs gone
    // since.
    let (mut tables, mut figures) = kept_ablations(&figures_dir);
    for f in &ablations {
        if f.name.ends_with("-table3.md") {
            tables.retain(|t| t.name != f.name);
            tables.push(report::AblationFile {
                name: f.name.clone(),
                text: f.text.clone(),
            });
        } else if f.name.ends_with(".svg") {
            figures.push(format!("figures/{}", f.name));
        }
    }
    tables.sort_by(|x, y| x.name.cmp(&y.name));
    figures.sort();
    figures.dedup();
    let n_ablations = tables.len() + figures.len();
    let end = report::PageEnd {
        tables,
        figures,
        appendices: notes,
    };
    files.push((
        md_path.clone(),
        report::to_markdown(&rows, &paper, &charts, &end).into_bytes(),
    ));
    // A link (a runs.json shared between pages) would be replaced by a file, and what it
    // links to left as it was.
    if let Some((path, _)) = files
        .iter()
        .find(|(p, _)| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
    {
        bail!(
            "{} is a link: a report replaces its files, so the link would become a file and what it links to would not change; report into the folder it links to, or replace the link by a copy",
            path.display()
        );
    }
    ssi_data::dataset::write_all_or_none(&files)?;
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
