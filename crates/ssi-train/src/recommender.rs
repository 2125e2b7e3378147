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
