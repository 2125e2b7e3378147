//! The evaluation protocol of the paper (§3.1) and the full-ranking protocol.
//!
//! Sampled: each target is ranked among itself and `n_negatives` (99) items drawn uniformly from
//! the items the user never interacted with (in any split). The draws depend only on the dataset,
//! the seed, the split and the user, so every model evaluated with the same seed sees the same
//! candidates. Full: the target is ranked against every item except padding and the items of the
//! input history (a user rarely wants to be shown what they just bought); if the target itself
//! occurs in the history it stays a candidate.

use crate::dataset::Dataset;
use crate::error::DataError;
use crate::metrics::{MetricSet, RankAccumulator, rank_of};
use crate::recommender::{Query, Recommender};
use crate::rng::{Rng, derived};
pub use crate::split::Split;
use crate::split::input_target;
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvalConfig {
    pub seed: u64,
    pub n_negatives: usize,
    pub split: Split,
    /// Also rank against all items.
    pub full: bool,
    /// Evaluate only the first `max_users` users (None = all); for quick validation.
    pub max_users: Option<usize>,
    /// Hide user ids from the model (as for a user typed into the browser).
    #[serde(default)]
    pub anonymous: bool,
    /// The model reads only each user's last `history` items (None = the whole history), to
    /// measure what a model knows from a short window (HGN's, say). Full ranking still leaves
    /// out every item of the whole history: the candidates do not change.
    #[serde(default)]
    pub history: Option<usize>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            seed: 42,
            n_negatives: 99,
            split: Split::Test,
            full: true,
            max_users: None,
            anonymous: false,
            history: None,
        }
    }
}

/// Negative samples fixed once for a dataset, seed and split.
pub struct Evaluator {
    pub config: EvalConfig,
    pub users: Vec<usize>,
    pub negatives: Vec<Vec<u32>>,
    /// What a user should know about where the candidates came from (lines of a negatives file
    /// that were not used); printed by front-ends before the figures.
    pub notes: Vec<String>,
    /// The file the candidates were read from ([`Evaluator::from_file`]); `None`: drawn with
    /// the seed.
    pub candidates_file: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvalReport {
    pub model: String,
    pub dataset: String,
    pub split: Split,
    pub seed: u64,
    pub n_negatives: usize,
    pub sampled: MetricSet,
    pub full: Option<MetricSet>,
    /// Users for whom fewer than `n_negatives` items lay outside their history (all of those were
    /// used), and the fewest negatives any user got.
    #[serde(default)]
    pub users_short_of_negatives: usize,
    #[serde(default)]
    pub fewest_negatives: usize,
    /// The file the candidates were read from (`--negatives FILE`); `None`: drawn with `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_file: Option<String>,
    /// Scored without the users' ids (`EvalConfig::anonymous`): not a run's own figures.
    #[serde(default)]
    pub anonymous: bool,
    /// The model read only the last `history` items (`EvalConfig::history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<usize>,
}

impl EvalReport {
    /// One flat JSON object: `recall@10`, `ndcg@10`, ..., `full_recall@10`, `full_ndcg@10`, ...
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("model".into(), self.model.clone().into());
        m.insert("dataset".into(), self.dataset.clone().into());
        m.insert("split".into(), self.split.as_str().into());
        // Candidates read from a file were not drawn with the seed: the file is named instead.
        match &self.candidates_file {
            Some(f) => m.insert("negatives_file".into(), f.clone().into()),
            None => m.insert("seed".into(), self.seed.into()),
        };
        m.insert("negatives".into(), self.n_negatives.into());
        if self.anonymous {
            m.insert("anonymous".into(), true.into());
        }
        if let Some(n) = self.history {
            m.insert("history".into(), n.into());
        }
        m.insert("users".into(), self.sampled.users.into());
        m.insert(
            "users_short_of_negatives".into(),
            self.users_short_of_negatives.into(),
        );
        let mut entries: BTreeMap<String, f64> = self.sampled.entries("");
        if let Some(f) = &self.full {
            entries.extend(f.entries("full_"));
        }
        for (k, v) in entries {
            m.insert(k, v.into());
        }
        serde_json::Value::Object(m)
    }

    /// What makes the sampled figures less than they say (printed under the table).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.users_short_of_negatives > 0 {
            w.push(format!(
                "warning: {} of {} users had fewer than {} items outside their history (the fewest: {}); their sampled ranks are against fewer candidates, which inflates the sampled metrics",
                self.users_short_of_negatives,
                self.sampled.users,
                self.n_negatives,
                self.fewest_negatives
            ));
        }
        w
    }

    /// A readable table: one row per metric family, columns @5 @10 @15 @20 and MRR.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "{} on {} ({} split, {} users, {}{})\n",
            self.model,
            self.dataset,
            self.split.as_str(),
            self.sampled.users,
            match &self.candidates_file {
                Some(f) => format!("candidates from {f}"),
                None => format!("seed {}", self.seed),
            },
            match self.history {
                Some(1) => ", the model reading the last item only".to_string(),
                Some(n) => format!(", the model reading the last {n} items only"),
                None => String::new(),
            }
        );
        out.push_str(&format!(
            "{:<28} {:>7} {:>7} {:>7} {:>7} {:>7}\n",
            "metric", "@5", "@10", "@15", "@20", "MRR"
        ));
        let mut row = |label: String, v: [f64; 4], mrr: Option<f64>| {
            out.push_str(&format!(
                "{label:<28} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7}\n",
                v[0],
                v[1],
                v[2],
                v[3],
                mrr.map(|m| format!("{m:.4}")).unwrap_or_default()
            ));
        };
        let s = &self.sampled;
        row(
            format!("Recall ({} sampled neg.)", self.n_negatives),
            s.recall,
            None,
        );
        row(
            format!("NDCG   ({} sampled neg.)", self.n_negatives),
            s.ndcg,
            Some(s.mrr),
        );
        if let Some(f) = &self.full {
            row("Recall (all items)".into(), f.recall, None);
            row("NDCG   (all items)".into(), f.ndcg, Some(f.mrr));
        }
        for w in self.warnings() {
            out.push_str(&w);
            out.push('\n');
        }
        out
    }
}

impl Evaluator {
    pub fn new(ds: &Dataset, config: EvalConfig) -> Self {
        let n = config.max_users.unwrap_or(usize::MAX).min(ds.n_users());
        let mut users: Vec<usize> = (0..n).collect();
        // Batches of similar history length waste little compute on padding; the metrics are
        // averages over users, so the order does not change them.
        users.sort_by_key(|&u| ds.sequences[u].len());
        let negatives = users
            .iter()
            .map(|&u| sample_negatives(ds, u, &config))
            .collect();
        Evaluator {
            config,
            users,
            negatives,
            notes: Vec::new(),
            candidates_file: None,
        }
    }

    /// The evaluator with the candidates of a file in the S3-Rec `*_sample.txt` layout (one line
    /// per user: the user id, then its negative item ids), so figures are computed on exactly the
    /// candidates of published tables. Every user of the dataset needs a line with the same number
    /// of negatives (fewer only for a user with no other item left to list), each an item of the
    /// dataset the user never interacted with; lines of users the dataset does not hold (dropped
    /// for being too short) are ignored.
    pub fn from_file(
        ds: &Dataset,
        mut config: EvalConfig,
        text: &str,
        path: &std::path::Path,
    ) -> Result<Self, DataError> {
        let mut file = read_sample_file(ds, text, path)?;
        // When no line says how many were asked for (a catalogue too small for any user to have
        // the full count), keep the configured count, so the report labels and warns as an
        // evaluation with the same candidates drawn here would.
        config.n_negatives = if file.count_known {
            file.n_negatives
        } else {
            config.n_negatives.max(file.n_negatives)
        };
        let mut ev = Evaluator::new(
            ds,
            EvalConfig {
                n_negatives: 0,
                ..config.clone()
            },
        );
        ev.config = config;
        ev.candidates_file = Some(path.display().to_string());
        let mut missing: Vec<u32> = ev
            .users
            .iter()
            .filter(|&&u| file.per_user[u].is_none())
            .map(|&u| ds.user_ids[u])
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            let shown: Vec<String> = missing.iter().take(5).map(|u| u.to_string()).collect();
            return Err(DataError::file(
                path,
                format!(
                    "no line for user {} of dataset {} ({} of its {} users have none{}: every user needs a line)",
                    missing[0],
                    ds.name,
                    missing.len(),
                    ev.users.len(),
                    if missing.len() > 1 {
                        format!(", the first {}", shown.join(", "))
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        for (slot, &u) in ev.negatives.iter_mut().zip(&ev.users) {
            *slot = file.per_user[u].take().expect("checked above");
        }
        if let Some(&first) = file.unknown_users.first() {
            ev.notes.push(format!(
                "note: {}: {} line(s) name users that dataset {} does not hold (the first: user {first}), and were not used; published files list users the loader drops for being too short",
                path.display(),
                file.unknown_users.len(),
                ds.name
            ));
        }
        Ok(ev)
    }

    pub fn evaluate(
        &self,
        ds: &Dataset,
        model: &dyn Recommender,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<EvalReport, DataError> {
        if model.n_items() < ds.n_items {
            return Err(DataError::Invalid(format!(
                "model {} scores items up to {} but dataset {} has items up to {}: was it trained on another dataset?",
                model.name(),
                model.n_items(),
                ds.name,
                ds.n_items
            )));
        }
        let mut ranks = Ranks {
            sampled: RankAccumulator::default(),
            full: RankAccumulator::default(),
            seen: vec![false; ds.n_items as usize + 1],
        };
        let bs = model.batch_size().max(1);
        let total = self.users.len();
        for (chunk_i, chunk) in self.users.chunks(bs).enumerate() {
            let seen: Vec<&[u32]> = chunk
                .iter()
                .map(|&u| input_target(&ds.sequences[u], self.config.split).0)
                .collect();
            let batch = Batch {
                queries: chunk
                    .iter()
                    .zip(&seen)
                    .map(|(&u, h)| Query {
                        user: (!self.config.anonymous).then_some(u),
                        history: match self.config.history {
                            Some(n) => &h[h.len().saturating_sub(n)..],
                            None => h,
                        },
                    })
                    .collect(),
                seen,
                targets: chunk
                    .iter()
                    .map(|&u| input_target(&ds.sequences[u], self.config.split).1)
                    .collect(),
                negatives: &self.negatives[chunk_i * bs..chunk_i * bs + chunk.len()],
            };
            if self.config.full {
                ranks.add_full(ds, model, &batch)?;
            } else {
                ranks.add_sampled(model, &batch)?;
            }
            progress((chunk_i * bs + chunk.len()).min(total), total);
        }
        Ok(EvalReport {
            model: model.name(),
            dataset: ds.name.clone(),
            split: self.config.split,
            seed: self.config.seed,
            n_negatives: self.config.n_negatives,
            candidates_file: self.candidates_file.clone(),
            anonymous: self.config.anonymous,
            history: self.config.history,
            sampled: ranks.sampled.finish(),
            full: self.config.full.then(|| ranks.full.finish()),
            users_short_of_negatives: self
                .negatives
                .iter()
                .filter(|n| n.len() < self.config.n_negatives)
                .count(),
            fewest_negatives: self.negatives.iter().map(Vec::len).min().unwrap_or(0),
        })
    }
}

/// The negatives of an S3-Rec `*_sample.txt` file.
struct SampleFile {
    /// Per user of the dataset; `None` for users without a line.
    per_user: Vec<Option<Vec<u32>>>,
    /// How many negatives every line lists.
    n_negatives: usize,
    /// Whether some line could have listed more than it does, so `n_negatives` is the count asked
    /// for (else every line lists all its user's unseen items, fewer than asked for).
    count_known: bool,
    /// Users of lines the dataset does not hold, in file order.
    unknown_users: Vec<u32>,
}

/// Reads a sample file, checking every line of a user of `ds` against that user's history.
fn read_sample_file(
    ds: &Dataset,
    text: &str,
    path: &std::path::Path,
) -> Result<SampleFile, DataError> {
    let index: std::collections::HashMap<u32, usize> = ds
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, &u)| (u, i))
        .collect();
    let mut per_user: Vec<Option<Vec<u32>>> = vec![None; ds.n_users()];
    let mut lines: Vec<(usize, usize)> = Vec::new();
    let mut unknown_users = Vec::new();
    for (i, line) in crate::dataset::split_lines(text).into_iter().enumerate() {
        let lineno = i + 1;
        crate::dataset::no_hidden_line_break(line, path, lineno)?;
        let mut tokens = line.split_whitespace();
        let Some(user_tok) = tokens.next() else {
            continue;
        };
        let user = sample_id(user_tok, "user", path, lineno)?;
        // Users the loader dropped (too short to split) have lines in published files.
        let Some(&u) = index.get(&user) else {
            unknown_users.push(user);
            continue;
        };
        if per_user[u].is_some() {
            return Err(DataError::line(
                path,
                lineno,
                format!("user {user} appears twice"),
            ));
        }
        per_user[u] = Some(line_negatives(ds, u, user, tokens, path, lineno)?);
        lines.push((lineno, u));
    }
    if lines.is_empty() {
        return Err(DataError::file(
            path,
            match unknown_users.first() {
                None => "file is empty".to_string(),
                Some(first) => format!(
                    "none of its {} line(s) names a user of dataset {} (the first names user {first}): the file is another dataset's",
                    unknown_users.len(),
                    ds.name
                ),
            },
        ));
    }
    // (line, user, count, items the user never interacted with)
    let counts: Vec<(usize, usize, usize, usize)> = lines
        .iter()
        .map(|&(lineno, u)| {
            let have = per_user[u].as_ref().map_or(0, Vec::len);
            let distinct: HashSet<u32> = ds.sequences[u].iter().copied().collect();
            (lineno, u, have, ds.n_items as usize - distinct.len())
        })
        .collect();
    // The count of the file is the most common one among lines that could list more (a line
    // that lists every item its user never touched is short by necessity, though no longer
    // than the count), so that one odd line is the one named, whichever way it is odd.
    let mut tally: std::collections::BTreeMap<usize, usize> = Default::default();
    for &(_, _, have, possible) in &counts {
        if have < possible {
            *tally.entry(have).or_default() += 1;
        }
    }
    let common = tally
        .iter()
        .max_by_key(|&(count, lines)| (*lines, *count))
        .map_or(0, |(count, _)| *count);
    let exhausted = counts
        .iter()
        .filter(|c| c.2 >= c.3)
        .map(|c| c.2)
        .max()
        .unwrap_or(0);
    let n_negatives = common.max(exhausted);
    // Every line exhausted: the file does not say how many were asked for.
    let count_known = !tally.is_empty();
    if n_negatives == 0 {
        return Err(DataError::file(path, "lines list no negatives"));
    }
    // A line may list fewer only when its user has no other item to offer (a small catalogue
    // and a long history), as `ssi data negatives` writes it.
    for &(lineno, u, have, possible) in &counts {
        if have > n_negatives {
            return Err(DataError::line(
                path,
                lineno,
                format!(
                    "{have} negatives where the other lines have {n_negatives} (user {})",
                    ds.user_ids[u]
                ),
            ));
        }
        if have < n_negatives && have < possible {
            return Err(DataError::line(
                path,
                lineno,
                format!(
                    "{have} negatives where other lines have {n_negatives}, and user {} has {possible} items they never interacted with",
                    ds.user_ids[u]
                ),
            ));
        }
    }
    Ok(SampleFile {
        per_user,
        n_negatives,
        count_known,
        unknown_users,
    })
}

fn sample_id(
    tok: &str,
    what: &str,
    path: &std::path::Path,
    lineno: usize,
) -> Result<u32, DataError> {
    tok.parse::<u32>()
        .map_err(|_| DataError::line(path, lineno, format!("{what} {tok:?} is not an id")))
}

/// The negatives on one line of a sample file: distinct items of `ds` that user index `u` (id
/// `user`) never interacted with.
fn line_negatives<'t>(
    ds: &Dataset,
    u: usize,
    user: u32,
    tokens: impl Iterator<Item = &'t str>,
    path: &std::path::Path,
    lineno: usize,
) -> Result<Vec<u32>, DataError> {
    let interacted: HashSet<u32> = ds.sequences[u].iter().copied().collect();
    let mut negs = Vec::new();
    for tok in tokens {
        let item = sample_id(tok, "item", path, lineno)?;
        if item == 0 || item > ds.n_items {
            return Err(DataError::line(
                path,
                lineno,
                format!(
                    "item {item} is outside the dataset's items 1..={}",
                    ds.n_items
                ),
            ));
        }
        if negs.contains(&item) {
            return Err(DataError::line(
                path,
                lineno,
                format!("item {item} is listed twice for user {user}"),
            ));
        }
        if interacted.contains(&item) {
            return Err(DataError::line(
                path,
                lineno,
                format!("item {item} is in user {user}'s history, so it cannot be a negative"),
            ));
        }
        negs.push(item);
    }
    Ok(negs)
}

/// One batch of users: their queries, held-out targets and sampled negatives.
struct Batch<'a> {
    queries: Vec<Query<'a>>,
    /// Each user's whole history, left out of the full ranking (the queries may read less).
    seen: Vec<&'a [u32]>,
    targets: Vec<u32>,
    negatives: &'a [Vec<u32>],
}

/// The ranks of the targets so far.
struct Ranks {
    sampled: RankAccumulator,
    full: RankAccumulator,
    /// Scratch marks of the current history's items, all false between users.
    seen: Vec<bool>,
}

impl Ranks {
    /// Scores all items for each user and ranks the target both among its negatives and among all
    /// items outside the history.
    fn add_full(
        &mut self,
        ds: &Dataset,
        model: &dyn Recommender,
        batch: &Batch,
    ) -> Result<(), DataError> {
        let rows = model.score(&batch.queries);
        check_rows(&rows, batch.queries.len(), ds.n_items as usize + 1, model)?;
        let per_user = batch.targets.iter().zip(batch.negatives);
        for ((row, &seen_items), (&t, neg)) in rows.iter().zip(&batch.seen).zip(per_user) {
            let ts = row[t as usize];
            if let Some(j) = std::iter::once(t)
                .chain(neg.iter().copied())
                .chain(1..=ds.n_items)
                .find(|&j| row[j as usize].is_nan())
            {
                return Err(nan_score(model, j));
            }
            self.sampled
                .add(rank_of(ts, neg.iter().map(|&j| row[j as usize])));
            for &h in seen_items {
                self.seen[h as usize] = true;
            }
            self.seen[t as usize] = false;
            let seen = &self.seen;
            let competitors = (1..=ds.n_items as usize)
                .filter(|&j| j != t as usize && !seen[j])
                .map(|j| row[j]);
            self.full.add(rank_of(ts, competitors));
            for &h in seen_items {
                self.seen[h as usize] = false;
            }
        }
        Ok(())
    }

    /// Scores only the target and its negatives.
    fn add_sampled(&mut self, model: &dyn Recommender, batch: &Batch) -> Result<(), DataError> {
        let cands: Vec<Vec<u32>> = batch
            .targets
            .iter()
            .zip(batch.negatives)
            .map(|(&t, neg)| std::iter::once(t).chain(neg.iter().copied()).collect())
            .collect();
        let rows = model.score_candidates(&batch.queries, &cands);
        check_rows(&rows, batch.queries.len(), 0, model)?;
        for (row, c) in rows.iter().zip(&cands) {
            if row.len() != c.len() {
                return Err(DataError::Invalid(format!(
                    "model {} returned {} candidate scores for {} candidates",
                    model.name(),
                    row.len(),
                    c.len()
                )));
            }
            if let Some(k) = row.iter().position(|v| v.is_nan()) {
                return Err(nan_score(model, c[k]));
            }
            self.sampled.add(rank_of(row[0], row[1..].iter().copied()));
        }
        Ok(())
    }
}

fn nan_score(model: &dyn Recommender, item: u32) -> DataError {
    DataError::Invalid(format!(
        "model {} gave item {item} a NaN score: its weights are corrupt or training diverged (try a lower lr)",
        model.name()
    ))
}

fn check_rows(
    rows: &[Vec<f32>],
    n: usize,
    min_len: usize,
    model: &dyn Recommender,
) -> Result<(), DataError> {
    if rows.len() != n || rows.iter().any(|r| r.len() < min_len) {
        return Err(DataError::Invalid(format!(
            "model {} returned {} score rows (expected {n}, each of at least {min_len} scores)",
            model.name(),
            rows.len()
        )));
    }
    Ok(())
}

/// The sampled candidates of every user in the S3-Rec `*_sample.txt` layout: one line per user,
/// `user_id neg1 ... neg99`, users in file order. What `ssi data negatives` writes, so that an
/// outside reference (bench/quality_ref.py) ranks exactly the candidates `ssi` ranks.
pub fn negatives_text(ds: &Dataset, config: &EvalConfig) -> String {
    let mut out = String::new();
    for (u, id) in ds.user_ids.iter().enumerate() {
        out.push_str(&id.to_string());
        for n in sample_negatives(ds, u, config) {
            out.push(' ');
            out.push_str(&n.to_string());
        }
        out.push('\n');
    }
    out
}

/// Uniform draws without replacement from the items the user never interacted with. If fewer
/// than `n_negatives` such items exist, all of them are used.
pub fn sample_negatives(ds: &Dataset, user: usize, config: &EvalConfig) -> Vec<u32> {
    let seq = &ds.sequences[user];
    let interacted: HashSet<u32> = seq.iter().copied().collect();
    let n_items = ds.n_items as usize;
    let available = n_items - interacted.len().min(n_items);
    let want = config.n_negatives.min(available);
    let mut rng = derived(config.seed, config.split.tag(), user as u64);
    let mut chosen = Vec::with_capacity(want);
    let mut taken = HashSet::with_capacity(want);
    while chosen.len() < want {
        let j = rng.random_range(1..=ds.n_items);
        if !interacted.contains(&j) && taken.insert(j) {
            chosen.push(j);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommender::MostPop;
    use std::path::Path;

    fn toy() -> Dataset {
        let mut text = String::new();
        for u in 1..=50u32 {
            let a = u % 7 + 1;
            text.push_str(&format!("{u} {a} {} {} {}\n", a + 10, a + 20, a + 30));
        }
        Dataset::parse(&text, Path::new("toy")).unwrap().0
    }

    #[test]
    fn negatives_are_fresh_distinct_and_deterministic() {
        let ds = toy();
        let cfg = EvalConfig {
            n_negatives: 20,
            ..Default::default()
        };
        let a = Evaluator::new(&ds, cfg.clone());
        let b = Evaluator::new(&ds, cfg.clone());
        assert_eq!(a.negatives, b.negatives);
        for (u, neg) in a.negatives.iter().enumerate() {
            assert_eq!(neg.len(), 20);
            let set: HashSet<_> = neg.iter().collect();
            assert_eq!(set.len(), 20);
            for j in neg {
                assert!(!ds.sequences[u].contains(j));
                assert!(*j >= 1 && *j <= ds.n_items);
            }
        }
        let other = Evaluator::new(
            &ds,
            EvalConfig {
                seed: 7,
                ..cfg.clone()
            },
        );
        assert_ne!(a.negatives, other.negatives);
        let valid = Evaluator::new(
            &ds,
            EvalConfig {
                split: Split::Valid,
                ..cfg
            },
        );
        assert_ne!(a.negatives, valid.negatives);
    }

    #[test]
    fn too_few_items_uses_all_available() {
        let (ds, _) = Dataset::parse("1 1 2 3\n2 2 3 4\n", Path::new("t")).unwrap();
        let ev = Evaluator::new(&ds, EvalConfig::default());
        assert_eq!(ev.negatives[0], vec![4]);
        assert_eq!(ev.negatives[1], vec![1]);
    }

    struct Oracle;
    impl Recommender for Oracle {
        fn name(&self) -> String {
            "oracle".into()
        }
        fn n_items(&self) -> u32 {
            40
        }
        fn score(&self, queries: &[Query]) -> Vec<Vec<f32>> {
            // Knows the toy rule: the next item is the last one + 10.
            queries
                .iter()
                .map(|q| {
                    let mut r = vec![0.0; 41];
                    r[(*q.history.last().unwrap() + 10) as usize] = 1.0;
                    r
                })
                .collect()
        }
    }

    struct Constant;
    impl Recommender for Constant {
        fn name(&self) -> String {
            "constant".into()
        }
        fn n_items(&self) -> u32 {
            40
        }
        fn score(&self, queries: &[Query]) -> Vec<Vec<f32>> {
            vec![vec![1.0; 41]; queries.len()]
        }
    }

    #[test]
    fn oracle_is_perfect_and_constant_is_last() {
        let ds = toy();
        let ev = Evaluator::new(&ds, EvalConfig::default());
        let r = ev.evaluate(&ds, &Oracle, &mut |_, _| {}).unwrap();
        assert_eq!(r.sampled.recall_at(5), Some(1.0));
        assert_eq!(r.full.as_ref().unwrap().ndcg_at(10), Some(1.0));
        let r = ev.evaluate(&ds, &Constant, &mut |_, _| {}).unwrap();
        assert_eq!(r.sampled.recall_at(20), Some(0.0));
        assert_eq!(r.full.as_ref().unwrap().recall_at(20), Some(0.0));
        let j = r.to_json();
        for k in [
            "recall@10",
            "ndcg@10",
            "full_recall@10",
            "full_ndcg@10",
            "mrr",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
    }

    #[test]
    fn sampled_path_equals_full_path() {
        let ds = toy();
        let m = MostPop::fit(&ds);
        let full = Evaluator::new(&ds, EvalConfig::default())
            .evaluate(&ds, &m, &mut |_, _| {})
            .unwrap();
        let cfg = EvalConfig {
            full: false,
            ..Default::default()
        };
        let only = Evaluator::new(&ds, cfg)
            .evaluate(&ds, &m, &mut |_, _| {})
            .unwrap();
        assert_eq!(full.sampled, only.sampled);
    }

    #[test]
    fn full_ranking_excludes_history() {
        // One user whose history items score highest: they must not push the target down.
        let (ds, _) = Dataset::parse("1 1 2 3 4\n", Path::new("t")).unwrap();
        struct HistoryLover;
        impl Recommender for HistoryLover {
            fn name(&self) -> String {
                "h".into()
            }
            fn n_items(&self) -> u32 {
                4
            }
            fn score(&self, _q: &[Query]) -> Vec<Vec<f32>> {
                vec![vec![0.0, 9.0, 8.0, 7.0, 5.0]]
            }
        }
        let r = Evaluator::new(&ds, EvalConfig::default())
            .evaluate(&ds, &HistoryLover, &mut |_, _| {})
            .unwrap();
        assert_eq!(r.full.unwrap().mrr, 1.0);
    }

    #[test]
    fn anonymous_hides_user_ids() {
        struct NeedsUser;
        impl Recommender for NeedsUser {
            fn name(&self) -> String {
                "u".into()
            }
            fn n_items(&self) -> u32 {
                40
            }
            fn score(&self, q: &[Query]) -> Vec<Vec<f32>> {
                // Perfect with a user id, constant without one.
                q.iter()
                    .map(|q| {
                        let mut r = vec![0.0; 41];
                        if q.user.is_some() {
                            r[(*q.history.last().unwrap() + 10) as usize] = 1.0;
                        }
                        r
                    })
                    .collect()
            }
        }
        let ds = toy();
        let with = Evaluator::new(&ds, EvalConfig::default())
            .evaluate(&ds, &NeedsUser, &mut |_, _| {})
            .unwrap();
        let cfg = EvalConfig {
            anonymous: true,
            ..Default::default()
        };
        let without = Evaluator::new(&ds, cfg)
            .evaluate(&ds, &NeedsUser, &mut |_, _| {})
            .unwrap();
        assert_eq!(with.sampled.mrr, 1.0);
        assert_eq!(without.sampled.recall_at(20), Some(0.0));
    }

    #[test]
    fn history_cuts_what_the_model_reads_not_the_candidates() {
        // toy(): each user's history is a, a+10, a+20 and the test item a+30. The model puts the
        // first item it reads + 10 first and the item 20 before it (a, once cut to the last item)
        // above everything: with the whole history it ranks a+10, in the history; with the last
        // item only it ranks the target, and a must stay out of the full ranking.
        struct FirstPlusTen;
        impl Recommender for FirstPlusTen {
            fn name(&self) -> String {
                "first+10".into()
            }
            fn n_items(&self) -> u32 {
                40
            }
            fn score(&self, q: &[Query]) -> Vec<Vec<f32>> {
                q.iter()
                    .map(|q| {
                        let mut r = vec![0.0; 41];
                        let first = q.history[0] as usize;
                        r[first + 10] = 1.0;
                        if first > 20 {
                            r[first - 20] = 2.0;
                        }
                        r
                    })
                    .collect()
            }
        }
        let ds = toy();
        let whole = Evaluator::new(&ds, EvalConfig::default())
            .evaluate(&ds, &FirstPlusTen, &mut |_, _| {})
            .unwrap();
        assert!(whole.sampled.mrr < 0.5, "{}", whole.sampled.mrr);
        assert_eq!(whole.history, None);
        let cfg = EvalConfig {
            history: Some(1),
            ..Default::default()
        };
        let last = Evaluator::new(&ds, cfg)
            .evaluate(&ds, &FirstPlusTen, &mut |_, _| {})
            .unwrap();
        assert_eq!(last.sampled.mrr, 1.0);
        assert_eq!(last.full.as_ref().unwrap().mrr, 1.0);
        assert_eq!(last.to_json()["history"], 1);
        assert!(last.to_table().contains("reading the last item only"));
    }

    #[test]
    fn nan_scores_fail_and_short_negatives_are_reported() {
        struct Nan;
        impl Recommender for Nan {
            fn name(&self) -> String {
                "nan".into()
            }
            fn n_items(&self) -> u32 {
                40
            }
            fn score(&self, q: &[Query]) -> Vec<Vec<f32>> {
                q.iter().map(|_| vec![f32::NAN; 41]).collect()
            }
        }
        let ds = toy();
        for full in [true, false] {
            let cfg = EvalConfig {
                full,
                ..Default::default()
            };
            let err = Evaluator::new(&ds, cfg)
                .evaluate(&ds, &Nan, &mut |_, _| {})
                .unwrap_err();
            assert!(err.to_string().contains("NaN score"), "{err}");
        }
        // toy() has 37 items, each user 4: 33 negatives, not 99.
        let r = Evaluator::new(&ds, EvalConfig::default())
            .evaluate(&ds, &MostPop::fit(&ds), &mut |_, _| {})
            .unwrap();
        assert_eq!(r.users_short_of_negatives, 50);
        assert_eq!(r.fewest_negatives, 33);
        assert!(
            r.to_table().contains("fewer than 99 items"),
            "{}",
            r.to_table()
        );
        assert_eq!(r.to_json()["users_short_of_negatives"], 50);
    }

    #[test]
    fn negatives_from_a_file_are_used_and_checked() {
        let ds = toy();
        let cfg = EvalConfig::default();
        // The file `negatives_text` writes gives exactly the sampled evaluator's candidates.
        let text = negatives_text(&ds, &cfg);
        let p = Path::new("neg.txt");
        let from_file = Evaluator::from_file(&ds, cfg.clone(), &text, p).unwrap();
        let sampled = Evaluator::new(&ds, cfg.clone());
        assert_eq!(from_file.negatives, sampled.negatives);
        // Every line lists all 33 unseen items: labelled as drawn here, 99 asked for.
        assert_eq!(from_file.config.n_negatives, 99);
        let m = MostPop::fit(&ds);
        let a = from_file.evaluate(&ds, &m, &mut |_, _| {}).unwrap();
        let b = sampled.evaluate(&ds, &m, &mut |_, _| {}).unwrap();
        assert_eq!(a.sampled, b.sampled);
        // The same figures and warnings; the header names the file instead of the seed.
        assert_eq!(
            a.to_table(),
            b.to_table()
                .replacen("seed 42", "candidates from neg.txt", 1)
        );
        let err = |t: &str| {
            Evaluator::from_file(&ds, cfg.clone(), t, p)
                .err()
                .unwrap()
                .to_string()
        };
        let lines: Vec<&str> = text.lines().collect();
        // A user missing.
        let e = err(&lines[1..].join("\n"));
        assert!(e.contains("no line for user 1"), "{e}");
        // An id out of range, and a negative the user interacted with (user 1 has item 2).
        let e = err(&text.replacen(lines[0], "1 9999", 1));
        assert!(e.contains("neg.txt:1") && e.contains("9999"), "{e}");
        let e = err(&text.replacen(lines[0], "1 2", 1));
        assert!(e.contains("history"), "{e}");
        // Unknown user, duplicate user, ragged counts, garbage.
        let extra = format!("{text}777 5\n");
        let with_extra = Evaluator::from_file(&ds, cfg.clone(), &extra, p).unwrap();
        assert_eq!(
            with_extra.negatives, sampled.negatives,
            "a dropped user's line"
        );
        assert!(
            with_extra.notes.len() == 1 && with_extra.notes[0].contains("user 777"),
            "{:?}",
            with_extra.notes
        );
        assert!(from_file.notes.is_empty());
        assert!(err(&format!("{text}{}\n", lines[0])).contains("twice"));
        // One line longer than all the others is the line named (items 1..=10).
        let (wide, _) =
            Dataset::parse("1 1 2 3 10\n2 2 3 4\n3 1 2 5\n4 1 2 3\n", Path::new("t")).unwrap();
        let e = Evaluator::from_file(
            &wide,
            cfg.clone(),
            "1 4 5 6\n2 1 5 6\n3 3 4 6\n4 5 6 7 8\n",
            p,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("neg.txt:4") && e.contains("4 negatives where the other lines have 3"),
            "{e}"
        );
        let e = err(&text.replacen(lines[3], "4 1", 1));
        assert!(e.contains("1 negatives"), "{e}");
        assert!(err("1 x\n").contains("\"x\""));
        assert!(err("").contains("empty"));
        assert!(err(&text.replacen(lines[0], "1 5 5", 1)).contains("twice"));
        // A line may be short only when its user has no other item left (items 1..=5; user 4
        // has seen four of them), as `ssi data negatives` writes it for a small catalogue.
        let (small, _) =
            Dataset::parse("1 1 2 3\n2 2 3 4\n3 1 2 5\n4 1 2 3 4\n", Path::new("t")).unwrap();
        let cfg = EvalConfig::default();
        let ev =
            Evaluator::from_file(&small, cfg.clone(), "1 4 5\n2 1 5\n3 3 4\n4 5\n", p).unwrap();
        // Every line lists all its user's unseen items: labelled with the count asked for (99),
        // every user short of it, as when drawn here.
        assert_eq!(ev.config.n_negatives, 99);
        assert_eq!(ev.negatives[3], vec![5]);
        let drawn = Evaluator::new(&small, cfg.clone());
        assert_eq!(drawn.negatives[3], vec![5]);
        assert_eq!(drawn.config.n_negatives, ev.config.n_negatives);
        let e = Evaluator::from_file(&small, cfg.clone(), "1 4\n2 1 5\n3 3 4\n4 5\n", p)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("neg.txt:1") && e.contains("user 1 has 2 items"),
            "{e}"
        );
        // A missing user is named as such, whatever the other lines' lengths.
        let e = Evaluator::from_file(&small, cfg, "1 4 5\n2 1 5\n4 5\n", p)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no line for user 3"), "{e}");
    }
}
