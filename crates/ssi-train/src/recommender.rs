//! Any burn model as an `ssi_data::Recommender`, so it is evaluated by the same code as MostPop.

use burn::tensor::Tensor;
use ssi_data::{Query, Recommender};
use ssi_models::SequentialModel;
use ssi_models::common::{Batch, int2};

pub struct ModelRecommender<'a, M: SequentialModel> {
    pub model: &'a M,
    pub name: String,
    pub batch_size: usize,
}

impl<'a, M: SequentialModel> ModelRecommender<'a, M> {
    pub fn new(model: &'a M) -> Self {
        ModelRecommender {
            model,
            name: model.kind().name().to_string(),
            batch_size: 256,
        }
    }
}

fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [b, n] = t.dims();
    let data = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float scores");
    (0..b).map(|r| data[r * n..(r + 1) * n].to_vec()).collect()
}

impl<M: SequentialModel> Recommender for ModelRecommender<'_, M> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn n_items(&self) -> u32 {
        self.model.n_items() as u32
    }
    fn batch_size(&self) -> usize {
        self.batch_size
    }
    fn score(&self, queries: &[Query]) -> Vec<Vec<f32>> {
        let items: Vec<&[u32]> = queries.iter().map(|q| q.history).collect();
        let users: Vec<Option<usize>> = queries.iter().map(|q| q.user).collect();
        let scores = self.model.score_all(Batch {
            items: &items,
            users: &users,
        });
        // Column 0 is the padding id: never a recommendation.
        rows(scores)
            .into_iter()
            .map(|r| std::iter::once(f32::NEG_INFINITY).chain(r).collect())
            .collect()
    }
    fn score_candidates(&self, queries: &[Query], candidates: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let c = candidates.first().map_or(0, Vec::len);
        if c == 0 || candidates.iter().any(|x| x.len() != c) {
            // Ragged candidate lists: fall back to full scoring.
            return self
                .score(queries)
                .into_iter()
                .zip(candidates)
                .map(|(row, cands)| cands.iter().map(|&i| row[i as usize]).collect())
                .collect();
        }
        let items: Vec<&[u32]> = queries.iter().map(|q| q.history).collect();
        let users: Vec<Option<usize>> = queries.iter().map(|q| q.user).collect();
        let flat: Vec<i64> = candidates.iter().flatten().map(|&i| i as i64 - 1).collect();
        let cands = int2(flat, [queries.len(), c], &self.model.device());
        rows(self.model.score_candidates(
            Batch {
                items: &items,
                users: &users,
            },
            cands,
        ))
    }
}

/// Several models' predicted next-item distributions, averaged: each one's softmax over every
/// item, then the mean (scored as its logarithm, computed as a log-sum-exp so that no
/// probability underflows to a tie). An SSI student imitates such a committee of teachers (eq.
/// 7 weighs each one), so the committee's figures show how far imitation could take it.
pub struct Ensemble<'a> {
    pub members: Vec<Box<dyn Recommender + 'a>>,
}

/// `row` (index 0 the padding column) as log-probabilities over items `1..`.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let items = &row[1..];
    let max = items
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let lse = max
        + items
            .iter()
            .map(|&x| (x as f64 - max).exp())
            .sum::<f64>()
            .ln();
    items.iter().map(|&x| x as f64 - lse).collect()
}

impl Recommender for Ensemble<'_> {
    fn name(&self) -> String {
        let names: Vec<String> = self.members.iter().map(|m| m.name()).collect();
        format!("ensemble of {}", names.join(", "))
    }
    fn n_items(&self) -> u32 {
        self.members.first().map_or(0, |m| m.n_items())
    }
    fn batch_size(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.batch_size())
            .min()
            .unwrap_or(256)
    }
    fn score(&self, queries: &[Query]) -> Vec<Vec<f32>> {
        let k = self.members.len() as f64;
        let per_member: Vec<Vec<Vec<f64>>> = self
            .members
            .iter()
            .map(|m| m.score(queries).iter().map(|r| log_softmax(r)).collect())
            .collect();
        (0..queries.len())
            .map(|q| {
                let n = per_member[0][q].len();
                let mut row = Vec::with_capacity(n + 1);
                row.push(f32::NEG_INFINITY);
                for i in 0..n {
                    let max = per_member
                        .iter()
                        .fold(f64::NEG_INFINITY, |m, p| m.max(p[q][i]));
                    let sum: f64 = per_member.iter().map(|p| (p[q][i] - max).exp()).sum();
                    row.push((max + (sum / k).ln()) as f32);
                }
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed score table: the same scores for every query.
    struct Fixed(Vec<f32>);
    impl Recommender for Fixed {
        fn name(&self) -> String {
            "fixed".into()
        }
        fn n_items(&self) -> u32 {
            self.0.len() as u32 - 1
        }
        fn score(&self, queries: &[Query]) -> Vec<Vec<f32>> {
            vec![self.0.clone(); queries.len()]
        }
    }

    #[test]
    fn an_ensemble_scores_the_log_of_the_mean_probability() {
        let q = [Query {
            user: None,
            history: &[1],
        }];
        let a = Fixed(vec![f32::NEG_INFINITY, 0.0, 1000.0, 0.0]);
        let b = Fixed(vec![f32::NEG_INFINITY, 2.0_f32.ln(), 0.0, 0.0]);
        let e = Ensemble {
            members: vec![Box::new(a), Box::new(b)],
        };
        let row = &e.score(&q)[0];
        assert_eq!(row[0], f32::NEG_INFINITY);
        // a: item 2 all but certain; b: 1/2, 1/4, 1/4. Mean: 1/4, 1/2 + 1/8, 1/8 (items far
        // below another's peak keep their own share, not a tie at zero).
        let p: Vec<f64> = row[1..].iter().map(|&s| (s as f64).exp()).collect();
        for (got, want) in p.iter().zip([0.25, 0.625, 0.125]) {
            assert!((got - want).abs() < 1e-6, "{p:?}");
        }
        assert_eq!(e.name(), "ensemble of fixed, fixed");
    }
}
