//! End to end: the page that `trunk build --release` wrote to `dist/`, served on 127.0.0.1 and
//! driven in headless Chromium through chromedriver (W3C WebDriver over HTTP). It adds the
//! history of `public/models/shop-ssi-sasrec/check.json` by typing ids into the search box, reads
//! the predictions table and compares it with what `ssi predict` printed natively, fine-tunes for
//! one epoch, and keeps a screenshot; then opens the WebGPU build (`dist/webgpu/`, reached from
//! the default page's "Use WebGPU" button with the sequence in the URL), switches to WebGPU,
//! compares the predictions again, fine-tunes there and switches back to the CPU. The browser's
//! console must stay free of errors throughout.
//!
//! Needs `dist/` and chromedriver, so it is ignored by a plain `cargo test`; `scripts/test.sh`
//! builds the page and runs it with `--ignored`. Settings: `SSI_DIST` (default `<repo>/dist`),
//! `CHROMEDRIVER` (default `chromedriver`), `CHROME` (browser binary, optional),
//! `SSI_E2E_ARTIFACTS` (screenshot folder, default `$CARGO_TARGET_TMPDIR/e2e`).
#![cfg(not(target_arch = "wasm32"))]

use base64::Engine as _;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHECK: &str = include_str!("../../public/models/shop-ssi-sasrec/check.json");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Serves the files of `root` on an ephemeral port, forever, on a background thread.
fn serve(root: PathBuf) -> u16 {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind a local port");
    let port = server.server_addr().to_ip().expect("an IP address").port();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let response = file_response(&root, request.url());
            let _ = request.respond(response);
        }
    });
    port
}

fn file_response(root: &Path, url: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let rel = path.trim_start_matches('/');
    // A folder (`/`, `/webgpu/`) serves its index.html, as a static host does.
    let rel = format!(
        "{rel}{}",
        if rel.is_empty() || rel.ends_with('/') {
            "index.html"
        } else {
            ""
        }
    );
    let file = root.join(&rel);
    match (rel.contains(".."), std::fs::read(&file)) {
        (false, Ok(body)) => {
            let mime = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript",
                Some("wasm") => "application/wasm",
                Some("css") => "text/css",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            let header = tiny_http::Header::from_bytes("Content-Type", mime).expect("a header");
            tiny_http::Response::from_data(body).with_header(header)
        }
        _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
    }
}

/// A chromedriver process and one browser session in it; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exe = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(&exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe} (set CHROMEDRIVER): {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut options = json!({"args": [
            // This machine's network is closed: Chromium's background traffic only fails.
            "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
            "--enable-unsafe-webgpu", "--window-size=1200,1800",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic", "--no-first-run"
        ]});
        if let Ok(bin) = std::env::var("CHROME") {
            options["binary"] = json!(bin);
        }
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
        };
        // The browser log is read back at the end: the page must log no error.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("a session id").to_string();
        b
    }

    /// One WebDriver command; returns its `value`. A WebDriver error fails the test with it.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path.starts_with("/session/") || path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = ureq::request(method, &url).timeout(Duration::from_secs(120));
        let resp = match body {
            Some(b) => req.send_json(b),
            None if method == "POST" => req.send_json(json!({})),
            None => req.call(),
        };
        let v: Value = match resp {
            Ok(r) => r.into_json().expect("WebDriver JSON"),
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "WebDriver {method} {path}: HTTP {code}: {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        };
        v["value"].clone()
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|x| x.as_str())
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    /// Polls `js` (an expression) until it is truthy; returns its value.
    fn wait_for(&self, what: &str, js: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.script(&format!("return {js};"));
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.script("return document.body.innerText;");
                panic!("timed out waiting for {what}; page text:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Browser {
    fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/click"), None);
    }

    fn text(&self, css: &str) -> String {
        let v = self.script(&format!(
            "return document.querySelector('{css}')?.innerText ?? '';"
        ));
        v.as_str().unwrap_or_default().to_string()
    }

    /// Waits for the model summary line (the bundle loaded); returns it.
    fn wait_for_model(&self, what: &str, timeout: Duration) -> Value {
        self.wait_for(
            what,
            "document.querySelector('#model-info')?.innerText",
            timeout,
        )
    }

    /// Sets the epochs box to 1, fine-tunes (stopping after `stop_after` steps when given), and
    /// waits for the validation line after.
    fn fine_tune_one_epoch(&self, stop_after: Option<u32>) -> Value {
        let epochs = self.element("#epochs");
        self.call("POST", &format!("/element/{epochs}/clear"), None);
        self.call(
            "POST",
            &format!("/element/{epochs}/value"),
            Some(json!({"text": "1"})),
        );
        self.click("#train");
        if let Some(n) = stop_after {
            self.wait_for(
                "fine-tuning steps",
                &format!(
                    "(m => m && Number(m[1]) >= {n})\
                     (document.querySelector('#progress').innerText.match(/step (\\d+) of/))"
                ),
                Duration::from_secs(300),
            );
            self.click("#stop");
        }
        self.wait_for(
            "fine-tuning to finish",
            "!document.querySelector('#train').disabled \
             && !document.querySelector('#download').disabled",
            Duration::from_secs(600),
        );
        json!(self.text("#valid-after"))
    }

    /// Waits until the predictions table starts with `want`'s first item, then checks every row
    /// against `want` within `tol`.
    fn expect_predictions(&self, want: &[(u64, f64)], tol: f64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let rows = loop {
            let rows = self.script(&format!("return {READ_TABLE};"));
            let rows: Vec<(u64, f64)> = serde_json::from_value(rows).unwrap();
            if rows.len() == want.len() && rows[0].0 == want[0].0 || Instant::now() > deadline {
                break rows;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(rows.len(), want.len(), "{rows:?}");
        for ((got, p), (item, q)) in rows.iter().zip(want) {
            assert_eq!(got, item, "page {rows:?} vs CLI {want:?}");
            assert!((p - q).abs() < tol, "item {item}: page {p} vs CLI {q}");
        }
    }

    /// The browser console's errors so far (chromedriver's log endpoint empties it).
    fn console_errors(&self) -> Vec<String> {
        let log = self.call("POST", "/se/log", Some(json!({"type": "browser"})));
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The predictions table as (item, probability) rows.
const READ_TABLE: &str = "Array.from(document.querySelectorAll('tr.prediction'))\
    .map(r => [Number(r.dataset.item), Number(r.dataset.probability)])";

#[test]
#[ignore = "needs `trunk build --release` and chromedriver; scripts/test.sh runs it"]
fn the_page_predicts_what_the_cli_predicts_and_fine_tunes() {
    let dist = std::env::var("SSI_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("dist"));
    assert!(
        dist.join("index.html").is_file(),
        "{}: no index.html; run `trunk build --release` first",
        dist.display()
    );
    let check: Value = serde_json::from_str(CHECK).unwrap();
    let history: Vec<u64> = check["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let want: Vec<(u64, f64)> = check["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["item"].as_u64().unwrap(),
                p["probability"].as_f64().unwrap(),
            )
        })
        .collect();

    let port = serve(dist);
    let browser = Browser::start();
    browser.call(
        "POST",
        "/url",
        Some(json!({"url": format!("http://127.0.0.1:{port}/")})),
    );
    let info = browser.wait_for_model("the default model to load", Duration::from_secs(120));
    println!("model: {info}");
    let backend = browser.script("return document.querySelector('#backend').innerText;");
    println!("backend: {backend}");

    let search = browser.element("#search");
    for id in &history {
        // U+E007 is WebDriver's Enter key: the page appends a typed id on Enter.
        browser.call(
            "POST",
            &format!("/element/{search}/value"),
            Some(json!({"text": format!("{id}\u{E007}")})),
        );
    }
    let listed = browser.wait_for(
        "the sequence to hold the history",
        &format!(
            "document.querySelectorAll('#sequence-list li').length == {} && \
             document.querySelectorAll('#sequence-list li').length",
            history.len()
        ),
        Duration::from_secs(30),
    );
    assert_eq!(listed.as_u64(), Some(history.len() as u64));
    // The table refreshes after each change: wait until it shows the predictions of the full
    // history (the first row is then the CLI's first row, if the page is right).
    browser.expect_predictions(&want, 1e-4);

    // One epoch of fine-tuning: the progress reaches its end and validation is shown after.
    let after = browser.fine_tune_one_epoch(None);
    assert!(after.as_str().unwrap().contains("NDCG@10"), "{after}");
    let points = browser
        .script("return document.querySelector('#loss-curve polyline').getAttribute('points');");
    assert!(
        points.as_str().is_some_and(|p| p.split(' ').count() >= 2),
        "no loss curve: {points}"
    );

    // The page after fine-tuning (kept for the docs).
    let shot = browser.call("GET", "/screenshot", None);
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().expect("base64 screenshot"))
        .unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let dir = std::env::var("SSI_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("page.png");
    std::fs::write(&file, png).unwrap();
    println!("screenshot: {}", file.display());

    // "Reset to the original" reloads the bundle: the fine-tuning results are cleared.
    let reset = browser.element("#reset");
    browser.call("POST", &format!("/element/{reset}/click"), None);
    browser.wait_for(
        "the reset to reload the bundle",
        "(t => !t.includes('NDCG@10') && t)(document.querySelector('#valid-after').innerText)",
        Duration::from_secs(60),
    );

    // "Try an example" replaces the typed sequence with one of the bundle's own histories.
    let list = "return document.querySelector('#sequence-list').innerText;";
    let typed = browser.script(list);
    let example = browser.element("#example");
    browser.call("POST", &format!("/element/{example}/click"), None);
    let shown = browser.script(list);
    assert!(
        shown != typed && shown.as_str().is_some_and(|t| !t.is_empty()),
        "example: {typed} -> {shown}"
    );

    let errors = browser.console_errors();
    assert!(
        errors.is_empty(),
        "console errors on the CPU page: {errors:#?}"
    );

    webgpu_page(&browser, port, &history, &want);
}

/// The default page's "Use WebGPU" opens the WebGPU build with the sequence; there the page
/// switches to WebGPU, predicts what the CLI predicts, fine-tunes, and switches back to the CPU.
fn webgpu_page(browser: &Browser, port: u16, history: &[u64], want: &[(u64, f64)]) {
    let seq = history
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    browser.call(
        "POST",
        "/url",
        Some(json!({"url": format!("http://127.0.0.1:{port}/#seq={seq},abc")})),
    );
    browser.wait_for_model("the default model to load", Duration::from_secs(120));
    browser.expect_predictions(want, 1e-4);
    // An entry that is not an item id is left out, and the page says so.
    let notice = browser.text("#notice");
    assert!(notice.contains("abc"), "notice: {notice}");
    browser.click("#use-webgpu");
    let url = browser.wait_for(
        "the WebGPU build to open",
        "location.pathname.endsWith('/webgpu/') && location.href",
        Duration::from_secs(30),
    );
    assert!(
        url.as_str().unwrap().ends_with(&format!("#seq={seq}")),
        "{url}"
    );
    browser.wait_for_model(
        "the default model to load in the WebGPU build",
        Duration::from_secs(300),
    );
    browser.expect_predictions(want, 1e-4);

    browser.click("#use-webgpu");
    let backend = browser.wait_for(
        "the switch to WebGPU",
        "(t => t.startsWith('WebGPU') && t)(document.querySelector('#backend').innerText)",
        Duration::from_secs(120),
    );
    println!("backend: {backend}");
    // SwiftShader's float order differs from the CPU's: the browser tests' tolerance.
    browser.expect_predictions(want, 1e-3);
    // Software WebGPU is slow: a few steps, then Stop (which also validates).
    let after = browser.fine_tune_one_epoch(Some(3));
    assert!(after.as_str().unwrap().contains("CPU backend"), "{after}");

    browser.click("#use-cpu");
    browser.wait_for(
        "the switch back to the CPU",
        "(t => t.startsWith('CPU') && t)(document.querySelector('#backend').innerText)",
        Duration::from_secs(120),
    );
    // Switching discards the fine-tuned weights (the page says so): the CLI's predictions again.
    assert!(
        browser.text("#notice").contains("fine-tuned"),
        "no notice: {}",
        browser.text("#notice")
    );
    browser.expect_predictions(want, 1e-4);
    let errors = browser.console_errors();
    assert!(
        errors.is_empty(),
        "console errors on the WebGPU page: {errors:#?}"
    );
}
