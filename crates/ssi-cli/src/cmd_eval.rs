//! `ssi eval`: a recommender under the paper's protocol and full ranking.

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args, ValueEnum};
use ssi_data::{
    Dataset, EvalConfig, EvalReport, Evaluator, MarkovChain, MostPop, Recommender, Split,
};
use ssi_train::config::SelectBy;
use ssi_train::{ModelRecommender, RunDir};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum CountModel {
    /// Items ranked by training popularity (the paper's MostPop).
    Mostpop,
    /// First-order item-to-next-item transition counts.
    Markov,
}

/// `--negatives`: a count drawn with the seed, or a file of candidates.
#[derive(Clone, Debug)]
pub enum Negatives {
    Count(usize),
    File(PathBuf),
}

impl std::str::FromStr for Negatives {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Negatives::parse(s, |p| p.exists())
    }
}

impl Negatives {
    /// A number is a count, anything else a file; a number that also names a file is refused
    /// rather than guessed at.
    fn parse(s: &str, exists: impl Fn(&std::path::Path) -> bool) -> Result<Self, String> {
        match s.parse() {
            Ok(_) if exists(std::path::Path::new(s)) => Err(format!(
                "`{s}` is both a count of negatives and a file here: write `./{s}` for the \
                 file, or rename it to use the count"
            )),
            Ok(n) => Ok(Negatives::Count(n)),
            Err(_) => Ok(Negatives::File(PathBuf::from(s))),
        }
    }
}

#[derive(Args, Clone)]
pub struct ProtocolArgs {
    /// Seed of the negative samples (the same seed gives every model the same candidates).
    #[arg(long, default_value_t = ssi_train::config::EVAL_SEED)]
    pub seed: u64,
    /// Negatives per target for the sampled protocol (the paper: 99), or a file of candidates in
    /// the S3-Rec `*_sample.txt` layout (one line per user: user id, then its negative ids).
    #[arg(long, default_value = "99", value_name = "COUNT|FILE")]
    pub negatives: Negatives,
    /// Which target to rank: the test item (last) or the validation item (second last).
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Skip the full ranking against all items.
    #[arg(long)]
    pub no_full: bool,
    /// Hide user ids from the model (HGN then uses its unknown-user vector).
    #[arg(long)]
    pub anonymous: bool,
    /// The model reads only each user's last N items (e.g. 5, HGN's window: what a teacher
    /// predicts from the input its SSI student sees); the candidates stay those of the whole
    /// history.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub history: Option<u64>,
}

impl ProtocolArgs {
    /// The evaluator of these settings on `ds`: candidates drawn with the seed, or read from the
    /// `--negatives` file.
    pub fn evaluator(&self, ds: &Dataset) -> Result<Evaluator> {
        let cfg = self.config();
        Ok(match &self.negatives {
            Negatives::Count(0) => {
                bail!(
                    "--negatives 0: the sampled protocol ranks the target among at least 1 negative (the paper: 99)"
                )
            }
            Negatives::Count(_) => Evaluator::new(ds, cfg),
            Negatives::File(path) => {
                let text = ssi_data::dataset::read_text(path).with_context(|| {
                    format!(
                        "--negatives {}: neither a count of negatives nor a readable file of them",
                        path.display()
                    )
                })?;
                let ev = Evaluator::from_file(ds, cfg, &text, path)?;
                for n in &ev.notes {
                    errln!("{n}");
                }
                ev
            }
        })
    }

    fn config(&self) -> EvalConfig {
        EvalConfig {
            seed: self.seed,
            n_negatives: match self.negatives {
                Negatives::Count(n) => n,
                // The count asked for when the file cannot say (every line lists all of its
                // user's unseen items): the paper's, as the same candidates drawn here had it.
                Negatives::File(_) => EvalConfig::default().n_negatives,
            },
            split: self.split,
            full: !self.no_full,
            max_users: None,
            anonymous: self.anonymous,
            history: self.history.map(|n| n as usize),
        }
    }
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["model", "checkpoint", "bundle", "ensemble"])))]
pub struct EvalArgs {
    /// A count-based model (or use --checkpoint, --bundle or --ensemble).
    #[arg(long, value_enum)]
    model: Option<CountModel>,
    /// A run folder written by `ssi train`: its best epoch is evaluated.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// With --checkpoint: the epoch kept by this validation figure (sampled, full or both)
    /// instead of the run's own rule (`select_by`); a run keeps the best epoch by each.
    #[arg(long, value_name = "RULE", value_parser = kept_by)]
    kept_by: Option<SelectBy>,
    /// A bundle written by `ssi export` or downloaded from the browser app (bundle.ssib).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Run folders, comma-separated, evaluated as one model: the mean of their predicted
    /// distributions (each one's softmax over all items), e.g. an SSI student's teachers, whose
    /// committee the student imitates.
    #[arg(long, value_delimiter = ',', num_args = 1.., value_name = "DIR,DIR", value_parser = crate::cmd_train::teacher_path)]
    ensemble: Vec<PathBuf>,
    /// cpu or wgpu, for --checkpoint, --bundle and --ensemble.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// S3-Rec format file. Default: the file a --checkpoint (or the first --ensemble) run records;
    /// for --model and --bundle, the embedded synthetic shop.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    protocol: ProtocolArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn evaluate(
    ds: &Dataset,
    model: &dyn Recommender,
    protocol: &ProtocolArgs,
    quiet: bool,
) -> Result<EvalReport> {
    let ev = protocol.evaluator(ds)?;
    let pb = crate::ui::bar(ev.users.len() as u64, "evaluating");
    if quiet {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let report = ev.evaluate(ds, model, &mut |done, _| pb.set_position(done as u64))?;
    pb.finish_and_clear();
    Ok(report)
}

fn anonymous_note(kind: ssi_models::ModelKind) {
    errln!(
        "note: --anonymous changes nothing: {} reads no user ids (only HGN has user embeddings)",
        kind.name()
    );
}

fn kept_by(s: &str) -> Result<SelectBy, String> {
    SelectBy::ALL
        .into_iter()
        .find(|r| r.name() == s)
        .ok_or_else(|| format!("`{s}`: give sampled, full or both"))
}

fn fit(kind: CountModel, ds: &Dataset) -> Box<dyn Recommender> {
    match kind {
        CountModel::Mostpop => Box::new(MostPop::fit(ds)),
        CountModel::Markov => Box::new(MarkovChain::fit(ds)),
    }
}

pub fn eval(a: EvalArgs) -> Result<()> {
    if a.kept_by.is_some() && a.checkpoint.is_none() {
        bail!("--kept-by chooses among the epochs a run kept: give it with --checkpoint RUN");
    }
    // A run's own dataset unless --data is given (an ensemble: its first run's).
    let run = a.checkpoint.as_ref().or(a.ensemble.first());
    let data = match (&a.data, run) {
        (None, Some(dir)) => ssi_train::RunDir::new(dir).config()?.dataset.path,
        _ => a.data.clone(),
    };
    let ds = match (&a.data, run) {
        (None, Some(dir)) => crate::source::load_for_run(dir, data.as_deref(), None, a.json)?,
        _ => crate::source::load(data.as_deref(), a.json)?,
    };
    // Only HGN has user embeddings (unknown runs are refused with their reason below).
    let kinds: Vec<ssi_models::ModelKind> = a
        .checkpoint
        .iter()
        .chain(&a.ensemble)
        .filter_map(|d| RunDir::new(d).config().ok())
        .map(|c| c.model.kind())
        .collect();
    if a.protocol.anonymous && !kinds.is_empty() && !kinds.contains(&ssi_models::ModelKind::Hgn) {
        anonymous_note(kinds[0]);
    }
    // The epoch `--kept-by` evaluated and its rule, said beside the figures.
    let mut kept: Option<(SelectBy, usize)> = None;
    let report = match (a.model, &a.checkpoint) {
        (Some(kind), _) => {
            if !matches!(a.device.as_str(), "cpu" | "flex") {
                errln!(
                    "note: --device {} is not used: --model counts items on the CPU",
                    a.device
                );
            }
            let rec = fit(kind, &ds);
            let name = rec.name();
            if a.protocol.anonymous {
                errln!("note: --anonymous changes nothing: {name} reads no user ids");
            }
            if a.protocol.history.is_some() {
                errln!(
                    "note: --history changes nothing: {name} reads {}",
                    match kind {
                        CountModel::Mostpop => "no history",
                        CountModel::Markov => "only the last item, which any --history keeps",
                    }
                );
            }
            evaluate(&ds, rec.as_ref(), &a.protocol, a.json)?
        }
        (None, None) if !a.ensemble.is_empty() => {
            let dev = crate::source::device(&a.device)?;
            evaluate_runs(
                "--ensemble",
                &a.ensemble,
                &ds,
                data.as_deref(),
                &dev,
                &a.protocol,
                a.json,
            )?
        }
        (None, None) if a.bundle.is_some() => {
            let path = a.bundle.as_ref().expect("checked");
            let dev = crate::source::device(&a.device)?;
            let bytes = crate::source::read_bundle(path)?;
            let b = ssi_bundle::Bundle::from_bytes(&bytes, &dev)
                .with_context(|| format!("{}", path.display()))?;
            if let Some(want) = &b.header.provenance.dataset_sha256
                && *want != ds.fingerprint()
            {
                // A bundle records its dataset's name and fingerprint, not a path to read.
                let hint = if a.data.is_none() {
                    " (without --data the embedded synthetic shop is read)"
                } else {
                    ""
                };
                bail!(
                    "{} was trained on {} ({} users), not on this dataset {} ({} users, other content){hint}: pass the file it was trained on with --data",
                    path.display(),
                    b.header.provenance.dataset,
                    b.header.provenance.n_users,
                    ds.name,
                    ds.n_users()
                );
            }
            if b.header.catalogue.n_items() != ds.n_items as usize {
                bail!(
                    "{} scores {} items but the dataset {} has {}{}",
                    path.display(),
                    b.header.catalogue.n_items(),
                    ds.name,
                    ds.n_items,
                    ssi_data::dataset::catalogue_hint(data.as_deref(), ds.catalogue_raises_items())
                );
            }
            if a.protocol.anonymous && b.header.model.kind() != ssi_models::ModelKind::Hgn {
                anonymous_note(b.header.model.kind());
            }
            let rec = ssi_train::ModelRecommender::new(&b.model);
            evaluate(&ds, &rec, &a.protocol, a.json)?
        }
        (None, Some(dir)) if a.kept_by.is_some() => {
            let dev = crate::source::device(&a.device)?;
            let rule = a.kept_by.expect("checked");
            let (cfg, model, epoch) = RunDir::new(dir).load_best_by(rule, &dev)?;
            let info = ssi_train::checkpoint::DatasetInfo::of(&ds, data.as_deref());
            cfg.dataset.check_same(&info, &dir.display().to_string())?;
            kept = Some((rule, epoch));
            evaluate(&ds, &ModelRecommender::new(&model), &a.protocol, a.json)?
        }
        (None, Some(dir)) => {
            let dev = crate::source::device(&a.device)?;
            evaluate_runs(
                "--checkpoint",
                std::slice::from_ref(dir),
                &ds,
                data.as_deref(),
                &dev,
                &a.protocol,
                a.json,
            )?
        }
        (None, None) => bail!("give --model or --checkpoint"),
    };
    if a.json {
        let mut json = report.to_json();
        if let Some((rule, epoch)) = kept {
            json["kept_by"] = rule.name().into();
            json["epoch"] = epoch.into();
        }
        outln!("{}", serde_json::to_string(&json)?);
    } else {
        if let Some((rule, epoch)) = kept {
            outln!("epoch {epoch}, the best by {}", rule.describe());
        }
        out!("{}", report.to_table());
    }
    Ok(())
}

/// Loads the best model of each run (each trained on `ds`, read from `data` if from a file;
/// each given once) and evaluates it with the paper's protocol: one run alone, several as their
/// ensemble ([`ssi_train::recommender::Ensemble`]). `option` names where the runs were given,
/// for errors.
fn evaluate_runs(
    option: &str,
    dirs: &[PathBuf],
    ds: &Dataset,
    data: Option<&std::path::Path>,
    dev: &burn::tensor::Device,
    protocol: &ProtocolArgs,
    quiet: bool,
) -> Result<ssi_data::EvalReport> {
    let info = ssi_train::checkpoint::DatasetInfo::of(ds, data);
    let mut seen = std::collections::HashSet::new();
    // A copied run folder is the same member: it would count twice in the average.
    let mut weights: Vec<(String, &PathBuf)> = Vec::new();
    let mut models = Vec::new();
    for dir in dirs {
        if !seen.insert(dir.canonicalize().unwrap_or_else(|_| dir.clone())) {
            bail!("--ensemble: {} is given twice", dir.display());
        }
        let sha = RunDir::new(dir)
            .best_weights_sha256()
            .with_context(|| format!("{option}: {}", dir.display()))?;
        if let Some((_, other)) = weights.iter().find(|(w, _)| *w == sha) {
            bail!(
                "--ensemble: {} and {} hold the same weights (a copy of one run): give each run once",
                other.display(),
                dir.display()
            );
        }
        weights.push((sha, dir));
        let (cfg, model) = RunDir::new(dir).load_best(dev)?;
        cfg.dataset.check_same(&info, &dir.display().to_string())?;
        models.push((dir, model));
    }
    if let [(_, model)] = models.as_slice() {
        return evaluate(ds, &ModelRecommender::new(model), protocol, quiet);
    }
    let members = models
        .iter()
        .map(|(dir, m)| {
            let mut rec = ModelRecommender::new(m);
            rec.name = format!("{} ({})", rec.name, dir.display());
            Box::new(rec) as Box<dyn Recommender>
        })
        .collect();
    let ensemble = ssi_train::recommender::Ensemble { members };
    evaluate(ds, &ensemble, protocol, quiet)
}

#[cfg(test)]
mod tests {
    use super::Negatives;
    use std::path::Path;

    #[test]
    fn a_count_that_also_names_a_file_is_refused() {
        let only = |name: &'static str| move |p: &Path| p == Path::new(name);
        assert!(matches!(
            Negatives::parse("50", only("other")),
            Ok(Negatives::Count(50))
        ));
        let err = Negatives::parse("50", only("50")).unwrap_err();
        assert!(err.contains("`./50`"), "{err}");
        assert!(matches!(
            Negatives::parse("./50", only("./50")),
            Ok(Negatives::File(p)) if p == Path::new("./50")
        ));
    }
}
