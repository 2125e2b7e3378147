//! The datasets published with the S3-Rec paper (repository RUCAIBox/CIKM2020-S3Rec, folder
//! data/), which the SSI paper's tables use: their names and SHA-256. A file of one of these
//! names with other content is not the paper's dataset, and its figures are not comparable.

pub struct Known {
    pub name: &'static str,
    pub remote: &'static str,
    /// SHA-256 of the file, which is also its `Dataset::fingerprint` (the files are in the
    /// text format `Dataset::to_text` writes).
    pub sha256: &'static str,
}

pub const KNOWN: &[Known] = &[
    Known {
        name: "beauty",
        remote: "Beauty.txt",
        sha256: "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
    },
    Known {
        name: "toys",
        remote: "Toys_and_Games.txt",
        sha256: "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f",
    },
    Known {
        name: "sports",
        remote: "Sports_and_Outdoors.txt",
        sha256: "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
    },
];

/// Whether a dataset named `name` (case aside) with fingerprint `sha256` is another file than
/// the published one of that name; `false` for names the paper does not use.
pub fn is_other_file(name: &str, sha256: &str) -> bool {
    KNOWN
        .iter()
        .any(|k| k.name.eq_ignore_ascii_case(name) && k.sha256 != sha256)
}
