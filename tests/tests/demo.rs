//! The README's first command, end to end: the demo network walks a licence through
//! issue, cross-region verification, suspension, reinstatement and revocation.

use std::process::Command;

#[test]
fn demo_walks_through_a_licence_life() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let png = dir.path().join("licence.png");
    let out = Command::new(huren_tests::binary("huren-demo"))
        .arg("--no-wait")
        .arg("--png")
        .arg(&png)
        .env("RUST_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "valid",
        "invalid · suspended",
        "invalid · revoked",
        "huren verify --offline --bundle (exit 1)",
        "data as of",
        "sh.transport",
        "governance height 5",
        "js.maritime",
        "all nodes stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
    let qr = huren_render::qr::decode_image(&std::fs::read(&png)?)?;
    assert!(qr.starts_with("HZ1:"));
    Ok(())
}
