//! Ingest raw interaction logs (CSV or TSV: user, item, timestamp; string ids) into the S3-Rec
//! format: chronological order per user, iterative k-core filtering, id remapping with a saved id
//! map, and an optional catalogue of display names.

use crate::catalogue::Catalogue;
use crate::dataset::{Dataset, Skip};
use crate::error::DataError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IngestConfig {
    /// Column of the user id: a header name or a 0-based index.
    pub user_col: String,
    pub item_col: String,
    pub time_col: String,
    /// Field separator; `None` = tab if the first line has one, else comma.
    pub delimiter: Option<char>,
    /// Minimum interactions per user and per item (applied until stable). 0 or 1 disables it.
    pub k_core: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            user_col: "0".into(),
            item_col: "1".into(),
            time_col: "2".into(),
            delimiter: None,
            k_core: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ingested {
    pub dataset: Dataset,
    /// `user_map[i]` is the original id of user `i + 1`.
    pub user_map: Vec<String>,
    /// `item_map[i]` is the original id of item `i + 1`.
    pub item_map: Vec<String>,
    pub rows: usize,
    pub skipped: Vec<Skip>,
    pub dropped_by_k_core: usize,
    /// Rows that repeat an earlier row exactly (user, item and timestamp), kept as interactions.
    pub repeated_rows: usize,
    /// How lines were split into fields.
    pub delimiter: Delimiter,
    /// The first line, when it was read as a header because the timestamp column given by index
    /// is not a number there (a header named by `--*-col NAME` is not reported).
    pub guessed_header: Option<Vec<String>>,
}

/// The field separator and whether it was guessed from the first line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delimiter {
    pub char: char,
    pub guessed: bool,
    /// The line it was guessed from: the first that is not blank.
    pub line: usize,
}

impl std::fmt::Display for Delimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.char {
            '\t' => "tab".to_string(),
            c => format!("{c:?}"),
        };
        if self.guessed {
            write!(
                f,
                "{name} (guessed from line {}; --delimiter sets it)",
                self.line
            )
        } else {
            f.write_str(&name)
        }
    }
}

struct Row {
    user: usize,
    item: usize,
    time: f64,
    /// The timestamp exactly, when written as a decimal: nanoseconds since 1970 lie beyond
    /// f64's 2^53, and fractions beyond its 16 digits, where neighbouring values compare equal.
    exact: Option<Decimal>,
    order: usize,
}

/// A decimal number compared exactly: `-12.50e3` is (negative, digits "125", exponent 2: the
/// value is 0.125 × 10^(2+3)), with no leading or trailing zeros in the digits; zero has none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    /// Where the point goes: the value is 0.DIGITS × 10^exponent.
    exponent: i64,
}

impl Decimal {
    /// `[+-]digits[.digits][(e|E)[+-]digits]`, at least one digit before the exponent; else None.
    fn parse(text: &str) -> Option<Decimal> {
        let t = text.trim();
        let (negative, t) = match t.as_bytes().first()? {
            b'-' => (true, &t[1..]),
            b'+' => (false, &t[1..]),
            _ => (false, t),
        };
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(at) => (&t[..at], t[at + 1..].parse::<i64>().ok()?),
            None => (t, 0),
        };
        // Exponents this large are no timestamp: left to the f64 comparison.
        if exp.abs() > 1 << 40 {
            return None;
        }
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digit = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.len() + frac.len() == 0 || !digit(int) || !digit(frac) {
            return None;
        }
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        let lead = all.iter().take_while(|&&d| d == 0).count();
        let mut digits = all[lead..].to_vec();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits,
                exponent: 0,
            });
        }
        Some(Decimal {
            negative,
            digits,
            exponent: int.len() as i64 - lead as i64 + exp,
        })
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let sign = |d: &Decimal| match (d.digits.is_empty(), d.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let (a, b) = (sign(self), sign(other));
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        // Same sign, both non-zero: the larger exponent is the larger magnitude, then the digits.
        let magnitude = self
            .exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits));
        if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Column indexes beyond this are refused: no log has that many fields, and `index + 1` must
/// not overflow.
const MAX_COLUMN: usize = 1 << 16;

fn column(
    (option, spec): (&str, &str),
    header: Option<&[String]>,
    delim: Delimiter,
    path: &Path,
) -> Result<usize, DataError> {
    if let Ok(i) = spec.parse::<usize>() {
        if i > MAX_COLUMN {
            return Err(DataError::file(
                path,
                format!(
                    "{option} {i}: a column index is at most {MAX_COLUMN} (0 is the first field)"
                ),
            ));
        }
        return Ok(i);
    }
    let header = header.ok_or_else(|| {
        DataError::file(
            path,
            format!("column {spec:?} given by name but the file has no header"),
        )
    })?;
    header
        .iter()
        .position(|h| h.eq_ignore_ascii_case(spec))
        .ok_or_else(|| {
            DataError::line(
                path,
                delim.line,
                format!(
                    "no column named {spec:?} in the header {} (fields split at {delim})",
                    header.join(", ")
                ),
            )
        })
}

/// A CSV/TSV reader over `text` (ragged rows allowed, fields trimmed). Comma-separated files get
/// RFC 4180 quoting; tab-separated ones none (TSV does not quote, and a title starting with an
/// unmatched `"` would otherwise swallow the lines after it).
fn csv_reader(text: &str, delim: char) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delim as u8)
        .quoting(delim != '\t')
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

fn delimiter(
    cfg: Option<char>,
    (line, first_line): (usize, &str),
    path: &Path,
) -> Result<Delimiter, DataError> {
    let d = cfg.unwrap_or(if first_line.contains('\t') { '\t' } else { ',' });
    if !d.is_ascii() || d == '"' || d == '\n' || d == '\r' {
        return Err(DataError::file(
            path,
            format!("delimiter {d:?} must be one ASCII character other than a quote or newline"),
        ));
    }
    Ok(Delimiter {
        char: d,
        guessed: cfg.is_none(),
        line,
    })
}

/// A timestamp: any finite number (seconds, milliseconds, or a plain order).
fn timestamp(t: &str) -> Result<f64, String> {
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("timestamp {t:?} is not finite")),
        Err(_) => Err(format!("timestamp {t:?} is not a number")),
    }
}

/// Parses a raw log. Rows with missing fields or unparsable timestamps are skipped, each with its
/// line and reason.
pub fn ingest(
    text: &str,
    path: &Path,
    cfg: &IngestConfig,
    names: Option<&HashMap<String, (String, String)>>,
) -> Result<Ingested, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .ok_or_else(|| DataError::file(path, "file is empty"))?;
    let delim = delimiter(cfg.delimiter, first, path)?;
    let mut records = csv_reader(text, delim.char).into_records().peekable();
    let (cols, guessed_header) = columns(&mut records, cfg, delim, path)?;
    let log = read_rows(records, &cols, path)?;
    if log.rows.is_empty() {
        return Err(no_usable_row(path, &log.skipped, delim));
    }
    let repeated_rows = {
        let mut seen = std::collections::HashSet::new();
        log.rows
            .iter()
            .filter(|r| !seen.insert((r.user, r.item, r.exact.clone(), r.time.to_bits())))
            .count()
    };
    let before = log.rows.len();
    let rows = k_core(log.rows, log.users.len(), log.items.len(), cfg.k_core);
    let dropped_by_k_core = before - rows.len();
    if rows.is_empty() {
        return Err(DataError::file(
            path,
            format!("no interaction survives {}-core filtering", cfg.k_core),
        ));
    }
    let Remapped {
        user_map,
        item_map,
        sequences,
    } = remap(&rows, &log.users, &log.items);
    let cat = catalogue(&item_map, names);
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Ingested {
        dataset: Dataset {
            name,
            user_ids: (1..=user_map.len() as u32).collect(),
            sequences,
            n_items: item_map.len() as u32,
            catalogue: Some(cat),
        },
        user_map,
        item_map,
        rows: log.n_rows,
        skipped: log.skipped,
        dropped_by_k_core,
        repeated_rows,
        delimiter: delim,
        guessed_header,
    })
}

type Records<'a> = std::iter::Peekable<csv::StringRecordsIntoIter<&'a [u8]>>;

/// The 0-based columns of the user, item and timestamp.
struct Columns {
    user: usize,
    item: usize,
    time: usize,
}

/// Resolves the configured columns against the first record, and consumes that record if it is a
/// header; returns that header too when it was guessed from a timestamp that is not a number.
fn columns(
    records: &mut Records,
    cfg: &IngestConfig,
    delim: Delimiter,
    path: &Path,
) -> Result<(Columns, Option<Vec<String>>), DataError> {
    // Blank lines before the header or the first row are not the header.
    while records
        .next_if(|r| r.as_ref().is_ok_and(|r| r.iter().all(str::is_empty)))
        .is_some()
    {}
    let first_fields: Vec<String> = match records.peek() {
        Some(Ok(r)) => r.iter().map(str::to_string).collect(),
        Some(Err(e)) => return Err(DataError::line(path, delim.line, e.to_string())),
        None => return Err(DataError::file(path, "file is empty")),
    };
    // A header is present when a column is named, or the timestamp column of the first row is not
    // a number.
    let probe_time = cfg
        .time_col
        .parse::<usize>()
        .ok()
        .and_then(|i| first_fields.get(i));
    let named = cfg.user_col.parse::<usize>().is_err()
        || cfg.item_col.parse::<usize>().is_err()
        || cfg.time_col.parse::<usize>().is_err();
    let has_header = named || probe_time.is_some_and(|t| t.parse::<f64>().is_err());
    let header = has_header.then_some(first_fields.as_slice());
    let cols = Columns {
        user: column(("--user-col", &cfg.user_col), header, delim, path)?,
        item: column(("--item-col", &cfg.item_col), header, delim, path)?,
        time: column(("--time-col", &cfg.time_col), header, delim, path)?,
    };
    if cols.user == cols.item || cols.user == cols.time || cols.item == cols.time {
        return Err(DataError::file(
            path,
            format!(
                "the user, item and time columns must be three different columns (given: user {}, item {}, time {})",
                cfg.user_col, cfg.item_col, cfg.time_col
            ),
        ));
    }
    if has_header {
        records.next();
    }
    Ok((cols, (has_header && !named).then_some(first_fields)))
}

/// The usable rows of a log, with users and items numbered 0.. in order of first appearance.
struct RawLog {
    /// `users[i]` is the original id of user `i`.
    users: Vec<String>,
    items: Vec<String>,
    rows: Vec<Row>,
    skipped: Vec<Skip>,
    /// Data rows read, blank ones excepted.
    n_rows: usize,
}

/// Reads the data rows, skipping (with line and reason) those that cannot be used.
fn read_rows(records: Records, cols: &Columns, path: &Path) -> Result<RawLog, DataError> {
    let mut user_ids: HashMap<String, usize> = HashMap::new();
    let mut item_ids: HashMap<String, usize> = HashMap::new();
    let mut log = RawLog {
        users: Vec::new(),
        items: Vec::new(),
        rows: Vec::new(),
        skipped: Vec::new(),
        n_rows: 0,
    };
    for rec in records {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            // Invalid UTF-8 or a broken quote: the reader cannot resynchronise reliably.
            DataError::line(path, line, format!("cannot parse: {e}"))
        })?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        // A line break inside an id, or in a record too short to use, is a quote left open:
        // the reader has put everything up to the next quote (often the rest of the file) into
        // one field. Line breaks in other quoted columns (review text) are legitimate.
        let broken = |i: usize| rec.get(i).is_some_and(|f| f.contains(['\n', '\r']));
        let need = cols.user.max(cols.item).max(cols.time) + 1;
        let used = [cols.user, cols.item, cols.time]
            .into_iter()
            .find(|&i| broken(i));
        let short = (rec.len() < need).then(|| (0..rec.len()).find(|&i| broken(i)));
        if let Some(i) = used.or(short.flatten()) {
            return Err(open_quote(path, &rec, i));
        }
        log.n_rows += 1;
        let (u, it, time) = match fields(&rec, cols) {
            Ok(f) => f,
            Err(reason) => {
                log.skipped.push(Skip {
                    path: path.into(),
                    line: rec.position().map_or(0, |p| p.line() as usize),
                    reason,
                });
                continue;
            }
        };
        let user = intern(&mut user_ids, &mut log.users, u);
        let item = intern(&mut item_ids, &mut log.items, it);
        log.rows.push(Row {
            user,
            item,
            time,
            exact: Decimal::parse(&rec[cols.time]),
            order: log.rows.len(),
        });
    }
    Ok(log)
}

/// The error for field `i` of `rec`, a quoted field that runs over line breaks.
fn open_quote(path: &Path, rec: &csv::StringRecord, i: usize) -> DataError {
    let line = rec.position().map_or(0, |p| p.line() as usize);
    let lines = crate::dataset::split_lines(&rec[i]).len();
    DataError::line(
        path,
        line,
        format!(
            "field {} opens a quote (\") that runs over {lines} lines: close the quote; otherwise those lines are read as one field",
            i + 1
        ),
    )
}

/// The user id, item id and timestamp of a record, or why the record cannot be used.
fn fields<'r>(
    rec: &'r csv::StringRecord,
    cols: &Columns,
) -> Result<(&'r str, &'r str, f64), String> {
    let need = cols.user.max(cols.item).max(cols.time) + 1;
    if rec.len() < need {
        return Err(format!("{} field(s), expected at least {need}", rec.len()));
    }
    let (u, it) = (&rec[cols.user], &rec[cols.item]);
    if u.is_empty() || it.is_empty() {
        return Err("empty user or item id".into());
    }
    Ok((u, it, timestamp(&rec[cols.time])?))
}

/// The number of `key` in `names`, appending it if new.
fn intern(ids: &mut HashMap<String, usize>, names: &mut Vec<String>, key: &str) -> usize {
    *ids.entry(key.to_string()).or_insert_with(|| {
        names.push(key.to_string());
        names.len() - 1
    })
}

fn no_usable_row(path: &Path, skipped: &[Skip], delim: Delimiter) -> DataError {
    DataError::file(
        path,
        match skipped.first() {
            Some(first) => format!(
                "no usable row: all {} skipped, the first at line {}: {} (fields split at {delim})",
                skipped.len(),
                first.line,
                first.reason
            ),
            None => "no data row after the header".to_string(),
        },
    )
}

/// Sequences over 1-based ids, and the original id of each.
struct Remapped {
    user_map: Vec<String>,
    item_map: Vec<String>,
    sequences: Vec<Vec<u32>>,
}

/// Groups the rows per user in chronological order (ties keep file order) and renumbers users and
/// items from 1 in order of first appearance in those sequences, users without rows dropped.
fn remap(rows: &[Row], users: &[String], items: &[String]) -> Remapped {
    let mut per_user: Vec<Vec<&Row>> = (0..users.len()).map(|_| Vec::new()).collect();
    for r in rows {
        per_user[r.user].push(r);
    }
    let mut new_item: Vec<u32> = vec![0; items.len()];
    let mut out = Remapped {
        user_map: Vec::new(),
        item_map: Vec::new(),
        sequences: Vec::new(),
    };
    for (u, list) in per_user.iter_mut().enumerate() {
        if list.is_empty() {
            continue;
        }
        // Decimals compare exactly when every timestamp of the user's is one.
        if list.iter().all(|r| r.exact.is_some()) {
            list.sort_by(|a, b| a.exact.cmp(&b.exact).then(a.order.cmp(&b.order)));
        } else {
            list.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.order.cmp(&b.order)));
        }
        let seq: Vec<u32> = list
            .iter()
            .map(|r| {
                if new_item[r.item] == 0 {
                    out.item_map.push(items[r.item].clone());
                    new_item[r.item] = out.item_map.len() as u32;
                }
                new_item[r.item]
            })
            .collect();
        out.user_map.push(users[u].clone());
        out.sequences.push(seq);
    }
    out
}

/// Display names from `names` where given, else the original id.
fn catalogue(item_map: &[String], names: Option<&HashMap<String, (String, String)>>) -> Catalogue {
    let mut cat = Catalogue::with_items(item_map.len());
    for (i, orig) in item_map.iter().enumerate() {
        let (name, category) = names
            .and_then(|n| n.get(orig).cloned())
            .unwrap_or_else(|| (orig.clone(), String::new()));
        cat.names[i + 1] = name;
        cat.categories[i + 1] = category;
    }
    cat
}

/// Iterative k-core: drop users and items with fewer than k interactions until none is left.
fn k_core(mut rows: Vec<Row>, n_users: usize, n_items: usize, k: usize) -> Vec<Row> {
    if k <= 1 {
        return rows;
    }
    loop {
        let mut uc = vec![0usize; n_users];
        let mut ic = vec![0usize; n_items];
        for r in &rows {
            uc[r.user] += 1;
            ic[r.item] += 1;
        }
        let before = rows.len();
        rows.retain(|r| uc[r.user] >= k && ic[r.item] >= k);
        if rows.len() == before {
            return rows;
        }
    }
}

/// Reads an item catalogue for ingest: `item,name[,category]` keyed by the original item id
/// (CSV quoting, so names may hold the delimiter).
pub fn read_names(text: &str, path: &Path) -> Result<HashMap<String, (String, String)>, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty())
        .map_or((1, ""), |(i, l)| (i + 1, l));
    let delim = delimiter(None, first, path)?.char;
    let mut out = HashMap::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for rec in csv_reader(text, delim).into_records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            DataError::line(path, line, format!("cannot parse: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        // Names and categories are one line each (the catalogue is a TSV of lines).
        if let Some(i) = rec.iter().position(|f| f.contains(['\n', '\r'])) {
            return Err(open_quote(path, &rec, i));
        }
        let (Some(id), Some(name)) = (rec.get(0), rec.get(1)) else {
            return Err(DataError::line(
                path,
                line,
                format!(
                    "expected `item{d}name[{d}category]` (the separator is guessed from the first line: a tab if it has one, else a comma)",
                    d = if delim == '\t' { "<tab>" } else { "," }
                ),
            ));
        };
        let category = rec
            .iter()
            .skip(2)
            .collect::<Vec<_>>()
            .join(&delim.to_string());
        if let Some(first) = lines.insert(id.to_string(), line) {
            return Err(DataError::line(
                path,
                line,
                format!("item {id:?} is already named on line {first}"),
            ));
        }
        out.insert(id.to_string(), (name.to_string(), category));
    }
    Ok(out)
}

impl Ingested {
    /// Writes `OUT.txt`, `OUT.items.tsv` (catalogue) and `OUT.idmap.tsv` (new id -> original id).
    /// The files `save(out)` writes.
    pub fn outputs(&self, out: &Path) -> Vec<PathBuf> {
        let mut files = self.dataset.outputs(out);
        files.push(idmap_path(out));
        files
    }

    pub fn save(&self, out: &Path) -> Result<Vec<PathBuf>, DataError> {
        let mut map = String::from("kind\tid\toriginal\n");
        for (i, u) in self.user_map.iter().enumerate() {
            map.push_str(&format!("user\t{}\t{}\n", i + 1, tsv_escape(u)));
        }
        for (i, it) in self.item_map.iter().enumerate() {
            map.push_str(&format!("item\t{}\t{}\n", i + 1, tsv_escape(it)));
        }
        let mut files = self.dataset.files(out)?;
        files.push((idmap_path(out), map.into_bytes()));
        crate::dataset::write_all_or_none(&files)?;
        Ok(self.outputs(out))
    }
}

/// An original id as one TSV field: a backslash, tab, newline or carriage return inside it
/// (a quoted CSV field may hold them) is written as `\\`, `\t`, `\n` or `\r`, so every line of
/// the id map keeps its three columns.
fn tsv_escape(id: &str) -> std::borrow::Cow<'_, str> {
    if !id.contains(['\\', '\t', '\n', '\r']) {
        return id.into();
    }
    id.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .into()
}

/// `data/mine.txt` -> `data/mine.idmap.tsv`.
pub fn idmap_path(out: &Path) -> PathBuf {
    crate::dataset::sibling(out, "idmap.tsv")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> String {
        // Users a..f; item "rare" appears once and must fall to the 2-core, taking user f below 2.
        let mut s = String::from("user_id,item_id,timestamp\n");
        for (u, items) in [
            ("a", "x y z"),
            ("b", "y z x"),
            ("c", "z x y"),
            ("f", "rare x"),
        ] {
            for (t, it) in items.split(' ').enumerate() {
                // Written out of order: ingest must sort by time.
                s.push_str(&format!("{u},{it},{}\n", 100 - t));
            }
        }
        s
    }

    #[test]
    fn sorts_filters_and_remaps() {
        let cfg = IngestConfig {
            user_col: "user_id".into(),
            item_col: "item_id".into(),
            time_col: "timestamp".into(),
            k_core: 2,
            ..Default::default()
        };
        let ing = ingest(&log(), Path::new("log.csv"), &cfg, None).unwrap();
        // Timestamps decrease along each line, so the chronological order is reversed.
        assert_eq!(ing.user_map, vec!["a", "b", "c"]);
        assert_eq!(ing.item_map, vec!["z", "y", "x"]);
        assert_eq!(ing.dataset.sequences[0], vec![1, 2, 3]);
        assert_eq!(ing.dataset.sequences[1], vec![3, 1, 2]);
        assert_eq!(ing.dropped_by_k_core, 2);
        assert_eq!(ing.dataset.catalogue.as_ref().unwrap().names[1], "z");
    }

    /// Nanosecond timestamps differ below f64's resolution; rows newest first still come out
    /// oldest first. Exact repeats are counted.
    #[test]
    fn integer_timestamps_compare_exactly_and_repeats_are_counted() {
        let mut text = String::from("user,item,ts\n");
        for i in (0..5).rev() {
            text.push_str(&format!("u,i{i},{}\n", 1_700_000_000_000_000_000i64 + i));
        }
        text.push_str("u,i4,1700000000000000004\n");
        let cfg = IngestConfig {
            k_core: 0,
            ..Default::default()
        };
        let ing = ingest(&text, Path::new("ns.csv"), &cfg, None).unwrap();
        assert_eq!(ing.item_map, ["i0", "i1", "i2", "i3", "i4"]);
        assert_eq!(ing.dataset.sequences[0], [1, 2, 3, 4, 5, 5]);
        assert_eq!(ing.repeated_rows, 1);
    }

    /// Fractions past f64's digits and integers past 64 bits order exactly too.
    #[test]
    fn decimal_timestamps_compare_exactly() {
        let cfg = IngestConfig {
            k_core: 0,
            ..Default::default()
        };
        for stamps in [
            [
                "1700000000.000000001",
                "1700000000.000000002",
                "1700000000.000000003",
            ],
            [
                "18446744073709551617",
                "18446744073709551618",
                "1.8446744073709551619e19",
            ],
            [
                "-100000000000000000001",
                "-100000000000000000000",
                "-0.5e-30",
            ],
        ] {
            // Rows newest first: read in file order they would come out backwards.
            let mut text = String::from("user,item,ts\n");
            for (i, t) in stamps.iter().enumerate().rev() {
                text.push_str(&format!("u,i{i},{t}\n"));
            }
            let ing = ingest(&text, Path::new("t.csv"), &cfg, None).unwrap();
            assert_eq!(ing.item_map, ["i0", "i1", "i2"], "{stamps:?}");
        }
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(d("0.0"), d("-0"));
        assert_eq!(d("12.50"), d("1.25e1"));
        assert!(d("-2") < d("-1.5") && d("-1.5") < d("0") && d("0") < d(".001"));
        assert!(d("0.12") < d("0.125") && d("99") < d("100") && d("1e-3") < d("1e-2"));
        for bad in ["", "-", ".", "e5", "1e", "1.2.3", "0x10", "inf", "1_000"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    /// A first line taken as a header only because its timestamp is not a number is reported, so
    /// a data row there is not lost unseen; a header named by the columns is not.
    #[test]
    fn a_guessed_header_and_the_delimiter_are_reported() {
        let cfg = IngestConfig {
            k_core: 0,
            ..Default::default()
        };
        let text = "u1,i1,yesterday\nu1,i2,2\nu1,i3,3\n";
        let ing = ingest(text, Path::new("g.csv"), &cfg, None).unwrap();
        assert_eq!(
            ing.guessed_header.as_deref(),
            Some(&["u1".to_string(), "i1".into(), "yesterday".into()][..])
        );
        assert_eq!(ing.dataset.sequences[0].len(), 2);
        assert_eq!(
            ing.delimiter.to_string(),
            "',' (guessed from line 1; --delimiter sets it)"
        );
        let named = IngestConfig {
            user_col: "user".into(),
            ..cfg.clone()
        };
        let ing = ingest("user,1,2\nu,i,1\n", Path::new("n.csv"), &named, None).unwrap();
        assert_eq!(ing.guessed_header, None);
        // Semicolons read with the guessed comma: every row is one field, and the error says
        // how the lines were split.
        let e = ingest("u;i;1\nu;j;2\n", Path::new("semi.csv"), &cfg, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 field(s), expected at least 3 (fields split at ',' (guessed from line 1; --delimiter sets it))"),
            "{e}"
        );
        let semi = IngestConfig {
            user_col: "user".into(),
            delimiter: Some(';'),
            ..cfg.clone()
        };
        let e = ingest("uid;item;ts\n", Path::new("semi.csv"), &semi, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "no column named \"user\" in the header uid, item, ts (fields split at ';')"
            ),
            "{e}"
        );
        // Blank lines before the header: the header is the first line with text, named by its
        // line.
        let named = IngestConfig {
            user_col: "user".into(),
            item_col: "item".into(),
            time_col: "ts".into(),
            ..cfg.clone()
        };
        let ing = ingest(
            "   \n\nuser\titem\tts\nu\ti\t1\n",
            Path::new("lead.tsv"),
            &named,
            None,
        )
        .unwrap();
        assert_eq!(ing.dataset.sequences, [[1]]);
        assert_eq!(ing.delimiter.char, '\t');
        let e = ingest("  \nuid,item,ts\n", Path::new("lead.csv"), &named, None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("lead.csv:2: no column named \"user\""), "{e}");
        assert!(e.contains("guessed from line 2"), "{e}");
        // A column index past any line's fields is refused by option, never wrapped around.
        for (user_col, option) in [
            (usize::MAX.to_string(), "--user-col"),
            ("70000".into(), "--user-col"),
        ] {
            let huge = IngestConfig {
                user_col,
                ..cfg.clone()
            };
            let e = ingest("u,i,1\n", Path::new("h.csv"), &huge, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(option) && e.contains("at most 65536"), "{e}");
        }
        let time = IngestConfig {
            time_col: usize::MAX.to_string(),
            ..cfg
        };
        let e = ingest("u,i,1\n", Path::new("h.csv"), &time, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--time-col"), "{e}");
    }

    #[test]
    fn bad_rows_are_reported_with_line() {
        let text = "u1\ti1\t5\nu1\ti2\tnoon\nu1\n";
        let cfg = IngestConfig {
            k_core: 0,
            ..Default::default()
        };
        let ing = ingest(text, Path::new("l.tsv"), &cfg, None).unwrap();
        assert_eq!(ing.skipped.len(), 2);
        assert_eq!(ing.skipped[0].line, 2);
        assert!(ing.skipped[0].reason.contains("noon"));
        assert!(ing.skipped[1].to_string().contains("l.tsv:3"));
        assert!(ingest("", Path::new("e.csv"), &cfg, None).is_err());
        let err = ingest(
            "user,item,ts\n",
            Path::new("h.csv"),
            &IngestConfig {
                user_col: "uid".into(),
                ..cfg
            },
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("uid"), "{err}");
    }

    #[test]
    fn a_quote_left_open_is_an_error_not_a_lost_file() {
        let cfg = IngestConfig {
            user_col: "user".into(),
            item_col: "item".into(),
            time_col: "ts".into(),
            k_core: 1,
            ..Default::default()
        };
        let p = Path::new("q.csv");
        let open = "user,item,ts\nu1,a,1\nu1,\"b,2\nu1,c,3\nu2,a,4\nu2,b,5\n";
        let err = ingest(open, p, &cfg, None).unwrap_err().to_string();
        assert!(err.contains("q.csv:3") && err.contains("quote"), "{err}");
        // A line break in a column ingest does not use is legitimate (review text).
        let text = "user,item,ts,review\nu1,a,1,\"good\nmug\"\nu1,b,2,ok\nu2,a,3,\"\"\nu2,b,4,x\n";
        let ing = ingest(text, p, &cfg, None).unwrap();
        assert_eq!(ing.dataset.stats().interactions, 4);
        let err = read_names("x,\"Blue Mug\ny,Red Mug\n", Path::new("n.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("n.csv:1") && err.contains("quote"), "{err}");
    }

    #[test]
    fn id_map_fields_keep_three_columns() {
        assert_eq!(tsv_escape("plain id"), "plain id");
        assert_eq!(tsv_escape("a\tb\nc\\d\re"), "a\\tb\\nc\\\\d\\re");
        let text = "user,item,ts\n".to_string()
            + &(0..3)
                .flat_map(|u| (0..3).map(move |k| format!("u{u},\"it{k}\tX\",{k}\n")))
                .collect::<String>();
        let cfg = IngestConfig {
            user_col: "user".into(),
            item_col: "item".into(),
            time_col: "ts".into(),
            k_core: 1,
            ..Default::default()
        };
        let ing = ingest(&text, Path::new("tab.csv"), &cfg, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tab.txt");
        ing.save(&out).unwrap();
        let map = std::fs::read_to_string(idmap_path(&out)).unwrap();
        assert!(map.lines().all(|l| l.split('\t').count() == 3), "{map}");
        assert!(map.contains("it0\\tX"), "{map}");
    }

    #[test]
    fn names_and_saved_maps() {
        let names = read_names("x,Blue Mug,Kitchen\ny,Red Mug\n", Path::new("n.csv")).unwrap();
        let cfg = IngestConfig {
            user_col: "user_id".into(),
            item_col: "item_id".into(),
            time_col: "timestamp".into(),
            k_core: 2,
            ..Default::default()
        };
        let ing = ingest(&log(), Path::new("log.csv"), &cfg, Some(&names)).unwrap();
        let cat = ing.dataset.catalogue.clone().unwrap();
        assert_eq!(cat.names[3], "Blue Mug");
        assert_eq!(cat.categories[3], "Kitchen");
        let dir = std::env::temp_dir().join(format!("ssi-ingest-{}", std::process::id()));
        let files = ing.save(&dir.join("shop.txt")).unwrap();
        let map = std::fs::read_to_string(&files[2]).unwrap();
        assert!(map.contains("item\t3\tx"));
        let (back, _) = Dataset::load(&files[0]).unwrap();
        assert_eq!(back.item_name(3), "Blue Mug");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn quoted_fields_keep_their_delimiters() {
        let text = "user,item,ts\n\
                    a,\"Book, vol 1\",1\n\
                    a,\"Book, vol 2\",2\n\
                    b,\"Book, vol 1\",3\n\
                    b,\"Say \"\"hi\"\"\",4\n";
        let cfg = IngestConfig {
            k_core: 0,
            ..Default::default()
        };
        let ing = ingest(text, Path::new("q.csv"), &cfg, None).unwrap();
        assert_eq!(
            ing.item_map,
            vec!["Book, vol 1", "Book, vol 2", "Say \"hi\""]
        );
        assert!(ing.skipped.is_empty(), "{:?}", ing.skipped);
        let names = read_names("x,\"Mug, blue\",Kitchen\n", Path::new("n.csv")).unwrap();
        assert_eq!(names["x"].0, "Mug, blue");
        let err = read_names("x,Mug\ny,Cup\nx,Bowl\n", Path::new("n.csv")).unwrap_err();
        assert!(
            err.to_string().contains("n.csv:3") && err.to_string().contains("line 1"),
            "{err}"
        );
    }

    #[test]
    fn non_finite_timestamps_and_byte_order_marks() {
        let cfg = IngestConfig {
            k_core: 0,
            ..Default::default()
        };
        let text = "\u{feff}1,x,5\n1,y,NaN\n1,z,inf\n1,w,-infinity\n";
        let ing = ingest(text, Path::new("t.csv"), &cfg, None).unwrap();
        assert_eq!(ing.user_map, vec!["1"], "the BOM is not part of the id");
        assert_eq!(ing.skipped.len(), 3);
        assert!(ing.skipped.iter().all(|s| s.reason.contains("not finite")));
        let err = ingest("u,i,t\n1,x,noon\n", Path::new("n.csv"), &cfg, None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("line 2") && msg.contains("noon"),
            "the reason of the skipped rows is named: {msg}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the bytes, ingest returns a dataset or an error naming the file; never panics.
        #[test]
        fn ingest_never_panics(text in "[a-c0-9,\t\"\n .eE+-]{0,200}", k in 0usize..4) {
            let cfg = IngestConfig { k_core: k, ..Default::default() };
            match ingest(&text, Path::new("p.csv"), &cfg, None) {
                Ok(ing) => {
                    let d = &ing.dataset;
                    proptest::prop_assert_eq!(d.sequences.len(), ing.user_map.len());
                    proptest::prop_assert!(d.sequences.iter().flatten().all(|&i| i >= 1 && i <= d.n_items));
                }
                Err(e) => proptest::prop_assert!(e.to_string().contains("p.csv")),
            }
            let _ = read_names(&text, Path::new("n.csv"));
        }

        /// Ingested ids round-trip: every row's (user, item) appears in the output, in time order.
        #[test]
        fn ingest_round_trips(rows in proptest::collection::vec((0u8..5, 0u8..8, 0u32..1000), 1..60)) {
            let mut text = String::from("user,item,ts\n");
            for (u, i, t) in &rows {
                text.push_str(&format!("\"u {u}\",\"item, {i}\",{t}\n"));
            }
            let cfg = IngestConfig { user_col: "user".into(), item_col: "item".into(), time_col: "ts".into(), k_core: 0, delimiter: None };
            let ing = ingest(&text, Path::new("r.csv"), &cfg, None).unwrap();
            proptest::prop_assert_eq!(ing.rows, rows.len());
            for (uid, seq) in ing.user_map.iter().zip(&ing.dataset.sequences) {
                let mut want: Vec<_> = rows.iter().enumerate().filter(|(_, r)| format!("u {}", r.0) == *uid).collect();
                want.sort_by_key(|(k, r)| (r.2, *k));
                let got: Vec<String> = seq.iter().map(|&i| ing.item_map[i as usize - 1].clone()).collect();
                let want: Vec<String> = want.iter().map(|(_, r)| format!("item, {}", r.1)).collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
