//! Shared fixtures for the binary's tests: a founded example network in a temporary
//! directory, and a way to run `huren` in it and read what it did.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod live;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use huren_genesis::Template;

pub fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../genesis/example.toml")
}

pub fn template() -> Template {
    Template::parse(huren_genesis::EXAMPLE_TEMPLATE).expect("example template")
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The example network as the test kit founds it: keys/ and genesis.json in a temporary
/// directory that is removed when the test ends; `huren` runs in that directory.
pub struct Net {
    pub founded: huren_testkit::Founded,
    pub keys: PathBuf,
}

impl Net {
    pub fn new() -> Self {
        let founded = huren_testkit::Founded::example().expect("founded network");
        Net {
            keys: founded.keys.clone(),
            founded,
        }
    }

    /// A directory founded by the CLI itself, `huren genesis keygen` for every node of
    /// the example and `huren genesis build`: the founders' own commands, end to end.
    pub fn founded_by_the_cli() -> Self {
        let founded = huren_testkit::Founded::example().expect("founded network");
        std::fs::remove_dir_all(&founded.keys).expect("remove the kit's keys");
        std::fs::remove_file(&founded.genesis).expect("remove the kit's genesis");
        let n = Net {
            keys: founded.keys.clone(),
            founded,
        };
        let tpl = template();
        for d in &tpl.departments {
            let out = n.huren(&[
                "genesis",
                "keygen",
                "--department",
                d.id.as_str(),
                "--out",
                "keys",
            ]);
            assert_eq!(out.code, 0, "{out:?}");
            assert!(out.stdout.contains("issuer public key"), "{}", out.stdout);
            assert!(out.stdout.contains("12D3KooW"), "peer id: {}", out.stdout);
        }
        for o in &tpl.observers {
            let out = n.huren(&["genesis", "keygen", "--observer", &o.name, "--out", "keys"]);
            assert_eq!(out.code, 0, "{out:?}");
        }
        let tpl_path = template_path();
        let out = n.huren(&[
            "genesis",
            "build",
            tpl_path.to_str().expect("utf-8 path"),
            "--keys",
            "keys",
            "--out",
            "genesis.json",
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("genesis hash"), "{}", out.stdout);
        n
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.founded.path(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_huren"));
        c.current_dir(self.founded.dir.path())
            .args(args)
            // The developer's own token must not leak into tests that expect none.
            .env_remove("HUREN_TOKEN");
        c
    }

    fn finish(child: std::process::Output) -> Out {
        Out {
            // A signal has no code; -1 can never be mistaken for a real status.
            code: child.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&child.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&child.stderr).into_owned(),
        }
    }

    pub fn huren(&self, args: &[&str]) -> Out {
        Self::finish(
            self.command(args)
                .stdin(Stdio::null())
                .output()
                .expect("run huren"),
        )
    }

    pub fn huren_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.command(args);
        c.stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        Self::finish(c.output().expect("run huren"))
    }

    pub fn huren_stdin(&self, args: &[&str], input: &str) -> Out {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn huren");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Self::finish(child.wait_with_output().expect("wait huren"))
    }

    /// Issues a driving licence offline from gd.transport; returns the QR text.
    pub fn issue_mvdl(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "issue",
            "--offline",
            "--genesis",
            "genesis.json",
            "--key",
            "keys/gd.transport.issuer.key",
            "--type",
            "mvdl",
            "--holder",
            "name=张三",
            "--holder",
            "id_number=44010619900101123X",
            "--holder",
            "class=C1",
        ];
        args.extend_from_slice(extra);
        let out = self.huren(&args);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
        out.stdout.trim_end().to_owned()
    }

    /// `huren verify --offline --genesis genesis.json ARGS…`
    pub fn verify(&self, args: &[&str]) -> Out {
        let mut all = vec!["verify", "--offline", "--genesis", "genesis.json"];
        all.extend_from_slice(args);
        self.huren(&all)
    }
}

/// Now plus `days`, as RFC 3339.
pub fn rfc3339_in_days(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    huren_core::verify::rfc3339(now as i64 + days * 86_400)
}
