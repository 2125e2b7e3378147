//! Model bundles: one file holding a trained recommender, its config, its item catalogue and
//! where it came from, so the browser (or the CLI) can use it with nothing else.
//!
//! Format (version 2), little-endian:
//! `b"SSIB"` · u32 format version · u64 header length · SHA-256 of the header (32 bytes) ·
//! header (UTF-8 JSON, [`Header`]) · weights (burnpack bytes of the model, `header.weights_len`
//! long, their SHA-256 in the header). Version 1, still read, has no header checksum.
//!
//! The loader checks magic, version, lengths, both checksums, the catalogue against the model's
//! item count and the weights against the config, and says which check failed.

use burn::module::Module;
use burn::tensor::Device;
use ssi_data::Catalogue;
use ssi_models::{AnyModel, ModelConfig, SequentialModel};

pub const MAGIC: &[u8; 4] = b"SSIB";
pub const VERSION: u32 = 2;
/// The first version with the header's SHA-256 in the preamble.
const HEADER_CHECKSUM_SINCE: u32 = 2;
/// Bundles above this size are refused before parsing (the browser's upload limit too).
pub const MAX_BYTES: usize = 256 * 1024 * 1024;
/// The file name `ssi export` writes inside its output folder.
pub const FILE_NAME: &str = "bundle.ssib";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BundleError {
    #[error("not an SSI bundle (the file does not start with \"SSIB\")")]
    Magic,
    #[error(
        "bundle format version {0} is not supported by this version of ssi (it reads versions 1 to {VERSION})"
    )]
    Version(u32),
    #[error("bundle is truncated: {0}")]
    Truncated(String),
    #[error("bundle is {0} bytes, above the limit of {MAX_BYTES} bytes")]
    TooLarge(usize),
    #[error("bundle header is not valid: {0}")]
    Header(String),
    #[error("bundle catalogue has {catalogue} items but the model scores {model}")]
    Catalogue { catalogue: usize, model: usize },
    #[error("bundle weights do not fit its {model} config: {detail}")]
    Weights { model: String, detail: String },
    #[error("bundle weights are corrupt: {0}")]
    Corrupt(String),
}

/// Where a bundle came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    pub dataset: String,
    pub n_users: usize,
    /// The commands that trained the model (the start, then each resume, one per line), when
    /// recorded.
    pub command: Option<String>,
    /// Test metrics of the model (the keys of `ssi eval --json`).
    pub metrics: serde_json::Value,
    /// UTC date of export (YYYY-MM-DD).
    pub created: String,
    /// Set when the model was fine-tuned after export (e.g. in the browser).
    #[serde(default)]
    pub fine_tuned: Option<String>,
    /// `Dataset::fingerprint` of the training data, checked by `ssi eval --bundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_sha256: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub name: String,
    pub model: ModelConfig,
    pub provenance: Provenance,
    /// Display names by item id (entry 0, the padding id, is empty).
    pub catalogue: Catalogue,
    /// Training sequences shipped for fine-tuning and validation (may be empty).
    #[serde(default)]
    pub sequences: Vec<Vec<u32>>,
    pub weights_len: usize,
    /// SHA-256 of the weights (hex), checked on load; absent in bundles of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

/// A loaded bundle: header and model.
pub struct Bundle {
    pub header: Header,
    pub model: AnyModel,
}

impl Bundle {
    /// Serialises a model and its header (whose `weights_len` is filled in here).
    pub fn to_bytes(mut header: Header, model: &AnyModel) -> Result<Vec<u8>, BundleError> {
        let weights =
            model
                .clone()
                .into_record()
                .into_bytes()
                .map_err(|e| BundleError::Weights {
                    model: header.model.kind().name().into(),
                    detail: format!("{e:?}"),
                })?;
        header.weights_len = weights.len();
        header.weights_sha256 = Some(ssi_data::dataset::sha256_hex(&weights));
        let json = serde_json::to_vec(&header).map_err(|e| BundleError::Header(e.to_string()))?;
        let mut out = Vec::with_capacity(48 + json.len() + weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&ssi_data::dataset::sha256_bytes(&json));
        out.extend_from_slice(&json);
        out.extend_from_slice(&weights);
        Ok(out)
    }

    /// Reads the header only (cheap: no weights are loaded).
    pub fn read_header(bytes: &[u8]) -> Result<(Header, &[u8]), BundleError> {
        if bytes.len() > MAX_BYTES {
            return Err(BundleError::TooLarge(bytes.len()));
        }
        if bytes.len() < 4 || &bytes[..4] != MAGIC {
            return Err(BundleError::Magic);
        }
        if bytes.len() < 16 {
            return Err(BundleError::Truncated(format!(
                "{} bytes, shorter than the 16-byte preamble",
                bytes.len()
            )));
        }
        let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if !(1..=VERSION).contains(&version) {
            return Err(BundleError::Version(version));
        }
        let header_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let (checksum, rest) = if version >= HEADER_CHECKSUM_SINCE {
            if bytes.len() < 48 {
                return Err(BundleError::Truncated(format!(
                    "{} bytes, shorter than the 48-byte preamble",
                    bytes.len()
                )));
            }
            (Some(&bytes[16..48]), &bytes[48..])
        } else {
            (None, &bytes[16..])
        };
        if header_len > rest.len() {
            return Err(BundleError::Truncated(format!(
                "the header should be {header_len} bytes, {} remain",
                rest.len()
            )));
        }
        // Catalogue names, shipped sequences and metrics are used as read: a damaged one that
        // still parses would be shown as it is.
        if let Some(want) = checksum
            && want != ssi_data::dataset::sha256_bytes(&rest[..header_len]).as_slice()
        {
            return Err(BundleError::Header(
                "its SHA-256 does not match the preamble's (the file was damaged in transfer or edited)"
                    .into(),
            ));
        }
        let header: Header = serde_json::from_slice(&rest[..header_len]).map_err(|e| {
            // A model setting of the wrong type: name it, not a column of a binary file.
            let model = serde_json::from_slice::<serde_json::Value>(&rest[..header_len])
                .ok()
                .and_then(|v| v.get("model").map(ModelConfig::from_json));
            match model {
                Some(Err(m)) => BundleError::Header(format!("\"model\": {m}")),
                _ => BundleError::Header(e.to_string()),
            }
        })?;
        header
            .model
            .validate()
            .map_err(|e| BundleError::Header(e.to_string()))?;
        let weights = &rest[header_len..];
        if weights.len() > header.weights_len {
            return Err(BundleError::Header(format!(
                "{} bytes follow the {} bytes of weights: the file was appended to, or is not one bundle",
                weights.len() - header.weights_len,
                header.weights_len
            )));
        }
        if weights.len() != header.weights_len {
            return Err(BundleError::Truncated(format!(
                "the weights should be {} bytes, {} are present",
                header.weights_len,
                weights.len()
            )));
        }
        if let Some(want) = &header.weights_sha256
            && *want != ssi_data::dataset::sha256_hex(weights)
        {
            return Err(BundleError::Corrupt(
                "their SHA-256 does not match the header's (the file was damaged in transfer or edited)"
                    .into(),
            ));
        }
        let model_items = header.model.n_items();
        if header.catalogue.n_items() != model_items {
            return Err(BundleError::Catalogue {
                catalogue: header.catalogue.n_items(),
                model: model_items,
            });
        }
        // The shipped sequences feed fine-tuning and validation on the page: an id outside the
        // catalogue would index past the item table there.
        for (i, seq) in header.sequences.iter().enumerate() {
            if let Some(bad) = seq
                .iter()
                .find(|&&item| item == 0 || item as usize > model_items)
            {
                return Err(BundleError::Header(format!(
                    "shipped sequence {} holds item {bad}, outside the catalogue's 1..={model_items}",
                    i + 1
                )));
            }
            // Validation holds out a sequence's last two items: a shorter one has none to rank.
            if seq.len() < ssi_data::dataset::MIN_SEQ_LEN {
                return Err(BundleError::Header(format!(
                    "shipped sequence {} holds {} item(s); a user's sequence has at least {} (`ssi export` ships only those)",
                    i + 1,
                    seq.len(),
                    ssi_data::dataset::MIN_SEQ_LEN
                )));
            }
        }
        Ok((header, weights))
    }

    /// Reads and checks a bundle and builds its model on `device`.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Bundle, BundleError> {
        let (header, weights) = Self::read_header(bytes)?;
        let load = |device: &Device| -> Result<AnyModel, BundleError> {
            header
                .model
                .check_fits_weights(weights.len())
                .map_err(|detail| BundleError::Weights {
                    model: header.model.kind().name().into(),
                    detail,
                })?;
            let record =
                ssi_models::common::weights_record(weights.to_vec()).map_err(|detail| {
                    BundleError::Weights {
                        model: header.model.kind().name().into(),
                        detail,
                    }
                })?;
            header
                .model
                .init(device)
                .try_load_record(record)
                .map_err(|e| BundleError::Weights {
                    model: header.model.kind().name().into(),
                    detail: ssi_models::common::brief(&e.to_string()),
                })
        };
        // Weights are read back for the finiteness check from a CPU copy: a synchronous read of a
        // WebGPU tensor is impossible in the browser. (Devices compare equal across autodiff, so
        // the copy is never reused: the model is built again on `device`.)
        if let Some(at) = ssi_models::common::first_non_finite(&load(&Device::flex())?) {
            return Err(BundleError::Corrupt(format!(
                "weight {at} holds NaN or infinite values"
            )));
        }
        let model = load(device)?;
        debug_assert_eq!(model.n_items(), header.model.n_items());
        Ok(Bundle { header, model })
    }
}

/// The `k` best items of `scores` (index i is item i + 1) that are not in `history`, with their
/// softmax probability over those items, best first. Shared by the page and `ssi predict`.
pub fn top_k(scores: &[f32], history: &[u32], k: usize) -> Vec<(u32, f32)> {
    let mut seen = vec![false; scores.len()];
    for &h in history {
        if let Some(s) = (h as usize).checked_sub(1).and_then(|i| seen.get_mut(i)) {
            *s = true;
        }
    }
    let idx: Vec<usize> = (0..scores.len()).filter(|&i| !seen[i]).collect();
    let max = idx
        .iter()
        .map(|&i| scores[i])
        .fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = idx.iter().map(|&i| (scores[i] - max).exp()).sum();
    let mut idx = idx;
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    idx.select_nth_unstable_by(k - 1, |&a, &b| scores[b].total_cmp(&scores[a]));
    idx.truncate(k);
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx.into_iter()
        .map(|i| (i as u32 + 1, (scores[i] - max).exp() / total))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssi_models::ModelKind;
    use ssi_models::common::Batch;

    fn sample() -> (Header, AnyModel) {
        let d = Device::flex();
        let cfg = ModelConfig::new(ModelKind::Gru4rec, 6, 3)
            .with_overrides(&[("hidden".into(), 8.into())])
            .unwrap();
        let model = cfg.init(&d);
        let mut catalogue = Catalogue::with_items(6);
        catalogue.names[3] = "Lens".into();
        let header = Header {
            name: "tiny".into(),
            model: cfg,
            provenance: Provenance {
                dataset: "toy".into(),
                n_users: 3,
                command: Some("ssi train --model gru4rec".into()),
                metrics: serde_json::json!({"ndcg@10": 0.5}),
                created: "2026-11-27".into(),
                fine_tuned: None,
                dataset_sha256: None,
            },
            catalogue,
            sequences: vec![vec![1, 2, 3]],
            weights_len: 0,
            weights_sha256: None,
        };
        (header, model)
    }

    fn scores(m: &AnyModel) -> Vec<f32> {
        let h: [&[u32]; 1] = [&[1, 2]];
        m.score_all(Batch {
            items: &h,
            users: &[None],
        })
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
    }

    #[test]
    fn round_trip_keeps_header_and_predictions() {
        let (header, model) = sample();
        let bytes = Bundle::to_bytes(header.clone(), &model).unwrap();
        let b = Bundle::from_bytes(&bytes, &Device::flex()).unwrap();
        assert_eq!(b.header.name, "tiny");
        assert_eq!(b.header.catalogue.names[3], "Lens");
        assert_eq!(b.header.sequences, header.sequences);
        assert_eq!(scores(&b.model), scores(&model));
    }

    #[test]
    fn every_defect_is_named() {
        let (header, model) = sample();
        let good = Bundle::to_bytes(header.clone(), &model).unwrap();
        let d = Device::flex();
        let err = |bytes: &[u8]| Bundle::from_bytes(bytes, &d).err().unwrap();
        assert_eq!(err(b"PK\x03\x04zip"), BundleError::Magic);
        let mut v3 = good.clone();
        v3[4] = 3;
        assert_eq!(err(&v3), BundleError::Version(3));
        // A version-1 bundle (no header checksum) is still read.
        let mut v1 = good.clone();
        v1[4] = 1;
        v1.drain(16..48);
        assert_eq!(
            Bundle::from_bytes(&v1, &d).unwrap().header.name,
            header.name
        );
        // A header edited so that it still parses (an item's name) is refused by its checksum.
        let at = good
            .windows(5)
            .position(|w| w == b"Lens\"")
            .expect("a catalogue name in the header");
        let mut edited = good.clone();
        edited[at] = b'M';
        let e = err(&edited);
        assert!(
            matches!(e, BundleError::Header(_)) && e.to_string().contains("SHA-256"),
            "{e}"
        );
        assert!(matches!(err(&good[..10]), BundleError::Truncated(_)));
        assert!(matches!(
            err(&good[..good.len() - 1]),
            BundleError::Truncated(_)
        ));
        // A catalogue that does not match the model's items.
        let mut h = header.clone();
        h.catalogue = Catalogue::with_items(5);
        let bad = Bundle::to_bytes(h, &model).unwrap();
        assert_eq!(
            err(&bad),
            BundleError::Catalogue {
                catalogue: 5,
                model: 6
            }
        );
        // Weights of another shape: config says hidden 16.
        let mut h = header.clone();
        h.model = h
            .model
            .with_overrides(&[("hidden".into(), 16.into())])
            .unwrap();
        let bad = Bundle::to_bytes(h, &model).unwrap();
        let e = err(&bad);
        assert!(matches!(e, BundleError::Weights { .. }), "{e}");
        assert!(e.to_string().len() < 400, "a brief message: {e}");
        // A shipped sequence with an item outside the catalogue.
        for bad_item in [0, 7] {
            let mut h = header.clone();
            h.sequences = vec![vec![1, 2, 3], vec![3, bad_item, 1]];
            let e = err(&Bundle::to_bytes(h, &model).unwrap());
            assert!(
                e.to_string()
                    .contains(&format!("sequence 2 holds item {bad_item}")),
                "{e}"
            );
        }
        // Settings far larger than the weights: refused before the model is built (a GRU of
        // hidden 8192 holds 400 million weights).
        let mut h = header.clone();
        h.model = h
            .model
            .with_overrides(&[("hidden".into(), 8192.into())])
            .unwrap();
        let e = err(&Bundle::to_bytes(h, &model).unwrap());
        assert!(e.to_string().contains("describe at least"), "{e}");
        // A shipped sequence too short to validate on.
        let mut h = header.clone();
        h.sequences = vec![vec![1, 2, 3], vec![4]];
        let e = err(&Bundle::to_bytes(h, &model).unwrap());
        assert!(
            e.to_string().contains("shipped sequence 2 holds 1 item(s)"),
            "{e}"
        );
        // Garbage header.
        let mut bad = good.clone();
        bad[48] = b'#';
        assert!(matches!(err(&bad), BundleError::Header(_)));
        // Corrupt weights bytes.
        let mut bad = good.clone();
        let n = bad.len();
        for b in &mut bad[n - header_weights(&good)..] {
            *b = 0xff;
        }
        assert!(matches!(err(&bad), BundleError::Corrupt(_)));
        // One flipped bit in the weights.
        let mut bad = good.clone();
        bad[n - 3] ^= 0x10;
        assert!(matches!(err(&bad), BundleError::Corrupt(_)));
        // NaN weights with a matching checksum: the finiteness check names the weight.
        let nan = ssi_models::common::with_nan_weight(model.clone());
        let bad = Bundle::to_bytes(header.clone(), &nan).unwrap();
        let e = err(&bad);
        assert!(
            matches!(e, BundleError::Corrupt(_)) && e.to_string().contains("NaN"),
            "{e}"
        );
    }

    #[test]
    fn top_k_skips_history_and_normalises() {
        let top = top_k(&[1.0, 3.0, 2.0, 0.0], &[2], 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![3, 1]);
        // Softmax over items 1, 3, 4 (item 2 is in the history).
        let z = 1f32.exp() + 2f32.exp() + 1.0;
        assert!((top[0].1 - 2f32.exp() / z).abs() < 1e-6);
        assert!(top_k(&[1.0], &[1], 3).is_empty());
    }

    fn header_weights(bytes: &[u8]) -> usize {
        Bundle::read_header(bytes).unwrap().0.weights_len
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Damaged bundles (bytes overwritten, cut, or the header edited) are refused or load;
        /// never a panic.
        #[test]
        fn damaged_bundles_never_panic(
            edits in proptest::collection::vec((0usize..1_000_000, proptest::prelude::any::<u8>()), 0..8),
            cut in proptest::option::of(0usize..1_000_000),
        ) {
            let (header, model) = sample();
            let mut bytes = Bundle::to_bytes(header, &model).unwrap();
            for (at, b) in edits {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            if let Some(c) = cut {
                let n = bytes.len();
                bytes.truncate(c % (n + 1));
            }
            let _ = Bundle::from_bytes(&bytes, &Device::flex());
        }
    }
}
