//! End-to-end tests of the `ssi` binary, run as a user would run it. Tests that need the paper's
//! datasets read them from `../shared/data/` and skip with a message when it is absent.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Settings of a run that only has to finish: a small model, two steps, one epoch.
const TINY_RUN: [&str; 6] = [
    "--set",
    "hidden=16",
    "--set",
    "max_steps_per_epoch=2",
    "--epochs",
    "1",
];

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssi"));
    c.args(args);
    c
}

fn ssi(args: &[&str]) -> Output {
    cmd(args).output().expect("ssi runs")
}

/// A succeeding command's standard output.
fn ok(args: &[&str]) -> String {
    let out = cmd(args).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// A failing command: exit code 1, a message naming `needle`, and no panic.
fn fails(args: &[&str], needle: &str) {
    cmd(args)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(needle).and(predicate::str::contains("panicked").not()));
}

fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

/// Writes a synthetic shop with `users` users and `categories` categories into `dir`.
fn synth(dir: &std::path::Path, users: usize, categories: usize) -> PathBuf {
    let data = dir.join("shop.txt");
    let (u, c) = (users.to_string(), categories.to_string());
    ok(&[
        "data",
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--users",
        &u,
        "--categories",
        &c,
    ]);
    data
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).expect("one JSON object")
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["quickstart", "--help"],
        vec!["eval", "--help"],
        vec!["data", "--help"],
        vec!["data", "synth", "--help"],
        vec!["data", "stats", "--help"],
        vec!["data", "ingest", "--help"],
        vec!["data", "fetch", "--help"],
        vec!["train", "--help"],
        vec!["pretrain", "--help"],
        vec!["distill", "--help"],
    ] {
        assert!(ok(&args).contains("Usage"), "{args:?}");
    }
    // Every model is named where a user chooses one.
    let help = ok(&["train", "--help"]);
    for id in ["sasrec", "bert4rec", "gru4rec", "hgn", "s3rec", "grec"] {
        assert!(help.contains(id), "train --help does not name {id}: {help}");
    }
}

#[test]
fn beauty_stats_match_table_1() {
    let Some(p) = shared("beauty.txt") else {
        return;
    };
    let st = json(&ok(&["data", "stats", p.to_str().unwrap(), "--json"]));
    assert_eq!(st["users"], 22363);
    assert_eq!(st["max_item_id"], 12101);
    assert_eq!(st["interactions"], 198502);
}

#[test]
fn mostpop_on_beauty_matches_the_paper() {
    let Some(p) = shared("beauty.txt") else {
        return;
    };
    let r = json(&ok(&[
        "eval",
        "--model",
        "mostpop",
        "--data",
        p.to_str().unwrap(),
        "--json",
    ]));
    let (recall, ndcg) = (
        r["recall@10"].as_f64().unwrap(),
        r["ndcg@10"].as_f64().unwrap(),
    );
    assert!((0.27..=0.33).contains(&recall), "recall@10 {recall}");
    assert!((0.13..=0.18).contains(&ndcg), "ndcg@10 {ndcg}");
    let full = r["full_ndcg@10"].as_f64().unwrap();
    assert!(full > 0.0 && full < ndcg, "full_ndcg@10 {full}");
    assert!(r["full_recall@10"].as_f64().is_some());
    assert_eq!(r["users"], 22363);
}

#[test]
fn synthetic_shop_round_trip_and_markov_beats_mostpop() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.txt");
    let f = file.to_str().unwrap();
    ok(&["data", "synth", "--out", f, "--users", "800", "--seed", "3"]);
    assert!(dir.path().join("shop.items.tsv").exists());
    let st = json(&ok(&["data", "stats", f, "--json"]));
    assert_eq!(st["users"], 800);
    let pop = json(&ok(&["eval", "--model", "mostpop", "--data", f, "--json"]));
    let markov = json(&ok(&["eval", "--model", "markov", "--data", f, "--json"]));
    let (p, m) = (
        pop["ndcg@10"].as_f64().unwrap(),
        markov["ndcg@10"].as_f64().unwrap(),
    );
    assert!(m > p + 0.1, "markov {m} vs mostpop {p}");
    // A device the count models do not use is said, not silently ignored.
    cmd(&[
        "eval", "--model", "mostpop", "--data", f, "--device", "wgpu", "--json",
    ])
    .assert()
    .success()
    .stderr(predicate::str::contains("--device wgpu is not used"));
    // Markov reads only the last item: cut to it, the history changes nothing (cut from the
    // wrong end, everything).
    let last = json(&ok(&[
        "eval",
        "--model",
        "markov",
        "--data",
        f,
        "--history",
        "1",
        "--json",
    ]));
    assert_eq!(last["history"], 1);
    for k in ["ndcg@10", "full_ndcg@10", "recall@20"] {
        assert_eq!(last[k], markov[k], "{k}");
    }
    // The same seed gives the same evaluation, run after run.
    assert_eq!(
        pop,
        json(&ok(&["eval", "--model", "mostpop", "--data", f, "--json"]))
    );
}

#[test]
fn quickstart_runs_without_files() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("qs");
    let r = runs.to_str().unwrap();
    let out = ok(&["quickstart", "--epochs", "1", "--out", r]);
    assert!(out.contains("7 runs x 1 epoch,"), "{out}");
    for row in [
        "MostPop",
        "Markov chain",
        "teacher (temporal)",
        "teacher (persona)",
        "teacher (global)",
        "BERT4Rec",
        "HGN alone",
        "HGN continued",
        "SSI-HGN",
        "full NDCG@10",
        "Next (",
    ] {
        assert!(out.contains(row), "{row} missing from {out}");
    }
    // The printed table is kept beside the runs, both protocols and the count models with it.
    let summary = std::fs::read_to_string(runs.join("summary.md")).unwrap();
    for row in [
        "# Quickstart on synthetic-shop",
        "| Markov chain |",
        "| SSI-HGN |",
        "full NDCG@10",
    ] {
        assert!(summary.contains(row), "{row} missing from {summary}");
    }
    // Warm starts: the teachers continue the BERT4Rec run, SSI and the reference the HGN run.
    let init = |run: &str| {
        let cfg = json(&std::fs::read_to_string(runs.join(run).join("config.json")).unwrap());
        cfg["init_from"].as_str().unwrap_or_default().to_string()
    };
    assert!(init("teacher-persona").ends_with("bert4rec"));
    assert!(init("ssi-hgn").ends_with("hgn") && init("hgn-continued").ends_with("hgn"));
    assert_eq!(init("hgn"), "");
    // The same folder and settings without --warm-start would mix warm and cold runs in one
    // table: refused.
    fails(
        &[
            "reproduce",
            "--out",
            r,
            "--baselines",
            "--students",
            "hgn",
            "--set",
            "batch_size=64",
            "--set",
            "epochs=1",
        ],
        "teacher-temporal was trained from another run (--warm-start or --preset best), and this command asks for teachers from scratch",
    );
    let bundle = runs.join("bundle").join("bundle.ssib");
    assert!(bundle.exists(), "{out}");
    // The bundle predicts; a second run reads the finished models back instead of training.
    let top = ok(&[
        "predict",
        "--bundle",
        bundle.to_str().unwrap(),
        "--history",
        "1, 2",
    ]);
    assert!(top.lines().count() >= 10, "{top}");
    // Ids outside the catalogue are left out, and the JSON says which.
    let j = json(&ok(&[
        "predict",
        "--bundle",
        bundle.to_str().unwrap(),
        "--history",
        "1,2,9999",
        "--json",
    ]));
    assert_eq!(j["history"], serde_json::json!([1, 2]), "{j}");
    assert_eq!(j["ignored"], serde_json::json!([9999]), "{j}");
    cmd(&[
        "predict",
        "--bundle",
        bundle.to_str().unwrap(),
        "--history",
        "1,x",
    ])
    .assert()
    .failure()
    .stderr(predicate::str::contains("`x` is not an item id"));
    // A history holding the whole catalogue leaves nothing to recommend, and says so.
    let everything: Vec<String> = (1..=480).map(|i| i.to_string()).collect();
    cmd(&[
        "predict",
        "--bundle",
        bundle.to_str().unwrap(),
        "--history",
        &everything.join(","),
    ])
    .assert()
    .success()
    .stderr(predicate::str::contains("480 of the catalogue's 480 items"));
    // The bundle of a quickstart with another student is quickstart's own: replaced on a rerun.
    let other_student = runs.join("bundle");
    ok(&[
        "export",
        "--checkpoint",
        &format!("{r}/bert4rec"),
        "--out",
        other_student.to_str().unwrap(),
        "--name",
        "synthetic-shop SSI-SASRec",
        "--force",
    ]);
    let again = ok(&["quickstart", "--epochs", "1", "--out", r]);
    assert!(!again.contains("started"), "{again}");
    let header = json(&std::fs::read_to_string(other_student.join("bundle.json")).unwrap());
    assert_eq!(header["name"], "synthetic-shop SSI-HGN");
    // The quickstart is `reproduce --preset best` in miniature: the same runs read back.
    let preset = ok(&[
        "reproduce",
        "--preset",
        "best",
        "--out",
        r,
        "--baselines",
        "bert4rec,hgn",
        "--students",
        "hgn",
        "--set",
        "batch_size=64",
        "--set",
        "epochs=1",
    ]);
    assert!(
        !preset.contains("started") && preset.contains("SSI"),
        "{preset}"
    );
    for given in [
        ["--temperature", "2"],
        ["--temperature", "1"],
        ["--imitation-points", "target"],
    ] {
        fails(
            &[&["reproduce", "--preset", "best"][..], &given[..]].concat(),
            "--preset best sets",
        );
    }
    fails(
        &[
            "reproduce",
            "--preset",
            "best",
            "--teachers-from-scratch",
            "--baselines",
            "hgn",
            "--students",
            "--out",
            r,
        ],
        "this command trains no teachers",
    );
    // Finished runs trained with other settings are refused, not shown under this command.
    fails(
        &["quickstart", "--epochs", "2", "--out", r],
        "bert4rec was trained with other settings than this command asks (epochs 1 -> 2)",
    );
    // With --jobs the mismatch is found before any process starts training.
    let hgn_only = [
        "reproduce",
        "--out",
        r,
        "--warm-start",
        "--baselines",
        "hgn",
        "--students",
    ];
    for jobs in ["1", "2"] {
        fails(
            &[&hgn_only[..], &["--jobs", jobs, "--set", "hidden=32"]].concat(),
            "hidden 64 -> 32",
        );
    }
    // A finished run of a stage this command does not ask for, trained with other settings, is
    // left out of the tables with a notice instead of being shown under this command.
    let mixed = cmd(&[
        &hgn_only[..],
        &[
            "--set",
            "batch_size=64",
            "--set",
            "epochs=1",
            "--set",
            "bert4rec.dropout=0.3",
        ],
    ]
    .concat())
    .assert()
    .success();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&mixed.get_output().stdout).to_string(),
        String::from_utf8_lossy(&mixed.get_output().stderr).to_string(),
    );
    assert!(
        stderr.contains("left out of the tables") && stderr.contains("bert4rec"),
        "{stderr}"
    );
    assert!(
        stdout.contains("HGN") && !stdout.contains("started") && !stderr.contains("started"),
        "{stdout}\n{stderr}"
    );
    // Files of the user's where the quickstart writes its tables or bundle are not replaced,
    // and nothing trains first.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(mine.join("bundle")).unwrap();
    std::fs::write(mine.join("bundle").join("bundle.ssib"), "precious").unwrap();
    let m = mine.to_str().unwrap();
    fails(
        &["quickstart", "--epochs", "1", "--out", m],
        "bundle.ssib: was not written by `ssi quickstart`",
    );
    std::fs::remove_dir_all(mine.join("bundle")).unwrap();
    // A bundle the user exported there is theirs too.
    let theirs = mine.join("bundle");
    ok(&[
        "export",
        "--checkpoint",
        &format!("{r}/bert4rec"),
        "--out",
        theirs.to_str().unwrap(),
        "--name",
        "my bert4rec",
    ]);
    fails(
        &["quickstart", "--epochs", "1", "--out", m],
        "bundle.ssib: was not written by `ssi quickstart`",
    );
    std::fs::remove_dir_all(&theirs).unwrap();
    // A stage's log under --jobs replaces only a log: not a file of the user's, nor a link.
    std::fs::write(mine.join("bert4rec.log"), "my notes").unwrap();
    let jobs2 = ["quickstart", "--epochs", "1", "--jobs", "2", "--out", m];
    let stage_log = "bert4rec.log is where `ssi reproduce --jobs` writes";
    fails(&jobs2, stage_log);
    #[cfg(unix)]
    {
        std::fs::remove_file(mine.join("bert4rec.log")).unwrap();
        std::os::unix::fs::symlink(mine.join("notes.txt"), mine.join("bert4rec.log")).unwrap();
        fails(&jobs2, stage_log);
    }
    assert!(!mine.join("notes.txt").exists() && !mine.join("bert4rec").exists());
    std::fs::remove_file(mine.join("bert4rec.log")).unwrap();
    std::fs::write(mine.join("table2.md"), "my notes").unwrap();
    fails(
        &["quickstart", "--epochs", "1", "--out", m],
        "table2.md: was not written by `ssi reproduce` or `ssi quickstart`",
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("table2.md")).unwrap(),
        "my notes"
    );
    assert!(!mine.join("bert4rec").exists());
    // --out naming a file says so.
    let file = mine.join("table2.md");
    for command in ["quickstart", "reproduce"] {
        fails(&[command, "--out", file.to_str().unwrap()], "is a file");
    }
    fails(&["quickstart", "--minutes", "0"], "--minutes");
    for (args, needle) in [
        (&["quickstart", "--epochs", "0"][..], "--epochs"),
        (
            &["quickstart", "--epochs", "2", "--minutes", "1"][..],
            "--minutes",
        ),
        // What to evaluate: each of the three ways is named, and only one is taken.
        (
            &["eval"][..],
            "--model <MODEL>|--checkpoint <CHECKPOINT>|--bundle <BUNDLE>",
        ),
        (
            &["eval", "--checkpoint", "a", "--bundle", "b"][..],
            "cannot be used with",
        ),
        (
            &["eval", "--model", "mostpop", "--history", "0"][..],
            "--history",
        ),
    ] {
        cmd(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
    let table = ok(&["eval", "--model", "mostpop"]);
    assert!(
        table.contains("sampled neg.") && table.contains("all items"),
        "{table}"
    );
}

#[test]
fn bad_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let bad = write("bad.txt", "1 1 2 3\n2 4 five 6\n");
    fails(&["eval", "--model", "mostpop", "--data", &bad], "bad.txt:2");
    let zero = write("zero.txt", "1 1 2 3\n2 4 0 6\n");
    fails(&["data", "stats", &zero], "zero.txt:2");
    let dup = write("dup.txt", "1 1 2 3\n1 4 5 6\n");
    fails(&["data", "stats", &dup], "duplicate user 1");
    let empty = write("empty.txt", "");
    fails(&["data", "stats", &empty], "empty");
    fails(
        &["data", "stats", "/nonexistent/x.txt"],
        "/nonexistent/x.txt",
    );
    // A short user is skipped with a report, and the rest still loads.
    let short = write("short.txt", "1 1 2 3\n2 4 5\n3 1 2 3 4\n");
    let out = ssi(&["data", "stats", &short]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("short.txt:2") && stderr.contains("skipped"),
        "{stderr}"
    );
    fails(&["data", "fetch", "nosuch"], "unknown dataset");
}

#[test]
fn ingest_raw_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.csv");
    let mut text = String::from("user,item,ts\n");
    for u in 0..6 {
        for i in 0..6 {
            text.push_str(&format!("u{u},sku-{},{}\n", (u + i) % 7, 1000 - i));
        }
    }
    text.push_str("u9,sku-1\n");
    std::fs::write(&log, text).unwrap();
    let out_file = dir.path().join("ingested.txt");
    let out = ssi(&[
        "data",
        "ingest",
        log.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--user-col",
        "user",
        "--item-col",
        "item",
        "--time-col",
        "ts",
        "--k-core",
        "3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("log.csv:38"),
        "malformed row reported: {stderr}"
    );
    let st = json(&ok(&[
        "data",
        "stats",
        out_file.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(st["users"], 6);
    let map = std::fs::read_to_string(dir.path().join("ingested.idmap.tsv")).unwrap();
    assert!(map.contains("user\t1\tu0"), "{map}");
    // A names file that names none of the log's items is a mistake, not a catalogue; one that
    // names some is used, with a note of how many.
    let names = dir.path().join("names.csv");
    let named = dir.path().join("named.txt");
    let ingest_named = |text: &str| {
        std::fs::write(&names, text).unwrap();
        cmd(&[
            "data",
            "ingest",
            log.to_str().unwrap(),
            "--out",
            named.to_str().unwrap(),
            "--names",
            names.to_str().unwrap(),
            "--k-core",
            "3",
            "--force",
        ])
        .assert()
    };
    ingest_named("zzz,Lamp\n")
        .code(1)
        .stderr(predicate::str::contains(
            "none of its 1 names is of an item of the log",
        ));
    assert!(!named.exists());
    ingest_named("sku-1,Lamp\n")
        .success()
        .stderr(predicate::str::contains("names 1 of the 7 items"));
}

/// Serves `body` for every request on 127.0.0.1 for a bounded number of requests.
fn serve(body: Vec<u8>, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", server.server_addr().to_ip().unwrap());
    let handle = std::thread::spawn(move || {
        for request in server.incoming_requests().take(requests) {
            let _ = request.respond(tiny_http::Response::from_data(body.clone()));
        }
    });
    (url, handle)
}

/// What lies in the cache is checked before anything is read or downloaded (no server: the
/// address refuses connections, and no command gets that far).
#[cfg(unix)]
#[test]
fn fetch_names_odd_files_in_the_cache_before_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9/";
    let fifo = dir.path().join("fifo");
    std::fs::create_dir(&fifo).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(fifo.join("beauty.txt"))
        .status()
        .unwrap();
    assert!(made.success());
    let f = fifo.to_str().unwrap();
    // A pipe would hang a read; a link to /dev/zero would fill the memory.
    fails(
        &["data", "fetch", "beauty", "--cache", f, "--base-url", url],
        "is in the cache but is not a regular file",
    );
    let zero = dir.path().join("zero");
    std::fs::create_dir(&zero).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.join("beauty.txt")).unwrap();
    fails(
        &[
            "data",
            "fetch",
            "beauty",
            "--cache",
            zero.to_str().unwrap(),
            "--base-url",
            url,
        ],
        "is in the cache but is not a regular file",
    );
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
    fails(
        &[
            "data",
            "fetch",
            "beauty",
            "--cache",
            dangling.to_str().unwrap(),
            "--base-url",
            url,
        ],
        "is a link to nothing",
    );
}

#[test]
fn fetch_checks_sha256_against_a_local_server() {
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    let fetch_fails = |url: &str, needle: &str| {
        fails(
            &["data", "fetch", "beauty", "--cache", c, "--base-url", url],
            needle,
        )
    };
    // Wrong bytes: a clear checksum error, and nothing is written.
    let (url, h) = serve(b"1 2 3 4\n".to_vec(), 1);
    fetch_fails(&url, "checksum mismatch");
    h.join().unwrap();
    assert!(!cache.path().join("beauty.txt").exists());
    // A file of that name that is not the published one is the user's: kept unless --force.
    std::fs::write(cache.path().join("beauty.txt"), "my notes\n").unwrap();
    fetch_fails("http://127.0.0.1:9/", "is not the published beauty.txt");
    assert_eq!(
        std::fs::read_to_string(cache.path().join("beauty.txt")).unwrap(),
        "my notes\n"
    );
    // With --force it downloads; a bad download still replaces nothing.
    let (url, h) = serve(b"1 2 3 4\n".to_vec(), 1);
    cmd(&[
        "data",
        "fetch",
        "beauty",
        "--cache",
        c,
        "--base-url",
        &url,
        "--force",
    ])
    .assert()
    .code(1)
    .stderr(
        predicate::str::contains("replacing it (--force)")
            .and(predicate::str::contains("checksum mismatch")),
    );
    h.join().unwrap();
    assert_eq!(
        std::fs::read_to_string(cache.path().join("beauty.txt")).unwrap(),
        "my notes\n"
    );
    std::fs::remove_file(cache.path().join("beauty.txt")).unwrap();
    // Redirects are followed to http(s) addresses only; another scheme is named, not fetched
    // (nor a panic of the HTTP client).
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", server.server_addr().to_ip().unwrap());
    let h = std::thread::spawn(move || {
        for request in server.incoming_requests().take(3) {
            let to = if request.url().starts_with("/a") {
                "/b/beauty.txt"
            } else {
                "file:///etc/passwd"
            };
            let redirect = tiny_http::Response::empty(302)
                .with_header(tiny_http::Header::from_bytes("Location", to).unwrap());
            let _ = request.respond(redirect);
        }
    });
    fetch_fails(
        &format!("{base}a/"),
        "redirects to file:///etc/passwd: only http and https addresses are followed",
    );
    fetch_fails(&base, "redirects to file:///etc/passwd");
    h.join().unwrap();
    assert!(!cache.path().join("beauty.txt").exists());
    // The real file (served locally) passes, lands in the cache and loads.
    let Some(p) = shared("beauty.txt") else {
        return;
    };
    let (url, h) = serve(std::fs::read(&p).unwrap(), 1);
    let out = ok(&["data", "fetch", "beauty", "--cache", c, "--base-url", &url]);
    h.join().unwrap();
    let dest = cache.path().join("beauty.txt");
    assert!(out.contains(dest.to_str().unwrap()));
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&p).unwrap());
    // A second fetch finds it present and does not download.
    assert!(
        ok(&[
            "data",
            "fetch",
            "beauty",
            "--cache",
            c,
            "--base-url",
            "http://127.0.0.1:9/"
        ])
        .contains("already present")
    );
}

/// A download larger than any dataset file is refused before it fills the memory.
#[test]
fn fetch_refuses_an_oversized_download() {
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    let (url, h) = serve(vec![b'1'; (64 << 20) + 1], 1);
    fails(
        &["data", "fetch", "beauty", "--cache", c, "--base-url", &url],
        "67108864 bytes, more than a dataset file may have; nothing was written",
    );
    h.join().unwrap();
    assert!(!cache.path().join("beauty.txt").exists());
}

/// Settings that cannot fit in memory are refused with the settings named, before a folder is
/// made (the allocator would otherwise abort the process).
#[test]
fn training_beyond_the_memory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("big-ids.txt");
    std::fs::write(&data, "1 1 2 3 19999999\n2 2 3 4 5\n3 3 4 5 6\n").unwrap();
    let run = dir.path().join("run");
    // Each refused naming what does not fit, before its folder is made.
    let refused = |model: &str, data: &Path, sets: &[&str], want: &str| {
        let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
        let mut args = vec!["train", "--model", model, "--data", d, "--out", r];
        for s in sets {
            args.extend(["--set", s]);
        }
        fails(&args, want);
        assert!(!run.exists());
    };
    refused(
        "sasrec",
        &data,
        &["hidden=8192", "heads=1"],
        "GiB to train (19999999 items x hidden 8192",
    );
    // Few items, but attention scores of batch x heads x max_len^2 per layer.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "1 1 2 3 4\n2 2 3 4 5\n3 3 4 5 6\n").unwrap();
    refused(
        "sasrec",
        &small,
        &[
            "max_len=4096",
            "batch_size=32",
            "hidden=256",
            "heads=256",
            "layers=1",
        ],
        "256 heads x max_len^2 attention scores",
    );
    // Depth is named where it dominates.
    refused(
        "sasrec",
        &small,
        &["hidden=8192", "layers=64", "max_len=2", "batch_size=1"],
        "64 layers of hidden^2 weights",
    );
    // HGN's length is its window.
    refused(
        "hgn",
        &small,
        &["window=4096", "batch_size=4096"],
        "batch_size 4096 x window 4096 positions",
    );
}

#[test]
fn train_then_eval_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let run = dir.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let common = [
        "--data",
        d,
        "--out",
        r,
        "--config",
        "../../configs/small.json",
        "--set",
        "hidden=16",
        "--set",
        "max_steps_per_epoch=2",
    ];
    // Trained with seed 7, tested among the candidates of `eval_seed` (42, `ssi eval`'s default).
    let mut args = vec![
        "train", "--model", "sasrec", "--epochs", "1", "--json", "--seed", "7",
    ];
    args.extend(common);
    let trained = json(&ok(&args));
    assert!(trained["ndcg@10"].as_f64().is_some() && trained["full_ndcg@10"].as_f64().is_some());
    for f in [
        "config.json",
        "state.json",
        "best.bpk",
        "log.jsonl",
        "test.json",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    // Evaluating the checkpoint gives the same test figures; the dataset path comes from the run.
    let again = json(&ok(&["eval", "--checkpoint", r, "--json"]));
    assert_eq!(again["ndcg@10"], trained["ndcg@10"]);
    // An ensemble of one run ranks as the run does (its scores through a softmax); of two runs
    // it is one more model; a run given twice is refused.
    let alone = json(&ok(&["eval", "--ensemble", r, "--json"]));
    let close = |a: &serde_json::Value, b: &serde_json::Value| {
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-3
    };
    assert!(
        close(&alone["ndcg@10"], &again["ndcg@10"]),
        "{alone} {again}"
    );
    assert!(
        close(&alone["full_ndcg@10"], &again["full_ndcg@10"]),
        "{alone} {again}"
    );
    let other = dir.path().join("hgn");
    let o = other.to_str().unwrap();
    ok(&[
        &["train", "--model", "hgn", "--data", d, "--out", o][..],
        &TINY_RUN[..],
    ]
    .concat());
    let both = json(&ok(&["eval", "--ensemble", &format!("{r},{o}"), "--json"]));
    assert!(both["ndcg@10"].as_f64().is_some_and(|v| v > 0.0), "{both}");
    fails(
        &["eval", "--ensemble", &format!("{r},{r}")],
        "is given twice",
    );
    // A copy of a run is the same member.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(&run).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    fails(
        &["eval", "--ensemble", &format!("{r},{}", copy.display())],
        "hold the same weights",
    );
    // `distill --resume` on a run trained alone, or on nothing, says what is there.
    fails(&["distill", "--resume", "--out", r], "trained alone");
    let nowhere = dir.path().join("nowhere");
    fails(
        &["distill", "--resume", "--out", nowhere.to_str().unwrap()],
        "does not exist",
    );
    // The same folder is not overwritten without --resume.
    args[0] = "train";
    fails(&args, "--resume");
    // --resume keeps the run's settings: a different one is an error naming it...
    let mut resume: Vec<&str> = args
        .iter()
        .map(|a| if *a == "hidden=16" { "hidden=32" } else { a })
        .collect();
    resume.push("--resume");
    fails(&resume, "hidden 16 -> 32");
    // ...but a finished run given a larger limit goes on from its last epoch.
    let mut resume = args.clone();
    resume[4] = "2";
    resume.push("--resume");
    let extended = json(&ok(&resume));
    assert!(extended["ndcg@10"].as_f64().is_some());
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    // command.txt keeps the command that started the run and adds the one that resumed it.
    let commands = std::fs::read_to_string(run.join("command.txt")).unwrap();
    let lines: Vec<&str> = commands.lines().collect();
    assert_eq!(lines.len(), 2, "{commands}");
    assert!(
        !lines[0].contains("--resume") && lines[1].contains("--resume"),
        "{commands}"
    );
    assert!(
        std::fs::read_to_string(run.join("config.json"))
            .unwrap()
            .contains("\"epochs\": 2")
    );
    // Limits below the training the run has had would relabel it: refused, the run left as it was.
    let mut lower = args.clone();
    lower[4] = "1";
    lower.push("--resume");
    fails(&lower, "epochs 1 is below the 2 epochs it has trained");
    assert!(
        std::fs::read_to_string(run.join("config.json"))
            .unwrap()
            .contains("\"epochs\": 2")
    );
    // --resume alone continues the model the run records; another model is refused, and with
    // no run there the error asks for --model.
    ok(&["train", "--resume", "--out", r, "--epochs", "3"]);
    assert_eq!(
        std::fs::read_to_string(run.join("log.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    fails(
        &["train", "--model", "hgn", "--resume", "--out", r],
        "--resume continues the run that is there",
    );
    let nothing = dir.path().join("nothing");
    fails(
        &["train", "--resume", "--out", nothing.to_str().unwrap()],
        "no run to continue there",
    );
    // A model setting edited by hand after training is refused wherever the run is read: the
    // weights were trained with the other value, and results would change silently.
    let cfg_path = run.join("config.json");
    let original = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(original.contains("\"heads\": 2"), "{original}");
    std::fs::write(&cfg_path, original.replace("\"heads\": 2", "\"heads\": 4")).unwrap();
    fails(&["eval", "--checkpoint", r], "model settings differ");
    std::fs::write(&cfg_path, &original).unwrap();
    ok(&["eval", "--checkpoint", r]);
    // A run stopped in its first epoch (config.json, no state.json yet) says so.
    let half = dir.path().join("half");
    std::fs::create_dir(&half).unwrap();
    std::fs::copy(&cfg_path, half.join("config.json")).unwrap();
    let h = half.to_str().unwrap();
    fails(&["eval", "--checkpoint", h], "no finished epoch yet");
    let mut again = args.clone();
    let at = again.iter().position(|a| *a == r).unwrap();
    again[at] = h;
    again.push("--resume");
    fails(&again, "without --resume starts it over");
    // Unknown settings and wrong datasets are clear errors.
    let other = dir.path().join("other");
    fails(
        &[
            "train",
            "--model",
            "hgn",
            "--data",
            d,
            "--out",
            other.to_str().unwrap(),
            "--set",
            "hiden=3",
        ],
        "unknown setting \"hiden\"",
    );
    let other_data = dir.path().join("other.txt");
    ok(&[
        "data",
        "synth",
        "--out",
        other_data.to_str().unwrap(),
        "--users",
        "150",
    ]);
    fails(
        &[
            "eval",
            "--checkpoint",
            r,
            "--data",
            other_data.to_str().unwrap(),
        ],
        "was trained on",
    );
}

#[test]
fn pretrain_teachers_then_distill_a_student() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let d = data.to_str().unwrap();
    let small = [
        &["--config", "../../configs/small.json"],
        &TINY_RUN[..],
        &["--json"],
    ]
    .concat();
    let mut teachers = Vec::new();
    for task in ["temporal", "persona", "global"] {
        let out = dir.path().join(task);
        let mut args = vec![
            "pretrain",
            "--task",
            task,
            "--data",
            d,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(small.iter().copied());
        let report = json(&ok(&args));
        assert!(report["ndcg@10"].as_f64().is_some());
        let cfg = json(&std::fs::read_to_string(out.join("config.json")).unwrap());
        assert_eq!(cfg["model"]["consistency"], task);
        teachers.push(out.to_str().unwrap().to_string());
    }
    // The task is --task's: a setting that says otherwise is refused, not ignored.
    let other = dir.path().join("other");
    fails(
        &[
            "pretrain",
            "--task",
            "global",
            "--set",
            "consistency=temporal",
            "--data",
            d,
            "--out",
            other.to_str().unwrap(),
        ],
        "contradicts consistency",
    );
    // A teacher of another task starts one: its consistency head is left behind.
    let mut args = vec![
        "pretrain",
        "--task",
        "global",
        "--init",
        &teachers[0],
        "--data",
        d,
        "--out",
        other.to_str().unwrap(),
    ];
    args.extend(small.iter().copied());
    assert!(json(&ok(&args))["ndcg@10"].as_f64().is_some());
    let teachers = teachers.join(",");
    let out = dir.path().join("ssi");
    let mut args = vec![
        "distill",
        "--teachers",
        &teachers,
        "--student",
        "gru4rec",
        "--data",
        d,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(small.iter().copied());
    let report = json(&ok(&args));
    assert!(report["ndcg@10"].as_f64().is_some());
    // λ_i of every teacher in the epoch log; the run evaluates like any checkpoint.
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let first = json(log.lines().next().unwrap());
    for task in ["temporal", "persona", "global"] {
        assert!(first["lambda"][task].as_f64().unwrap() > 0.0, "{first}");
    }
    let evaluated = json(&ok(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(evaluated["ndcg@10"], report["ndcg@10"]);
    // Teachers named relative to the working folder are kept as absolute paths, so the run
    // resumes from any folder; a teacher given twice is refused.
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/small.json");
    let config = config.to_str().unwrap();
    let rel = dir.path().join("ssi-rel");
    // From `cwd`, with the teachers as given, into `rel`.
    let distill_in = |cwd: &Path, teachers: &str, extra: &[&str]| {
        let out = rel.to_str().unwrap();
        let head = [
            "distill",
            "--teachers",
            teachers,
            "--student",
            "gru4rec",
            "--data",
            d,
            "--out",
            out,
            "--config",
            config,
        ];
        let mut c = cmd(&[&head[..], &TINY_RUN[..], extra].concat());
        c.current_dir(cwd);
        c.assert()
    };
    distill_in(dir.path(), "temporal,./temporal", &[])
        .code(1)
        .stderr(predicate::str::contains("is given twice"));
    // A copy of a teacher's folder is the same teacher.
    let copy = dir.path().join("temporal-copy");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(dir.path().join("temporal"))
        .unwrap()
        .flatten()
    {
        if f.path().is_file() {
            std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
        }
    }
    distill_in(dir.path(), "temporal,temporal-copy", &[])
        .code(1)
        .stderr(predicate::str::contains("hold the same weights"));
    assert!(!rel.exists());
    distill_in(dir.path(), "temporal,persona", &[]).success();
    let cfg = json(&std::fs::read_to_string(rel.join("config.json")).unwrap());
    let saved: Vec<&str> = (0..2)
        .map(|i| cfg["distill"]["teachers"][i].as_str().unwrap())
        .collect();
    assert!(Path::new(saved[0]).is_absolute(), "{saved:?}");
    // Resumed from another working folder, with the teachers named by their absolute paths.
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    distill_in(crate_dir, &saved.join(","), &["--resume"]).success();
    // `--resume` alone continues with the run's teachers, student and imitation options (here
    // one epoch more); an option given that differs from the run's is named.
    let bare = |extra: &[&str]| {
        cmd(&[
            &["distill", "--resume", "--out", rel.to_str().unwrap()][..],
            extra,
        ]
        .concat())
        .assert()
    };
    bare(&["--epochs", "2"]).success();
    assert_eq!(ssi_train::RunDir::new(&rel).state().unwrap().epoch, 2);
    bare(&["--temperature", "3"])
        .code(1)
        .stderr(predicate::str::contains("temperature 1.0 -> 3.0"));
    bare(&["--student", "hgn"])
        .code(1)
        .stderr(predicate::str::contains(
            "holds a GRU4Rec distilled student run",
        ));
    // Two teacher folders swapped since are named as such, the student's folder untouched.
    let persona = dir.path().join("persona");
    let temporal = dir.path().join("temporal");
    let before = std::fs::read(rel.join("state.json")).unwrap();
    let swap = || {
        let aside = dir.path().join("aside");
        std::fs::rename(&temporal, &aside).unwrap();
        std::fs::rename(&persona, &temporal).unwrap();
        std::fs::rename(&aside, &persona).unwrap();
    };
    swap();
    bare(&[]).code(1).stderr(predicate::str::contains(format!(
        "teacher {} now holds the weights teacher {} held",
        persona.display(),
        temporal.display()
    )));
    assert_eq!(std::fs::read(rel.join("state.json")).unwrap(), before);
    swap();
    // A teacher retrained since (other best weights, committed as its own) is refused on
    // resume, naming it, and the student's folder is left as it was.
    give_best_weights(&dir.path().join("temporal"), &persona);
    let before = std::fs::read(rel.join("state.json")).unwrap();
    distill_in(dir.path(), "temporal,persona", &["--resume"])
        .code(1)
        .stderr(predicate::str::contains(format!(
            "the best weights of teacher {} changed",
            persona.display()
        )));
    assert_eq!(std::fs::read(rel.join("state.json")).unwrap(), before);
    // A teacher moved away since is named with the way back, the student's folder untouched.
    std::fs::rename(&persona, dir.path().join("persona-moved")).unwrap();
    bare(&[])
        .code(1)
        .stderr(predicate::str::contains(format!(
            "teacher {} of this distillation",
            persona.display()
        )))
        .stderr(predicate::str::contains("Put it back at that path"));
    assert_eq!(std::fs::read(rel.join("state.json")).unwrap(), before);
    // A teacher folder that holds no run is a clear error.
    let missing = dir.path().join("nothing");
    let x = dir.path().join("x");
    let mut args = vec![
        "distill",
        "--teachers",
        missing.to_str().unwrap(),
        "--data",
        d,
        "--out",
        x.to_str().unwrap(),
    ];
    args.extend(small.iter().copied());
    fails(&args, "nothing: no such run folder");
}

#[test]
fn init_starts_a_run_from_a_trained_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let d = data.to_str().unwrap();
    let small = [
        "--data",
        d,
        "--set",
        "hidden=16",
        "--set",
        "max_steps_per_epoch=3",
        "--epochs",
        "1",
        "--json",
    ];
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| json(&ok(&[args, &small[..]].concat()));
    let base = run(&["train", "--model", "sasrec", "--out", &path("base")]);
    // With a vanishing learning rate the started run is the run it started from.
    let same = run(&[
        "train",
        "--model",
        "sasrec",
        "--init",
        &path("base"),
        "--set",
        "lr=1e-9",
        "--out",
        &path("same"),
    ]);
    let (a, b) = (
        base["ndcg@10"].as_f64().unwrap(),
        same["ndcg@10"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-4, "started from {a}, got {b}");
    let cfg = json(&std::fs::read_to_string(dir.path().join("same/config.json")).unwrap());
    assert!(
        cfg["init_from"].as_str().unwrap().ends_with("base"),
        "{cfg}"
    );
    // A consistency teacher starts from a plain BERT4Rec; its head starts fresh.
    run(&["train", "--model", "bert4rec", "--out", &path("bert")]);
    run(&[
        "pretrain",
        "--task",
        "persona",
        "--init",
        &path("bert"),
        "--out",
        &path("teacher"),
    ]);
    // Another model, other widths, no run: refused, nothing trained.
    let other = path("other");
    let refuse = |extra: &[&str], needle: &str| {
        // A width in `extra` replaces the one in `small` (the same --set twice is refused).
        let mut args = vec!["train", "--model", "sasrec", "--out", &other];
        let wider = extra.iter().any(|a| a.starts_with("hidden="));
        args.extend(small.iter().copied());
        if wider {
            let at = args.iter().position(|a| *a == "hidden=16").unwrap();
            args.drain(at - 1..=at);
        }
        args.extend(extra);
        fails(&args, needle);
        // Checked before anything is written: not even the run folder is created.
        assert!(!dir.path().join("other").exists());
    };
    refuse(
        &["--init", &path("bert")],
        "--init needs a run of the same model",
    );
    refuse(
        &["--init", &path("base"), "--set", "hidden=8"],
        "do not fit these settings",
    );
    refuse(&["--init", &path("nothing")], "no such folder");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    refuse(
        &["--init", &path("empty")],
        "not a run folder (no config.json)",
    );
    refuse(
        &["--init", &path("base/config.json")],
        "a file, not a run folder",
    );
}

#[test]
fn reproduce_writes_the_tables_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 150, 3);
    let out = dir.path().join("repro");
    let args = [
        "reproduce",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--paper-dataset",
        "beauty",
        "--students",
        "hgn,gru4rec",
        "--ablation",
        "imitation,teachers,layers",
        "--set",
        "hidden=16",
        "--set",
        "epochs=1",
        "--set",
        "max_steps_per_epoch=1",
        "--set",
        "valid_users=50",
        "--set",
        "s3rec.pretrain_epochs=1",
    ];
    let first = ok(&args);
    let table = std::fs::read_to_string(out.join("table2.md")).unwrap();
    for row in [
        "| MostPop |",
        "| S3-Rec |",
        "| GREC |",
        "| GRU4Rec |",
        "| BERT4Rec |",
        "| HGN |",
        "| SASRec |",
        "| Teacher (temporal) |",
        "| SSI |",
        "| SSI-GRU4Rec |",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    // The paper's value and our difference beside each figure; rows we do not run are marked.
    assert!(table.contains("(0.329, "), "{table}");
    assert!(out.join("s3rec/pretrain/state.json").exists());
    let csv = std::fs::read_to_string(out.join("table2.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("beauty,SSI,ndcg@10,") && l.contains(",0.329,")),
        "{csv}"
    );
    for f in [
        "table3.md",
        "table3.csv",
        "figure3.svg",
        "figure3.md",
        "figure4.svg",
        "figure4.csv",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let t3 = std::fs::read_to_string(out.join("table3.md")).unwrap();
    assert!(t3.contains("w/o prediction distribution imitation"), "{t3}");
    assert!(out.join("l8-teacher-global/test.json").exists());
    // Figure 4 at the configured depth (small: 2 layers) is Table 2's runs, not trained twice.
    assert!(out.join("l1-ssi-hgn/test.json").exists());
    assert!(!out.join("l2-bert4rec").exists() && !out.join("l2-ssi-hgn").exists());
    // Figure 4 of SASRec teachers trains the SASRec baseline Table 2 has a row for: the table
    // written by the same run has it.
    let sas = dir.path().join("repro-sasrec");
    reproduce_tiny(
        &data,
        &sas,
        "1",
        &[
            "--teacher-model",
            "sasrec",
            "--ablation",
            "layers",
            "--baselines",
            "--students",
            "hgn",
        ],
    );
    let t = std::fs::read_to_string(sas.join("table2.md")).unwrap();
    assert!(
        sas.join("sasrec/test.json").exists() && t.contains("| SASRec |"),
        "{t}"
    );
    // Rerunning finds every run finished: nothing is trained again, same table.
    let again = ok(&args);
    assert!(
        first.contains("== SSI") && !again.contains("== "),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("table2.md")).unwrap(),
        table
    );

    // A stage killed between its test.json and its test-by-RULE.json is finished again.
    let by_rule: Vec<PathBuf> = std::fs::read_dir(out.join("hgn"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("test-by-")
        })
        .collect();
    assert!(!by_rule.is_empty());
    for p in &by_rule {
        std::fs::remove_file(p).unwrap();
    }
    ok(&args);
    for p in &by_rule {
        assert!(p.is_file(), "{} not written again", p.display());
    }

    // `ssi report` keeps the ablations beside the page under their folder's name and shows
    // them, by both protocols; they outlive the run folders, as the rows do.
    let results = dir.path().join("results");
    let report = |roots: &[&str]| {
        let mut c = cmd(&[&["report"], roots, &["--out", results.to_str().unwrap()]].concat());
        c.current_dir(dir.path());
        c.assert()
    };
    report(&[out.to_str().unwrap()]).success();
    let figures = results.join("figures");
    let page = || std::fs::read_to_string(results.join("README.md")).unwrap();
    let first_page = page();
    assert!(
        first_page.contains("### Table 3 (`repro`): effect of the imitation terms"),
        "{first_page}"
    );
    assert!(first_page.contains("| full Recall@10 | full NDCG@10 |"));
    for f in ["repro-figure3.svg", "repro-figure4.svg"] {
        assert!(
            first_page.contains(&format!("![figures/{f}](figures/{f})")),
            "{first_page}"
        );
        let svg = std::fs::read_to_string(figures.join(f)).unwrap();
        assert!(svg.contains("99 sampled negatives") && svg.contains("all items"));
    }
    // A file of the same name that `ssi reproduce` did not write is not replaced.
    let mine = "# My Table 3\n";
    std::fs::write(figures.join("repro-table3.md"), mine).unwrap();
    report(&[out.to_str().unwrap()]).code(1).stderr(
        predicate::str::contains("repro-table3.md")
            .and(predicate::str::contains("was not written by `ssi report`")),
    );
    assert_eq!(
        std::fs::read_to_string(figures.join("repro-table3.md")).unwrap(),
        mine
    );
    std::fs::remove_file(figures.join("repro-table3.md")).unwrap();
    // Where the ablations would go is a file: refused before anything is written.
    let other = dir.path().join("other-results");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("figures"), "mine").unwrap();
    cmd(&[
        "report",
        out.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ])
    .assert()
    .code(1)
    .stderr(predicate::str::contains("figures is a file"));
    assert!(!other.join("README.md").exists() && !other.join("runs.json").exists());
    report(&[out.to_str().unwrap()]).success();
    std::fs::remove_dir_all(&out).unwrap();
    report(&[]).success();
    assert_eq!(page(), first_page);
}

/// Gives run `to` the best weights of run `from`, committed in its state as its own: what a
/// teacher retrained since looks like.
fn give_best_weights(from: &Path, to: &Path) {
    let weights = std::fs::read(from.join("best.bpk")).unwrap();
    std::fs::write(to.join("best.bpk"), &weights).unwrap();
    let state_path = to.join("state.json");
    let mut state = json(&std::fs::read_to_string(&state_path).unwrap());
    state["checksums"]["best.bpk"] = ssi_data::dataset::sha256_hex(&weights).into();
    std::fs::write(&state_path, state.to_string()).unwrap();
}

/// The settings of a reproduction that trains each stage for one epoch of two small steps.
const TINY_REPRODUCE: [&str; 8] = [
    "--set",
    "hidden=16",
    "--set",
    "epochs=1",
    "--set",
    "max_steps_per_epoch=2",
    "--set",
    "valid_users=50",
];

/// `ssi reproduce` on `data` into `out` with tiny models (1-2 steps an epoch), plus `extra`.
fn reproduce_tiny(
    data: &std::path::Path,
    out: &std::path::Path,
    epochs: &str,
    extra: &[&str],
) -> String {
    String::from_utf8(
        reproduce_tiny_cmd(data, out, epochs, extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap()
}

/// The command of [`reproduce_tiny`], to run and check as the caller needs.
fn reproduce_tiny_cmd(
    data: &std::path::Path,
    out: &std::path::Path,
    epochs: &str,
    extra: &[&str],
) -> Command {
    let epochs = format!("epochs={epochs}");
    let mut args = vec![
        "reproduce",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "hidden=16",
        "--set",
        &epochs,
        "--set",
        "max_steps_per_epoch=2",
        "--set",
        "valid_users=50",
    ];
    args.extend(extra);
    cmd(&args)
}

/// What would stop a stage in its turn is found before any stage trains: a file where its
/// folder goes, another program's `config.json` there, limits lowered below an unfinished run.
#[test]
fn reproduce_checks_every_stage_folder_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 120, 3);
    let out = dir.path().join("repro");
    std::fs::create_dir(&out).unwrap();
    let run = |epochs: &str| {
        reproduce_tiny_cmd(
            &data,
            &out,
            epochs,
            &["--baselines", "hgn,sasrec", "--students"],
        )
        .assert()
    };
    std::fs::write(out.join("sasrec"), "mine").unwrap();
    run("1")
        .code(1)
        .stderr(predicate::str::contains("where stage sasrec trains"));
    assert!(!out.join("hgn").exists());
    std::fs::remove_file(out.join("sasrec")).unwrap();
    std::fs::create_dir(out.join("sasrec")).unwrap();
    std::fs::write(out.join("sasrec/config.json"), "{}").unwrap();
    run("1").code(1).stderr(predicate::str::contains(
        "is not the config.json of an ssi run",
    ));
    assert!(!out.join("hgn").exists());
    std::fs::remove_dir_all(out.join("sasrec")).unwrap();
    // SASRec trained 2 epochs, then reopened (unfinished); HGN not trained yet.
    let sasrec = out.join("sasrec");
    let settings = "--set hidden=16 --set max_steps_per_epoch=2 --set valid_users=50";
    let limits = "--set patience=1000 --epochs 2";
    cmd(&["train", "--model", "sasrec"])
        .args([
            "--data",
            data.to_str().unwrap(),
            "--out",
            sasrec.to_str().unwrap(),
        ])
        .args(settings.split(' ').chain(limits.split(' ')))
        .assert()
        .success();
    let state = out.join("sasrec/state.json");
    let mut st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    st["finished"] = false.into();
    std::fs::write(&state, st.to_string()).unwrap();
    run("1")
        .code(1)
        .stderr(predicate::str::contains("not lower them"));
    assert!(!out.join("hgn").exists());
}

/// Names that would silently change what `reproduce` does are refused; a stage does not start
/// before the runs it needs have finished; a finished student whose teachers changed since is
/// not read back into the table as if it had imitated them.
#[test]
fn reproduce_refuses_ambiguous_names_unfinished_teachers_and_stale_students() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 120, 3);
    let out = dir.path().join("repro");
    let d = data.to_str().unwrap();
    let o = out.to_str().unwrap();
    let base = ["reproduce", "--data", d, "--out", o, "--baselines"];
    fails(
        &[&base[..], &["--students", "--paper-dataset", "beuty"]].concat(),
        "--paper-dataset \"beuty\": not a dataset of the paper's Table 2 (beauty, toys",
    );
    // A model listed twice would be two rows of one run.
    fails(
        &[&base[..], &["--students", "hgn,sasrec,hgn"]].concat(),
        "--students: hgn is listed twice (entries 1 and 3)",
    );
    // `--config small` with a file `small` in the folder: which one is meant is unknown.
    std::fs::write(dir.path().join("small"), r#"{"hidden": 8}"#).unwrap();
    cmd(&[&base[..], &["--students", "--config", "small"]].concat())
        .current_dir(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "names both the preset and the file small in this folder; give ./small",
        ));
    // One stage alone, before the teachers it imitates have trained.
    fails(
        &[&base[..], &["--students", "hgn", "--stage", "ssi-hgn"]].concat(),
        "--stage ssi-hgn: it needs",
    );
    assert!(!out.join("ssi-hgn").exists());
    reproduce_tiny(&data, &out, "1", &["--baselines", "--students", "hgn"]);
    let table = std::fs::read_to_string(out.join("table2.md")).unwrap();
    assert!(table.contains("| SSI | 0."), "{table}");
    // One model's run folder (here a stage) is not a pipeline's --out: nothing is written in it.
    let stage = out.join("teacher-temporal");
    let before = std::fs::read_dir(&stage).unwrap().count();
    fails(
        &[
            "reproduce",
            "--data",
            d,
            "--out",
            stage.to_str().unwrap(),
            "--baselines",
            "--students",
            "hgn",
        ],
        "is the run folder of one model (it holds config.json)",
    );
    assert_eq!(std::fs::read_dir(&stage).unwrap().count(), before);
    // A teacher retrained since (other best weights, committed as its own).
    let teacher = out.join("teacher-temporal");
    give_best_weights(&out.join("teacher-persona"), &teacher);
    let student = std::fs::read(out.join("ssi-hgn/state.json")).unwrap();
    // Asked to train it, the command stops before training anything, naming the teacher ...
    cmd(&[&base[..], &["--students", "hgn"], &TINY_REPRODUCE[..]].concat())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "the best weights of teacher {} changed",
            teacher.display()
        )));
    // ... and a table that only reads it back (training HGN alone) leaves its row out, saying
    // why.
    cmd(&[&base[..], &["hgn", "--students"], &TINY_REPRODUCE[..]].concat())
        .assert()
        .success()
        .stderr(
            predicate::str::contains("left out of the tables")
                .and(predicate::str::contains("move this run away")),
        );
    let table = std::fs::read_to_string(out.join("table2.md")).unwrap();
    assert!(!table.contains("| SSI | 0."), "{table}");
    assert_eq!(
        std::fs::read(out.join("ssi-hgn/state.json")).unwrap(),
        student
    );
}

/// Stages split over several invocations (or processes) into one --out folder: each trains only
/// what it names, and every invocation's table holds all finished runs.
#[test]
fn reproduce_in_parts_reads_back_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 120, 3);
    let out = dir.path().join("repro");
    let part = |baselines: &str, more: &[&str]| {
        let extra = [
            &[
                "--paper-dataset",
                "beauty",
                "--baselines",
                baselines,
                "--students",
            ][..],
            more,
        ]
        .concat();
        reproduce_tiny(&data, &out, "1", &extra)
    };
    let first = part("hgn", &[]);
    assert!(
        first.contains("== HGN") && !first.contains("== BERT4Rec"),
        "{first}"
    );
    // No students: no teachers either.
    assert!(!out.join("teacher-temporal").exists());
    let table = std::fs::read_to_string(out.join("table2.md")).unwrap();
    assert!(table.contains("| BERT4Rec | not run (0.378)"), "{table}");
    // `--set` is for every run whose model has the setting; one that no run has is refused.
    let layers = ["--set", "layers=1"];
    fails(
        &[
            "reproduce",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--baselines",
            "hgn",
            "--students",
            "--set",
            "layers=1",
        ],
        "none of this command's models (HGN) has the setting \"layers\"",
    );
    let second = part("bert4rec", &layers);
    assert!(!second.contains("== HGN"), "{second}");
    let bert = json(&std::fs::read_to_string(out.join("bert4rec/config.json")).unwrap());
    assert_eq!(bert["model"]["layers"], 1, "{bert}");
    let table = std::fs::read_to_string(out.join("table2.md")).unwrap();
    for row in ["| HGN | 0.", "| BERT4Rec | 0."] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    // HGN has no `layers`: its run, trained without it, is read back under the same command.
    let both = part("hgn,bert4rec", &layers);
    assert!(
        !both.contains("== HGN") && !both.contains("== BERT4Rec"),
        "{both}"
    );
}

/// --jobs 2 trains stages in parallel processes, students after their teachers, and each run
/// comes out as it does in one sequential process.
#[test]
fn reproduce_with_jobs_matches_sequential() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 120, 3);
    let run = |out: &std::path::Path, jobs: &str| {
        let extra = ["--jobs", jobs, "--baselines", "hgn", "--students", "hgn"];
        reproduce_tiny(&data, out, "2", &extra)
    };
    let (seq, par) = (dir.path().join("seq"), dir.path().join("par"));
    run(&seq, "1");
    let printed = run(&par, "2");
    for stage in ["hgn", "teacher-temporal", "teacher-global", "ssi-hgn"] {
        assert!(
            printed.contains(&format!("== {stage} started")),
            "{printed}"
        );
        assert!(par.join(format!("{stage}.log")).exists(), "{stage}.log");
        let metrics = |root: &std::path::Path| {
            let m = json(&std::fs::read_to_string(root.join(stage).join("test.json")).unwrap());
            (
                m["ndcg@10"].as_f64().unwrap(),
                m["recall@20"].as_f64().unwrap(),
            )
        };
        assert_eq!(metrics(&seq), metrics(&par), "{stage}");
    }
    // The student started only after its three teachers had finished.
    let pos = |s: &str| printed.find(s).unwrap_or_else(|| panic!("{s}: {printed}"));
    for t in ["temporal", "persona", "global"] {
        assert!(pos(&format!("teacher-{t} finished")) < pos("== ssi-hgn started"));
    }
    let table = std::fs::read_to_string(par.join("table2.md")).unwrap();
    assert!(
        table.contains("| SSI | 0.") && table.contains("| HGN | 0."),
        "{table}"
    );
    // Nothing left to train: a rerun starts no process.
    assert!(!run(&par, "2").contains("started"));
}

/// `reproduce --imitation-points next --teacher-full-history --temperature 2` reaches every SSI
/// student, says so in the table, and a later invocation with other imitation options refuses to
/// read the student back under the wrong settings; a temperature that is not above 0 is refused.
#[test]
fn reproduce_passes_imitation_options_to_the_students() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 3);
    let out = dir.path().join("repro");
    let extra = [
        "--baselines",
        "--students",
        "hgn",
        "--imitation-points",
        "next",
        "--teacher-full-history",
        "--temperature",
        "2",
    ];
    reproduce_tiny(&data, &out, "1", &extra);
    let cfg = json(&std::fs::read_to_string(out.join("ssi-hgn/config.json")).unwrap());
    let imitation = &cfg["distill"]["imitation"];
    assert_eq!(imitation["points"], "next", "{cfg}");
    assert_eq!(imitation["teacher_full_history"], true, "{cfg}");
    assert_eq!(imitation["temperature"], 2.0, "{cfg}");
    let table = std::fs::read_to_string(out.join("table2.md")).unwrap();
    assert!(
        table.contains("--imitation-points next --teacher-full-history --temperature 2")
            && table.contains("| SSI | 0."),
        "{table}"
    );
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    fails(
        &[
            &["reproduce", "--data", data, "--out", out][..],
            &TINY_REPRODUCE,
            &["--baselines", "--students", "hgn"],
        ]
        .concat(),
        "was trained with --imitation-points next --teacher-full-history --temperature 2, but this invocation asks for --imitation-points target",
    );
    // A temperature that would divide the logits by zero, flip them or overflow them is refused
    // up front.
    for bad in ["0", "-1", "nan", "0.001"] {
        let flag = format!("--temperature={bad}");
        let args = ["reproduce", "--data", data, "--out", out, &flag];
        let res = ssi(&args);
        let stderr = String::from_utf8_lossy(&res.stderr);
        // Exit code 2: clap's usage error, before any work starts.
        assert_eq!(res.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is not a usable temperature: give a number in [0.05, 100]"),
            "{args:?}: {stderr}"
        );
    }
}

/// A run folder that another process is training is refused, not trained twice.
#[test]
fn a_run_being_trained_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 3);
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let held = std::fs::File::create(run.join(".lock")).unwrap();
    held.lock().unwrap();
    let args = [
        "train",
        "--model",
        "hgn",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--set",
        "hidden=16",
        "--epochs",
        "1",
    ];
    fails(&args, "being trained by another process");
    assert!(!run.join("state.json").exists());
    // Once the other process lets go (or dies), the run trains.
    drop(held);
    ok(&args);
    assert!(run.join("test.json").exists());
}

#[test]
fn export_a_bundle_that_evaluates_like_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let run = dir.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    // A run removes the stale temporaries of its own files in --out, and no one else's (PIDs
    // never exceed 2^22 on Linux: 999999999 is no running process).
    std::fs::create_dir(&run).unwrap();
    let (own_temp, users_temp) = (
        run.join(".best.bpk.999999999.0.tmp"),
        run.join(".notes.txt.999999999.0.tmp"),
    );
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for f in [&own_temp, &users_temp] {
        std::fs::File::create(f).unwrap().set_modified(old).unwrap();
    }
    ok(&[
        "train",
        "--model",
        "hgn",
        "--data",
        d,
        "--out",
        r,
        "--set",
        "hidden=16",
        "--epochs",
        "1",
        "--json",
    ]);
    assert!(users_temp.exists());
    if Path::new("/proc/self").exists() {
        assert!(!own_temp.exists());
    }
    let out = dir.path().join("models").join("shop-hgn");
    let printed = ok(&[
        "export",
        "--checkpoint",
        r,
        "--out",
        out.to_str().unwrap(),
        "--sequences",
        "50",
    ]);
    assert!(printed.contains("shop-hgn"), "{printed}");
    // The names shipped are those the run was trained with: a catalogue gone or replaced is
    // refused by name, nothing written; another folder's temporaries are left alone.
    let cat = dir.path().join("shop.items.tsv");
    let names = std::fs::read_to_string(&cat).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let foreign = elsewhere.join(".notes.txt.999999.0.tmp");
    std::fs::write(&foreign, "a user's file").unwrap();
    let e = elsewhere.to_str().unwrap();
    std::fs::rename(&cat, dir.path().join("gone.tsv")).unwrap();
    fails(
        &["export", "--checkpoint", r, "--out", e],
        "shop.items.tsv is not there any more",
    );
    std::fs::write(&cat, names.replacen("\n1\t", "\n1\tRenamed ", 1)).unwrap();
    fails(
        &["export", "--checkpoint", r, "--out", e],
        "is not the catalogue",
    );
    std::fs::write(&cat, &names).unwrap();
    assert!(!elsewhere.join("bundle.ssib").exists());
    ok(&["export", "--checkpoint", r, "--out", e]);
    assert!(foreign.exists());
    // Damaged weights are named under the option that gave the run.
    let best = run.join("best.bpk");
    let weights = std::fs::read(&best).unwrap();
    std::fs::write(&best, &weights[..weights.len() / 2]).unwrap();
    fails(
        &["eval", "--checkpoint", r, "--data", d],
        &format!("--checkpoint: {r}"),
    );
    std::fs::write(&best, &weights).unwrap();
    // A checkpoint that is not a run folder is named as what it is.
    let nothing = dir.path().join("nothing");
    fails(
        &[
            "export",
            "--checkpoint",
            nothing.to_str().unwrap(),
            "--out",
            e,
        ],
        "no such run folder",
    );
    fails(&["eval", "--checkpoint", d], "a file, not a run folder");
    fails(
        &[
            "export",
            "--checkpoint",
            r,
            "--out",
            e,
            "--force",
            "--name",
            "red\u{1b}[31m",
        ],
        "--name holds the control character '\\u{1b}'",
    );
    // `--out .` names the bundle after the folder.
    let dot = dir.path().join("shop-dot");
    std::fs::create_dir(&dot).unwrap();
    cmd(&["export", "--checkpoint", r, "--out", "."])
        .current_dir(&dot)
        .assert()
        .success();
    let named = json(&std::fs::read_to_string(dot.join("bundle.json")).unwrap());
    assert_eq!(named["name"], "shop-dot");
    let header = json(&std::fs::read_to_string(out.join("bundle.json")).unwrap());
    assert_eq!(header["model"]["model"], "hgn");
    assert!(
        header["provenance"]["command"]
            .as_str()
            .unwrap()
            .contains("train --model hgn")
    );
    assert!(
        header["provenance"]["metrics"]["ndcg@10"]
            .as_f64()
            .is_some()
    );
    let bundle = out.join("bundle.ssib");
    let digest = <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(&bundle).unwrap());
    let digest: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(header["bundle_sha256"], digest.as_str());
    let from_bundle = json(&ok(&[
        "eval",
        "--bundle",
        bundle.to_str().unwrap(),
        "--data",
        d,
        "--json",
    ]));
    let from_run = json(&ok(&["eval", "--checkpoint", r, "--json"]));
    assert_eq!(from_bundle["ndcg@10"], from_run["ndcg@10"]);
    assert_eq!(from_bundle["full_ndcg@10"], from_run["full_ndcg@10"]);
    // A damaged bundle is named and explained.
    let bytes = std::fs::read(&bundle).unwrap();
    let cut = dir.path().join("cut.ssib");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    fails(
        &["eval", "--bundle", cut.to_str().unwrap(), "--data", d],
        "truncated",
    );
    fails(&["eval", "--bundle", d, "--data", d], "not an SSI bundle");
    // A folder is named with the file it holds; a device is refused on its first bytes.
    let folder = bundle.parent().unwrap().to_str().unwrap();
    fails(
        &["predict", "--bundle", folder, "--history", "1"],
        "is a folder: give the bundle file in it",
    );
    #[cfg(target_os = "linux")]
    fails(
        &["predict", "--bundle", "/dev/zero", "--history", "1"],
        "not an SSI bundle",
    );
    // A run folder is not a bundle: it is to be exported first.
    fails(
        &["predict", "--bundle", r, "--history", "1"],
        "is a training run, not a bundle: export it first",
    );
    // A bundle read through a pipe predicts as the file does (the file is opened once).
    #[cfg(target_os = "linux")]
    {
        let b = bundle.to_str().unwrap();
        let args = ["predict", "--bundle", b, "--history", "1", "--top", "3"];
        let from_file = ok(&args);
        let mut piped = cmd(&[
            "predict",
            "--bundle",
            "/dev/stdin",
            "--history",
            "1",
            "--top",
            "3",
        ]);
        piped.write_stdin(std::fs::read(&bundle).unwrap());
        let out = piped.assert().success();
        assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), from_file);
    }
    // An existing bundle is not replaced without --force; a bundle is used on its own data only.
    fails(
        &["export", "--checkpoint", r, "--out", out.to_str().unwrap()],
        "--force",
    );
    let other_data = dir.path().join("other.txt");
    let o = other_data.to_str().unwrap();
    ok(&[
        "data",
        "synth",
        "--out",
        o,
        "--users",
        "200",
        "--categories",
        "4",
        "--seed",
        "7",
    ]);
    fails(
        &[
            "eval",
            "--bundle",
            bundle.to_str().unwrap(),
            "--data",
            other_data.to_str().unwrap(),
        ],
        "trained on",
    );
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 7] ^= 0x04;
    let bad = dir.path().join("flipped.ssib");
    std::fs::write(&bad, flipped).unwrap();
    fails(
        &["eval", "--bundle", bad.to_str().unwrap(), "--data", d],
        "SHA-256",
    );
    // The run's dataset moved: named as the run's, and `--data` gives its new place (its
    // content is still checked); the bundle folder holds the bundle only.
    let moved = dir.path().join("moved.txt");
    std::fs::rename(&data, &moved).unwrap();
    let moved_names = dir.path().join("moved.items.tsv");
    let again = dir.path().join("again");
    let a = again.to_str().unwrap();
    fails(
        &["export", "--checkpoint", r, "--out", a],
        "is not there any more: give its new path with --data",
    );
    fails(&["eval", "--checkpoint", r], "is not there any more");
    fails(
        &["export", "--checkpoint", r, "--out", a, "--data", o],
        "trained on",
    );
    // Its catalogue is looked for beside it.
    fails(
        &[
            "export",
            "--checkpoint",
            r,
            "--out",
            a,
            "--data",
            moved.to_str().unwrap(),
        ],
        "moved.items.tsv is not there any more",
    );
    std::fs::rename(dir.path().join("shop.items.tsv"), &moved_names).unwrap();
    ok(&[
        "export",
        "--checkpoint",
        r,
        "--out",
        a,
        "--data",
        moved.to_str().unwrap(),
    ]);
    let mut files: Vec<String> = std::fs::read_dir(&again)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["bundle.json", "bundle.ssib"]);
}

/// The hostile-input classes that are not about runs: quoting in raw logs, non-finite
/// timestamps, too few negatives, a full standard output.
#[test]
fn hostile_inputs_get_clear_errors_or_correct_results() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    // Quoted names holding the delimiter are items of their own.
    let mut text = String::from("user,item,ts\n");
    for u in 0..4 {
        for (t, item) in ["\"Book, vol 1\"", "\"Book, vol 2\"", "\"Book, vol 3\""]
            .iter()
            .enumerate()
        {
            text.push_str(&format!("u{u},{item},{t}\n"));
        }
    }
    text.push_str("u9,x,NaN\n");
    std::fs::write(p("raw.csv"), text).unwrap();
    let out = ssi(&[
        "data",
        "ingest",
        &p("raw.csv"),
        "--out",
        &p("books.txt"),
        "--k-core",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("raw.csv:14") && stderr.contains("not finite"),
        "{stderr}"
    );
    let st = json(&ok(&["data", "stats", &p("books.txt"), "--json"]));
    assert_eq!(st["items"], 3, "three books, not one \"Book\"");
    // A run is a folder: --out naming a file is refused, the file untouched.
    std::fs::write(p("afile"), "mine").unwrap();
    fails(
        &["train", "--model", "hgn", "--out", &p("afile")],
        "is a file",
    );
    assert_eq!(std::fs::read_to_string(p("afile")).unwrap(), "mine");
    // Four users who each bought every item: no negative exists, and the table says so.
    let table = ok(&["eval", "--model", "mostpop", "--data", &p("books.txt")]);
    assert!(table.contains("fewer than 99 items"), "{table}");
    // Outputs are resolved before the exists/is-input checks; devices are never replaced.
    let sneaky = format!("{}/missing/../books.txt", dir.path().display());
    fails(&["data", "synth", "--out", &sneaky], "already exists");
    fails(
        &["data", "synth", "--out", "/dev/null", "--force"],
        "not a regular file",
    );
    fails(
        &[
            "eval",
            "--model",
            "mostpop",
            "--data",
            &p("books.txt"),
            "--negatives",
            "0",
        ],
        "--negatives 0",
    );
    // A folder holding files a run writes, but no run, is not trained into.
    std::fs::create_dir_all(p("foreign")).unwrap();
    std::fs::write(p("foreign/log.jsonl"), "mine\n").unwrap();
    fails(
        &[
            "train",
            "--model",
            "gru4rec",
            "--data",
            &p("books.txt"),
            "--out",
            &p("foreign"),
        ],
        "no config.json",
    );
    assert_eq!(
        std::fs::read_to_string(p("foreign/log.jsonl")).unwrap(),
        "mine\n"
    );
    // Three books per user leave one training item each: nothing to train on, and no run
    // folder of zero steps.
    fails(
        &[
            "train",
            "--model",
            "sasrec",
            "--data",
            &p("books.txt"),
            "--out",
            &p("untrained"),
        ],
        "nothing to train on",
    );
    assert!(!std::path::Path::new(&p("untrained")).exists());
    fails(
        &[
            "train",
            "--model",
            "sasrec",
            "--data",
            &p("books.txt"),
            "--out",
            &p("x"),
            "--set",
            "hidden=abc",
        ],
        "hidden",
    );
    // A full disk on standard output is an error, not a panic.
    let full = std::fs::File::create("/dev/full");
    if let Ok(full) = full {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ssi"))
            .args(["data", "stats", &p("books.txt")])
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("standard output") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[test]
fn model_scoped_settings_apply_to_their_model_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 3);
    let d = data.to_str().unwrap();
    for (model, want) in [("sasrec", 0.5), ("gru4rec", 0.2)] {
        let out = dir.path().join(model);
        ok(&[
            "train",
            "--model",
            model,
            "--data",
            d,
            "--out",
            out.to_str().unwrap(),
            "--set",
            "sasrec.dropout=0.5",
            "--set",
            "hidden=8",
            "--epochs",
            "1",
            "--json",
        ]);
        let cfg = json(&std::fs::read_to_string(out.join("config.json")).unwrap());
        assert_eq!(cfg["model"]["dropout"].as_f64(), Some(want), "{model}");
    }
    let out = dir.path().join("x");
    fails(
        &[
            "train",
            "--model",
            "hgn",
            "--data",
            d,
            "--out",
            out.to_str().unwrap(),
            "--set",
            "transformer.dropout=0.5",
        ],
        "unknown model",
    );
}

#[test]
fn outputs_never_replace_inputs_or_existing_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 120, 3);
    let d = data.to_str().unwrap();
    let before = std::fs::read(&data).unwrap();
    // An existing dataset is not overwritten without --force...
    fails(
        &["data", "synth", "--out", d, "--users", "50"],
        "already exists",
    );
    assert_eq!(std::fs::read(&data).unwrap(), before);
    // ...and with it, it is.
    ok(&["data", "synth", "--out", d, "--users", "50", "--force"]);
    assert_ne!(std::fs::read(&data).unwrap(), before);
    // Ingest never writes over its own input, even with --force.
    let log = dir.path().join("raw.csv");
    let mut text = String::from("user,item,ts\n");
    for u in 0..6 {
        for i in 0..6 {
            text.push_str(&format!("u{u},sku-{},{}\n", (u + i) % 7, 1000 - i));
        }
    }
    std::fs::write(&log, &text).unwrap();
    let l = log.to_str().unwrap();
    let args = ["data", "ingest", l, "--out", l, "--k-core", "2", "--force"];
    fails(&args, "is also the input");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
    // The candidates file lists every user with its 99 negatives, and is not overwritten.
    let neg = dir.path().join("test.neg");
    let n = neg.to_str().unwrap();
    ok(&["data", "negatives", "--data", d, "--out", n]);
    let lines: Vec<String> = std::fs::read_to_string(&neg)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 50);
    assert!(
        lines.iter().all(|l| l.split(' ').count() == 100),
        "{}",
        lines[0]
    );
    fails(
        &["data", "negatives", "--data", d, "--out", n],
        "already exists",
    );
    ok(&["data", "negatives", "--data", d, "--out", n, "--force"]);
    // `eval --negatives FILE` ranks exactly those candidates: the same figures as the seed's draw.
    let drawn = json(&ok(&["eval", "--model", "markov", "--data", d, "--json"]));
    let read = json(&ok(&[
        "eval",
        "--model",
        "markov",
        "--data",
        d,
        "--json",
        "--negatives",
        n,
    ]));
    assert_eq!(drawn["ndcg@10"], read["ndcg@10"]);
    assert_eq!(read["negatives"], 99);
    // Named by their file, not by a seed they were not drawn with.
    assert_eq!(read["negatives_file"], n);
    assert!(
        read.get("seed").is_none() && drawn["seed"] == 42,
        "{read} {drawn}"
    );
    // A catalogue too small for 99: every line lists all its user's unseen items, and the
    // report labels and warns as the same candidates drawn by seed do.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "1 1 2 3 4\n2 2 3 4 5\n3 3 4 5 6\n4 4 5 6 1\n").unwrap();
    let (sd, sn) = (small.to_str().unwrap(), dir.path().join("small.neg"));
    ok(&[
        "data",
        "negatives",
        "--data",
        sd,
        "--out",
        sn.to_str().unwrap(),
    ]);
    let drawn = json(&ok(&["eval", "--model", "mostpop", "--data", sd, "--json"]));
    let read = json(&ok(&[
        "eval",
        "--model",
        "mostpop",
        "--data",
        sd,
        "--json",
        "--negatives",
        sn.to_str().unwrap(),
    ]));
    assert_eq!(drawn["ndcg@10"], read["ndcg@10"]);
    for key in ["negatives", "users_short_of_negatives"] {
        assert_eq!(drawn[key], read[key], "{key}: {drawn} {read}");
    }
    let bad = dir.path().join("bad.neg");
    let b = bad.to_str().unwrap();
    let with_bad = ["eval", "--model", "markov", "--data", d, "--negatives", b];
    std::fs::write(&bad, lines[1..].join("\n")).unwrap();
    fails(&with_bad, "no line for user");
    // Another dataset's file: its users are not this dataset's.
    let other: Vec<String> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (user, rest) = l.split_once(' ').unwrap();
            format!("{} {rest}", user.parse::<u32>().unwrap() + 1000)
        })
        .collect();
    std::fs::write(&bad, other.join("\n")).unwrap();
    fails(&with_bad, "names a user of dataset");
}

#[test]
fn settings_out_of_range_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 120, 3);
    let d = data.to_str().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    for (model, setting, needle) in [
        ("sasrec", "heads=3", "heads"),
        ("sasrec", "hidden=0", "hidden"),
        ("bert4rec", "mask_prob=2", "mask_prob"),
        ("gru4rec", "dropout=1.5", "dropout"),
        ("hgn", "lr=-1", "lr"),
        ("hgn", "lr=0", "lr"),
        // Values that round to 0 in f32, where they are applied.
        ("hgn", "lr=1e-300", "lr"),
        ("gru4rec", "adam_epsilon=1e-300", "adam_epsilon"),
        ("sasrec", "batch_size=0", "batch_size"),
        ("sasrec", "max_len=0", "max_len"),
        ("sasrec", "max_steps_per_epoch=0", "max_steps_per_epoch"),
        ("sasrec", "valid_users=0", "valid_users"),
        ("sasrec", "init_std=-1", "init_std"),
        ("sasrec", "weight_decay=-0.1", "weight_decay"),
        ("grec", "decoder_input=both", "decoder_input"),
        (
            "sasrec",
            "sampled_negatives=100000",
            "sampled_negatives 100000 is not below",
        ),
        ("sasrec", "n_items=5", "\"n_items\" is not a setting"),
    ] {
        fails(
            &[
                "train", "--model", model, "--data", d, "--out", r, "--set", setting,
            ],
            needle,
        );
        assert!(!run.exists(), "{setting}: the run folder was created");
    }
    fails(
        &[
            "train",
            "--model",
            "sasrec",
            "--data",
            d,
            "--out",
            r,
            "--set",
            "patience=0",
            "--set",
            "patience_steps=0",
        ],
        "patience 0 with patience_steps 0",
    );
    // An option and a --set of the same setting that disagree: refused, nothing written.
    for (option, set, needle) in [
        (
            "--epochs=2",
            "epochs=1",
            "--epochs 2 and --set epochs=1 disagree",
        ),
        ("--seed=3", "seed=4", "--seed 3 and --set seed=4 disagree"),
    ] {
        fails(
            &[
                "train", "--model", "hgn", "--data", d, "--out", r, option, "--set", set,
            ],
            needle,
        );
        assert!(!run.exists(), "{option}: the run folder was created");
    }
    // A settings file that gives a setting twice is refused, naming it.
    let twice = dir.path().join("twice.json");
    std::fs::write(&twice, r#"{"hidden": 16, "hidden": 32}"#).unwrap();
    fails(
        &[
            "train",
            "--model",
            "sasrec",
            "--data",
            d,
            "--out",
            r,
            "--config",
            twice.to_str().unwrap(),
        ],
        "\"hidden\" is given twice",
    );
    assert!(!run.exists());
}

#[test]
fn a_run_folder_keeps_foreign_files_and_refuses_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 120, 3);
    let d = data.to_str().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("epoch-notes.txt"), "mine").unwrap();
    let r = run.to_str().unwrap();
    let args = [
        "train",
        "--model",
        "sasrec",
        "--data",
        d,
        "--out",
        r,
        "--epochs",
        "2",
        "--set",
        "hidden=16",
        "--set",
        "max_steps_per_epoch=2",
    ];
    let out = ok(&args);
    assert!(
        out.contains("stopped: reached the epoch limit (2)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("epoch-notes.txt")).unwrap(),
        "mine"
    );
    // Only the last epoch's files remain, and no temporary file.
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"epoch-0002.model.bpk".to_string()),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("epoch-0001") || n.ends_with(".tmp")),
        "{names:?}"
    );
    // A settings file named config.json, or a command.txt of someone else, is not a run's:
    // training there would replace it.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let o = other.to_str().unwrap();
    let mut fresh: Vec<&str> = args.to_vec();
    fresh[6] = o;
    for (name, text, needle) in [
        (
            "config.json",
            "{\"hidden\": 8}",
            "is not the config.json of an ssi run",
        ),
        (
            "command.txt",
            "my notes",
            "holds command.txt but no config.json",
        ),
    ] {
        std::fs::write(other.join(name), text).unwrap();
        fails(&fresh, needle);
        assert_eq!(std::fs::read_to_string(other.join(name)).unwrap(), text);
        assert!(
            !other.join(".lock").exists(),
            "a refused folder gained a lock file"
        );
        std::fs::remove_file(other.join(name)).unwrap();
    }
    // --resume with another model is refused and leaves config.json alone.
    let config = std::fs::read(run.join("config.json")).unwrap();
    fails(
        &[
            "train", "--model", "gru4rec", "--data", d, "--out", r, "--resume", "--epochs", "3",
        ],
        "holds a SASRec model run",
    );
    assert_eq!(std::fs::read(run.join("config.json")).unwrap(), config);
}

/// `ssi report` from run folders, then again once the run folders are gone (a new machine):
/// the rows come back from `runs.json`; a damaged archive is an error that names it and
/// leaves the page as it was.
#[test]
fn report_rows_outlive_their_run_folders() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let runs = dir.path().join("runs");
    let out = dir.path().join("results");
    ok(&[
        "train",
        "--model",
        "sasrec",
        "--data",
        data.to_str().unwrap(),
        "--out",
        runs.join("shop-sasrec").to_str().unwrap(),
    ]
    .iter()
    .chain(&TINY_RUN)
    .copied()
    .collect::<Vec<_>>());
    let report = |args: &[&str]| {
        let mut c = cmd(&[&["report"], args, &["--out", out.to_str().unwrap()]].concat());
        c.current_dir(dir.path());
        c.assert()
    };
    // A root given twice, and reached again through a link back up, is still one row.
    #[cfg(unix)]
    std::os::unix::fs::symlink("..", runs.join("shop-sasrec").join("up")).unwrap();
    let r = runs.to_str().unwrap();
    report(&[r, r]).success();
    let table = std::fs::read_to_string(out.join("table2.csv")).unwrap();
    assert!(table.contains(",SASRec,shop-sasrec,"), "{table}");
    assert_eq!(table.lines().count(), 2, "one row: {table}");
    assert!(out.join("runs.json").exists());
    #[cfg(unix)]
    std::fs::remove_file(runs.join("shop-sasrec").join("up")).unwrap();
    // A second report into the folder waits for the first (here: a held lock), then writes.
    let held = std::fs::File::open(out.join(".report.lock")).unwrap();
    held.lock().unwrap();
    let mut waiting = std::process::Command::new(env!("CARGO_BIN_EXE_ssi"))
        .args(["report", r, "--out", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "did not wait for the lock"
    );
    drop(held);
    let done = waiting.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{said}");
    assert!(said.contains("another `ssi report` is writing"), "{said}");
    // A folder with a README of its own is not a page to replace, even one that quotes the
    // words a page begins with.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    let notes = "# My notes\nThe page beside this one is Generated by `ssi report`.\n";
    std::fs::write(mine.join("README.md"), notes).unwrap();
    cmd(&["report", r, "--out", mine.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "README.md: was not written by `ssi report`",
        ));
    assert_eq!(
        std::fs::read_to_string(mine.join("README.md")).unwrap(),
        notes
    );
    assert!(!mine.join("table2.csv").exists());
    assert!(!mine.join(".report.lock").exists());
    // A refused report removes every folder it made, not only the last.
    let (empty, deep) = (dir.path().join("empty"), dir.path().join("x/y/z"));
    std::fs::create_dir_all(&empty).unwrap();
    let (e, d) = (empty.to_str().unwrap(), deep.to_str().unwrap());
    fails(&["report", e, "--out", d], "no finished run");
    assert!(!dir.path().join("x").exists());
    // A linked archive is not replaced by a file behind the back of what it links to.
    #[cfg(unix)]
    {
        let linked = dir.path().join("linked");
        std::fs::create_dir_all(&linked).unwrap();
        std::fs::copy(out.join("runs.json"), dir.path().join("shared.json")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("shared.json"), linked.join("runs.json"))
            .unwrap();
        fails(
            &["report", r, "--out", linked.to_str().unwrap()],
            "runs.json is a link",
        );
        assert!(
            std::fs::symlink_metadata(linked.join("runs.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(!linked.join("table2.csv").exists());
    }

    std::fs::remove_dir_all(&runs).unwrap();
    report(&[])
        .success()
        .stdout(predicate::str::contains("0 runs found, 1 kept"));
    assert_eq!(
        std::fs::read_to_string(out.join("table2.csv")).unwrap(),
        table
    );

    std::fs::write(out.join("runs.json"), "[{").unwrap();
    report(&[]).code(1).stderr(
        predicate::str::contains("runs.json").and(predicate::str::contains("panicked").not()),
    );
    assert_eq!(
        std::fs::read_to_string(out.join("table2.csv")).unwrap(),
        table
    );
}

/// A catalogue beside the dataset that lists more items than the file uses changes the item
/// count; a model trained before it appeared is refused with the catalogue named as the cause.
#[test]
fn a_catalogue_that_changes_the_item_count_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let catalogue = dir.path().join("shop.items.tsv");
    let names = std::fs::read_to_string(&catalogue).unwrap();
    std::fs::remove_file(&catalogue).unwrap();
    let run = dir.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let train = [
        &["train", "--model", "sasrec", "--data", d, "--out", r][..],
        &TINY_RUN[..],
    ]
    .concat();
    ok(&train);
    let n = names.lines().count() - 1;
    let extra: String = (n + 1..=n + 5)
        .map(|i| format!("{i}\tExtra {i}\tNone\n"))
        .collect();
    std::fs::write(&catalogue, names.clone() + &extra).unwrap();
    fails(
        &["eval", "--checkpoint", r, "--data", d],
        "shop.items.tsv: delete or regenerate",
    );
    // A catalogue that lists just the file's items raised nothing: it is not blamed.
    let r3 = dir.path().join("run3");
    let r3 = r3.to_str().unwrap();
    ok(&[
        &["train", "--model", "sasrec", "--data", d, "--out", r3][..],
        &TINY_RUN[..],
    ]
    .concat());
    std::fs::write(&catalogue, &names).unwrap();
    cmd(&["eval", "--checkpoint", r3, "--data", d])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("was trained on")
                .and(predicate::str::contains("delete or regenerate").not()),
        );
    // Other users mean another dataset: the catalogue beside it is not blamed.
    let elsewhere = dir.path().join("other");
    std::fs::create_dir(&elsewhere).unwrap();
    let other = synth(&elsewhere, 300, 5);
    let r2 = dir.path().join("run2");
    cmd(&[
        "train",
        "--model",
        "sasrec",
        "--data",
        other.to_str().unwrap(),
        "--init",
        r,
        "--out",
        r2.to_str().unwrap(),
    ])
    .assert()
    .code(1)
    .stderr(
        predicate::str::contains("was trained on")
            .and(predicate::str::contains("delete or regenerate").not()),
    );
}

/// `--init` from a run trained with other model settings says which, and goes on.
#[test]
fn init_names_the_model_settings_it_does_not_share() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let (run, run2) = (dir.path().join("run"), dir.path().join("run2"));
    let d = data.to_str().unwrap();
    let first = [
        &["train", "--model", "sasrec", "--data", d, "--out"][..],
        &[run.to_str().unwrap()],
        &TINY_RUN[..],
    ]
    .concat();
    ok(&first);
    let second = [
        &["train", "--model", "sasrec", "--data", d, "--out"][..],
        &[run2.to_str().unwrap(), "--init", run.to_str().unwrap()],
        &["--set", "attend_padding=false"],
        &TINY_RUN[..],
    ]
    .concat();
    cmd(&second)
        .assert()
        .success()
        .stderr(predicate::str::contains("attend_padding true -> false"));
}

#[test]
fn bench_refuses_sizes_beyond_the_memory_before_allocating() {
    // A step count that would overflow with the warm-up, or run for days, is refused.
    fails(
        &[
            "bench",
            "--models",
            "hgn",
            "--steps",
            "18446744073709551615",
        ],
        "more than a million steps per model",
    );
    fails(
        &[
            "bench", "--models", "sasrec", "--items", "20000000", "--batch", "1", "--len", "2",
            "--steps", "1", "--hidden", "8192",
        ],
        "item table of",
    );
    fails(
        &[
            "bench", "--models", "sasrec", "--items", "10", "--batch", "99", "--len", "4096",
            "--steps", "1",
        ],
        "attention scores per head and layer",
    );
    // A size the model refuses names bench's own flag.
    fails(
        &[
            "bench", "--models", "sasrec", "--items", "10", "--batch", "2", "--len", "1",
            "--steps", "1",
        ],
        "max_len from --len 1",
    );
    fails(
        &[
            "bench",
            "--models",
            "sasrec",
            "--items",
            "10",
            "--batch",
            "2",
            "--steps",
            "1",
            "--dropout-prob",
            "nan",
        ],
        "--dropout-prob NaN",
    );
    fails(
        &[
            "bench", "--models", "sasrec", "--items", "10", "--batch", "2", "--steps", "1",
            "--hidden", "3",
        ],
        "--hidden must be even",
    );
    // Every model's settings are checked before the first is measured: nothing is printed.
    cmd(&[
        "bench",
        "--models",
        "sasrec,bert4rec",
        "--items",
        "10",
        "--batch",
        "2",
        "--len",
        "4",
        "--steps",
        "1",
        "--mask-prob",
        "2",
    ])
    .assert()
    .code(1)
    .stdout(predicate::str::is_empty())
    .stderr(predicate::str::contains("mask_prob"));
}

/// Stopping `quickstart --jobs 2` (or `reproduce`) with SIGTERM stops the stage processes it
/// started: none goes on training alone, holding its run's lock.
#[cfg(target_os = "linux")]
#[test]
fn stopping_a_parallel_run_stops_its_stages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qs");
    let mut parent = std::process::Command::new(env!("CARGO_BIN_EXE_ssi"))
        .args(["quickstart", "--epochs", "1000", "--jobs", "2", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = out.to_string_lossy().into_owned();
    let parent_pid = parent.id().to_string();
    // Processes other than the parent whose command line names the output folder.
    let stages = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy() != parent_pid)
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(&marker))
            .count()
    };
    let start = std::time::Instant::now();
    while stages() == 0 {
        assert!(
            start.elapsed().as_secs() < 120,
            "no stage process started in 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &parent_pid])
        .status()
        .unwrap();
    assert!(status.success());
    parent.wait().unwrap();
    let stopped = std::time::Instant::now();
    while stages() > 0 {
        if stopped.elapsed().as_secs() >= 60 {
            // Leave no orphan of a failed test behind.
            let _ = std::process::Command::new("pkill")
                .args(["-f", &marker])
                .status();
            panic!("stage processes still running a minute after their parent was stopped");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn teacher_lists_are_trimmed_and_empty_entries_named() {
    cmd(&["distill", "--teachers", "a,,b", "--student", "hgn"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("an empty entry"));
    // "a " is the folder "a": the error names it without the space.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    fails(
        &[
            "distill",
            "--teachers",
            "nowhere-a , nowhere-b",
            "--student",
            "hgn",
            "--out",
            out.to_str().unwrap(),
        ],
        "nowhere-a: no such run folder",
    );
    // `--ensemble` alike.
    let out = ssi(&["eval", "--ensemble", "nowhere-a , nowhere-b"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("nowhere-a: no such run folder") && !said.contains("  "),
        "{said}"
    );
}

/// An S3-Rec stage cut off after its pre-training (its folder holds only `pretrain/`) is resumed
/// by the same `reproduce` command, not refused.
#[test]
fn reproduce_resumes_an_s3rec_stage_cut_off_in_pretraining() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 3);
    let out = dir.path().join("rp");
    let args = [
        "reproduce",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--baselines",
        "s3rec",
        "--students",
        "--set",
        "epochs=1",
        "--set",
        "pretrain_epochs=1",
        "--set",
        "hidden=16",
        "--set",
        "max_steps_per_epoch=2",
    ];
    ok(&args);
    let stage = out.join("s3rec");
    assert!(stage.join("pretrain").join("state.json").exists());
    for entry in std::fs::read_dir(&stage).unwrap().flatten() {
        let keep = [".lock", "command.txt", "pretrain"];
        if !keep.contains(&entry.file_name().to_str().unwrap()) {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let again = ok(&args);
    assert!(again.contains("S3-Rec"), "{again}");
    assert!(stage.join("test.json").exists());
}

/// `reproduce` reads back only a run's own test figures (an `eval` of another split saved over
/// them is refused, naming the file and the way out), and refuses an output folder holding a
/// run of another dataset before it trains or writes anything.
#[test]
fn reproduce_reads_only_its_own_runs_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 80, 3);
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let b = synth(&other, 80, 2);
    let out = dir.path().join("rp");
    let args = |data: &std::path::Path, model: &str| -> Vec<String> {
        [
            "reproduce",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--baselines",
            model,
            "--students",
            "--set",
            "hidden=8",
            "--set",
            "epochs=1",
            "--set",
            "max_steps_per_epoch=2",
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |v: Vec<String>| cmd(&v.iter().map(String::as_str).collect::<Vec<_>>()).assert();
    run(args(&data, "hgn")).success();
    let test = out.join("hgn/test.json");
    let own = std::fs::read(&test).unwrap();
    let valid = ok(&[
        "eval",
        "--checkpoint",
        out.join("hgn").to_str().unwrap(),
        "--split",
        "valid",
        "--json",
    ]);
    std::fs::write(&test, valid).unwrap();
    run(args(&data, "hgn")).code(1).stderr(
        predicate::str::contains("split = \"valid\"")
            .and(predicate::str::contains("delete that file")),
    );
    std::fs::remove_file(&test).unwrap();
    run(args(&data, "hgn")).success();
    assert_eq!(std::fs::read(&test).unwrap(), own);
    // Another dataset: refused before GRU4Rec trains, and MostPop's figures are kept.
    let mostpop = std::fs::read(out.join("mostpop.json")).unwrap();
    run(args(&b, "gru4rec"))
        .code(1)
        .stderr(predicate::str::contains("was trained on"));
    assert!(!out.join("gru4rec").exists());
    assert_eq!(std::fs::read(out.join("mostpop.json")).unwrap(), mostpop);
}

/// `ssi train --resume` of an S3-Rec run stopped in its pre-training goes on with the settings
/// it was started with: others are refused (naming them), and its command.txt is kept.
#[test]
fn an_s3rec_run_stopped_in_pretraining_resumes_with_its_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 3);
    let out = dir.path().join("s3");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        &["train", "--model", "s3rec", "--data", d, "--out", o][..],
        &TINY_RUN[..],
        &["--set", "pretrain_epochs=1"],
    ]
    .concat();
    ok(&args);
    for entry in std::fs::read_dir(&out).unwrap().flatten() {
        if ![".lock", "command.txt", "pretrain"].contains(&entry.file_name().to_str().unwrap()) {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    fails(
        &[
            "train", "--model", "s3rec", "--data", d, "--out", o, "--resume",
        ],
        "hidden 16 -> 64",
    );
    let command = std::fs::read_to_string(out.join("command.txt")).unwrap();
    assert!(command.contains("hidden=16"), "{command}");
    // The refusal gives the command to run.
    fails(
        &["train", "--out", o, "--resume"],
        &format!(
            "run the command that started it with --resume: {} --resume",
            command.lines().next().unwrap().trim()
        ),
    );
    let mut resume = args.clone();
    resume.push("--resume");
    // Cut off in its pre-training, it resumes without --data on the file its stage records,
    // and without --model as the model its stage records.
    let mut no_data = resume.clone();
    no_data.retain(|a| !["--data", d, "--model", "s3rec"].contains(a));
    cmd(&no_data)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "reads the dataset the run records",
        ));
    assert!(out.join("test.json").exists());
    // Its pre-training stage is not a run of its own: trained and read through its run only.
    let stage = out.join("pretrain");
    let s = stage.to_str().unwrap();
    let stage_args = [
        &[
            "train", "--model", "s3rec", "--data", d, "--out", s, "--resume",
        ][..],
        &TINY_RUN[..],
        &["--set", "pretrain_epochs=1"],
    ]
    .concat();
    fails(&stage_args, "is the pre-training stage of the S3-Rec run");
    fails(
        &["eval", "--checkpoint", s, "--data", d],
        "is the pre-training stage",
    );
    let bundle = dir.path().join("bundle");
    fails(
        &[
            "export",
            "--checkpoint",
            s,
            "--out",
            bundle.to_str().unwrap(),
        ],
        "is the pre-training stage",
    );
    assert!(!stage.join("test.json").exists() && !bundle.exists());
    // Its pre-trained weights may start another fine-tuning (--init in place of the stage).
    let again = dir.path().join("again");
    ok(&[
        &["train", "--model", "s3rec", "--data", d, "--init", s][..],
        &["--out", again.to_str().unwrap()],
        &TINY_RUN[..],
    ]
    .concat());
}

/// S3-Rec pre-trains into `OUT/pretrain`, which is checked as `OUT` is before anything is
/// written: a user's files there, or a run of its own, are refused and left as they were (and a
/// refused command leaves nothing behind in `OUT`); a distilled S3-Rec student pre-trains too.
#[test]
fn s3rec_never_pretrains_over_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 3);
    let d = data.to_str().unwrap();
    let pre = ["--set", "pretrain_epochs=1"];
    let train = |out: &std::path::Path| {
        [
            &["train", "--model", "s3rec", "--data", d][..],
            &["--out", out.to_str().unwrap()],
            &TINY_RUN[..],
            &pre,
        ]
        .concat()
        .into_iter()
        .map(String::from)
        .collect::<Vec<String>>()
    };
    fn as_strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    // A user's file of a run's name in OUT/pretrain.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(mine.join("pretrain")).unwrap();
    std::fs::write(mine.join("pretrain/log.jsonl"), "my notes").unwrap();
    fails(
        &as_strs(&train(&mine)),
        "holds log.jsonl but no config.json",
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("pretrain/log.jsonl")).unwrap(),
        "my notes"
    );
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
    // A finished run of its own in OUT/pretrain stays a run of its own.
    let exp = dir.path().join("exp");
    let own = exp.join("pretrain");
    ok(&as_strs(&train(&own)));
    fails(&as_strs(&train(&exp)), "holds a run of its own (S3-Rec)");
    assert_eq!(std::fs::read_dir(&exp).unwrap().count(), 1);
    ok(&["eval", "--checkpoint", own.to_str().unwrap(), "--no-full"]);
    // A stage cut off in pre-training continues only with --resume.
    let cut = dir.path().join("cut");
    ok(&as_strs(&train(&cut)));
    for entry in std::fs::read_dir(&cut).unwrap().flatten() {
        if ![".lock", "command.txt", "pretrain"].contains(&entry.file_name().to_str().unwrap()) {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    fails(&as_strs(&train(&cut)), "pass --resume");
    // An S3-Rec student pre-trains before it imitates, as `train` does.
    let teacher = dir.path().join("teacher");
    let t = teacher.to_str().unwrap();
    ok(&[
        &["pretrain", "--task", "temporal", "--data", d, "--out", t][..],
        &TINY_RUN[..],
    ]
    .concat());
    let student = dir.path().join("student");
    ok(&[
        &[
            "distill",
            "--teachers",
            t,
            "--student",
            "s3rec",
            "--data",
            d,
        ][..],
        &["--out", student.to_str().unwrap()],
        &TINY_RUN[..],
        &pre,
    ]
    .concat());
    assert!(student.join("pretrain/state.json").exists());
}

/// Outputs never replace what a command reads: the dataset's catalogue is an input of
/// `data negatives`; an empty SSI_CACHE is unset, not the working folder; a cache that is a
/// file is named as such.
#[test]
fn outputs_and_caches_never_land_on_the_users_files() {
    let dir = tempfile::tempdir().unwrap();
    // A shop of one category: its personas favour that one.
    let one = tempfile::tempdir().unwrap();
    synth(one.path(), 20, 1);
    let data = synth(dir.path(), 100, 3);
    let d = data.to_str().unwrap();
    let catalogue = dir.path().join("shop.items.tsv");
    let before = std::fs::read(&catalogue).unwrap();
    fails(
        &[
            "data",
            "negatives",
            "--data",
            d,
            "--out",
            catalogue.to_str().unwrap(),
            "--force",
        ],
        "is also the input",
    );
    assert_eq!(std::fs::read(&catalogue).unwrap(), before);

    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("beauty.txt"), "1 1 2 3\n").unwrap();
    let xdg = dir.path().join("xdg");
    let (url, h) = serve(b"1 2 3 4\n".to_vec(), 1);
    cmd(&["data", "fetch", "beauty", "--base-url", &url])
        .env("SSI_CACHE", "")
        .env("XDG_CACHE_HOME", &xdg)
        .current_dir(&work)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("checksum mismatch")
                .and(predicate::str::contains("is not the published").not()),
        );
    h.join().unwrap();
    assert_eq!(
        std::fs::read_to_string(work.join("beauty.txt")).unwrap(),
        "1 1 2 3\n"
    );
    fails(
        &["data", "fetch", "beauty", "--cache", d],
        "is a file: give a folder",
    );
}

/// A path that is not UTF-8 trains like any other (the command is recorded lossily), rather
/// than panicking where the command line is recorded.
#[cfg(target_os = "linux")]
#[test]
fn paths_that_are_not_utf8_are_usable() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 4);
    let run = dir.path().join(std::ffi::OsStr::from_bytes(b"run\xff"));
    let out = Command::new(env!("CARGO_BIN_EXE_ssi"))
        .args([
            "train", "--model", "hgn", "--epochs", "1", "--set", "hidden=8",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    let recorded = std::fs::read_to_string(run.join("command.txt")).unwrap();
    assert!(recorded.contains("run\u{fffd}"), "{recorded}");
    // A path a run records in its config.json (a dataset, a pipeline's folder, whose students
    // record their teachers) is refused before anything is trained or written.
    let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"data\xff"));
    std::fs::create_dir(&odd).unwrap();
    std::fs::copy(&data, odd.join("shop.txt")).unwrap();
    // Each command is refused naming the option, and leaves its --out unmade.
    let refused = |args: &[&str], data: &Path, out: &Path, option: &str| {
        let run = Command::new(env!("CARGO_BIN_EXE_ssi"))
            .args(args)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            run.status.code() == Some(1)
                && stderr.contains(option)
                && stderr.contains("not valid UTF-8"),
            "{stderr}"
        );
        assert!(!out.exists());
    };
    refused(
        &["train", "--model", "hgn", "--epochs", "1"],
        &odd.join("shop.txt"),
        &dir.path().join("other"),
        "--data",
    );
    refused(
        &["reproduce", "--baselines", "--students", "hgn"],
        &data,
        &dir.path().join(std::ffi::OsStr::from_bytes(b"rp\xff")),
        "--out",
    );
}

/// An `--out` that is a link to nothing, or a link that loops, is named as such, and nothing is
/// created through it.
#[cfg(unix)]
#[test]
fn an_out_that_links_to_nothing_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 4);
    let link = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
    let (d, l) = (data.to_str().unwrap(), link.to_str().unwrap());
    fails(
        &["train", "--model", "hgn", "--data", d, "--out", l],
        "is a link to nothing",
    );
    fails(
        &["reproduce", "--data", d, "--out", l],
        "is a link to nothing",
    );
    fails(
        &["report", "--out", l, dir.path().to_str().unwrap()],
        "a link to nothing",
    );
    assert!(!dir.path().join("nowhere").exists());
    // A link to itself is named as a loop, not as a link to nothing.
    let looped = dir.path().join("loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let o = looped.to_str().unwrap();
    for args in [
        &["train", "--model", "hgn", "--data", d, "--out", o][..],
        &["reproduce", "--data", d, "--out", o],
        &["export", "--checkpoint", d, "--out", o],
    ] {
        fails(args, "is a link that loops back on itself");
    }
}

/// A tiny catalogue: `data negatives` lists every item a user has not seen and says so; `data
/// stats` counts the same items in text and JSON; a file with a NUL byte is not read as text.
#[test]
fn small_catalogues_and_binary_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny.txt");
    std::fs::write(&data, "1 1 2 3\n2 2 3 4\n3 1 3 4\n4 1 2 4\n").unwrap();
    let d = data.to_str().unwrap();
    let neg = dir.path().join("tiny.neg");
    let out = cmd(&[
        "data",
        "negatives",
        "--data",
        d,
        "--out",
        neg.to_str().unwrap(),
    ])
    .assert()
    .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains(
            "note: 4 user(s) have fewer than 99 items outside their history (user 1 first)"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&neg).unwrap().lines().next(),
        Some("1 4")
    );
    let text = ok(&["data", "stats", d]);
    let st = json(&ok(&["data", "stats", d, "--json"]));
    assert!(
        text.contains(&format!(
            "items                    {} (of the ids 1..=4)",
            st["items"]
        )),
        "{text}"
    );
    let bin = dir.path().join("bin.txt");
    std::fs::write(&bin, b"1 1 2 3\n2 2\x003 4\n").unwrap();
    fails(
        &["data", "stats", bin.to_str().unwrap()],
        "byte 11 is NUL: not a text file",
    );
}

/// A dataset read from a pipe is recorded by its path, but that path reads nothing, or other
/// data, a second time: commands that would read it again say so instead of waiting or blaming
/// the content.
#[cfg(unix)]
#[test]
fn a_dataset_from_a_pipe_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 60, 3);
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    cmd(&[
        &[
            "train",
            "--model",
            "hgn",
            "--data",
            "/dev/stdin",
            "--out",
            r,
        ][..],
        &TINY_RUN[..],
    ]
    .concat())
    .pipe_stdin(&data)
    .unwrap()
    .assert()
    .success();
    // stdin is /dev/null here: a device, not the file trained on.
    cmd(&["eval", "--checkpoint", r]).assert().failure().stderr(
        predicates::str::contains("cannot be read again").and(predicates::str::contains("--data")),
    );
    let d = data.to_str().unwrap();
    ok(&["eval", "--checkpoint", r, "--data", d]);
}

/// A run keeps the best epoch by each selection rule besides its own (the trajectory is the
/// same whichever rule keeps the epoch): `test-by-RULE.json` holds the test figures of the epoch
/// its log says is best by that rule, `eval --kept-by RULE` ranks the same weights, and the
/// report carries them.
#[test]
fn a_run_keeps_the_best_epoch_by_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 200, 4);
    let run = dir.path().join("runs").join("sasrec");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let train = |epochs: &str, resume: bool| {
        let mut args = vec!["train", "--model", "sasrec", "--data", d, "--out", r];
        args.extend(["--set", "hidden=16", "--set", "max_steps_per_epoch=2"]);
        args.extend(["--epochs", epochs]);
        if resume {
            args.push("--resume");
        }
        ok(&args);
    };
    let read = |name: &str| json(&std::fs::read_to_string(run.join(name)).unwrap());
    // The first epoch with the highest figure, as the trainer keeps it (a tie keeps the earlier).
    let best_by = |score: &dyn Fn(f64, f64) -> f64| {
        let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
        let mut best: Option<(u64, f64)> = None;
        for line in log.lines() {
            let v = json(line);
            let x = score(
                v["valid_ndcg10"].as_f64().unwrap(),
                v["valid_full_ndcg10"].as_f64().unwrap(),
            );
            if best.is_none_or(|(_, b)| x > b) {
                best = Some((v["epoch"].as_u64().unwrap(), x));
            }
        }
        best.unwrap().0
    };
    let check = || {
        let state = read("state.json");
        let sampled = best_by(&|s, _| s);
        let full = best_by(&|_, f| f);
        let both = best_by(&|s, f| (s * f).sqrt());
        assert_eq!(state["best_epoch"].as_u64(), Some(sampled), "{state}");
        for (rule, epoch) in [("full", full), ("both", both)] {
            assert_eq!(
                state["also_best"][rule]["epoch"].as_u64(),
                Some(epoch),
                "{state}"
            );
            let test = read(&format!("test-by-{rule}.json"));
            assert_eq!(test["epoch"].as_u64(), Some(epoch), "{test}");
            assert_eq!(test["kept_by"], rule);
            let again = json(&ok(&[
                "eval",
                "--checkpoint",
                r,
                "--kept-by",
                rule,
                "--json",
            ]));
            assert_eq!(again["ndcg@10"], test["ndcg@10"], "{rule}");
            assert_eq!(again["full_ndcg@10"], test["full_ndcg@10"], "{rule}");
            // The figures say which epoch they are of, as the test-by file does.
            assert_eq!(again["epoch"], test["epoch"], "{again}");
            assert_eq!(again["kept_by"], rule, "{again}");
        }
        assert!(!run.join("test-by-sampled.json").exists());
        let own = json(&ok(&[
            "eval",
            "--checkpoint",
            r,
            "--kept-by",
            "sampled",
            "--json",
        ]));
        assert_eq!(own["ndcg@10"], read("test.json")["ndcg@10"]);
    };
    train("6", false);
    check();
    // Resumed past its stop, the run keeps tracking every rule over all its epochs.
    train("9", true);
    check();
    let out = dir.path().join("results");
    ok(&[
        "report",
        dir.path().join("runs").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = json(&std::fs::read_to_string(out.join("runs.json")).unwrap());
    for rule in ["full", "both"] {
        assert_eq!(
            rows[0]["kept_by"][rule]["epoch"],
            read("state.json")["also_best"][rule]["epoch"],
            "{rows}"
        );
    }
    // A test.json of another epoch than the kept one (a reopened run stopped between its
    // finish and its test) is not reported; finishing again tests the kept epoch.
    let stale_out = dir.path().join("stale");
    let mut test = read("test.json");
    let kept = test["epoch"].as_u64().unwrap();
    assert_eq!(Some(kept), read("state.json")["best_epoch"].as_u64());
    test["epoch"] = (kept % 9 + 1).into();
    std::fs::write(run.join("test.json"), test.to_string()).unwrap();
    cmd(&[
        "report",
        dir.path().join("runs").to_str().unwrap(),
        "--out",
        stale_out.to_str().unwrap(),
    ])
    .assert()
    .stderr(
        predicate::str::contains("test.json is of epoch")
            .and(predicate::str::contains("panicked").not()),
    );
    // Weights kept by another rule that went missing are restored from a file with the same
    // bytes, or left out with a notice: never a reason the run cannot finish.
    std::fs::remove_file(run.join("best-by-full.bpk")).unwrap();
    std::fs::remove_file(run.join("test-by-full.json")).unwrap();
    train("9", true);
    assert_eq!(read("test.json")["epoch"].as_u64(), Some(kept));
    let restored = run.join("best-by-full.bpk").exists();
    assert_eq!(run.join("test-by-full.json").exists(), restored);
    if restored {
        check();
    }
    // A usage error, as clap reports it (exit code 2).
    cmd(&["eval", "--checkpoint", r, "--kept-by", "all"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("give sampled, full or both"));
    fails(
        &["eval", "--kept-by", "full", "--model", "mostpop"],
        "with --checkpoint RUN",
    );
    // A run that kept no other rule's epoch (begun by an earlier version) says so.
    let mut state = read("state.json");
    state.as_object_mut().unwrap().remove("also_best");
    std::fs::write(run.join("state.json"), state.to_string()).unwrap();
    fails(
        &["eval", "--checkpoint", r, "--kept-by", "full"],
        "keeps no best epoch by validation NDCG@10 (full ranking)",
    );
}

#[test]
fn a_runs_record_and_figures_are_checked_where_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 100, 3);
    let d = data.to_str().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = at("run");
    ok(&[
        &["train", "--model", "sasrec", "--data", d, "--out", &run][..],
        &TINY_RUN,
    ]
    .concat());
    // Another evaluation's output saved as test.json is not shipped as the run's figures.
    let mostpop = ok(&["eval", "--model", "mostpop", "--data", d, "--json"]);
    std::fs::write(Path::new(&run).join("test.json"), mostpop).unwrap();
    let out = ssi(&["export", "--checkpoint", &run, "--out", &at("bundle")]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ships without test metrics") && stderr.contains("model = \"MostPop\""),
        "{stderr}"
    );
    let shipped = json(&std::fs::read_to_string(dir.path().join("bundle/bundle.json")).unwrap());
    assert!(shipped["provenance"]["metrics"].is_null(), "{shipped}");
    // Ids of any size are ids, outside the catalogue like any other: noted, not fatal.
    let bundle = at("bundle/bundle.ssib");
    let out = ssi(&[
        "predict",
        "--bundle",
        &bundle,
        "--history",
        "1,18446744073709551617,0",
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("items [18446744073709551617, 0]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Options that change nothing are said.
    let out = ssi(&["eval", "--checkpoint", &run, "--anonymous", "--no-full"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--anonymous changes nothing: SASRec"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ssi(&["eval", "--model", "mostpop", "--data", d, "--history", "3"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--history changes nothing: MostPop"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A run's dataset record edited: refused, as an edited model setting is.
    let config = Path::new(&run).join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut edited = json(&text);
    edited["dataset"]["n_users"] = 5.into();
    std::fs::write(&config, edited.to_string()).unwrap();
    fails(
        &["eval", "--checkpoint", &run],
        "its \"dataset\" record differs",
    );
    // Its path may change (a moved file).
    let mut moved = json(&text);
    moved["dataset"]["path"] = "/elsewhere/shop.txt".into();
    std::fs::write(&config, moved.to_string()).unwrap();
    fails(&["eval", "--checkpoint", &run], "/elsewhere/shop.txt");
    std::fs::write(&config, &text).unwrap();
    // A model setting of the wrong type is named.
    let mut typed = json(&text);
    typed["model"]["dropout"] = serde_json::Value::Null;
    std::fs::write(&config, typed.to_string()).unwrap();
    fails(
        &["eval", "--checkpoint", &run],
        "the setting \"dropout\" = null",
    );
    std::fs::write(&config, &text).unwrap();
    // A run's config.json names its model; another --model is told what it takes.
    let cfg = config.to_str().unwrap();
    let again = at("again");
    let out = ssi(&[
        &["train", "--data", d, "--config", cfg, "--out", &again][..],
        &TINY_RUN,
    ]
    .concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = json(&std::fs::read_to_string(Path::new(&again).join("config.json")).unwrap());
    assert_eq!(saved["model"]["model"], "sasrec");
    let out = ssi(&[
        &[
            "train",
            "--model",
            "gru4rec",
            "--data",
            d,
            "--config",
            cfg,
            "--out",
            &at("gru"),
        ][..],
        &TINY_RUN,
    ]
    .concat());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its model settings apply to SASRec only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fails(
        &["train", "--data", d, "--out", &at("none")],
        "--model is required for a new run",
    );
    // A negative number is a value its option refuses by name.
    cmd(&["eval", "--checkpoint", &run, "--seed", "-3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value '-3' for '--seed"));
    // A teacher resumes with its own task.
    let teacher = at("teacher");
    ok(&[
        &[
            "pretrain", "--task", "persona", "--data", d, "--out", &teacher,
        ][..],
        &TINY_RUN,
    ]
    .concat());
    ok(&["pretrain", "--resume", "--out", &teacher, "--epochs", "2"]);
    let state = json(&std::fs::read_to_string(Path::new(&teacher).join("state.json")).unwrap());
    assert_eq!(state["epoch"], 2);
    fails(
        &["pretrain", "--resume", "--out", &run],
        "without a consistency task of `ssi pretrain`",
    );
    let out = ssi(&[
        &[
            "distill",
            "--teachers",
            &teacher,
            "--student",
            "gru4rec",
            "--data",
            d,
            "--out",
            &at("student"),
            "--no-prediction",
            "--temperature",
            "2",
        ][..],
        &TINY_RUN,
    ]
    .concat());
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("--temperature changes nothing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A log where no user has three items names its own file and user.
    let log = dir.path().join("two.csv");
    std::fs::write(&log, "u,i,t\nalice,x,1\nalice,y,2\n").unwrap();
    fails(
        &[
            "data",
            "ingest",
            log.to_str().unwrap(),
            "--out",
            &at("two.txt"),
            "--k-core",
            "1",
        ],
        "two.csv: no user has the 3 items leave-one-out needs (after 1-core filtering), the longest is user \"alice\" with 2",
    );
    assert!(!dir.path().join("two.txt").exists());
}
