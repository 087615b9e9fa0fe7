//! Running a PyTorch peer script of `benches/peers/` in the virtual environment that
//! `benches/peers/torch-env.sh` creates (once), shared by the benchmarks that compare with
//! PyTorch.

use std::process::Command;

/// Runs `benches/peers/<script>` with `args` under the peer environment's Python and parses
/// its one JSON line; the error is the installer's or the script's stderr.
pub fn run(script: &str, args: &[usize]) -> Result<serde_json::Value, String> {
    let env = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/torch-env.sh"))
        .output()
        .map_err(|e| e.to_string())?;
    if !env.status.success() {
        return Err(String::from_utf8_lossy(&env.stderr).trim().to_string());
    }
    let py = String::from_utf8_lossy(&env.stdout).trim().to_string();
    let out = Command::new(py)
        .arg(format!("{}/benches/peers/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args.iter().map(|v| v.to_string()))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}
