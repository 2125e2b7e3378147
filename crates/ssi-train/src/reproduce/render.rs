//! The files `reproduce` writes, as text: Tables 2 and 3 and the figures in Markdown and CSV,
//! and the figures' bar charts in SVG. Nothing here reads or writes a file.

use super::paper::{METRICS, PAPER_TABLE3};
use serde_json::Value;

/// The finished result of a stage: its test metrics (`test.json`) and training minutes.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub metrics: Value,
    pub minutes: Option<f64>,
}

/// A rendered table: its Markdown and its CSV.
pub struct Table {
    pub markdown: String,
    pub csv: String,
}

/// Table 2 on `name`: our rows beside the paper's, then the paper's rows we did not run.
pub fn table2(name: &str, rows: &[Row], paper: &[(String, Vec<f64>)], note: &str) -> Table {
    let mut md = format!(
        "# Table 2 on {name}: ours (paper, difference)\n\nSampled protocol (99 negatives), test split, one evaluation sample for every model. \
         Minutes: training wall-clock of the run. Rows without a paper value are not in the paper's table.{note}\n\n| model | {} | minutes |\n|---|{}---|\n",
        METRICS
            .map(|m| m.replace("recall", "Recall").replace("ndcg", "NDCG"))
            .join(" | "),
        "---|".repeat(METRICS.len())
    );
    let mut csv = String::from("dataset,model,metric,ours,paper,difference,minutes\n");
    let mut labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    // Models of the paper's table that this pipeline does not run yet.
    for (label, _) in paper {
        if !labels.contains(&label.as_str()) {
            labels.push(label);
        }
    }
    for label in labels {
        let row = rows.iter().find(|r| r.label == label);
        let p = paper.iter().find(|(l, _)| l == label).map(|(_, v)| v);
        let minutes = row
            .and_then(|r| r.minutes)
            .map(|m| format!("{m:.1}"))
            .unwrap_or_default();
        let mut cells = Vec::new();
        for (i, m) in METRICS.iter().enumerate() {
            let ours = row.and_then(|r| r.metrics[*m].as_f64());
            let theirs = p.and_then(|v| v.get(i).copied());
            cells.push(table2_cell(ours, theirs));
            csv.push_str(&format!(
                "{},{},{m},{},{},{},{minutes}\n",
                csv_field(name),
                csv_field(label),
                ours.map(|v| format!("{v:.4}")).unwrap_or_default(),
                theirs.map(|v| format!("{v:.3}")).unwrap_or_default(),
                ours.zip(theirs)
                    .map(|(o, t)| format!("{:.4}", o - t))
                    .unwrap_or_default()
            ));
        }
        md.push_str(&format!(
            "| {label} | {} | {minutes} |\n",
            cells.join(" | ")
        ));
    }
    // The sample is the same for every row, so is its shortfall: the largest is said once.
    let short = |r: &Row| r.metrics["users_short_of_negatives"].as_u64().unwrap_or(0);
    if let Some(r) = rows
        .iter()
        .max_by_key(|r| short(r))
        .filter(|r| short(r) > 0)
    {
        md.push_str(&format!(
            "\nWarning: {} of {} users had fewer than {} items outside their history; their sampled ranks are against fewer candidates, which inflates the sampled metrics.\n",
            short(r),
            r.metrics["users"],
            r.metrics["negatives"]
        ));
    }
    Table { markdown: md, csv }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn table2_cell(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(o), Some(t)) => format!("{o:.4} ({t:.3}, {:+.3})", o - t),
        (Some(o), None) => format!("{o:.4}"),
        (None, Some(t)) => format!("not run ({t:.3})"),
        (None, None) => "-".into(),
    }
}

/// Table 3: each variant's metrics (label, test metrics; None when not trained) beside the
/// paper's Beauty values (sampled only: the paper has no full-ranking figures).
pub fn table3(rows: &[(String, Option<Value>)]) -> Table {
    let mut md = String::from(
        "# Table 3: effect of the imitation terms (ours; paper's Beauty values in brackets)\n\n| variant | Recall@10 | NDCG@10 | full Recall@10 | full NDCG@10 |\n|---|---|---|---|---|\n",
    );
    let mut csv = String::from(
        "variant,recall@10,ndcg@10,full_recall@10,full_ndcg@10,paper_recall@10,paper_ndcg@10\n",
    );
    for (label, m) in rows {
        let p = PAPER_TABLE3.iter().find(|p| p.0 == label);
        let metric = |k: &str| m.as_ref().and_then(|m| m[k].as_f64());
        let [r, n, fr, fnd] =
            ["recall@10", "ndcg@10", "full_recall@10", "full_ndcg@10"].map(metric);
        let md_cell = |v: Option<f64>| v.map_or("not trained".into(), |v| format!("{v:.4}"));
        // A run evaluated without full ranking has sampled figures only.
        let md_full = |v: Option<f64>| match (v, m) {
            (Some(v), _) => format!("{v:.4}"),
            (None, Some(_)) => "-".into(),
            (None, None) => "not trained".into(),
        };
        let csv_cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        md.push_str(&format!(
            "| {label} | {}{} | {}{} | {} | {} |\n",
            md_cell(r),
            p.map(|p| format!(" ({:.3})", p.1)).unwrap_or_default(),
            md_cell(n),
            p.map(|p| format!(" ({:.3})", p.2)).unwrap_or_default(),
            md_full(fr),
            md_full(fnd)
        ));
        csv.push_str(&format!(
            "{label},{},{},{},{},{},{}\n",
            csv_cell(r),
            csv_cell(n),
            csv_cell(fr),
            csv_cell(fnd),
            p.map(|p| p.1.to_string()).unwrap_or_default(),
            p.map(|p| p.2.to_string()).unwrap_or_default()
        ));
    }
    Table { markdown: md, csv }
}

/// A figure: one group of bars per category, one bar per series, by both protocols.
pub struct Figure {
    /// File name without extension (`figure3`).
    pub stem: &'static str,
    pub title: String,
    pub categories: Vec<String>,
    /// NDCG@10 against 99 sampled negatives: one value per category; None where its run was not
    /// trained.
    pub series: Vec<(String, Vec<Option<f64>>)>,
    /// The same series ranked against all items (None where a run has no full-ranking figure).
    pub full: Vec<(String, Vec<Option<f64>>)>,
}

impl Figure {
    /// The figure's values as a table; the Markdown shows the chart `STEM.svg` beside it.
    pub fn table(&self) -> Table {
        let (title, cats) = (&self.title, &self.categories);
        let mut md = format!(
            "# {title}\n\n| | {} |\n|---|{}\n",
            cats.join(" | "),
            "---|".repeat(cats.len())
        );
        let mut csv = format!("series,{}\n", cats.join(","));
        // A run not trained has no figure; a trained one may lack only the full-ranking one.
        let rows = (self
            .series
            .iter()
            .map(|(n, v)| (n.clone(), v, "not trained")))
        .chain(
            self.full
                .iter()
                .map(|(n, v)| (format!("{n}, full ranking"), v, "-")),
        );
        for (name, vals, none) in rows {
            let cell = |x: &Option<f64>, none: &str| x.map_or(none.into(), |x| format!("{x:.4}"));
            let m: Vec<String> = vals.iter().map(|x| cell(x, none)).collect();
            let c: Vec<String> = vals.iter().map(|x| cell(x, "")).collect();
            md.push_str(&format!("| {name} | {} |\n", m.join(" | ")));
            csv.push_str(&format!("{name},{}\n", c.join(",")));
        }
        md.push_str(&format!("\n![{title}]({}.svg)\n", self.stem));
        Table { markdown: md, csv }
    }

    /// The sampled chart, and beside it the full-ranking one where any run has full figures
    /// (their scales differ tenfold: one axis would flatten the full-ranking bars).
    pub fn svg(&self) -> String {
        let sampled = bar_chart(
            &format!("{}, 99 sampled negatives", self.title),
            &self.categories,
            &self.series,
        );
        if !self.full.iter().any(|(_, v)| v.iter().any(Option::is_some)) {
            return sampled;
        }
        let full = bar_chart(
            &format!("{}, all items", self.title),
            &self.categories,
            &self.full,
        );
        side_by_side(&sampled, &full)
    }
}

/// Two charts of [`bar_chart`]'s size in one SVG, left and right.
fn side_by_side(left: &str, right: &str) -> String {
    let place = |svg: &str, x: u32| svg.replacen("<svg ", &format!("<svg x=\"{x}\" "), 1);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{BAR_H}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}{}</svg>\n",
        2 * BAR_W,
        place(left, 0),
        place(right, BAR_W)
    )
}

const BAR_W: u32 = 640;
const BAR_H: u32 = 360;

/// A grouped bar chart as SVG: one group per category, one bar per series; a missing value
/// is marked "not trained" where its bar would be.
pub fn bar_chart(title: &str, cats: &[String], series: &[(String, Vec<Option<f64>>)]) -> String {
    const COLORS: [&str; 4] = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"];
    let (w, h, left, bottom, top) = (BAR_W as f64, BAR_H as f64, 50.0, 50.0, 40.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let plot_h = h - bottom - top;
    let group_w = (w - left - 10.0) / cats.len().max(1) as f64;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        esc(title)
    );
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - bottom,
        w - 10.0,
        h - bottom
    ));
    for (si, (name, vals)) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        for (ci, v) in vals.iter().enumerate() {
            let x = left + ci as f64 * group_w + group_w * 0.1 + si as f64 * bar_w;
            let Some(v) = v else {
                svg.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" fill=\"gray\">not trained</text>\n",
                    x + bar_w / 2.0,
                    h - bottom - 4.0
                ));
                continue;
            };
            let bh = v / max * plot_h;
            let y = h - bottom - bh;
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{v:.3}</text>\n",
                bar_w * 0.95,
                x + bar_w / 2.0,
                y - 3.0
            ));
        }
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            left + 10.0 + si as f64 * 120.0,
            h - 18.0,
            left + 24.0 + si as f64 * 120.0,
            h - 9.0,
            esc(name)
        ));
    }
    for (ci, c) in cats.iter().enumerate() {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            left + ci as f64 * group_w + group_w / 2.0,
            h - bottom + 16.0,
            esc(c)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// A line chart as SVG: one polyline per series of (x, y) points, with axes, five ticks per axis
/// and a legend.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    const COLORS: [&str; 6] = [
        "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
    ];
    let legend_h = 16.0 * series.len() as f64;
    let (w, left, right, top, bottom) = (640.0, 60.0, 15.0, 40.0, 45.0 + legend_h);
    let h = 320.0 + legend_h;
    let points = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let range = |f: fn((f64, f64)) -> f64| {
        let (lo, hi) = points()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi - lo < 1e-9 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    };
    let (x0, x1) = range(|p| p.0);
    let (y0, y1) = range(|p| p.1);
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| top + (y1 - y) / (y1 - y0) * ph;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"black\"/>\n",
        w / 2.0,
        esc(title)
    );
    for i in 0..=4 {
        let (xv, yv) = (
            x0 + (x1 - x0) * i as f64 / 4.0,
            y0 + (y1 - y0) * i as f64 / 4.0,
        );
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{yv:.3}</text>\n<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n",
            sx(xv),
            top + ph + 16.0,
            format!("{xv:.1}").trim_end_matches(".0"),
            left - 4.0,
            sy(yv) + 4.0,
            sy(yv),
            left + pw,
            sy(yv),
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n<text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">{}</text>\n",
        left + pw / 2.0,
        top + ph + 32.0,
        esc(x_label),
        top + ph / 2.0,
        top + ph / 2.0,
        esc(y_label)
    ));
    for (si, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let ly = top + ph + 48.0 + 16.0 * si as f64;
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>\n<line x1=\"{left}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            path.join(" "),
            left + 20.0,
            left + 26.0,
            ly + 4.0,
            esc(name)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_chart_is_wellformed_svg() {
        let svg = line_chart(
            "curves",
            "epoch",
            "NDCG@10",
            &[
                ("a < b".into(), vec![(1.0, 0.2), (2.0, 0.3)]),
                ("c".into(), vec![(1.0, 0.25)]),
            ],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn chart_is_wellformed_svg() {
        let svg = bar_chart(
            "a < b",
            &["x".into(), "y".into()],
            &[("s".into(), vec![Some(0.1), None])],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // A run not trained has no bar (not a bar of height 0) and says so.
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(
            svg.contains("not trained") && svg.contains("0.100"),
            "{svg}"
        );
        assert!(svg.contains("a &lt; b"));
    }

    #[test]
    fn figures_and_table3_show_both_protocols() {
        let mut f = Figure {
            stem: "figure3",
            title: "Figure 3".into(),
            categories: vec!["HGN".into(), "SSI".into()],
            series: vec![("NDCG@10".into(), vec![Some(0.31), None])],
            full: vec![("NDCG@10".into(), vec![Some(0.043), None])],
        };
        let svg = f.svg();
        // Two charts side by side in one document, each with its own scale.
        assert!(crate::report::is_our_chart(svg.as_bytes()), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg ").count(), 3, "{svg}");
        assert!(
            svg.contains("<svg x=\"640\" ") && svg.contains("0.043"),
            "{svg}"
        );
        assert!(svg.contains("all items") && svg.contains("99 sampled negatives"));
        let t = f.table();
        assert!(
            t.markdown
                .contains("| NDCG@10, full ranking | 0.0430 | - |"),
            "{}",
            t.markdown
        );
        assert!(t.markdown.contains("| NDCG@10 | 0.3100 | not trained |"));
        assert!(
            t.csv.contains("NDCG@10, full ranking,0.0430,\n"),
            "{}",
            t.csv
        );
        // Runs without full-ranking figures: one chart, as before.
        f.full[0].1 = vec![None, None];
        assert_eq!(f.svg().matches("<svg ").count(), 1);

        let metrics = serde_json::json!({
            "recall@10": 0.5, "ndcg@10": 0.3, "full_recall@10": 0.08, "full_ndcg@10": 0.045
        });
        let sampled_only = serde_json::json!({"recall@10": 0.4, "ndcg@10": 0.2});
        let t = table3(&[
            (PAPER_TABLE3[0].0.to_string(), Some(metrics)),
            ("old".into(), Some(sampled_only)),
            (PAPER_TABLE3[3].0.to_string(), None),
        ]);
        assert!(t.markdown.contains("| 0.0800 | 0.0450 |"), "{}", t.markdown);
        assert!(t.markdown.contains("| old | 0.4000 | 0.2000 | - | - |"));
        assert!(t.markdown.contains("| not trained | not trained |\n"));
        assert!(
            t.csv
                .lines()
                .nth(1)
                .unwrap()
                .contains(",0.5000,0.3000,0.0800,0.0450,"),
            "{}",
            t.csv
        );
    }

    #[test]
    fn table2_marks_rows_not_run() {
        let rows = [Row {
            label: "SSI".into(),
            metrics: serde_json::json!({"ndcg@10": 0.3}),
            minutes: Some(2.0),
        }];
        let paper = vec![
            ("SSI".to_string(), vec![0.0, 0.0, 0.0, 0.329]),
            ("HGN".to_string(), vec![0.0, 0.0, 0.0, 0.3]),
        ];
        let t = table2("beauty", &rows, &paper, "");
        let ssi = "| SSI | not run (0.000) | not run (0.000) | not run (0.000) | \
                   0.3000 (0.329, -0.029) | - | - | - | - | 2.0 |\n";
        assert!(t.markdown.contains(ssi), "{}", t.markdown);
        assert!(t.markdown.contains("| HGN | not run (0.000)"));
        assert!(
            t.csv
                .contains("beauty,SSI,ndcg@10,0.3000,0.329,-0.0290,2.0\n")
        );
        // A label or dataset name with a comma stays one field.
        let rows = [Row {
            label: "SSI-HGN (teachers: a, b)".into(),
            ..rows[0].clone()
        }];
        let t = table2("my, shop", &rows, &[], "");
        let line = t.csv.lines().find(|l| l.contains("ndcg@10")).unwrap();
        assert!(
            line.starts_with("\"my, shop\",\"SSI-HGN (teachers: a, b)\",ndcg@10,"),
            "{line}"
        );
        assert!(!t.markdown.contains("Warning"));
    }

    #[test]
    fn table2_says_when_users_were_short_of_negatives() {
        let row = |short: u64| Row {
            label: format!("M{short}"),
            metrics: serde_json::json!({"ndcg@10": 0.3, "users": 60, "negatives": 99,
                "users_short_of_negatives": short}),
            minutes: None,
        };
        let t = table2("shop", &[row(0), row(60)], &[], "");
        assert!(
            t.markdown
                .contains("Warning: 60 of 60 users had fewer than 99 items outside"),
            "{}",
            t.markdown
        );
        assert!(
            !table2("shop", &[row(0)], &[], "")
                .markdown
                .contains("Warning")
        );
    }
}
