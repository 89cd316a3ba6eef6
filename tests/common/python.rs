//! A Python with a module importable, for test peers (moto, aiosmtpd): the workspace's CI
//! virtualenv in `target/ci-venv`, created on first use. Shared by the root tests
//! (`tests/common`) and the crates' tests (`#[path]`), so every suite uses one virtualenv.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: the nearest ancestor of the including crate with a `Cargo.lock`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("Cargo.lock").exists())
        .expect("a Cargo.lock above the crate")
        .to_owned()
}

/// The CI virtualenv's Python, with `module` importable (installing `package` from PyPI if not).
pub fn python_with(module: &str, package: &str) -> PathBuf {
    let venv = workspace_root().join("target/ci-venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "cannot create a virtualenv: install python3-venv"
        );
    }
    let has = |py: &Path| {
        Command::new(py)
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has(&py) {
        let ok = Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                package,
            ])
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "cannot install {package} from PyPI into {}",
            venv.display()
        );
    }
    py
}
