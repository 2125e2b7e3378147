//! Ranking metrics with one relevant item: Recall@K (= hit rate), NDCG@K and MRR.
//! Ties count against the target: a model that gives every item the same score ranks the target
//! last, so it cannot look good.

use std::collections::BTreeMap;

pub const KS: [usize; 4] = [5, 10, 15, 20];

/// 0-based rank of the target: the number of competitors scoring at least as high.
/// A NaN target score ranks last.
pub fn rank_of(target: f32, competitors: impl IntoIterator<Item = f32>) -> usize {
    let mut n = 0;
    let mut beaten = 0;
    for s in competitors {
        n += 1;
        // Ties and NaN competitors count against the target.
        if s.partial_cmp(&target) != Some(std::cmp::Ordering::Less) {
            beaten += 1;
        }
    }
    if target.is_nan() { n } else { beaten }
}

#[derive(Debug, Clone, Default)]
pub struct RankAccumulator {
    n: usize,
    hits: [f64; KS.len()],
    ndcg: [f64; KS.len()],
    mrr: f64,
}

impl RankAccumulator {
    pub fn add(&mut self, rank: usize) {
        self.n += 1;
        let gain = 1.0 / ((rank + 2) as f64).log2();
        for (i, &k) in KS.iter().enumerate() {
            if rank < k {
                self.hits[i] += 1.0;
                self.ndcg[i] += gain;
            }
        }
        self.mrr += 1.0 / (rank + 1) as f64;
    }

    pub fn merge(&mut self, other: &RankAccumulator) {
        self.n += other.n;
        for i in 0..KS.len() {
            self.hits[i] += other.hits[i];
            self.ndcg[i] += other.ndcg[i];
        }
        self.mrr += other.mrr;
    }

    pub fn finish(&self) -> MetricSet {
        let d = self.n.max(1) as f64;
        MetricSet {
            users: self.n,
            recall: self.hits.map(|h| h / d),
            ndcg: self.ndcg.map(|g| g / d),
            mrr: self.mrr / d,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricSet {
    pub users: usize,
    pub recall: [f64; KS.len()],
    pub ndcg: [f64; KS.len()],
    pub mrr: f64,
}

impl MetricSet {
    pub fn ndcg_at(&self, k: usize) -> Option<f64> {
        KS.iter().position(|&x| x == k).map(|i| self.ndcg[i])
    }

    pub fn recall_at(&self, k: usize) -> Option<f64> {
        KS.iter().position(|&x| x == k).map(|i| self.recall[i])
    }

    /// Flat entries such as `recall@10`, with an optional prefix (`full_`).
    pub fn entries(&self, prefix: &str) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for (i, k) in KS.iter().enumerate() {
            m.insert(format!("{prefix}recall@{k}"), self.recall[i]);
            m.insert(format!("{prefix}ndcg@{k}"), self.ndcg[i]);
        }
        m.insert(format!("{prefix}mrr"), self.mrr);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_with_ties_against_target() {
        assert_eq!(rank_of(0.5, [0.1, 0.2, 0.3]), 0);
        assert_eq!(rank_of(0.5, [0.9, 0.2, 0.7]), 2);
        // A constant model: every tie counts against the target, so it is ranked last.
        assert_eq!(rank_of(1.0, [1.0; 99]), 99);
        assert_eq!(rank_of(f32::NAN, [0.0; 5]), 5);
        assert_eq!(rank_of(0.0, [f32::NAN, -1.0]), 1);
    }

    #[test]
    fn hand_computed_metrics() {
        let mut acc = RankAccumulator::default();
        // Ranks 0, 4, 12 (0-based) for three users.
        for r in [0, 4, 12] {
            acc.add(r);
        }
        let m = acc.finish();
        assert_eq!(m.users, 3);
        // Recall@5: ranks 0 and 4 are inside the top 5.
        assert!((m.recall[0] - 2.0 / 3.0).abs() < 1e-12);
        // NDCG@5 = (1/log2(2) + 1/log2(6)) / 3.
        let want = (1.0 + 1.0 / 6f64.log2()) / 3.0;
        assert!((m.ndcg[0] - want).abs() < 1e-12);
        // NDCG@15 adds 1/log2(14).
        let want15 = (1.0 + 1.0 / 6f64.log2() + 1.0 / 14f64.log2()) / 3.0;
        assert!((m.ndcg[2] - want15).abs() < 1e-12);
        assert!((m.recall_at(10).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall_at(20).unwrap() - 1.0).abs() < 1e-12);
        // MRR = (1 + 1/5 + 1/13) / 3.
        assert!((m.mrr - (1.0 + 0.2 + 1.0 / 13.0) / 3.0).abs() < 1e-12);
        let e = m.entries("full_");
        assert!(e.contains_key("full_ndcg@10") && e.contains_key("full_mrr"));
    }

    #[test]
    fn constant_model_scores_badly() {
        let mut acc = RankAccumulator::default();
        for _ in 0..10 {
            acc.add(rank_of(0.0, [0.0; 99]));
        }
        let m = acc.finish();
        assert_eq!(m.recall_at(20), Some(0.0));
        assert!(m.mrr <= 0.01 + 1e-12);
    }
}
