//! Helpers for black-box tests that drive the real `watchhouse` binary over HTTP.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_watchhouse")
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Sends SIGINT (Ctrl-C) and waits for the exit status.
    pub fn interrupt(&mut self, within: Duration) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status()?;
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            if start.elapsed() > within {
                bail!("process did not stop within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts the binary with arguments; stderr goes to a file in `dir`.
pub fn spawn(dir: &Path, name: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<Proc> {
    let log = dir.join(format!("{name}.log"));
    let f = std::fs::File::create(&log)?;
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .env("WATCHHOUSE_LOG", "info");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().context("spawn watchhouse")?;
    Ok(Proc { child, log })
}

/// Runs the binary to completion with `stdin`, whatever the outcome: (exit code, or -1 when a
/// signal ended it; stdout; stderr).
pub fn run_status(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watchhouse");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the binary to completion and returns stdout; an error with stderr if it failed.
pub fn run(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let (code, out, err) = run_status(args, stdin.unwrap_or(""));
    if code != 0 {
        bail!("watchhouse {args:?} failed: {err}");
    }
    Ok(out)
}

/// Waits until a hub at `url` answers `/healthz` (30 s at most).
pub async fn wait_healthy(url: &str) -> Result<()> {
    let url = url.to_owned();
    eventually(Duration::from_secs(30), "the hub", || {
        let u = url.clone();
        async move {
            Ok(reqwest::get(format!("{u}/healthz"))
                .await
                .ok()
                .filter(|r| r.status().is_success()))
        }
    })
    .await?;
    Ok(())
}

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns `Some` or the timeout passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}; last error: {last_err:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An HTTP client that keeps one session cookie by hand (cookies are not `Secure` on loopback,
/// but handling them explicitly keeps the test independent of cookie-jar rules).
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub session: Option<String>,
    pub csrf: Option<String>,
}

fn cookie_value(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k == name).then(|| val.to_owned())
        })
}

/// Extracts the first hidden `csrf` field from a page.
pub fn csrf_from(html: &str) -> Option<String> {
    let i = html.find(r#"name="csrf" value=""#)?;
    let rest = &html[i + r#"name="csrf" value=""#.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            session: None,
            csrf: None,
        }
    }

    fn with_cookie(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.session {
            Some(s) => rb.header(COOKIE, format!("wh_session={s}")),
            None => rb,
        }
    }

    /// Signs in through the real form. Returns the status of the POST.
    pub async fn login(&mut self, email: &str, password: &str) -> Result<StatusCode> {
        let form = self.http.get(format!("{}/login", self.base)).send().await?;
        let login_csrf = cookie_value(&form, "wh_login_csrf").context("no login csrf cookie")?;
        let html = form.text().await?;
        let field = csrf_from(&html).context("no csrf field on the login page")?;
        assert_eq!(field, login_csrf);
        let res = self
            .http
            .post(format!("{}/login", self.base))
            .header(COOKIE, format!("wh_login_csrf={login_csrf}"))
            .form(&[
                ("csrf", field.as_str()),
                ("email", email),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await?;
        let status = res.status();
        if status == StatusCode::SEE_OTHER {
            self.session = Some(cookie_value(&res, "wh_session").context("no session cookie")?);
            // The CSRF token of the session is in every signed-in page's sign-out form.
            let page = self.get("/api/v1/me").await?;
            assert_eq!(page.status(), StatusCode::OK);
            let home = self.get("/alerts/0").await?.text().await?;
            self.csrf = csrf_from(&home);
        }
        Ok(status)
    }

    pub async fn get(&self, path: &str) -> Result<reqwest::Response> {
        Ok(self
            .with_cookie(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await?)
    }

    pub async fn get_json(&self, path: &str) -> Result<(StatusCode, Value)> {
        let res = self.get(path).await?;
        let status = res.status();
        let v = res.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, v))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<(StatusCode, Value)> {
        let mut rb = self
            .with_cookie(self.http.post(format!("{}{path}", self.base)))
            .json(body);
        if let Some(c) = &self.csrf {
            rb = rb.header("x-csrf-token", c);
        }
        let res = rb.send().await?;
        let status = res.status();
        Ok((status, res.json::<Value>().await.unwrap_or(Value::Null)))
    }

    pub async fn with_csrf_put(&self, path: &str, body: &Value) -> Result<StatusCode> {
        let mut rb = self
            .with_cookie(self.http.put(format!("{}{path}", self.base)))
            .json(body);
        if let Some(c) = &self.csrf {
            rb = rb.header("x-csrf-token", c);
        }
        Ok(rb.send().await?.status())
    }

    pub async fn delete(&self, path: &str) -> Result<reqwest::Response> {
        let mut rb = self.with_cookie(self.http.delete(format!("{}{path}", self.base)));
        if let Some(c) = &self.csrf {
            rb = rb.header("x-csrf-token", c);
        }
        Ok(rb.send().await?)
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Result<reqwest::Response> {
        Ok(self
            .with_cookie(self.http.post(format!("{}{path}", self.base)))
            .form(form)
            .send()
            .await?)
    }

    pub fn location(res: &reqwest::Response) -> Option<String> {
        res.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A running demo: the process, its URL and its accounts.
pub struct Demo {
    pub proc: Proc,
    pub url: String,
    pub creds: Value,
    pub started: Instant,
    pub dir: tempfile::TempDir,
}

impl Demo {
    pub async fn start(rate: u32) -> Result<Demo> {
        let dir = tempfile::tempdir()?;
        let creds_path = dir.path().join("creds.json");
        let data = dir.path().join("data");
        let started = Instant::now();
        let rate = rate.to_string();
        let proc = spawn(
            dir.path(),
            "demo",
            &[
                "demo",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--rate",
                &rate,
                "--credentials-file",
                creds_path.to_str().unwrap(),
            ],
            &[],
        )?;
        let creds: Value = eventually(
            Duration::from_secs(60),
            "the demo's credentials file",
            || {
                let p = creds_path.clone();
                async move {
                    Ok(std::fs::read(&p)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok()))
                }
            },
        )
        .await
        .with_context(|| format!("demo log:\n{}", proc.log()))?;
        let url = creds["url"].as_str().unwrap().to_owned();
        Ok(Demo {
            proc,
            url,
            creds,
            started,
            dir,
        })
    }

    pub fn password(&self, email: &str) -> String {
        self.creds["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap_or_else(|| panic!("no demo user {email}"))["password"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn member_id(&self, name_prefix: &str) -> i64 {
        self.creds["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"].as_str().unwrap().starts_with(name_prefix))
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn client(&self, email: &str) -> Result<Client> {
        let mut c = Client::new(&self.url);
        let status = c.login(email, &self.password(email)).await?;
        if status != StatusCode::SEE_OTHER {
            bail!("login as {email} failed with {status}");
        }
        Ok(c)
    }
}

/// A hub with one force, one member (networks 198.51.100.0/28), an administrator
/// (`a@t.example`) and a one-time enrolment token, all made with the real `admin` CLI.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub data: String,
    pub addr: String,
    pub url: String,
    pub token: String,
}

/// The administrator's password on a [`Site`].
pub const SITE_PASSWORD: &str = "correct horse battery";

impl Site {
    pub fn new() -> Result<Site> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("hub").to_str().unwrap().to_owned();
        run(
            &[
                "admin",
                "--data-dir",
                &data,
                "force",
                "add",
                "--name",
                "F",
                "--region",
                "R",
            ],
            None,
        )?;
        run(
            &[
                "admin",
                "--data-dir",
                &data,
                "member",
                "add",
                "--force",
                "1",
                "--name",
                "M",
                "--network",
                "198.51.100.0/28",
            ],
            None,
        )?;
        run(
            &[
                "admin",
                "--data-dir",
                &data,
                "user",
                "add",
                "--email",
                "a@t.example",
                "--name",
                "A",
                "--role",
                "admin",
                "--password-stdin",
            ],
            Some(&format!("{SITE_PASSWORD}\n")),
        )?;
        let token = run(
            &[
                "admin",
                "--data-dir",
                &data,
                "token",
                "create",
                "--member",
                "1",
            ],
            None,
        )?
        .trim()
        .to_owned();
        let addr = format!("127.0.0.1:{}", free_port());
        let url = format!("http://{addr}");
        Ok(Site {
            dir,
            data,
            addr,
            url,
            token,
        })
    }

    /// A path inside the site's directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// Starts the hub (extra arguments and environment as given) and waits until it answers.
    pub async fn start_hub(&self, args: &[&str], envs: &[(&str, &str)]) -> Result<Proc> {
        let mut all = vec!["hub", "--data-dir", &self.data, "--listen", &self.addr];
        all.extend_from_slice(args);
        let hub = spawn(self.dir.path(), "hub", &all, envs)?;
        wait_healthy(&self.url).await?;
        Ok(hub)
    }

    /// Starts a collector for the member (no UDP/TCP unless `args` adds them), enrolling with
    /// the site's token on first start.
    pub fn start_collector(&self, args: &[&str], envs: &[(&str, &str)]) -> Result<Proc> {
        let data = self.path("collector");
        let mut all = vec![
            "collect",
            "--hub",
            &self.url,
            "--data-dir",
            &data,
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
        ];
        all.extend_from_slice(args);
        let mut env = vec![("WATCHHOUSE_ENROL_TOKEN", self.token.as_str())];
        env.extend_from_slice(envs);
        spawn(self.dir.path(), "collector", &all, &env)
    }

    /// The administrator, signed in.
    pub async fn admin(&self) -> Result<Client> {
        let mut c = Client::new(&self.url);
        let status = c.login("a@t.example", SITE_PASSWORD).await?;
        if status != StatusCode::SEE_OTHER {
            bail!("admin sign-in failed with {status}");
        }
        Ok(c)
    }

    /// Firewall events stored for the member (the sum of counts).
    pub async fn total(admin: &Client) -> Result<u64> {
        let (_, v) = admin.get_json("/api/v1/members/1/summary").await?;
        Ok(v["total_events"].as_u64().unwrap_or(0))
    }
}

mod pg;
mod python;
#[allow(unused_imports)] // not every test binary uses both
pub use pg::PgDb;
#[allow(unused_imports)]
pub use python::python_with;
