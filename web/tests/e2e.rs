//! End to end: the page that `trunk build --release` wrote to `dist/`, served on 127.0.0.1 and
//! driven in headless Chromium through chromedriver (W3C WebDriver, spoken by the `fantoccini`
//! client). It adds the history of `public/models/shop-ssi-hgn/check.json` by typing ids into
//! the search box, reads the predictions table and compares it with what `ssi predict` printed
//! natively, fine-tunes for one epoch, and keeps a screenshot; then opens the WebGPU build
//! (`dist/webgpu/`, reached from the default page's "Use WebGPU" button with the sequence in the
//! URL), switches to WebGPU, compares the predictions again, fine-tunes there and switches back to
//! the CPU. The browser's console must stay free of errors throughout.
//!
//! Needs `dist/` and chromedriver, so it is ignored by a plain `cargo test`; `scripts/test.sh`
//! builds the page and runs it with `--ignored`. Settings: `SSI_DIST` (default `<repo>/dist`),
//! `CHROMEDRIVER` (default `chromedriver`), `CHROME` (browser binary, optional),
//! `SSI_E2E_ARTIFACTS` (screenshot folder, default `$CARGO_TARGET_TMPDIR/e2e`).
#![cfg(not(target_arch = "wasm32"))]

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::fmt::Display;
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::time::sleep;

const CHECK: &str = include_str!("../../public/models/shop-ssi-hgn/check.json");

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

/// How long one WebDriver command may take before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Awaits one WebDriver command; an error (or no answer in time) fails the test, saying `what`.
async fn wd<T, E: Display>(what: &str, cmd: impl Future<Output = Result<T, E>>) -> T {
    match tokio::time::timeout(COMMAND_TIMEOUT, cmd).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("WebDriver {what}: {e}"),
        Err(_) => panic!("WebDriver {what}: no answer in {COMMAND_TIMEOUT:?}"),
    }
}

/// The chromedriver process; killed on drop, so also when the test fails.
struct Driver(Child);

impl Driver {
    /// Starts chromedriver on a free port and waits until it listens; returns it and its URL.
    async fn start() -> (Driver, String) {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exe = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = Command::new(&exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe} (set CHROMEDRIVER): {e}"));
        let driver = Driver(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            sleep(Duration::from_millis(100)).await;
        }
        (driver, format!("http://127.0.0.1:{port}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver's browser log (`POST /session/{id}/se/log`): not W3C, so fantoccini has no
/// method for it. Reading the log empties it.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.expect("a session");
        base_url.join(&format!("session/{session}/se/log"))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"type": "browser"}).to_string();
        (http::Method::POST, Some(body))
    }
}

/// One browser session in chromedriver.
#[derive(Clone)]
struct Browser(Client);

impl Browser {
    async fn start(driver: &str) -> Browser {
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
        // The browser log is read back at the end: the page must log no error.
        let Value::Object(caps) = json!({
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }) else {
            unreachable!("a JSON object")
        };
        // chromedriver is on 127.0.0.1: plain HTTP, no TLS.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        Browser(wd("POST /session", builder.capabilities(caps).connect(driver)).await)
    }

    /// Ends the session, and with it Chromium; errors are ignored so that a test failure, not
    /// this, is what gets reported.
    async fn close(self) {
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, self.0.close()).await;
    }

    async fn goto(&self, url: &str) {
        wd(&format!("POST /url {url}"), self.0.goto(url)).await;
    }

    async fn script(&self, js: &str) -> Value {
        wd("POST /execute/sync", self.0.execute(js, vec![])).await
    }

    async fn element(&self, css: &str) -> Element {
        match tokio::time::timeout(COMMAND_TIMEOUT, self.0.find(Locator::Css(css))).await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => panic!("no element {css}: {e}"),
            Err(_) => panic!("WebDriver POST /element {css}: no answer in {COMMAND_TIMEOUT:?}"),
        }
    }

    /// Polls `js` (an expression) until it is truthy; returns its value.
    async fn wait_for(&self, what: &str, js: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.script(&format!("return {js};")).await;
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
                let page = self.script("return document.body.innerText;").await;
                panic!("timed out waiting for {what}; page text:\n{page}");
            }
            sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Browser {
    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        wd(&format!("POST /element/click {css}"), e.click()).await;
    }

    /// Clicks `css`, then waits until `js` is truthy (see [`Browser::wait_for`]).
    async fn click_then(&self, css: &str, what: &str, js: &str, timeout: Duration) -> Value {
        self.click(css).await;
        self.wait_for(what, js, timeout).await
    }

    /// Types `text` into the element; a `Key` (such as `Key::Enter`) is a character of it.
    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        wd(&format!("POST /element/value {css}"), e.send_keys(text)).await;
    }

    async fn text(&self, css: &str) -> String {
        let v = self
            .script(&format!(
                "return document.querySelector('{css}')?.innerText ?? '';"
            ))
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Waits for the model summary line (the bundle loaded); returns it.
    async fn wait_for_model(&self, what: &str, timeout: Duration) -> Value {
        self.wait_for(
            what,
            "document.querySelector('#model-info')?.innerText",
            timeout,
        )
        .await
    }

    /// Sets the epochs box to 1, fine-tunes (stopping after `stop_after` steps when given), and
    /// waits for the validation line after.
    async fn fine_tune_one_epoch(&self, stop_after: Option<u32>) -> Value {
        let epochs = self.element("#epochs").await;
        wd("POST /element/clear #epochs", epochs.clear()).await;
        wd("POST /element/value #epochs", epochs.send_keys("1")).await;
        self.click("#train").await;
        if let Some(n) = stop_after {
            self.wait_for(
                "fine-tuning steps",
                &format!(
                    "(m => m && Number(m[1]) >= {n})\
                     (document.querySelector('#progress').innerText.match(/step (\\d+) of/))"
                ),
                Duration::from_secs(300),
            )
            .await;
            // Nothing replaces the model under a running fine-tuning.
            let locked = self
                .script(
                    "return ['#use-cpu', '#upload', '#model-select']\
                     .map(c => document.querySelector(c).disabled);",
                )
                .await;
            assert_eq!(locked, json!([true, true, true]), "controls while training");
            self.click("#stop").await;
        }
        self.wait_for(
            "fine-tuning to finish",
            "!document.querySelector('#train').disabled \
             && !document.querySelector('#download').disabled",
            Duration::from_secs(600),
        )
        .await;
        json!(self.text("#valid-after").await)
    }

    /// Waits until the predictions table starts with `want`'s first item, then checks every row
    /// against `want` within `tol`.
    async fn expect_predictions(&self, want: &[(u64, f64)], tol: f64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let rows = loop {
            let rows = self.script(&format!("return {READ_TABLE};")).await;
            let rows: Vec<(u64, f64)> = serde_json::from_value(rows).unwrap();
            if rows.len() == want.len() && rows[0].0 == want[0].0 || Instant::now() > deadline {
                break rows;
            }
            sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(rows.len(), want.len(), "{rows:?}");
        for ((got, p), (item, q)) in rows.iter().zip(want) {
            assert_eq!(got, item, "page {rows:?} vs CLI {want:?}");
            assert!((p - q).abs() < tol, "item {item}: page {p} vs CLI {q}");
        }
    }

    /// The browser console's errors so far (chromedriver's log endpoint empties it).
    async fn console_errors(&self) -> Vec<String> {
        let log = wd("POST /se/log", self.0.issue_cmd(BrowserLog)).await;
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// The predictions table as (item, probability) rows.
const READ_TABLE: &str = "Array.from(document.querySelectorAll('tr.prediction'))\
    .map(r => [Number(r.dataset.item), Number(r.dataset.probability)])";

#[tokio::test]
#[ignore = "needs `trunk build --release` and chromedriver; scripts/test.sh runs it"]
async fn the_page_predicts_what_the_cli_predicts_and_fine_tunes() {
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
    let (_driver, driver_url) = Driver::start().await;
    let browser = Browser::start(&driver_url).await;
    // The pages are checked in a task of their own so that a failed check still ends the
    // session (and Chromium) here; `_driver` then kills chromedriver.
    let pages = browser.clone();
    let outcome = tokio::spawn(async move {
        cpu_page(&pages, port, &history, &want).await;
        webgpu_page(&pages, port, &history, &want).await;
    })
    .await;
    browser.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The default page: types the history, predicts what the CLI predicts, fine-tunes, keeps a
/// screenshot, resets, and tries an example.
async fn cpu_page(browser: &Browser, port: u16, history: &[u64], want: &[(u64, f64)]) {
    browser.goto(&format!("http://127.0.0.1:{port}/")).await;
    let info = browser
        .wait_for_model("the default model to load", Duration::from_secs(120))
        .await;
    println!("model: {info}");
    let backend = browser
        .script("return document.querySelector('#backend').innerText;")
        .await;
    println!("backend: {backend}");

    type_history(browser, history).await;
    // The table refreshes after each change: wait until it shows the predictions of the full
    // history (the first row is then the CLI's first row, if the page is right).
    browser.expect_predictions(want, 1e-4).await;

    // A box that holds no whole number is named when "Fine-tune" is clicked, not passed over
    // (it kept its previous value).
    let epochs = browser.element("#epochs").await;
    wd("POST /element/clear #epochs", epochs.clear()).await;
    wd("POST /element/value #epochs", epochs.send_keys("2.5")).await;
    browser
        .click_then(
            "#train",
            "the epochs box to be named",
            "document.querySelector('#tune-error')?.innerText.includes('epochs: \"2.5\"')",
            Duration::from_secs(30),
        )
        .await;
    // One epoch of fine-tuning: the progress reaches its end and validation is shown after.
    let after = browser.fine_tune_one_epoch(None).await;
    assert!(after.as_str().unwrap().contains("NDCG@10"), "{after}");
    let points = browser
        .script("return document.querySelector('#loss-curve polyline').getAttribute('points');")
        .await;
    assert!(
        points.as_str().is_some_and(|p| p.split(' ').count() >= 2),
        "no loss curve: {points}"
    );

    // The page after fine-tuning (kept for the docs).
    save_screenshot(browser).await;

    // "Reset to the original" reloads the bundle: the fine-tuning results are cleared.
    browser
        .click_then(
            "#reset",
            "the reset to reload the bundle",
            "(t => !t.includes('NDCG@10') && t)(document.querySelector('#valid-after').innerText)",
            Duration::from_secs(60),
        )
        .await;

    // "Try an example" replaces the typed sequence with one of the bundle's own histories.
    let list = "return document.querySelector('#sequence-list').innerText;";
    let typed = browser.script(list).await;
    browser.click("#example").await;
    let shown = browser.script(list).await;
    assert!(
        shown != typed && shown.as_str().is_some_and(|t| !t.is_empty()),
        "example: {typed} -> {shown}"
    );

    let errors = browser.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors on the CPU page: {errors:#?}"
    );
}

/// Types the ids into the search box, one by one, and waits for the sequence to list them all.
async fn type_history(browser: &Browser, history: &[u64]) {
    for id in history {
        // The page appends a typed id on Enter.
        browser
            .type_into("#search", &format!("{id}{}", Key::Enter))
            .await;
    }
    let listed = browser
        .wait_for(
            "the sequence to hold the history",
            &format!(
                "document.querySelectorAll('#sequence-list li').length == {} && \
                 document.querySelectorAll('#sequence-list li').length",
                history.len()
            ),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(listed.as_u64(), Some(history.len() as u64));
}

/// Writes the page's screenshot to `SSI_E2E_ARTIFACTS` (default `$CARGO_TARGET_TMPDIR/e2e`).
async fn save_screenshot(browser: &Browser) {
    let png = wd("GET /screenshot", browser.0.screenshot()).await;
    assert_eq!(&png[1..4], b"PNG");
    let dir = std::env::var("SSI_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("page.png");
    std::fs::write(&file, png).unwrap();
    println!("screenshot: {}", file.display());
}

/// The default page's "Use WebGPU" opens the WebGPU build with the sequence; there the page
/// switches to WebGPU, predicts what the CLI predicts, fine-tunes, and switches back to the CPU.
async fn webgpu_page(browser: &Browser, port: u16, history: &[u64], want: &[(u64, f64)]) {
    let seq = history
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    browser
        .goto(&format!("http://127.0.0.1:{port}/#seq={seq},abc"))
        .await;
    browser
        .wait_for_model("the default model to load", Duration::from_secs(120))
        .await;
    browser.expect_predictions(want, 1e-4).await;
    // An entry that is not an item id is left out, and the page says so.
    let notice = browser.text("#notice").await;
    assert!(notice.contains("abc"), "notice: {notice}");
    let url = browser
        .click_then(
            "#use-webgpu",
            "the WebGPU build to open",
            "location.pathname.endsWith('/webgpu/') && location.href",
            Duration::from_secs(30),
        )
        .await;
    assert!(
        url.as_str().unwrap().ends_with(&format!("#seq={seq}")),
        "{url}"
    );
    browser
        .wait_for_model(
            "the default model to load in the WebGPU build",
            Duration::from_secs(300),
        )
        .await;
    browser.expect_predictions(want, 1e-4).await;
    webgpu_backend(browser, want).await;
}

/// On the WebGPU build: switches to WebGPU, predicts what the CLI predicts, fine-tunes a few
/// steps, and switches back to the CPU.
async fn webgpu_backend(browser: &Browser, want: &[(u64, f64)]) {
    let backend = browser
        .click_then(
            "#use-webgpu",
            "the switch to WebGPU",
            "(t => t.startsWith('WebGPU') && t)(document.querySelector('#backend').innerText)",
            Duration::from_secs(120),
        )
        .await;
    println!("backend: {backend}");
    // SwiftShader's float order differs from the CPU's: the browser tests' tolerance.
    browser.expect_predictions(want, 1e-3).await;
    // Software WebGPU is slow: a few steps, then Stop (which also validates).
    let after = browser.fine_tune_one_epoch(Some(3)).await;
    assert!(after.as_str().unwrap().contains("CPU backend"), "{after}");

    browser
        .click_then(
            "#use-cpu",
            "the switch back to the CPU",
            "(t => t.startsWith('CPU') && t)(document.querySelector('#backend').innerText)",
            Duration::from_secs(120),
        )
        .await;
    // Switching discards the fine-tuned weights (the page says so): the CLI's predictions again.
    let notice = browser.text("#notice").await;
    assert!(notice.contains("fine-tuned"), "no notice: {notice}");
    browser.expect_predictions(want, 1e-4).await;
    let errors = browser.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors on the WebGPU page: {errors:#?}"
    );
}
