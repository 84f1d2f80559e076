//! The benchmark harness's --quick mode as a smoke test: it must run end to end and
//! report every figure. No speed is asserted (shared CI machines are noisy).

use std::process::Command;

#[test]
fn quick_benchmark_reports_every_figure() -> anyhow::Result<()> {
    let out_dir = tempfile::tempdir()?;
    let out = Command::new(huren_tests::binary("huren-bench"))
        .args(["--quick", "--seconds", "1", "--licences", "12000", "--out"])
        .arg(out_dir.path())
        .env("RUST_LOG", "warn")
        .output()?;
    assert!(
        out.status.success(),
        "huren-bench failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("results.json"))?)?;
    for path in [
        "/limits/ed25519_verify_per_s_one_core",
        "/limits/ed25519_sign_per_s_one_core",
        "/limits/ed25519_batch_verify_per_s_all_cores",
        "/limits/sha256_bytes_per_s",
        "/limits/fdatasync_4k_appends_per_s",
        "/one_node/verify_fast_path/per_s",
        "/one_node/verify_fast_path/p99_ms",
        "/one_node/verify_signature_path/per_s",
        "/one_node/trivial_handler/per_s",
        "/one_node/verify_fast_path/ratio_to_trivial",
        "/one_node/verify_signature_path/ratio_to_fast",
        "/one_node/issue_single_concurrency_64/per_s",
        "/one_node/issue_bulk/per_s",
        "/scale/small/disk_bytes_per_licence",
        "/scale/large/verify_p99_ms",
        "/scale/large/import_seconds",
        "/scale/alternated/p99_ratio_median",
        "/scale/large/node_rss_bytes",
        "/catch_up/records_per_s",
        "/replication/1/records_per_s_all_nodes",
        "/replication/1/propagation_p99_ms_le",
        "/checkpoints/bundle_bytes",
        "/checkpoints/delta_bytes",
        "/checkpoints/offline_verify_per_s_one_core",
        "/checkpoints/proof/p99_ms",
        "/checkpoints/replication_sustained_without_checkpoints",
        "/baseline/issue_bulk/per_s",
        "/baseline/verify/per_s",
        "/baseline/disk_bytes_per_licence",
        "/instructions/verify_fast_path_instructions",
        "/instructions/issue_instructions_per_licence",
        "/disk/issuing/disk_bytes",
        "/disk/replica/disk_bytes",
        "/disk/replica/trees/0/value_bytes",
    ] {
        let v = r.pointer(path).and_then(serde_json::Value::as_f64);
        assert!(
            v.is_some_and(|x| x > 0.0),
            "{path} is missing or not positive: {v:?}"
        );
    }
    assert_eq!(r["qr"].as_array().map(Vec::len), Some(3));
    let md = std::fs::read_to_string(out_dir.path().join("results.md"))?;
    assert!(md.contains("catch-up") && md.contains("replication") && md.contains("offline bundle"));
    Ok(())
}
