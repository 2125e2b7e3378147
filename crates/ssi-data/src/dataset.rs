//! Sequential interaction datasets in the S3-Rec text format: one user a line,
//! `user item item ...`, items in chronological order, 1-based integer ids (0 is padding).

use crate::catalogue::Catalogue;
use crate::error::DataError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Users need a training part, a validation target and a test target.
pub const MIN_SEQ_LEN: usize = 3;
/// Largest item id a dataset may use (a row of every model's item table per id).
pub const MAX_ITEM_ID: u32 = 20_000_000;
pub use crate::files::{
    MAX_FILE_BYTES, MAX_SETTINGS_BYTES, read_bytes, read_bytes_max, read_text, read_text_max,
};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Dataset {
    pub name: String,
    /// The original user ids, in file order.
    pub user_ids: Vec<u32>,
    /// Chronological item sequences, one per user, parallel to `user_ids`.
    pub sequences: Vec<Vec<u32>>,
    /// Largest item id; item ids live in `1..=n_items`.
    pub n_items: u32,
    pub catalogue: Option<Catalogue>,
}

/// A line that was not loaded, with its reason (reported, never silent).
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: skipped: {}",
            self.path.display(),
            self.line,
            self.reason
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub skipped: Vec<Skip>,
    /// Things that load but deserve a look (e.g. sparse item ids).
    pub warnings: Vec<String>,
}

/// Table 1 of the paper.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    pub users: usize,
    /// Distinct items that occur in the file.
    pub items: usize,
    /// Largest item id (the paper's item count minus the padding id).
    pub max_item_id: u32,
    /// All interactions in the file.
    pub interactions: usize,
    /// Interactions without each user's held-out test item (the paper's "# Actions").
    pub actions_without_test: usize,
    pub avg_actions_per_user: f64,
    pub avg_actions_per_item: f64,
    pub min_len: usize,
    pub max_len: usize,
    pub density: f64,
}

impl Dataset {
    /// Parses S3-Rec text. Malformed lines, bad ids and duplicate users are errors naming file,
    /// line and item; blank lines and users too short to split are skipped and reported.
    pub fn parse(text: &str, path: &Path) -> Result<(Self, LoadReport), DataError> {
        let mut report = LoadReport::default();
        let mut seen: HashMap<u32, usize> = HashMap::new();
        let mut user_ids = Vec::new();
        let mut sequences = Vec::new();
        let mut n_items = 0u32;
        let mut any_content = false;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = split_lines(text);
        for (i, line) in lines.iter().enumerate() {
            let lineno = i + 1;
            no_hidden_line_break(line, path, lineno)?;
            let mut tokens = line.split_whitespace();
            let Some(user_tok) = tokens.next() else {
                if !line.is_empty() || lineno < lines.len() {
                    report.skipped.push(Skip {
                        path: path.into(),
                        line: lineno,
                        reason: "blank line".into(),
                    });
                }
                continue;
            };
            any_content = true;
            let (user, items) = parse_line(user_tok, tokens, &mut seen, path, lineno)?;
            n_items = n_items.max(items.iter().copied().max().unwrap_or(0));
            if items.len() < MIN_SEQ_LEN {
                report.skipped.push(Skip {
                    path: path.into(),
                    line: lineno,
                    reason: format!(
                        "user {user} has {} item(s); leave-one-out needs at least {MIN_SEQ_LEN}",
                        items.len()
                    ),
                });
                continue;
            }
            user_ids.push(user);
            sequences.push(items);
        }
        if !any_content {
            return Err(DataError::file(path, "file is empty"));
        }
        if sequences.is_empty() {
            let first = report
                .skipped
                .iter()
                .find(|s| s.reason != "blank line")
                .map(|s| format!(" (the first, line {}: {})", s.line, s.reason))
                .unwrap_or_default();
            return Err(DataError::file(
                path,
                format!(
                    "no usable user: all {} line(s) were skipped{first}",
                    report.skipped.len()
                ),
            ));
        }
        report
            .warnings
            .extend(sparse_ids_warning(&sequences, n_items, path));
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into());
        Ok((
            Dataset {
                name,
                user_ids,
                sequences,
                n_items,
                catalogue: None,
            },
            report,
        ))
    }

    /// Loads a dataset file, and its catalogue if a sibling `NAME.items.tsv` exists.
    pub fn load(path: &Path) -> Result<(Self, LoadReport), DataError> {
        let text = read_text(path)?;
        let (mut ds, mut report) = Self::parse(&text, path)?;
        let cat_path = catalogue_path(path);
        if cat_path.exists() {
            // A file the user did not name: a pipe or device there would block or fill memory.
            if !std::fs::metadata(&cat_path).is_ok_and(|m| m.is_file()) {
                return Err(DataError::file(
                    &cat_path,
                    "is read as the dataset's catalogue but is not a regular file (a pipe, device or folder): remove or rename it",
                ));
            }
            let cat = Catalogue::load(&cat_path)?;
            if cat.n_items() < ds.n_items as usize {
                return Err(DataError::file(
                    &cat_path,
                    format!(
                        "catalogue lists items up to {} but the dataset uses item {}",
                        cat.n_items(),
                        ds.n_items
                    ),
                ));
            }
            if cat.n_items() > ds.n_items as usize {
                // Legitimate (items nobody interacted with) or a catalogue of another dataset:
                // either way the item count changes, so say so.
                report.warnings.push(format!(
                    "{}: the catalogue lists {} items but the dataset's highest item id is {}; the model gets {} item rows (delete or regenerate the catalogue if it belongs to another dataset)",
                    cat_path.display(),
                    cat.n_items(),
                    ds.n_items,
                    cat.n_items()
                ));
            }
            ds.n_items = ds.n_items.max(cat.n_items() as u32);
            ds.catalogue = Some(cat);
        }
        Ok((ds, report))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (u, seq) in self.user_ids.iter().zip(&self.sequences) {
            out.push_str(&u.to_string());
            for it in seq {
                out.push(' ');
                out.push_str(&it.to_string());
            }
            out.push('\n');
        }
        out
    }

    /// The files `save(path)` writes.
    pub fn outputs(&self, path: &Path) -> Vec<PathBuf> {
        let mut out = vec![path.to_path_buf()];
        if self.catalogue.is_some() {
            out.push(catalogue_path(path));
        }
        out
    }

    /// Writes the dataset (and its catalogue beside it), after checking that the text loads:
    /// nothing is written that `Dataset::load` would refuse.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        write_all_or_none(&self.files(path)?)
    }

    /// The files `save(path)` writes, with their bytes (the dataset read back first).
    pub fn files(&self, path: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, DataError> {
        let text = self.to_text();
        Dataset::parse(&text, path)?;
        let mut files = vec![(path.to_path_buf(), text.into_bytes())];
        if let Some(cat) = &self.catalogue {
            files.push((catalogue_path(path), cat.to_tsv().into_bytes()));
        }
        Ok(files)
    }

    /// Whether the catalogue raised the item count above the highest id the sequences use
    /// (a hint for errors; a skipped user's higher id also counts as raised).
    pub fn catalogue_raises_items(&self) -> bool {
        self.catalogue.is_some()
            && self.sequences.iter().flatten().max().copied().unwrap_or(0) < self.n_items
    }

    /// SHA-256 of the sequences in the text format (user ids and items): the dataset's identity,
    /// stored with every run and bundle so that a model is never silently used on other data.
    pub fn fingerprint(&self) -> String {
        sha256_hex(self.to_text().as_bytes())
    }

    pub fn n_users(&self) -> usize {
        self.sequences.len()
    }

    pub fn stats(&self) -> Stats {
        let interactions: usize = self.sequences.iter().map(Vec::len).sum();
        let mut present = vec![false; self.n_items as usize + 1];
        for s in &self.sequences {
            for &i in s {
                present[i as usize] = true;
            }
        }
        let items = present.iter().filter(|&&p| p).count();
        let users = self.n_users();
        Stats {
            users,
            items,
            max_item_id: self.n_items,
            interactions,
            actions_without_test: interactions - users,
            avg_actions_per_user: interactions as f64 / users as f64,
            avg_actions_per_item: interactions as f64 / items.max(1) as f64,
            min_len: self.sequences.iter().map(Vec::len).min().unwrap_or(0),
            max_len: self.sequences.iter().map(Vec::len).max().unwrap_or(0),
            density: interactions as f64 / (users as f64 * self.n_items.max(1) as f64),
        }
    }

    pub fn item_name(&self, item: u32) -> String {
        match &self.catalogue {
            Some(c) => c.name(item),
            None => format!("item {item}"),
        }
    }
}

/// The lines of `text`, each ended by `\n`, `\r\n` or a lone `\r` (classic Mac and some
/// spreadsheet exports: read with `str::lines` such a file is one line, one user holding all).
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'\n' | b'\r') {
            out.push(&text[start..i]);
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The user id and item ids of line `lineno`; `seen` maps the users of earlier lines to their
/// line, so that a user given twice is refused.
fn parse_line<'t>(
    user_tok: &str,
    tokens: impl Iterator<Item = &'t str>,
    seen: &mut HashMap<u32, usize>,
    path: &Path,
    lineno: usize,
) -> Result<(u32, Vec<u32>), DataError> {
    let user = parse_id(user_tok, path, lineno, "user")?;
    if let Some(first) = seen.insert(user, lineno) {
        return Err(DataError::line(
            path,
            lineno,
            format!("duplicate user {user} (first seen on line {first})"),
        ));
    }
    let mut items = Vec::new();
    for (col, tok) in tokens.enumerate() {
        let item = parse_id(tok, path, lineno, &format!("item #{}", col + 1))?;
        if item > MAX_ITEM_ID {
            return Err(DataError::line(
                path,
                lineno,
                format!(
                    "item id {item} is larger than {MAX_ITEM_ID}: models allocate a row per id; renumber the items with `ssi data ingest`"
                ),
            ));
        }
        items.push(item);
    }
    Ok((user, items))
}

/// Item ids index tables of n_items rows: far more ids than items wastes memory and, for sampled
/// evaluation, draws negatives among ids that never occur (inflating the metrics).
fn sparse_ids_warning(sequences: &[Vec<u32>], n_items: u32, path: &Path) -> Option<String> {
    let distinct: std::collections::HashSet<u32> = sequences.iter().flatten().copied().collect();
    (n_items as usize > 2 * distinct.len() + 100).then(|| {
        format!(
            "{}: item ids go up to {n_items} but only {} distinct items occur: models allocate a row per id and sampled negatives are drawn from ids that never occur; renumber the items with `ssi data ingest`",
            path.display(),
            distinct.len()
        )
    })
}

fn parse_id(tok: &str, path: &Path, line: usize, what: &str) -> Result<u32, DataError> {
    match tok.parse::<i64>() {
        Ok(v) if v >= 1 && v <= u32::MAX as i64 => Ok(v as u32),
        Ok(v) if v > u32::MAX as i64 => Err(DataError::line(
            path,
            line,
            format!("{what} id {v} is too large (at most {})", u32::MAX),
        )),
        Ok(v) => Err(DataError::line(
            path,
            line,
            format!("{what} id {v} is not positive (ids are 1-based; 0 is padding)"),
        )),
        Err(_) if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) => {
            Err(DataError::line(
                path,
                line,
                format!("{what} id {tok} is too large (at most {})", u32::MAX),
            ))
        }
        Err(_) => Err(DataError::line(
            path,
            line,
            format!("{what} {tok:?} is not an integer id"),
        )),
    }
}

/// Refuses a line holding a character other programs take for a line end (vertical tab, form
/// feed, NEL, U+2028/9): read as a space, it would join two users into one without a word.
pub(crate) fn no_hidden_line_break(
    line: &str,
    path: &Path,
    lineno: usize,
) -> Result<(), DataError> {
    let Some((at, c)) = line
        .char_indices()
        .find(|(_, c)| matches!(c, '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'))
    else {
        return Ok(());
    };
    let name = match c {
        '\u{0b}' => "vertical tab",
        '\u{0c}' => "form feed",
        '\u{85}' => "next line (NEL)",
        '\u{2028}' => "line separator",
        _ => "paragraph separator",
    };
    Err(DataError::line(
        path,
        lineno,
        format!(
            "a {name} (U+{:04X}) at column {}: some programs end a line there, so the line may hold two users; \
             ssi ends lines only at \\n, \\r\\n and \\r: replace it with a newline or a space",
            c as u32,
            line[..at].chars().count() + 1
        ),
    ))
}

/// SHA-256 of `bytes`: a bundle's header checksum.
pub fn sha256_bytes(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// SHA-256 of `bytes` in lower-case hex: dataset identities, weight checksums, download checks.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `data/beauty.txt` -> `data/beauty.items.tsv`.
pub fn catalogue_path(path: &Path) -> PathBuf {
    sibling(path, "items.tsv")
}

/// For an error about a dataset's item count: names the catalogue beside the dataset file
/// `data` as the likely cause when it `raised` the count (it lists more items than the file
/// uses); "" otherwise.
pub fn catalogue_hint(data: Option<&Path>, raised: bool) -> String {
    match data.map(catalogue_path).filter(|c| raised && c.exists()) {
        Some(c) => format!(
            " (its item count includes the catalogue {}: delete or regenerate it if it belongs \
             to another dataset)",
            c.display()
        ),
        None => String::new(),
    }
}

/// A file beside a dataset that shares its stem: `data/beauty.txt`, `x.tsv` -> `data/beauty.x.tsv`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{suffix}"))
}

/// Refuses to write `outputs` over any of `inputs` (whatever `force` says) or over an existing
/// file unless `force`: a command's output never silently replaces a user's data.
pub fn check_outputs(outputs: &[PathBuf], inputs: &[&Path], force: bool) -> Result<(), DataError> {
    let same = |a: &Path, b: &Path| match (resolved(a), resolved(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    for (k, out) in outputs.iter().enumerate() {
        // `--out sub/` names a folder, which no file can be written as.
        if out
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::MAIN_SEPARATOR)
        {
            return Err(DataError::file(
                out,
                format!(
                    "names a folder (it ends with a separator): give a file in it, such as {}data.txt",
                    out.display()
                ),
            ));
        }
        // A file written beside the one the user named is named with it.
        let beside = match outputs.first() {
            Some(first) if k > 0 => format!(" (written beside {})", first.display()),
            _ => String::new(),
        };
        if let Some(input) = inputs.iter().find(|i| same(out, i)) {
            return Err(DataError::file(
                out,
                format!(
                    "is also the input {}: choose another output file",
                    input.display()
                ),
            ));
        }
        let existing = resolved(out).filter(|p| p.exists());
        if let Some(p) = &existing
            && !p.is_file()
        {
            return Err(DataError::file(
                out,
                format!(
                    "exists and is not a regular file (a device, pipe or folder){beside}: move it, or choose another output"
                ),
            ));
        }
        if !force && existing.is_some() {
            return Err(DataError::file(
                out,
                format!(
                    "already exists{beside}: pass --force to replace it, or choose another output"
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses to replace `path` unless it is missing or `ours` recognises its bytes as what
/// `writer` writes there: a command writing generated files into a folder the user also keeps
/// files in never replaces theirs.
pub fn check_replaceable(
    path: &Path,
    writer: &str,
    ours: impl Fn(&[u8]) -> bool,
) -> Result<(), DataError> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if path.is_dir() => Err(DataError::file(
            path,
            format!("is a folder where `{writer}` writes a file: move it, or choose another --out"),
        )),
        Err(e) => Err(DataError::io(path, e)),
        Ok(bytes) if ours(&bytes) => Ok(()),
        Ok(_) => Err(DataError::file(
            path,
            format!(
                "was not written by `{writer}`: it is left as it is; move it, or choose another --out"
            ),
        )),
    }
}

/// The absolute path `path` names once written: links resolved in the longest prefix that
/// exists, then the rest (`missing/../x`) resolved lexically, as creating the missing folders
/// and writing would make it.
fn resolved(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let abs = std::path::absolute(path).ok()?;
    let comps: Vec<Component> = abs.components().collect();
    let mut split = comps.len();
    let mut out = loop {
        let prefix: PathBuf = comps[..split].iter().collect();
        if let Ok(c) = prefix.canonicalize() {
            break c;
        }
        if split == 0 {
            break PathBuf::new();
        }
        split -= 1;
    };
    for c in &comps[split..] {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// Writes several files that belong together: if one write fails, the ones already written by
/// this call are removed, so a full disk never leaves a dataset without its catalogue.
pub fn write_all_or_none(files: &[(PathBuf, Vec<u8>)]) -> Result<(), DataError> {
    // Every file is written to its temporary first, then all are renamed: a process killed
    // while writing leaves only temporaries (removed by `remove_stale_temps`), not half a set.
    let mut temps = Vec::new();
    for (path, bytes) in files {
        match write_temp(path, bytes) {
            Ok(t) => temps.push(t),
            Err(e) => {
                for t in &temps {
                    let _ = std::fs::remove_file(t);
                }
                return Err(e);
            }
        }
    }
    for (i, ((path, _), tmp)) in files.iter().zip(&temps).enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            for t in &temps[i..] {
                let _ = std::fs::remove_file(t);
            }
            for (done, _) in &files[..i] {
                let _ = std::fs::remove_file(done);
            }
            return Err(DataError::io(path, e));
        }
    }
    Ok(())
}

/// Write to a temporary file in the same folder, then rename: a crash never leaves half a file.
/// The temporary name is unique to the process and call, so two writers never share one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let tmp = write_temp(path, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}

/// Writes `bytes` (flushed to disk) to a temporary file beside `path`, `.NAME.PID.N.tmp`, and
/// returns its path.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, DataError> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        // Most file systems take names of at most 255 bytes; the temporary's is longer.
        let long = tmp.file_name().map_or(0, |n| n.len());
        if long > 255 && name.len() <= 255 {
            return Err(DataError::file(
                path,
                format!(
                    "{e}: the name itself fits, but ssi writes it through a temporary \
                     .NAME.PID.N.tmp of {long} bytes (most file systems allow 255); \
                     choose a name at most {} bytes long",
                    name.len() - (long - 255)
                ),
            ));
        }
        return Err(DataError::io(path, e));
    }
    Ok(tmp)
}

/// Removes the temporary files `write_atomic` left in `dir` when its process was killed
/// between writing and renaming (`.NAME.PID.N.tmp` of a process no longer running, NAME a file
/// `ours` names), so an interrupted command leaves no copies of model weights behind once the
/// next one runs there. Only this user's files untouched for a minute count: `/proc` may hide
/// other users' processes, and a shared folder may be written from another machine. Files of
/// running processes, temporaries of names `ours` does not claim (a user's own `.x.1.2.tmp`),
/// and any other file are left alone; without `/proc`, nothing is removed.
pub fn remove_stale_temps(dir: &Path, ours: &dyn Fn(&str) -> bool) {
    remove_temps_older_than(dir, std::time::Duration::from_secs(60), ours);
}

/// `remove_stale_temps` for one output file in a folder that is not ours (a user's folder):
/// only the temporaries of that file's own name are removed.
pub fn remove_stale_temps_of(file: &Path) {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    remove_temps_older_than(
        dir.unwrap_or(Path::new(".")),
        std::time::Duration::from_secs(60),
        &|f| name.as_deref() == Some(f),
    );
}

#[cfg(unix)]
fn owner(m: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    Some(m.uid())
}

#[cfg(not(unix))]
fn owner(_: &std::fs::Metadata) -> Option<u32> {
    None
}

fn remove_temps_older_than(dir: &Path, age: std::time::Duration, ours: &dyn Fn(&str) -> bool) {
    let proc = Path::new("/proc");
    let Ok(me) = std::fs::metadata(proc.join("self")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let stale = |m: &std::fs::Metadata| {
        owner(m) == owner(&me)
            && m.is_file()
            && m.modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e >= age)
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let parts: Vec<&str> = rest.rsplitn(3, '.').collect();
        let [n, pid, file] = parts[..] else {
            continue;
        };
        if !ours(file) {
            continue;
        }
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if numeric(n)
            && numeric(pid)
            && pid != std::process::id().to_string()
            && !proc.join(pid).exists()
            && e.metadata().is_ok_and(|m| stale(&m))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files written as one: when one cannot be written, none is replaced and no temporary is
    /// left behind (`ssi report` writes its page, table, archive and charts so).
    #[test]
    fn files_written_as_one_are_all_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        std::fs::write(&a, "old").unwrap();
        std::fs::write(dir.path().join("blocker"), "a file").unwrap();
        let files = vec![
            (a.clone(), b"new".to_vec()),
            (dir.path().join("blocker/b.txt"), b"b".to_vec()),
        ];
        assert!(write_all_or_none(&files).is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 2, "{left:?}");
        let files = vec![
            (a.clone(), b"new".to_vec()),
            (dir.path().join("c/d.txt"), b"d".to_vec()),
        ];
        write_all_or_none(&files).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c/d.txt")).unwrap(),
            "d"
        );
    }

    #[test]
    fn temps_of_dead_processes_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("ssi-temps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ours = format!(".best.bpk.{}.0.tmp", std::process::id());
        // PIDs never exceed 2^22 on Linux: 999999999 is no running process.
        let names = [
            ".best.bpk.999999999.3.tmp",
            &ours,
            ".notes.tmp",
            "x.999999999.1.tmp",
            ".mydata.999999999.0.tmp",
        ];
        for n in names {
            std::fs::write(dir.join(n), "x").unwrap();
        }
        let run_files = |f: &str| f.ends_with(".bpk");
        // Too recent for the default minute; every one old enough at zero.
        remove_stale_temps(&dir, &run_files);
        assert!(dir.join(names[0]).exists());
        let left = |n: &str| dir.join(n).exists();
        // For one output file in a user's folder, only that file's temporaries.
        remove_temps_older_than(&dir, std::time::Duration::ZERO, &|f| f == "best.bpk");
        if Path::new("/proc/self").exists() {
            assert!(!left(names[0]));
        }
        assert!(left(".mydata.999999999.0.tmp"));
        // A run's folder: only the temporaries of the files a run writes.
        std::fs::write(dir.join(names[0]), "x").unwrap();
        remove_temps_older_than(&dir, std::time::Duration::ZERO, &run_files);
        if Path::new("/proc/self").exists() {
            assert!(!left(names[0]));
        }
        assert!(left(".mydata.999999999.0.tmp"));
        assert!(left(&ours) && left(".notes.tmp") && left("x.999999999.1.tmp"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn parse(text: &str) -> Result<(Dataset, LoadReport), DataError> {
        Dataset::parse(text, Path::new("d.txt"))
    }

    #[test]
    fn fingerprint_follows_content() {
        let a = parse("1 1 2 3\n2 3 2 1 4\n").unwrap().0;
        let with_bom = parse("\u{feff}1 1 2 3\n2 3 2 1 4\n").unwrap().0;
        assert_eq!(a.fingerprint(), with_bom.fingerprint());
        let same = parse("1 1 2 3\n\n2 3 2 1 4\n").unwrap().0;
        let swapped = parse("1 2 1 3\n2 3 2 1 4\n").unwrap().0;
        assert_eq!(a.fingerprint(), same.fingerprint());
        assert_ne!(a.fingerprint(), swapped.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn outputs_are_checked_against_inputs_and_existing_files() {
        let dir = std::env::temp_dir().join(format!("ssi-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.csv");
        std::fs::write(&input, "x").unwrap();
        let fresh = dir.join("new.txt");
        assert!(check_outputs(std::slice::from_ref(&fresh), &[&input], false).is_ok());
        let err = check_outputs(std::slice::from_ref(&input), &[&input], true).unwrap_err();
        assert!(err.to_string().contains("is also the input"), "{err}");
        let err = check_outputs(&[dir.join("./in.csv")], &[], false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(check_outputs(&[dir.join("in.csv")], &[], true).is_ok());
        // Through a folder that does not exist yet: `missing/..` is resolved, not trusted.
        let sneaky = dir.join("missing").join("..").join("in.csv");
        let err = check_outputs(std::slice::from_ref(&sneaky), &[&input], true).unwrap_err();
        assert!(err.to_string().contains("is also the input"), "{err}");
        assert!(check_outputs(&[sneaky], &[], false).is_err());
        // A device is never replaced, even with --force.
        let err = check_outputs(&[PathBuf::from("/dev/null")], &[], true).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // A path that names a folder; a file written beside the one named is named with it.
        let folder = PathBuf::from(format!(
            "{}{}",
            dir.join("sub").display(),
            std::path::MAIN_SEPARATOR
        ));
        let err = check_outputs(&[folder], &[], true).unwrap_err();
        assert!(err.to_string().contains("names a folder"), "{err}");
        let err = check_outputs(&[fresh.clone(), input.clone()], &[], false).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "already exists (written beside {})",
                fresh.display()
            )),
            "{err}"
        );
        // Atomic writes leave no temporary file behind.
        write_atomic(&fresh, b"data").unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_s3rec_format() {
        let (ds, rep) = parse("1 1 2 3\n2 3 2 1 4\n").unwrap();
        assert_eq!(ds.n_users(), 2);
        assert_eq!(ds.n_items, 4);
        assert_eq!(ds.sequences[1], vec![3, 2, 1, 4]);
        assert!(rep.skipped.is_empty());
        let st = ds.stats();
        assert_eq!((st.users, st.items, st.interactions), (2, 4, 7));
        assert_eq!(st.actions_without_test, 5);
        assert_eq!(parse(&ds.to_text()).unwrap().0.sequences, ds.sequences);
    }

    #[test]
    fn non_integer_item_names_line_and_item() {
        let err = parse("1 1 2 3\n2 3 x 1\n").unwrap_err().to_string();
        assert!(
            err.contains("d.txt:2") && err.contains("item #2") && err.contains("\"x\""),
            "{err}"
        );
    }

    #[test]
    fn non_positive_ids_are_errors() {
        let err = parse("1 1 0 3\n").unwrap_err().to_string();
        assert!(
            err.contains("d.txt:1") && err.contains("not positive"),
            "{err}"
        );
        let err = parse("1 1 2 3\n-4 1 2 3\n").unwrap_err().to_string();
        assert!(
            err.contains("d.txt:2") && err.contains("user id -4"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_user_is_an_error() {
        let err = parse("7 1 2 3\n8 1 2 3\n7 3 2 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("d.txt:3") && err.contains("duplicate user 7") && err.contains("line 1"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = parse("").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        let err = parse("\n\n").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn short_users_are_skipped_and_reported() {
        let (ds, rep) = parse("1 1 2 3\n2 5 6\n3\n\n4 1 2 3 4\n").unwrap();
        assert_eq!(ds.user_ids, vec![1, 4]);
        let lines: Vec<_> = rep.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert!(rep.skipped[0].to_string().contains("d.txt:2"));
        assert!(rep.skipped[0].reason.contains("2 item(s)"));
        let err = parse("\n1 1\n2 2\n").unwrap_err().to_string();
        assert!(
            err.contains("no usable user: all 3 line(s) were skipped (the first, line 2: user 1 has 1 item(s)"),
            "the first reason is given, blank lines aside: {err}"
        );
    }

    #[test]
    fn huge_id_is_an_error_not_a_panic() {
        let err = parse("1 1 2 99999999999\n").unwrap_err().to_string();
        assert!(
            err.contains("item #3") && err.contains("too large"),
            "{err}"
        );
    }

    #[test]
    fn ids_beyond_64_bits_are_too_large_not_non_integers() {
        let err = parse("1 1 99999999999999999999 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("item #2 id 99999999999999999999 is too large"),
            "{err}"
        );
        let err = parse("18446744073709551616 1 2 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user id 18446744073709551616 is too large"),
            "{err}"
        );
    }

    #[test]
    fn characters_other_programs_end_lines_at_are_refused_by_line_and_column() {
        for (c, name) in [
            ("\u{0b}", "vertical tab"),
            ("\u{0c}", "form feed"),
            ("\u{85}", "next line"),
            ("\u{2028}", "line separator"),
            ("\u{2029}", "paragraph separator"),
        ] {
            // Read as a space, user 2 would become items of user 1.
            let text = format!("3 7 8 9\n1 1 2 3{c}2 4 5 6\n");
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.contains("d.txt:2:") && err.contains(name) && err.contains("column 8"),
                "{err}"
            );
        }
        // A no-break space is only a space.
        assert_eq!(
            parse("1 1\u{a0}2 3\n").unwrap().0.sequences,
            vec![vec![1, 2, 3]]
        );
    }

    #[test]
    fn save_and_load_with_catalogue() {
        let dir = std::env::temp_dir().join(format!("ssi-ds-{}", std::process::id()));
        let path = dir.join("shop.txt");
        let (mut ds, _) = parse("1 1 2 3\n").unwrap();
        let mut cat = Catalogue::with_items(3);
        cat.names[2] = "Lens".into();
        ds.catalogue = Some(cat);
        ds.save(&path).unwrap();
        let (back, _) = Dataset::load(&path).unwrap();
        assert_eq!(back.item_name(2), "Lens");
        assert_eq!(back.item_name(3), "item 3");
        // A catalogue that lists more items (another dataset's) is reported, by path.
        std::fs::write(&path, "1 1 2\n2 2 1 1\n").unwrap();
        let (back, report) = Dataset::load(&path).unwrap();
        assert_eq!(back.n_items, 3);
        assert!(
            report.warnings.iter().any(|w| w.contains("shop.items.tsv")),
            "{:?}",
            report.warnings
        );
        // A catalogue that is not a regular file (a folder here; a pipe would block) is named.
        let cat = dir.join("shop.items.tsv");
        std::fs::remove_file(&cat).unwrap();
        std::fs::create_dir(&cat).unwrap();
        let err = Dataset::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("shop.items.tsv") && err.contains("not a regular file"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Lines end at `\n`, `\r\n` or a lone `\r`, and nowhere else.
        #[test]
        fn lines_split_as_str_lines_does_without_lone_carriage_returns(text in "[a \n]{0,40}") {
            let crlf = text.replace('\n', "\r\n");
            let cr = text.replace('\n', "\r");
            let want: Vec<&str> = text.lines().collect();
            proptest::prop_assert_eq!(&split_lines(&text), &want);
            proptest::prop_assert_eq!(&split_lines(&crlf), &want);
            proptest::prop_assert_eq!(&split_lines(&cr), &want);
        }

        /// Any text parses to a valid dataset or an error naming the file; never panics.
        #[test]
        fn parse_never_panics(text in "[0-9 \t\n+-x]{0,200}") {
            match parse(&text) {
                Ok((d, _)) => {
                    proptest::prop_assert!(d.sequences.iter().all(|s| s.len() >= MIN_SEQ_LEN));
                    proptest::prop_assert!(d.sequences.iter().flatten().all(|&i| i <= d.n_items));
                }
                Err(e) => proptest::prop_assert!(e.to_string().contains("d.txt")),
            }
        }

        /// A dataset written with `to_text` parses back to the same sequences.
        #[test]
        fn text_round_trips(seqs in proptest::collection::vec(proptest::collection::vec(1u32..500, 3..20), 1..20)) {
            let d = Dataset {
                name: "d".into(),
                user_ids: (1..=seqs.len() as u32).collect(),
                n_items: seqs.iter().flatten().copied().max().unwrap(),
                sequences: seqs,
                catalogue: None,
            };
            let (back, report) = parse(&d.to_text()).unwrap();
            proptest::prop_assert!(report.skipped.is_empty());
            proptest::prop_assert_eq!(back.fingerprint(), d.fingerprint());
            proptest::prop_assert_eq!(&back.sequences, &d.sequences);
            proptest::prop_assert_eq!(&back.user_ids, &d.user_ids);
        }
    }
}
