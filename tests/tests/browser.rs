//! The service-window page in a real browser: a `huren-node` serves it, headless Chromium
//! runs it, and the test types QR texts and Enter into whatever has focus, as a clerk's
//! handheld scanner does.
//!
//! Chromium is driven over W3C WebDriver by Debian's `chromedriver`, which the test starts
//! on a free port in a process group of its own and kills, with every browser it started,
//! when the test ends or fails. The protocol is a handful of JSON requests, sent with the
//! blocking reqwest client the other tests use. Nothing is downloaded at run time: when
//! Chromium or chromedriver is missing the test fails and says to run scripts/test.sh,
//! which installs them.
//!
//! Screenshots go to `target/browser-test/` (the path is printed) for a person to look at.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use base64::Engine as _;
use huren_tests::{
    client, driving_body, eventually, start_mesh, verify, NodeProcess, TestNetwork, TOKEN,
};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The WebDriver key code of Enter.
const ENTER: char = '\u{E007}';

/// Writes past the test harness's output capture, so the screenshot paths are always seen.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `target/browser-test/`, next to the build that runs this test.
fn output_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/browser-<hash>
    let target = exe
        .ancestors()
        .nth(3)
        .filter(|t| t.join("debug").is_dir() || t.join("release").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("browser-test");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A running chromedriver. Dropping it kills its process group: chromedriver and the
/// browsers it launched.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(log: &Path) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = driver.child.try_wait()? {
                bail!("chromedriver exited with {status}; see {}", log.display());
            }
            let ready = http
                .get(format!("{}/status", driver.url))
                .send()
                .and_then(|r| r.json::<Value>())
                .is_ok_and(|v| v["value"]["ready"] == true);
            if ready {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                bail!("chromedriver not ready within 20 s; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group id is chromedriver's pid (process_group(0)); the group holds only
        // processes this test started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session: one headless Chromium with a fresh profile. Dropping it closes
/// the browser.
struct Browser {
    http: reqwest::blocking::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(driver: &Driver, width: u32, height: u32) -> anyhow::Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("huren-chromium-")
            .tempdir()?;
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = call(
            &http,
            "POST",
            &format!("{}/session", driver.url),
            Some(caps),
        )
        .context("starting Chromium through chromedriver")?;
        let id = v["sessionId"]
            .as_str()
            .context("no sessionId in the new-session answer")?;
        Ok(Self {
            http,
            session: format!("{}/session/{id}", driver.url),
            _profile: profile,
        })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        call(&self.http, method, &format!("{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))?;
        Ok(())
    }

    fn script(&self, body: &str) -> anyhow::Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": body, "args": []})),
        )
    }

    /// Types `text` into whatever has focus, one key at a time, as a keyboard-wedge
    /// scanner does: no element is clicked or targeted first.
    fn type_keys(&self, text: &str) -> anyhow::Result<()> {
        let mut keys = Vec::with_capacity(text.chars().count() * 2);
        for c in text.chars() {
            keys.push(json!({"type": "keyDown", "value": c.to_string()}));
            keys.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "scanner", "actions": keys}]})),
        )?;
        self.cmd("DELETE", "/actions", None)?;
        Ok(())
    }

    /// Clicks the element matching `selector`, as a mouse does.
    fn click(&self, selector: &str) -> anyhow::Result<()> {
        let id = self.find(selector)?;
        self.cmd("POST", &format!("/element/{id}/click"), None)?;
        Ok(())
    }

    fn find(&self, selector: &str) -> anyhow::Result<String> {
        let found = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": selector})),
        )?;
        // The W3C element reference key.
        Ok(found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .with_context(|| format!("no element {selector}"))?
            .to_owned())
    }

    /// Chooses `file` in the file input matching `selector`, as the clerk's file dialog does.
    fn upload(&self, selector: &str, file: &Path) -> anyhow::Result<()> {
        let id = self.find(selector)?;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": file.display().to_string()})),
        )?;
        Ok(())
    }

    fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )?;
        Ok(())
    }

    fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let v = self.cmd("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().context("screenshot is not a string")?)
            .context("screenshot is not base64")?;
        ensure!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        say(&format!("browser test: screenshot {}", path.display()));
        Ok(())
    }

    /// The browser's console: errors, CSP violations, failed loads.
    fn console(&self) -> anyhow::Result<Vec<Value>> {
        let v = self.cmd("POST", "/se/log", Some(json!({"type": "browser"})))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(&self.session)
            .timeout(Duration::from_secs(10))
            .send();
    }
}

/// One WebDriver request; a WebDriver error becomes an `Err` with its message.
fn call(
    http: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let req = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http.post(url).json(&body.unwrap_or_else(|| json!({}))),
    };
    let r = req.send().with_context(|| format!("{method} {url}"))?;
    let status = r.status();
    let v: Value = r
        .json()
        .with_context(|| format!("{method} {url}: answer is not JSON"))?;
    if !status.is_success() {
        bail!(
            "{method} {url}: {status} {} {}",
            v["value"]["error"],
            v["value"]["message"]
        );
    }
    Ok(v["value"].clone())
}

/// What the page shows, read from the DOM.
#[derive(Debug)]
struct Shown {
    verdict: String,
    reason: String,
    scan: u64,
    banner: String,
    licence: String,
    detail: String,
    now: String,
    history: String,
    focused: String,
    input: String,
}

const READ_PAGE: &str = r#"
const r = document.getElementById('result');
const lic = document.getElementById('licence');
const detail = document.getElementById('detail');
return {
  verdict: r.dataset.verdict, reason: r.dataset.reason, scan: Number(r.dataset.scan),
  banner: r.innerText, licence: lic.hidden ? '' : lic.innerText,
  detail: detail.hidden ? '' : detail.innerText,
  now: document.getElementById('now').hidden ? '' : document.getElementById('now').innerText,
  history: document.getElementById('history-card').hidden ? '' : document.getElementById('history-card').innerText,
  focused: document.activeElement ? document.activeElement.id : '',
  input: document.getElementById('scan').value,
};
"#;

fn read(browser: &Browser) -> anyhow::Result<Shown> {
    let v = browser.script(READ_PAGE)?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok(Shown {
        verdict: s("verdict"),
        reason: s("reason"),
        scan: v["scan"].as_u64().unwrap_or_default(),
        banner: s("banner"),
        licence: s("licence"),
        detail: s("detail"),
        now: s("now"),
        history: s("history"),
        focused: s("focused"),
        input: s("input"),
    })
}

/// Waits until the page has finished check number `scan` and returns what it shows.
fn answer(browser: &Browser, scan: u64) -> anyhow::Result<Shown> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = read(browser)?;
        if shown.scan == scan && shown.verdict != "checking" {
            return Ok(shown);
        }
        if Instant::now() > deadline {
            bail!("check {scan} did not finish within 20 s; the page shows {shown:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// After every check the scan input has focus and is empty, ready for the next scan.
fn ready_for_next(shown: &Shown) {
    assert_eq!(shown.focused, "scan", "scan input lost focus: {shown:#?}");
    assert_eq!(shown.input, "", "scan input not cleared: {shown:#?}");
}

fn issue(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    n: u64,
) -> anyhow::Result<(String, String)> {
    let r = http
        .post(format!("{}/v1/licences", node.url))
        .bearer_auth(TOKEN)
        .json(&driving_body(n))
        .send()?;
    ensure!(r.status().as_u16() == 201, "issue failed: {}", r.text()?);
    let v: Value = r.json()?;
    Ok((
        v["licence_id"].as_str().context("licence_id")?.to_owned(),
        v["qr"].as_str().context("qr")?.to_owned(),
    ))
}

#[test]
fn clerk_scans_valid_revoked_superseded_transferred_and_garbage_at_the_window() -> anyhow::Result<()>
{
    for tool in [CHROMIUM, CHROMEDRIVER] {
        ensure!(
            Path::new(tool).is_file(),
            "{tool} is missing: this test drives headless Chromium through chromedriver. \
             Run scripts/test.sh, which installs Debian's chromium and chromium-driver, \
             or `apt-get install -y chromium chromium-driver`."
        );
    }
    let out = output_dir()?;

    let net = TestNetwork::new()?;
    // Guangdong's window, and Shanghai's department a licence is transferred to.
    let mut nodes = start_mesh(&net, &["gd.transport", "sh.transport"])?;
    let sh = nodes.pop().context("sh node")?;
    let node = nodes.pop().context("gd node")?;
    let http = client();
    let (valid_id, valid_qr) = issue(&http, &node, 1)?;
    let (revoked_id, revoked_qr) = issue(&http, &node, 2)?;
    let r = http
        .post(format!("{}/v1/licences/{revoked_id}/revoke", node.url))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "penalty"}))
        .send()?;
    ensure!(r.status().is_success(), "revoke failed: {}", r.text()?);

    // The page as HTTP: HTML in UTF-8, and a policy that allows this origin only.
    let r = http.get(format!("{}/", node.url)).send()?;
    assert_eq!(r.status().as_u16(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert!(
        header("content-security-policy").contains("default-src 'none'"),
        "no CSP: {:?}",
        r.headers()
    );

    let driver = Driver::start(&out.join("chromedriver.log"))?;
    let browser = Browser::open(&driver, 1024, 768)?;
    browser.goto(&format!("{}/", node.url))?;

    // Focused on load, and the header says which node this is once /healthz answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = browser.script(
            "return {focused: document.activeElement && document.activeElement.id, \
             conn: document.getElementById('conn').dataset.state, \
             header: document.querySelector('header').innerText};",
        )?;
        if v["focused"] == "scan" && v["conn"] == "up" {
            let header = v["header"].as_str().unwrap_or_default();
            assert!(header.contains("gd.transport"), "header: {header}");
            assert!(
                header.contains("广东省公安厅交通管理局"),
                "header: {header}"
            );
            assert!(header.contains("440000"), "header: {header}");
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "page not ready (scan input focused, node online) within 20 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    browser.screenshot(&out.join("window-ready.png"))?;

    // 1. A valid licence.
    browser.type_keys(&format!("{valid_qr}{ENTER}"))?;
    let shown = answer(&browser, 1)?;
    assert_eq!(shown.verdict, "valid", "{shown:#?}");
    assert!(
        shown.banner.contains("有效") && shown.banner.contains("VALID"),
        "{shown:#?}"
    );
    assert!(
        shown.licence.contains("测试1"),
        "holder name missing: {shown:#?}"
    );
    assert!(
        shown.licence.contains("440106199000000001"),
        "holder id number missing: {shown:#?}"
    );
    assert!(
        shown.licence.contains("广东省公安厅交通管理局") && shown.licence.contains("机动车驾驶证"),
        "issuer or licence type missing: {shown:#?}"
    );
    ready_for_next(&shown);
    browser.screenshot(&out.join("window-valid.png"))?;

    // 2. A revoked licence: red, and says why, in both languages.
    browser.type_keys(&format!("{revoked_qr}{ENTER}"))?;
    let shown = answer(&browser, 2)?;
    assert_eq!(
        (shown.verdict.as_str(), shown.reason.as_str()),
        ("invalid", "revoked"),
        "{shown:#?}"
    );
    for word in ["无效", "INVALID", "已吊销", "revoked"] {
        assert!(shown.banner.contains(word), "{word} missing: {shown:#?}");
    }
    assert!(shown.licence.contains("测试2"), "{shown:#?}");
    assert!(
        !shown.licence.contains("测试1"),
        "previous holder still shown: {shown:#?}"
    );
    ready_for_next(&shown);
    browser.screenshot(&out.join("window-revoked.png"))?;

    // 3. Garbage, typed after focus was lost (the clerk clicked away): the keys still reach
    //    the scan input, and nothing of the previous licence stays on screen.
    browser.script("document.activeElement.blur(); return null;")?;
    let focused = browser.script("return document.activeElement === document.body;")?;
    assert_eq!(focused, true, "blur did not move focus to the page");
    browser.type_keys(&format!("not a licence 12345{ENTER}"))?;
    let shown = answer(&browser, 3)?;
    assert_eq!(
        (shown.verdict.as_str(), shown.reason.as_str()),
        ("undetermined", "undecodable"),
        "{shown:#?}"
    );
    for word in ["待定", "UNDETERMINED", "无法识别", "could not decode"] {
        assert!(shown.banner.contains(word), "{word} missing: {shown:#?}");
    }
    assert_eq!(shown.licence, "", "stale licence shown: {shown:#?}");
    assert!(!shown.detail.contains("测试"), "{shown:#?}");
    ready_for_next(&shown);
    browser.screenshot(&out.join("window-undetermined.png"))?;

    // A click on the page background gives the scan input its focus back.
    browser.script("document.activeElement.blur(); return null;")?;
    browser.click("#result")?;
    let focused = browser.script("return document.activeElement.id;")?;
    assert_eq!(
        focused, "scan",
        "a click on the page did not refocus the scan input"
    );

    // 4. A photo of the QR, chosen with the upload button (a PNG the node rendered).
    let png = http
        .get(format!("{}/v1/licences/{valid_id}/qr.png", node.url))
        .bearer_auth(TOKEN)
        .send()?
        .bytes()?;
    let photo = net.dir.path().join("licence-1.png");
    std::fs::write(&photo, &png)?;
    browser.upload("#photo", &photo)?;
    let shown = answer(&browser, 4)?;
    assert_eq!(shown.verdict, "valid", "{shown:#?}");
    assert!(shown.licence.contains("测试1"), "{shown:#?}");
    ready_for_next(&shown);

    // 5. The same page on a phone-sized screen.
    browser.resize(390, 844)?;
    browser.type_keys(&format!("{valid_qr}{ENTER}"))?;
    let shown = answer(&browser, 5)?;
    assert_eq!(shown.verdict, "valid", "{shown:#?}");
    ready_for_next(&shown);
    let fits =
        browser.script("return document.documentElement.scrollWidth <= window.innerWidth;")?;
    assert_eq!(fits, true, "the page scrolls sideways on a phone");
    browser.screenshot(&out.join("window-phone.png"))?;

    // 6. A card replaced by a reissue (补领): superseded, and the page says where the
    //    licence stands now and shows its history line.
    browser.resize(1024, 768)?;
    let (lost_id, lost_qr) = issue(&http, &node, 3)?;
    let r = http
        .post(format!("{}/v1/licences/{lost_id}/reissue", node.url))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()?;
    ensure!(r.status().is_success(), "reissue failed: {}", r.text()?);
    browser.type_keys(&format!("{lost_qr}{ENTER}"))?;
    let shown = answer(&browser, 6)?;
    assert_eq!(
        (shown.verdict.as_str(), shown.reason.as_str()),
        ("invalid", "superseded"),
        "{shown:#?}"
    );
    for word in ["此证已被新证取代", "superseded by a newer card"] {
        assert!(shown.banner.contains(word), "{word} missing: {shown:#?}");
    }
    for word in [
        "此证已作废，已有新证",
        "replaced by a newer one",
        "正常",
        "active",
    ] {
        assert!(shown.now.contains(word), "{word} missing: {shown:#?}");
    }
    for word in ["核发", "补领/换证", "reissued"] {
        assert!(shown.history.contains(word), "{word} missing: {shown:#?}");
    }
    ready_for_next(&shown);
    browser.screenshot(&out.join("window-superseded.png"))?;

    // 7. A licence transferred to Shanghai (转出 / 转入): the old card says where the
    //    licence lives now, under which id, in both languages.
    let (moved_id, moved_qr) = issue(&http, &node, 4)?;
    let r = http
        .post(format!("{}/v1/licences/{moved_id}/transfer", node.url))
        .bearer_auth(TOKEN)
        .json(&json!({"to": "sh.transport"}))
        .send()?;
    ensure!(r.status().is_success(), "transfer failed: {}", r.text()?);
    let accepted = huren_tests::accept_transfer(&http, &sh, &moved_qr)?;
    let new_id = accepted["licence_id"]
        .as_str()
        .context("new id")?
        .to_owned();
    eventually(30, "gd.transport's node to hold the transfer in", || {
        let v = verify(&http, &node, &moved_qr).ok()?;
        (v["lineage"]["transfer"]["accepted_as"] == new_id.as_str()).then_some(())
    })?;
    browser.type_keys(&format!("{moved_qr}{ENTER}"))?;
    let shown = answer(&browser, 7)?;
    assert_eq!(
        (shown.verdict.as_str(), shown.reason.as_str()),
        ("invalid", "transferred"),
        "{shown:#?}"
    );
    for word in ["证照已转出至外地", "transferred to another region"] {
        assert!(shown.banner.contains(word), "{word} missing: {shown:#?}");
    }
    for word in [new_id.as_str(), "上海", "310000", "ask for the new card"] {
        assert!(shown.now.contains(word), "{word} missing: {shown:#?}");
    }
    for word in ["转出", "sh.transport"] {
        assert!(shown.history.contains(word), "{word} missing: {shown:#?}");
    }
    ready_for_next(&shown);
    browser.screenshot(&out.join("window-transferred.png"))?;
    sh.stop()?;

    // No script error, no CSP violation, no failed load.
    let severe: Vec<Value> = browser
        .console()?
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "browser console errors: {severe:#?}");

    // 8. The node goes away: the page says the scan was not checked, shows no verdict and
    //    nothing of the last licence, and the header says the node is unreachable.
    node.stop()?;
    browser.type_keys(&format!("{valid_qr}{ENTER}"))?;
    let shown = answer(&browser, 8)?;
    assert_eq!(shown.verdict, "error", "{shown:#?}");
    for word in [
        "未核验",
        "NOT CHECKED",
        "无法连接节点",
        "cannot reach the node",
    ] {
        assert!(shown.banner.contains(word), "{word} missing: {shown:#?}");
    }
    assert_eq!(shown.licence, "", "stale licence shown: {shown:#?}");
    ready_for_next(&shown);
    let conn = browser.script("return document.getElementById('conn').innerText;")?;
    assert!(
        conn.as_str()
            .is_some_and(|c| c.contains("node unreachable")),
        "header does not say the node is unreachable: {conn}"
    );
    browser.screenshot(&out.join("window-error.png"))?;

    say(&format!(
        "browser test: screenshots of the service-window page are in {}",
        out.display()
    ));
    Ok(())
}
