//! `ssi quickstart`: the main job in miniature (`ssi_train::reproduce::quickstart`) — three
//! consistency teachers, a student imitating them, the same student alone, MostPop and a Markov
//! chain, one table, and a bundle for the page.

use crate::cmd_reproduce::{Execution, execute, workspace};
use anyhow::Result;
use clap::Args;
use ssi_data::Dataset;
use ssi_data::dataset::check_replaceable;
use ssi_models::ModelKind;
use ssi_train::reproduce::quickstart::{self, Budget, SummaryRow};
use ssi_train::reproduce::{Plan, student_runs};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct QuickstartArgs {
    /// Run on this dataset instead of the embedded synthetic shop.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder: one run folder per model, the table, and the bundle (an existing folder
    /// is continued: finished models are read back). Default: runs/quickstart/NAME, the dataset
    /// file's name (`shop` for the embedded synthetic shop).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Epochs of each of the seven trained runs (at most: the stopping rule may end one
    /// sooner). The default, 16, takes about a minute a run on one core of a 2-core machine.
    #[arg(long, conflicts_with = "minutes", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    epochs: Option<u64>,
    /// Training minutes of each run instead of epochs: the table then depends on the machine's
    /// speed and load.
    #[arg(long)]
    minutes: Option<f64>,
    /// Models trained at once (each uses about one core).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// The student (the paper's are hgn, gru4rec and sasrec; HGN, its headline student, by
    /// default).
    #[arg(long, default_value = "hgn")]
    student: ModelKind,
    /// A worker of --jobs: train this stage only.
    #[arg(long, hide = true)]
    stage: Option<String>,
}

pub fn quickstart(a: QuickstartArgs) -> Result<()> {
    let budget = match (a.minutes, a.epochs) {
        (Some(m), _) if !(m.is_finite() && m > 0.0) => {
            anyhow::bail!("--minutes {m} must be a positive number")
        }
        (Some(m), _) => Budget::Minutes(m),
        (None, Some(n)) => Budget::Epochs(n as usize),
        (None, None) => Budget::DEFAULT,
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| default_out(a.data.as_deref()));
    let ds = crate::source::load(a.data.as_deref(), false)?;
    let ws = workspace(&ds, a.data.clone(), out.clone(), "cpu")?;
    let bundle = out.join("bundle");
    // The bundle an earlier quickstart exported is replaced; a file of the user's is not, nor a
    // bundle the user exported there: quickstart's own carries the name it gives, of this
    // dataset and a student (an earlier quickstart may have had another).
    let bundle_name = format!("{} SSI-{}", ds.name, a.student.name());
    let quickstarts = |name: &str| {
        ModelKind::ALL
            .iter()
            .any(|k| name == format!("{} SSI-{}", ds.name, k.name()))
    };
    let is_bundle =
        |b: &[u8]| ssi_bundle::Bundle::read_header(b).is_ok_and(|(h, _)| quickstarts(&h.name));
    let is_header = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b).is_ok_and(|v| {
            v.get("provenance").is_some() && v["name"].as_str().is_some_and(quickstarts)
        })
    };
    // A quickstart of another dataset in the same folder: say so, rather than that its bundle
    // is not quickstart's.
    if let Ok(bytes) = std::fs::read(bundle.join(ssi_bundle::FILE_NAME))
        && let Ok((h, _)) = ssi_bundle::Bundle::read_header(&bytes)
        && let Some(other) = ModelKind::ALL
            .iter()
            .find_map(|k| h.name.strip_suffix(&format!(" SSI-{}", k.name())))
        && other != ds.name
    {
        anyhow::bail!(
            "{} holds a quickstart on {other}, not on {}: choose another --out",
            out.display(),
            ds.name
        );
    }
    let writer = "ssi quickstart";
    check_replaceable(&bundle.join(ssi_bundle::FILE_NAME), writer, is_bundle)?;
    check_replaceable(&bundle.join("bundle.json"), writer, is_header)?;
    let request = quickstart::request(ds.name.to_ascii_lowercase(), budget, a.student)?;
    let plan = Plan::new(request, &ds)?;
    if a.stage.is_none() {
        introduce(&ds, &a, budget, plan.stages().len());
    }
    let how = Execution {
        jobs: a.jobs,
        stage: a.stage.clone(),
        print_table2: false,
    };
    execute(&plan, ws, how)?;
    if a.stage.is_some() {
        // A worker of --jobs: its stage is all it does.
        return Ok(());
    }

    let rows = quickstart::summary(&ds, &out, a.student, &burn::tensor::Device::flex())?;
    print_summary(&rows);
    quickstart::write_summary(&out, &quickstart::summary_markdown(&ds.name, &rows))?;
    verdict(&rows, a.student);

    let (_, _, ssi) = student_runs(a.student);
    crate::cmd_export::export(crate::cmd_export::ExportArgs::new(
        out.join(&ssi),
        bundle.clone(),
        bundle_name,
    ))?;
    next_steps(&out, &bundle, &ds);
    Ok(())
}

fn introduce(ds: &Dataset, a: &QuickstartArgs, budget: Budget, runs: usize) {
    let st = ds.stats();
    let alone = if a.student == ModelKind::Bert4rec {
        "BERT4Rec is".to_string()
    } else {
        format!("BERT4Rec and {} are", a.student.name())
    };
    outln!(
        "SSI in miniature on {} ({} users, {} items, {} interactions): {alone} \
         trained; three teachers continue the BERT4Rec run, each with one consistency task; \
         then the {s} run continues twice from the same weights, imitating the teachers (SSI) \
         and alone (the reference). MostPop and a Markov chain for scale. {} runs x {}, \
         {} at once.\n",
        ds.name,
        st.users,
        st.max_item_id,
        st.interactions,
        runs,
        budget,
        a.jobs,
        s = a.student.name(),
    );
}

/// runs/quickstart/DATASET: the file's name, or `shop` for the embedded shop.
fn default_out(data: Option<&Path>) -> PathBuf {
    let name = match data {
        Some(d) => d
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into()),
        None => "shop".into(),
    };
    PathBuf::from("runs/quickstart").join(name)
}

/// The closing line: the SSI student against the same student continued alone from the same
/// weights for the same time.
fn verdict(rows: &[SummaryRow], student: ModelKind) {
    let ndcg = |label: &str| {
        rows.iter()
            .find(|r| r.label == label)
            .and_then(|r| r.report.sampled.ndcg_at(10))
            .unwrap_or(0.0)
    };
    let (s, b) = (
        ndcg(&format!("SSI-{}", student.name())),
        ndcg(&format!("{} continued", student.name())),
    );
    // About the standard error of a difference of NDCG@10 on one test sample of a few
    // thousand users: a smaller gap is no evidence either way.
    const NOISE: f64 = 0.005;
    outln!(
        "\nSSI-{0} vs {0} continued alone (same start, same budget): {1:+.4} NDCG@10 (sampled). {2}",
        student.name(),
        s - b,
        if s - b > NOISE {
            "Imitating the teachers helped."
        } else if s - b < -NOISE {
            "Imitation did not help here (docs/results/ has the full-size runs)."
        } else {
            "Level within the noise of one test sample (docs/results/ has the full-size runs)."
        }
    );
}

fn print_summary(rows: &[SummaryRow]) {
    outln!(
        "\n{:<22} {:>9} {:>9} {:>14} {:>9}",
        "model (test split)",
        "NDCG@10",
        "Recall@10",
        "full NDCG@10",
        "minutes"
    );
    for SummaryRow {
        label,
        report: r,
        minutes,
    } in rows
    {
        let full = r.full.as_ref().and_then(|f| f.ndcg_at(10));
        outln!(
            "{:<22} {:>9.4} {:>9.4} {:>14} {:>9}",
            label,
            r.sampled.ndcg_at(10).unwrap_or(0.0),
            r.sampled.recall_at(10).unwrap_or(0.0),
            full.map(|f| format!("{f:.4}")).unwrap_or_default(),
            minutes.map(|m| format!("{m:.1}")).unwrap_or_default()
        );
    }
    outln!("NDCG@10 / Recall@10: the target among 99 sampled negatives; full: among all items.");
}

fn next_steps(out: &Path, bundle: &Path, ds: &ssi_data::Dataset) {
    // Two items of the data, as the start of a history: ids need not begin at 1.
    let (first, second) = ds
        .sequences
        .iter()
        .find(|s| s.len() >= 2)
        .map_or((1, 2), |s| (s[0], s[1]));
    outln!(
        "\nNext (`ssi` is target/release/ssi after `cargo run --release`; \
         `cargo install --path crates/ssi-cli` puts it on your PATH):\n  \
         ssi predict --bundle {b} --history {first},{second}   # the next items after items {first} and {second}\n  \
         trunk serve --release                     # the page (web/README.md); upload {b} there\n  \
         ssi data fetch beauty && ssi quickstart --data {beauty} --minutes 20\n  \
         ssi data ingest log.csv --out data/mine.txt   # your own log: user,item,timestamp\n\
         Runs, summary.md (the table above), table2.md (the paper's Table 2 rows) and the bundle \
         are in {o}.",
        b = shell_word(&bundle.join(ssi_bundle::FILE_NAME)),
        o = out.display(),
        // Where `data fetch` puts it here (SSI_CACHE, XDG_CACHE_HOME or ~/.cache/ssi).
        beauty = shell_word(&crate::fetch::cache_dir(None).join("beauty.txt")),
    );
}

/// A path as a shell word, quoted when it holds spaces or shell characters, so that the printed
/// commands can be pasted as they are.
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    shlex::try_quote(&text)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| text.into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn printed_paths_paste_into_a_shell() {
        let p = std::path::Path::new("my runs/ünï/bundle.ssib");
        assert_eq!(super::shell_word(p), "'my runs/ünï/bundle.ssib'");
        let plain = std::path::Path::new("runs/quickstart/shop/bundle/bundle.ssib");
        assert_eq!(super::shell_word(plain), plain.to_str().unwrap());
    }
}
