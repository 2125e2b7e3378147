//! The paper's own figures (Tables 2 and 3), which `reproduce` prints beside ours and
//! `ssi report` beside every run.

const PAPER_TABLE2: &str = include_str!("paper_table2.csv");

/// Columns of the paper's Table 2.
pub const METRICS: [&str; 8] = [
    "recall@5",
    "ndcg@5",
    "recall@10",
    "ndcg@10",
    "recall@15",
    "ndcg@15",
    "recall@20",
    "ndcg@20",
];

/// The paper's Table 3 (Beauty): Recall@10, NDCG@10.
pub const PAPER_TABLE3: [(&str, f64, f64); 4] = [
    ("SSI", 0.487, 0.329),
    ("w/o item representation imitation", 0.483, 0.325),
    ("w/o prediction distribution imitation", 0.478, 0.321),
    ("w/o both", 0.470, 0.317),
];

/// The paper's Table 2 NDCG@10 of a model (by its row name) on a dataset.
pub fn paper_ndcg10(dataset: &str, label: &str) -> Option<f64> {
    // The paper's Table 2 calls its HGN student plain "SSI".
    let label = if label == "SSI-HGN" { "SSI" } else { label };
    let i = METRICS.iter().position(|m| *m == "ndcg@10")?;
    paper_rows(dataset)
        .into_iter()
        .find(|(l, _)| l == label)
        .and_then(|(_, v)| v.get(i).copied())
}

/// The paper's Table 2 rows of one dataset: label → metric values.
pub fn paper_rows(dataset: &str) -> Vec<(String, Vec<f64>)> {
    csv::Reader::from_reader(PAPER_TABLE2.as_bytes())
        .records()
        .filter_map(Result::ok)
        .filter(|r| r.len() == 10 && &r[0] == dataset)
        .map(|r| {
            let values = r.iter().skip(2).filter_map(|v| v.parse().ok());
            (r[1].to_string(), values.collect())
        })
        .collect()
}

/// The datasets of the paper's Table 2, in the table's order.
pub fn paper_datasets() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in csv::Reader::from_reader(PAPER_TABLE2.as_bytes())
        .records()
        .filter_map(Result::ok)
    {
        if !names.iter().any(|n| n == &r[0]) {
            names.push(r[0].to_string());
        }
    }
    names
}

/// A dataset name given for the paper's table (`--paper-dataset`), in the table's spelling; an
/// unknown one is an error naming the table's, since it would drop the comparison silently.
pub fn paper_dataset_named(name: &str) -> Result<String, crate::TrainError> {
    let names = paper_datasets();
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name.trim()))
        .cloned()
        .ok_or_else(|| {
            crate::TrainError::Config(format!(
                "--paper-dataset {name:?}: not a dataset of the paper's Table 2 ({}); leave it out to name the rows after the data file",
                names.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_rows_of_beauty() {
        let rows = paper_rows("beauty");
        assert_eq!(rows.len(), 8);
        let ssi = rows.iter().find(|r| r.0 == "SSI").unwrap();
        assert_eq!(ssi.1[3], 0.329);
        assert!(paper_rows("nowhere").is_empty());
        assert_eq!(paper_datasets(), ["beauty", "toys", "sports", "musical"]);
        assert_eq!(paper_dataset_named(" Beauty").unwrap(), "beauty");
        let err = paper_dataset_named("beuty").unwrap_err().to_string();
        assert!(err.contains("beuty") && err.contains("toys"), "{err}");
        assert_eq!(paper_ndcg10("beauty", "SSI"), Some(0.329));
        assert_eq!(paper_ndcg10("beauty", "SSI-HGN"), Some(0.329));
    }
}
