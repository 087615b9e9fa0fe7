//! Prints the ground-matrix presets and writes their heatmaps as SVG files.
//!
//! `cargo run --example presets -- [OUT_DIR]` (default `target/presets`).

use rwt::prelude::*;

fn main() -> Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "target/presets".into());
    for classes in [&CAMVID, &CITYSCAPES] {
        let severity = GroundMatrix::severity(classes);
        let importance = GroundMatrix::importance_aware(classes, &ImportanceWeights::default())?;
        println!("{} severity-aware ground matrix D[truth][pred]:\n{severity}", classes.name);
        for (kind, d) in [("severity", &severity), ("importance", &importance)] {
            let path = format!("{out}/{}-{kind}.svg", classes.name);
            let svg = d.heatmap(&format!("{} {kind} ground matrix", classes.name)).to_svg();
            rwt::io::write_atomic(&path, svg.as_bytes())?;
            println!("wrote {path}");
        }
    }
    Ok(())
}
