//! Item catalogue: item id -> display name (and optional category), used to show predictions.

use crate::error::DataError;
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Catalogue {
    /// Indexed by item id; entry 0 is the padding id and stays empty.
    pub names: Vec<String>,
    pub categories: Vec<String>,
}

impl Catalogue {
    pub fn with_items(n_items: usize) -> Self {
        Catalogue {
            names: vec![String::new(); n_items + 1],
            categories: vec![String::new(); n_items + 1],
        }
    }

    pub fn name(&self, item: u32) -> String {
        match self.names.get(item as usize) {
            Some(n) if !n.is_empty() => n.clone(),
            _ => format!("item {item}"),
        }
    }

    pub fn n_items(&self) -> usize {
        self.names.len().saturating_sub(1)
    }

    /// Writes `id<TAB>name<TAB>category`, one item a line, ids 1..=N.
    pub fn to_tsv(&self) -> String {
        let mut out = String::from("id\tname\tcategory\n");
        for id in 1..self.names.len() {
            let clean = |s: &str| s.replace(['\t', '\n'], " ");
            out.push_str(&format!(
                "{id}\t{}\t{}\n",
                clean(&self.names[id]),
                clean(self.categories.get(id).map(String::as_str).unwrap_or(""))
            ));
        }
        out
    }

    /// Reads the format written by [`Catalogue::to_tsv`]; a header line starting with `id` is optional.
    pub fn parse_tsv(text: &str, path: &Path) -> Result<Self, DataError> {
        let mut cat = Catalogue::default();
        for (i, line) in crate::dataset::split_lines(text).into_iter().enumerate() {
            let lineno = i + 1;
            if line.trim().is_empty() || (i == 0 && line.starts_with("id\t")) {
                continue;
            }
            let mut fields = line.split('\t');
            let id_text = fields.next().unwrap_or("");
            let id: usize = id_text.trim().parse().map_err(|_| {
                DataError::line(
                    path,
                    lineno,
                    format!("item id {id_text:?} is not an integer"),
                )
            })?;
            if id == 0 {
                return Err(DataError::line(
                    path,
                    lineno,
                    "item id 0 is reserved for padding",
                ));
            }
            if id > crate::dataset::MAX_ITEM_ID as usize {
                // Before the tables grow to `id` rows: a stray huge id would allocate gigabytes.
                return Err(DataError::line(
                    path,
                    lineno,
                    format!(
                        "item id {id} is larger than {}: models allocate a row per id; renumber the items with `ssi data ingest`",
                        crate::dataset::MAX_ITEM_ID
                    ),
                ));
            }
            let name = fields
                .next()
                .ok_or_else(|| DataError::line(path, lineno, "missing the name column"))?;
            let category = fields.next().unwrap_or("");
            if cat.names.len() <= id {
                cat.names.resize(id + 1, String::new());
                cat.categories.resize(id + 1, String::new());
            }
            if !cat.names[id].is_empty() {
                return Err(DataError::line(
                    path,
                    lineno,
                    format!("item {id} listed twice"),
                ));
            }
            cat.names[id] = name.to_string();
            cat.categories[id] = category.to_string();
        }
        if cat.names.len() <= 1 {
            return Err(DataError::file(path, "catalogue has no items"));
        }
        Ok(cat)
    }

    pub fn load(path: &Path) -> Result<Self, DataError> {
        let text = crate::files::read_text(path)?;
        Self::parse_tsv(&text, path)
    }

    /// Case-insensitive substring search over names (or an exact id), for type-ahead.
    pub fn search(&self, query: &str, limit: usize) -> Vec<u32> {
        let q = query.trim().to_lowercase();
        if let Ok(id) = q.parse::<usize>()
            && id >= 1
            && id < self.names.len()
        {
            return vec![id as u32];
        }
        (1..self.names.len())
            .filter(|&i| self.names[i].to_lowercase().contains(&q))
            .take(limit)
            .map(|i| i as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_round_trip_and_errors() {
        let mut c = Catalogue::with_items(2);
        c.names[1] = "Camera".into();
        c.names[2] = "Camera case".into();
        c.categories[1] = "Photo".into();
        let back = Catalogue::parse_tsv(&c.to_tsv(), Path::new("c.tsv")).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.search("case", 5), vec![2]);
        assert_eq!(back.search("1", 5), vec![1]);
        let err = Catalogue::parse_tsv("x\tname\n", Path::new("c.tsv")).unwrap_err();
        assert!(err.to_string().contains("c.tsv:1"), "{err}");
        let err = Catalogue::parse_tsv("1\ta\n1\tb\n", Path::new("c.tsv")).unwrap_err();
        assert!(err.to_string().contains("c.tsv:2"), "{err}");
        // A huge id is refused by line before any table grows to it.
        let err =
            Catalogue::parse_tsv("1\ta\n1000000000000000\tz\n", Path::new("c.tsv")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("c.tsv:2") && msg.contains("larger than"),
            "{msg}"
        );
    }
}
