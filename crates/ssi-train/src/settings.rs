//! A run's settings, layered: the model's and training's defaults, then a settings file
//! (`--config`), then single settings (`--set`, `--seed`, `--epochs`), each later one winning.
//! They are checked once, here, and the result is saved whole in the run's `config.json`.

use crate::config::{TrainConfig, TrainError};
use serde_json::Value;
use ssi_models::{ModelConfig, ModelKind};
use std::path::Path;

/// One setting: `key` (or `MODEL.key`, for that model only) and its value. A strict setting
/// (`--set`) must be a setting of the model or of training; a lenient one (from a settings file
/// shared by several models) may belong to another model and is then skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub strict: bool,
    /// The settings file it comes from, named by errors about it; `None` for `--set` and the
    /// like, which the user typed on the command line.
    pub file: Option<String>,
}

impl Setting {
    pub fn strict(key: &str, value: impl Into<Value>) -> Self {
        Setting {
            key: key.into(),
            value: value.into(),
            strict: true,
            file: None,
        }
    }

    /// The same setting for `kind` only (`MODEL.key`); a scoped one stays as it is.
    pub fn scoped_to(&self, kind: ModelKind) -> Self {
        let mut s = self.clone();
        if !s.key.contains('.') {
            s.key = format!("{}.{}", kind.id(), s.key);
        }
        s
    }

    /// A setting of a settings file shared by several models (see [`Setting`]).
    pub fn lenient(key: String, value: Value, file: Option<String>) -> Self {
        Setting {
            key,
            value,
            strict: false,
            file,
        }
    }

    /// " (in FILE)" for a setting from a settings file, else "".
    fn place(&self) -> String {
        self.file
            .as_ref()
            .map(|f| format!(" (in {f})"))
            .unwrap_or_default()
    }

    /// `KEY=VALUE` (`--set`): the value read as JSON, else as a number as people write them
    /// (`.5`, `+8`, `08`, which JSON refuses), else taken as a string.
    pub fn parse(s: &str) -> Result<Self, TrainError> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| TrainError::Config(format!("--set {s:?}: expected KEY=VALUE")))?;
        let v = v.trim();
        let value = serde_json::from_str(v)
            .ok()
            .or_else(|| loose_number(v))
            .unwrap_or_else(|| Value::String(v.to_string()));
        Ok(Setting::strict(k.trim(), value))
    }
}

/// A number JSON does not accept but that means one number only (digits, sign, point,
/// exponent; `inf` and `nan` stay strings, refused where a number is expected).
fn loose_number(v: &str) -> Option<Value> {
    let numeric = v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if !numeric {
        return None;
    }
    if let Ok(i) = v.parse::<i64>() {
        return Some(Value::from(i));
    }
    serde_json::Number::from_f64(v.parse::<f64>().ok()?).map(Value::Number)
}

/// `--set KEY=VALUE` settings of one command line, in order; a key given twice (`hidden` and
/// `HGN.hidden` name one setting) is refused: only one of the two values would be used.
pub fn parse_sets(sets: &[String]) -> Result<Vec<Setting>, TrainError> {
    let parsed = sets
        .iter()
        .map(|s| Setting::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    if let Some(s) = parsed.iter().find(|s| !seen.insert(canonical_key(&s.key))) {
        return Err(TrainError::Config(format!(
            "--set {}: the setting is given twice on the command line; keep one",
            s.key
        )));
    }
    Ok(parsed)
}

/// `HGN.hidden` and `hgn.hidden` name one setting.
fn canonical_key(k: &str) -> String {
    match k.split_once('.') {
        Some((scope, rest)) => scope
            .parse::<ModelKind>()
            .map_or(k.to_string(), |kind| format!("{}.{rest}", kind.id())),
        None => k.to_string(),
    }
}

/// The settings of a JSON settings file (an object of settings), as lenient settings.
pub fn load_settings_file(path: &Path) -> Result<Vec<Setting>, TrainError> {
    let text = ssi_data::dataset::read_text_max(path, ssi_data::dataset::MAX_SETTINGS_BYTES)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| TrainError::Config(format!("{}: not valid JSON: {e}", path.display())))?;
    let obj = v.as_object().ok_or_else(|| {
        TrainError::Config(format!(
            "{}: expected a JSON object of settings",
            path.display()
        ))
    })?;
    // A JSON object keeps the last of two equal keys: a file that sets one twice is refused.
    let Entries(entries) = serde_json::from_str(&text)
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    let mut seen = std::collections::HashSet::new();
    if let Some((k, _)) = entries.iter().find(|(k, _)| !seen.insert(canonical_key(k))) {
        return Err(TrainError::Config(format!(
            "{}: the setting {k:?} is given twice; keep one",
            path.display()
        )));
    }
    let file = path.display().to_string();
    if let Some(Value::Object(model)) = obj.get("model") {
        return run_config_settings(path, obj, model, &file);
    }
    Ok(obj
        .iter()
        .map(|(k, v)| Setting::lenient(k.clone(), v.clone(), Some(file.clone())))
        .collect())
}

/// The model a run's saved `config.json` trains, when `path` is one (`--config` of a run:
/// `--model` may then be left out). Any other file, or one that cannot be read: None (its
/// errors are told where its settings are loaded).
pub fn run_config_model(path: &Path) -> Option<ModelKind> {
    let text =
        ssi_data::dataset::read_text_max(path, ssi_data::dataset::MAX_SETTINGS_BYTES).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("model")?.get("model")?.as_str()?.parse().ok()
}

/// The settings of a run's saved `config.json` (`{"model": {..}, "train": {..}, "dataset":
/// {..}}`), so that a run can be trained again from its record: its model settings apply to
/// that model only (`MODEL.key`: another `--model` takes the training settings alone), its
/// training settings to any; the dataset comes from `--data`. A distillation's record is
/// refused: its imitation settings are options of `ssi distill`, not settings, and taking the
/// rest alone would silently train something else.
fn run_config_settings(
    path: &Path,
    obj: &serde_json::Map<String, Value>,
    model: &serde_json::Map<String, Value>,
    file: &str,
) -> Result<Vec<Setting>, TrainError> {
    let bad = |what: String| TrainError::Config(format!("{}: {what}", path.display()));
    if obj.contains_key("distill") {
        return Err(bad(
            "a distillation's config.json: its teachers and imitation options are options of `ssi distill`, not settings; continue that run with `ssi distill --resume --out FOLDER`, or copy its \"model\" and \"train\" settings into a settings file".into(),
        ));
    }
    if let Some(k) = obj.keys().find(|k| {
        !["model", "train", "dataset", "init_from", "pretrain_stage"].contains(&k.as_str())
    }) {
        return Err(bad(format!(
            "read as a run's config.json (its \"model\" is an object), which has no {k:?}"
        )));
    }
    let kind: ModelKind = model
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a run's config.json names its model in model.model".into()))?
        .parse()
        .map_err(|e| bad(format!("model.model: {e}")))?;
    let train = match obj.get("train") {
        Some(Value::Object(t)) => t.clone(),
        None => Default::default(),
        Some(_) => {
            return Err(bad(
                "\"train\" must be an object of training settings".into()
            ));
        }
    };
    let scoped = model
        .iter()
        .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
        .map(|(k, v)| (format!("{}.{k}", kind.id()), v.clone()));
    Ok(train
        .into_iter()
        .chain(scoped)
        .map(|(k, v)| Setting::lenient(k, v, Some(file.to_string())))
        .collect())
}

/// The entries of a JSON object in file order, repeated keys included.
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of settings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = m.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Keys of a model config that are not settings (they come from the dataset).
const NOT_SETTINGS: [&str; 3] = ["model", "n_items", "n_users"];

/// `settings` in the order they apply, the last one winning: layer by layer (a settings file,
/// then the command line's settings: a run of settings from the same place is a layer), and
/// within a layer the plain keys before the model-scoped ones, so that `sasrec.dropout` beats
/// `dropout` of the same file or command line whatever their order (a JSON object has none).
pub fn in_precedence(settings: &[Setting]) -> Vec<&Setting> {
    let mut layer = 0;
    let mut keyed: Vec<(usize, bool, &Setting)> = Vec::with_capacity(settings.len());
    for (i, s) in settings.iter().enumerate() {
        if i > 0 && settings[i - 1].file != s.file {
            layer += 1;
        }
        keyed.push((layer, s.key.contains('.'), s));
    }
    // Stable: equal keys keep their order.
    keyed.sort_by_key(|&(layer, scoped, _)| (layer, scoped));
    keyed.into_iter().map(|(_, _, s)| s).collect()
}

/// Where the value of `key` that a model of `kind` uses comes from: ` (in FILE)` when the
/// winning setting is a settings file's, "" for the command line or the default.
pub fn origin_of(settings: &[Setting], kind: ModelKind, key: &str) -> String {
    in_precedence(settings)
        .into_iter()
        .rfind(|s| own_key(&s.key, kind).ok().flatten() == Some(key))
        .map(|s| s.place())
        .unwrap_or_default()
}

/// Applies `settings` over `model` and `train` (in [`in_precedence`] order), and validates the
/// result; an error names the setting.
pub fn apply_settings(
    model: &ModelConfig,
    train: &TrainConfig,
    settings: &[Setting],
) -> Result<(ModelConfig, TrainConfig), TrainError> {
    let model_keys = model.to_json();
    let mut train_json = serde_json::to_value(train).expect("configs serialise");
    let mut model_over = Vec::new();
    let mut train_over: Vec<(String, Value, String)> = Vec::new();
    // Where the setting that won for each key comes from, for errors found after merging.
    let mut places: std::collections::HashMap<String, String> = Default::default();
    let mut others: Vec<&Setting> = Vec::new();
    for setting in in_precedence(settings) {
        let Setting {
            key, value, strict, ..
        } = setting;
        let Some(k) = own_key(key, model.kind())
            .map_err(|e| TrainError::Config(format!("{e}{}", setting.place())))?
        else {
            // Another model's setting: not used here, but checked below with that model's
            // other settings (a typo in it is still an error).
            others.push(setting);
            continue;
        };
        if NOT_SETTINGS.contains(&k) {
            return Err(TrainError::Config(format!(
                "{k:?}{} is not a setting: the model comes from the command, the item and user counts from the dataset",
                setting.place()
            )));
        }
        if model_keys.get(k).is_some() {
            model_over.push((k.to_string(), value.clone(), setting.place()));
        } else if train_json.get(k).is_some() {
            train_json[k] = value.clone();
            train_over.push((k.to_string(), value.clone(), setting.place()));
        } else if *strict || !some_model_has(k) {
            let mut keys: Vec<String> = model_keys
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .filter(|k| !NOT_SETTINGS.contains(&k.as_str()))
                .collect();
            keys.extend(
                train_json
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.clone()),
            );
            return Err(TrainError::Config(format!(
                "unknown setting {k:?}{} for {}; settings: {}",
                setting.place(),
                model.kind().name(),
                keys.join(", ")
            )));
        } else {
            continue;
        }
        places.insert(k.to_string(), setting.place());
    }
    let placed = |e: ssi_models::ConfigError| -> TrainError {
        match e.setting().and_then(|k| places.get(k)) {
            Some(place) if !place.is_empty() => TrainError::Config(format!("{e}{place}")),
            _ => e.into(),
        }
    };
    // Each value is read on its own first, one that a later layer overrides too: a settings
    // file with a value of the wrong type is named even where the command line replaces it.
    for (k, v, place) in &model_over {
        model
            .with_overrides(&[(k.clone(), v.clone())])
            .map_err(|e| TrainError::Config(format!("{e}{place}")))?;
    }
    let base = serde_json::to_value(train).expect("configs serialise");
    for (k, v, place) in &train_over {
        let mut one = base.clone();
        one[k.as_str()] = v.clone();
        if let Err(e) = serde_json::from_value::<TrainConfig>(one) {
            return Err(TrainError::Config(format!(
                "training setting {k} = {v}{place} is not valid: {e}"
            )));
        }
    }
    let model_over: Vec<(String, Value)> = model_over.into_iter().map(|(k, v, _)| (k, v)).collect();
    let model = model
        .with_overrides(&model_over)
        .map_err(placed)?
        .resolved();
    let train: TrainConfig = serde_json::from_value(train_json)
        .map_err(|e| TrainError::Config(format!("invalid training setting: {e}")))?;
    model.validate().map_err(placed)?;
    train.validate().map_err(placed)?;
    check_other_models(&others)?;
    Ok((model, train))
}

/// The key of a setting for a model of `kind`: `MODEL.key` applies to that model only (e.g.
/// `sasrec.dropout` in a shared settings file), so it is None for the others.
fn own_key(key: &str, kind: ModelKind) -> Result<Option<&str>, TrainError> {
    match key.split_once('.') {
        Some((scope, k)) => {
            let scope: ModelKind = scope.parse()?;
            Ok((scope == kind).then_some(k))
        }
        None => Ok(Some(key)),
    }
}

/// `MODEL.key = value` settings of models other than the one trained: each key must be one of
/// that model's settings or a training setting, and each model's settings together must pass
/// its checks (`heads` with the `hidden` given beside it, not with the default).
fn check_other_models(others: &[&Setting]) -> Result<(), TrainError> {
    // Per model: its model settings and its training settings given here, and where each came
    // from.
    type Group = (
        ModelKind,
        Vec<(String, Value)>,
        Vec<(String, Value)>,
        Vec<String>,
    );
    let mut groups: Vec<Group> = Vec::new();
    for setting in others {
        let Some((scope, k)) = setting.key.split_once('.') else {
            continue;
        };
        let kind: ModelKind = scope.parse()?;
        let keys = ModelConfig::new(kind, 1000, 1000).to_json();
        let train_keys = serde_json::to_value(TrainConfig::defaults_for(&ModelConfig::new(
            kind, 1000, 1000,
        )))
        .expect("configs serialise");
        let place = setting.place();
        let is_train = train_keys.get(k).is_some() && keys.get(k).is_none();
        if !is_train && (keys.get(k).is_none() || NOT_SETTINGS.contains(&k)) {
            let names: Vec<&str> = keys
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .filter(|k| !NOT_SETTINGS.contains(k))
                .collect();
            return Err(TrainError::Config(format!(
                "unknown setting {k:?} in {:?}{place}: {} has no such setting; its settings: {}",
                setting.key,
                kind.name(),
                names.join(", ")
            )));
        }
        let i = match groups.iter().position(|g| g.0 == kind) {
            Some(i) => i,
            None => {
                groups.push((kind, Vec::new(), Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        if is_train {
            let mut one = train_keys;
            one[k] = setting.value.clone();
            if let Err(e) = serde_json::from_value::<TrainConfig>(one) {
                return Err(TrainError::Config(format!(
                    "training setting {} = {}{place} is not valid: {e}",
                    setting.key, setting.value
                )));
            }
            groups[i].2.push((k.to_string(), setting.value.clone()));
        } else {
            ModelConfig::new(kind, 1000, 1000)
                .with_overrides(&[(k.to_string(), setting.value.clone())])
                .map_err(|e| TrainError::Config(format!("{e}{place}")))?;
            groups[i].1.push((k.to_string(), setting.value.clone()));
        }
        groups[i].3.push(place);
    }
    for (kind, over, train_over, places) in groups {
        let checked = ModelConfig::new(kind, 1000, 1000)
            .with_overrides(&over)
            .and_then(|c| {
                let c = c.resolved();
                c.validate()?;
                let mut train =
                    serde_json::to_value(TrainConfig::defaults_for(&c)).expect("configs serialise");
                for (k, v) in &train_over {
                    train[k.as_str()] = v.clone();
                }
                serde_json::from_value::<TrainConfig>(train)
                    .expect("each value was read on its own")
                    .validate()
            });
        if let Err(e) = checked {
            let place = places
                .into_iter()
                .find(|p| !p.is_empty())
                .unwrap_or_default();
            // Most errors already name the model and setting.
            let e = e.to_string();
            return Err(TrainError::Config(if e.starts_with(kind.name()) {
                format!("{e}{place}")
            } else {
                format!("{} setting{place}: {e}", kind.name())
            }));
        }
    }
    Ok(())
}

fn some_model_has(key: &str) -> bool {
    ModelKind::ALL
        .iter()
        .any(|&kind| ModelConfig::new(kind, 1, 1).to_json().get(key).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "0", "1", "-1", "2.5", "1e400", "null", "true", "\"x\"", "[]", "{}"
            ])
            .prop_map(String::from),
            "[0-9]{1,6}",
        ]
    }

    #[test]
    fn a_files_wrong_value_is_named_though_the_command_line_replaces_it() {
        let base = ModelConfig::new(ModelKind::Sasrec, 100, 10);
        let train = TrainConfig::defaults_for(&base);
        let file = |k: &str, v: Value| Setting::lenient(k.into(), v, Some("c.json".into()));
        let set = |s: &str| Setting::parse(s).unwrap();
        for (settings, name) in [
            (
                vec![file("hidden", "abc".into()), set("hidden=8")],
                "hidden",
            ),
            (vec![file("epochs", (-5).into()), set("epochs=1")], "epochs"),
            (vec![file("seed", "x".into()), set("seed=3")], "seed"),
            (
                vec![file("grec.hidden", "abc".into()), set("grec.hidden=8")],
                "hidden",
            ),
        ] {
            let err = apply_settings(&base, &train, &settings)
                .unwrap_err()
                .to_string();
            assert!(err.contains(name) && err.contains("c.json"), "{err}");
        }
        // A right value replaced is no error.
        let fine = [file("hidden", 32.into()), set("hidden=8")];
        let (m, _) = apply_settings(&base, &train, &fine).unwrap();
        assert_eq!(m.to_json()["hidden"], 8);
    }

    #[test]
    fn numbers_as_people_write_them_are_numbers() {
        let value = |s: &str| Setting::parse(s).unwrap().value;
        assert_eq!(value("dropout=.5"), serde_json::json!(0.5));
        assert_eq!(value("hidden=08"), serde_json::json!(8));
        assert_eq!(value("hidden=+8"), serde_json::json!(8));
        assert_eq!(value("lr=1.e-3"), serde_json::json!(0.001));
        // Not one number: kept as text, refused where a number is expected.
        for text in ["inf", "nan", "1.2.3", "-", "e", "8x"] {
            assert_eq!(value(&format!("lr={text}")), Value::String(text.into()));
        }
        let base = ModelConfig::new(ModelKind::Sasrec, 100, 10);
        let train = TrainConfig::defaults_for(&base);
        let (m, _) =
            apply_settings(&base, &train, &[Setting::parse("dropout=.25").unwrap()]).unwrap();
        assert_eq!(m.to_json()["dropout"], 0.25);
    }

    #[test]
    fn a_setting_given_twice_on_the_command_line_is_refused() {
        let sets = |s: &[&str]| parse_sets(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let err = sets(&["hidden=8", "lr=0.1", "hidden=16"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--set hidden") && err.contains("twice"),
            "{err}"
        );
        assert!(sets(&["hgn.hidden=8", "HGN.hidden=9"]).is_err());
        // A plain key and a model-scoped one are two settings (the scoped one wins for its model).
        assert_eq!(sets(&["hidden=8", "hgn.hidden=16"]).unwrap().len(), 2);
    }

    #[test]
    fn another_models_setting_is_checked_though_unused() {
        let base = ModelConfig::new(ModelKind::Sasrec, 100, 10);
        let train = TrainConfig::defaults_for(&base);
        let apply = |s: &str| apply_settings(&base, &train, &[Setting::parse(s).unwrap()]);
        assert!(apply("bert4rec.mask_prob=0.3").is_ok());
        assert!(apply("gru4rec.lr=0.01").is_ok());
        // Its training settings too: their type, range, and together.
        for (s, needle) in [
            ("gru4rec.lr=\"abc\"", "gru4rec.lr"),
            ("gru4rec.epochs=-5", "gru4rec.epochs"),
            ("gru4rec.lr=20", "GRU4Rec setting"),
        ] {
            let e = apply(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
        let both = apply_settings(
            &base,
            &train,
            &[
                Setting::parse("hgn.lr=1").unwrap(),
                Setting::parse("hgn.adam_epsilon=1e-300").unwrap(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            both.contains("adam_epsilon") && both.contains("HGN"),
            "{both}"
        );
        let typo = apply("gru4rec.hiden=5").unwrap_err().to_string();
        assert!(
            typo.contains("\"hiden\"") && typo.contains("GRU4Rec"),
            "{typo}"
        );
        let range = apply("bert4rec.mask_prob=7").unwrap_err().to_string();
        assert!(range.contains("mask_prob"), "{range}");
        assert_eq!(range.matches("BERT4Rec setting").count(), 1, "{range}");
        // Checked together: heads 3 divides the hidden 96 given beside it.
        let together = apply_settings(
            &base,
            &train,
            &[
                Setting::parse("hgn.hidden=96").unwrap(),
                Setting::parse("bert4rec.hidden=96").unwrap(),
                Setting::parse("bert4rec.heads=3").unwrap(),
            ],
        );
        assert!(together.is_ok(), "{together:?}");
    }

    #[test]
    fn a_model_scoped_setting_beats_the_plain_one_of_its_layer_in_any_order() {
        let base = ModelConfig::new(ModelKind::Sasrec, 100, 10);
        let train = TrainConfig::defaults_for(&base);
        let dropout = |settings: &[Setting]| {
            let (m, _) = apply_settings(&base, &train, settings).unwrap();
            m.to_json()["dropout"].as_f64().unwrap()
        };
        let file = |k: &str, v: f64| Setting::lenient(k.into(), v.into(), Some("f.json".into()));
        let set = |s: &str| Setting::parse(s).unwrap();
        // Within a file and within the command line, in both orders.
        assert_eq!(
            dropout(&[file("sasrec.dropout", 0.3), file("dropout", 0.1)]),
            0.3
        );
        assert_eq!(
            dropout(&[file("dropout", 0.1), file("sasrec.dropout", 0.3)]),
            0.3
        );
        assert_eq!(
            dropout(&[set("sasrec.dropout=0.3"), set("dropout=0.1")]),
            0.3
        );
        assert_eq!(
            dropout(&[set("dropout=0.1"), set("sasrec.dropout=0.3")]),
            0.3
        );
        // Another model's scoped setting does not apply; a later layer beats an earlier one.
        assert_eq!(
            dropout(&[set("dropout=0.1"), set("bert4rec.dropout=0.3")]),
            0.1
        );
        assert_eq!(
            dropout(&[file("sasrec.dropout", 0.3), set("dropout=0.1")]),
            0.1
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A settings file (`--config`) with any keys and values is refused with a message naming
        /// the file or the setting, or gives settings that passed every range check.
        #[test]
        fn settings_files_are_refused_or_valid(
            pairs in prop::collection::vec(
                (prop::sample::select(vec!["hidden", "heads", "layers", "max_len", "dropout", "lr", "batch_size", "epochs", "sasrec.dropout", "bert4rec.mask_prob", "typo", "patience"]), json_value()),
                0..6,
            ),
            garbage in proptest::option::of("[{}\\[\\],:\"a-z0-9 ]{0,20}"),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("settings.json");
            let text = match garbage {
                Some(g) => g,
                None => format!(
                    "{{{}}}",
                    pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect::<Vec<_>>().join(", ")
                ),
            };
            std::fs::write(&path, &text).unwrap();
            let settings = match load_settings_file(&path) {
                Ok(s) => s,
                Err(e) => {
                    prop_assert!(e.to_string().contains("settings.json"), "{e}");
                    return Ok(());
                }
            };
            for kind in [ModelKind::Sasrec, ModelKind::Bert4rec, ModelKind::Hgn] {
                let base = ModelConfig::new(kind, 50, 10);
                match apply_settings(&base, &TrainConfig::new(), &settings) {
                    Ok((m, t)) => {
                        prop_assert!(m.validate().is_ok() && t.validate().is_ok());
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        prop_assert!(
                            settings.iter().any(|s| msg.contains(s.key.rsplit('.').next().unwrap())),
                            "{msg} names none of {settings:?}"
                        );
                    }
                }
            }
        }
    }

    /// A model's own training defaults (GREC's L2 penalty, SASRec's Adam epsilon) come before
    /// the settings, which still win, and the other models keep training's defaults.
    #[test]
    fn a_model_brings_its_training_defaults_and_settings_win() {
        let grec = ModelConfig::new(ModelKind::Grec, 50, 10);
        let base = TrainConfig::defaults_for(&grec);
        let (_, t) = apply_settings(&grec, &base, &[]).unwrap();
        assert_eq!(t.weight_decay, Some(1e-4));
        for (set, want) in [
            ("weight_decay=null", None),
            ("weight_decay=0.01", Some(0.01)),
        ] {
            let (_, t) = apply_settings(&grec, &base, &[Setting::parse(set).unwrap()]).unwrap();
            assert_eq!(t.weight_decay, want, "{set}");
        }
        for kind in ModelKind::ALL.into_iter().filter(|&k| k != ModelKind::Grec) {
            let m = ModelConfig::new(kind, 50, 10);
            assert_eq!(TrainConfig::defaults_for(&m).weight_decay, None, "{kind:?}");
        }
        // SASRec trains with PyTorch's Adam epsilon, the others with burn's (null).
        for kind in ModelKind::ALL {
            let m = ModelConfig::new(kind, 50, 10);
            let want = (kind == ModelKind::Sasrec).then_some(1e-8);
            let (_, t) = apply_settings(&m, &TrainConfig::defaults_for(&m), &[]).unwrap();
            assert_eq!(t.adam_epsilon, want, "{kind:?}");
        }
        let sasrec = ModelConfig::new(ModelKind::Sasrec, 50, 10);
        let set = [Setting::parse("adam_epsilon=null").unwrap()];
        let (_, t) = apply_settings(&sasrec, &TrainConfig::defaults_for(&sasrec), &set).unwrap();
        assert_eq!(t.adam_epsilon, None);
    }

    /// New runs rank among the candidates of `eval_seed` 42 whatever their training seed; a
    /// config written before the setting (no `eval_seed`) keeps its run's seed.
    #[test]
    fn runs_of_any_seed_share_the_sampled_candidates() {
        let m = ModelConfig::new(ModelKind::Sasrec, 50, 10);
        let set = [Setting::parse("seed=7").unwrap()];
        let (_, t) = apply_settings(&m, &TrainConfig::defaults_for(&m), &set).unwrap();
        assert_eq!((t.seed, t.candidates_seed()), (7, 42));
        let set = [Setting::parse("eval_seed=3").unwrap()];
        let (_, t) = apply_settings(&m, &TrainConfig::defaults_for(&m), &set).unwrap();
        assert_eq!(t.candidates_seed(), 3);
        let mut old = serde_json::to_value(TrainConfig::new().with_seed(7)).unwrap();
        old.as_object_mut().unwrap().remove("eval_seed");
        let old: TrainConfig = serde_json::from_value(old).unwrap();
        assert_eq!((old.eval_seed, old.candidates_seed()), (None, 7));
    }

    /// A SASRec teacher's config says what it trains with (its consistency settings written
    /// out); a plain SASRec's stay null, as in configs written before they existed.
    #[test]
    fn a_teachers_saved_config_names_every_setting_it_uses() {
        let sasrec = ModelConfig::new(ModelKind::Sasrec, 50, 10);
        let train = TrainConfig::defaults_for(&sasrec);
        let (plain, _) = apply_settings(&sasrec, &train, &[]).unwrap();
        assert!(plain.to_json()["ngram"].is_null());
        let set = [
            Setting::parse("consistency=persona").unwrap(),
            Setting::parse("ngram=3").unwrap(),
        ];
        let (teacher, _) = apply_settings(&sasrec, &train, &set).unwrap();
        let v = teacher.to_json();
        assert_eq!(v["ngram"], 3);
        assert_eq!(v["ngrams"], 1);
        assert_eq!(v["consistency_weight"], 1.0);
        assert_eq!(v["negative_prob"], 0.5);
    }

    /// A run's saved config.json, given to --config, trains that run's model and training
    /// settings again (another model takes its training settings only); a distillation's is
    /// refused, and a command-line setting still wins.
    #[test]
    fn a_runs_config_json_is_a_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = ModelConfig::new(ModelKind::Sasrec, 50, 10)
            .with_overrides(&[("hidden".into(), 32.into()), ("dropout".into(), 0.3.into())])
            .unwrap()
            .resolved();
        let mut train = TrainConfig::defaults_for(&model);
        train.lr = 0.004;
        train.weight_decay = Some(0.01);
        let record = serde_json::json!({
            "model": model.to_json(),
            "train": serde_json::to_value(&train).unwrap(),
            "dataset": {"name": "x", "n_items": 50, "n_users": 10, "path": null},
        });
        let path = dir.path().join("config.json");
        std::fs::write(&path, record.to_string()).unwrap();
        let settings = load_settings_file(&path).unwrap();
        let base = ModelConfig::new(ModelKind::Sasrec, 50, 10);
        let fresh = TrainConfig::defaults_for(&base);
        let json =
            |(m, t): (ModelConfig, TrainConfig)| (m.to_json(), serde_json::to_value(t).unwrap());
        assert_eq!(
            json(apply_settings(&base, &fresh, &settings).unwrap()),
            json((model.clone(), train.clone()))
        );
        // Another model: the training settings only.
        let hgn = ModelConfig::new(ModelKind::Hgn, 50, 10);
        let (m, t) = apply_settings(&hgn, &TrainConfig::defaults_for(&hgn), &settings).unwrap();
        assert_eq!(m.to_json(), hgn.clone().resolved().to_json());
        assert_eq!((t.lr, t.weight_decay), (0.004, Some(0.01)));
        // The command line wins over the record.
        let mut later = settings.clone();
        later.push(Setting::parse("hidden=128").unwrap());
        model = model
            .with_overrides(&[("hidden".into(), 128.into())])
            .unwrap()
            .resolved();
        assert_eq!(
            apply_settings(&base, &fresh, &later).unwrap().0.to_json(),
            model.to_json()
        );
        for (text, needle) in [
            (
                serde_json::json!({"model": {"model": "sasrec"}, "distill": {}}),
                "distillation",
            ),
            (
                serde_json::json!({"model": {"model": "sasrec"}, "hidden": 3}),
                "\"hidden\"",
            ),
            (serde_json::json!({"model": {"hidden": 3}}), "model.model"),
            (
                serde_json::json!({"model": {"model": "sasrec"}, "train": 3}),
                "\"train\"",
            ),
        ] {
            std::fs::write(&path, text.to_string()).unwrap();
            let msg = load_settings_file(&path).unwrap_err().to_string();
            assert!(
                msg.contains(needle) && msg.contains(&path.display().to_string()),
                "{text}: {msg}"
            );
        }
    }

    /// An error about a setting from a settings file names the file; the same value given with
    /// `--set` after it wins, and one typed with `--set` names no file.
    #[test]
    fn errors_name_the_settings_file_a_bad_setting_comes_from() {
        let dir = tempfile::tempdir().unwrap();
        let base = ModelConfig::new(ModelKind::Sasrec, 50, 10);
        for (text, needle) in [
            ("{\"hiden\": 64}", "hiden"),
            ("{\"heads\": 3}", "heads = 3"),
            ("{\"hidden\": -4}", "hidden = -4"),
            ("{\"lr\": -1}", "lr = -1"),
            ("{\"epochs\": \"x\"}", "epochs"),
            ("{\"foo.hidden\": 3}", "foo"),
        ] {
            let path = dir.path().join("mine.json");
            std::fs::write(&path, text).unwrap();
            let settings = load_settings_file(&path).unwrap();
            let msg = apply_settings(&base, &TrainConfig::new(), &settings)
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains(needle) && msg.contains(&path.display().to_string()),
                "{text}: {msg}"
            );
        }
        // One setting given twice, its model named in two cases, is refused like any other.
        let path = dir.path().join("mine.json");
        std::fs::write(&path, "{\"HGN.hidden\": 16, \"hgn.hidden\": 32}").unwrap();
        let msg = load_settings_file(&path).unwrap_err().to_string();
        assert!(msg.contains("\"hgn.hidden\" is given twice"), "{msg}");
        std::fs::write(&path, "{\"heads\": 3}").unwrap();
        let mut settings = load_settings_file(&path).unwrap();
        settings.push(Setting::parse("heads=2").unwrap());
        assert!(apply_settings(&base, &TrainConfig::new(), &settings).is_ok());
        let typed = [Setting::parse("heads=3").unwrap()];
        let msg = apply_settings(&base, &TrainConfig::new(), &typed)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("heads = 3") && !msg.contains(" (in "), "{msg}");
    }
}
