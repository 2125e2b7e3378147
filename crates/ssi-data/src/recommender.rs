//! The interface every recommender implements, from MostPop to a distilled SSI student, and the
//! two count-based models (MostPop and a first-order Markov chain).

use crate::dataset::Dataset;
use crate::split::train_part;

/// One request: the user's index in the dataset (for models with user terms) and the history.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Index of the user in the dataset, or `None` for a user the model never saw.
    pub user: Option<usize>,
    pub history: &'a [u32],
}

pub trait Recommender {
    fn name(&self) -> String;

    /// Largest item id the model scores.
    fn n_items(&self) -> u32;

    /// Scores for every item id `0..=n_items`, one row per query (index 0 is padding and ignored).
    fn score(&self, queries: &[Query]) -> Vec<Vec<f32>>;

    /// Scores for candidate items only. The default picks them out of [`Recommender::score`];
    /// models that can score a subset more cheaply override it.
    fn score_candidates(&self, queries: &[Query], candidates: &[Vec<u32>]) -> Vec<Vec<f32>> {
        self.score(queries)
            .into_iter()
            .zip(candidates)
            .map(|(row, cands)| cands.iter().map(|&c| row[c as usize]).collect())
            .collect()
    }

    /// Preferred batch size for evaluation.
    fn batch_size(&self) -> usize {
        256
    }
}

/// MostPop: items ranked by how often they occur in the training part of the data.
#[derive(Debug, Clone)]
pub struct MostPop {
    pub counts: Vec<f32>,
}

impl MostPop {
    pub fn fit(ds: &Dataset) -> Self {
        let mut counts = vec![0f32; ds.n_items as usize + 1];
        for seq in &ds.sequences {
            for &i in train_part(seq) {
                counts[i as usize] += 1.0;
            }
        }
        MostPop { counts }
    }
}

impl Recommender for MostPop {
    fn name(&self) -> String {
        "MostPop".into()
    }
    fn n_items(&self) -> u32 {
        (self.counts.len() - 1) as u32
    }
    fn score(&self, queries: &[Query]) -> Vec<Vec<f32>> {
        queries.iter().map(|_| self.counts.clone()).collect()
    }
    fn score_candidates(&self, queries: &[Query], candidates: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let _ = queries;
        candidates
            .iter()
            .map(|c| c.iter().map(|&i| self.counts[i as usize]).collect())
            .collect()
    }
}

/// First-order Markov chain: counts of item -> next item in the training parts, backed off to
/// popularity. A simple sequential baseline that shows whether a dataset has sequential structure.
#[derive(Debug, Clone)]
pub struct MarkovChain {
    /// Sparse rows: for each item, (next item, count) sorted by next item.
    next: Vec<Vec<(u32, f32)>>,
    pop: Vec<f32>,
}

impl MarkovChain {
    pub fn fit(ds: &Dataset) -> Self {
        let n = ds.n_items as usize + 1;
        let mut maps: Vec<std::collections::HashMap<u32, f32>> = vec![Default::default(); n];
        for seq in &ds.sequences {
            for w in train_part(seq).windows(2) {
                *maps[w[0] as usize].entry(w[1]).or_default() += 1.0;
            }
        }
        let next = maps
            .into_iter()
            .map(|m| {
                let mut v: Vec<_> = m.into_iter().collect();
                v.sort_unstable_by_key(|x| x.0);
                v
            })
            .collect();
        let pop = MostPop::fit(ds).counts;
        let total: f32 = pop.iter().sum::<f32>().max(1.0);
        // Popularity only breaks ties between items the last item was never followed by.
        let pop = pop.iter().map(|c| c / total).collect();
        MarkovChain { next, pop }
    }
}

impl Recommender for MarkovChain {
    fn name(&self) -> String {
        "Markov".into()
    }
    fn n_items(&self) -> u32 {
        (self.pop.len() - 1) as u32
    }
    fn score(&self, queries: &[Query]) -> Vec<Vec<f32>> {
        queries
            .iter()
            .map(|q| {
                let mut row = self.pop.clone();
                if let Some(&last) = q.history.last()
                    && let Some(next) = self.next.get(last as usize)
                {
                    for &(j, c) in next {
                        row[j as usize] += c;
                    }
                }
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn mostpop_counts_training_part_only() {
        let (ds, _) = Dataset::parse("1 1 2 3 4\n2 1 3 4 2\n", Path::new("t")).unwrap();
        let m = MostPop::fit(&ds);
        // Training parts: [1,2] and [1,3]; the last two items of each user are held out.
        assert_eq!(m.counts, vec![0.0, 2.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn markov_follows_transitions() {
        let (ds, _) = Dataset::parse("1 1 2 1 2 9 9\n2 1 2 3 9 9\n", Path::new("t")).unwrap();
        let m = MarkovChain::fit(&ds);
        let row = &m.score(&[Query {
            user: None,
            history: &[3, 1],
        }])[0];
        let best = (1..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap();
        assert_eq!(best, 2);
    }
}
