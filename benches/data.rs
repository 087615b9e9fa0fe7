//! Data pipeline throughput: CamVid images per second decoded, augmented (scale jitter,
//! random crop, flip), normalised and batched into tensors by the prefetching loader, against
//! a plain single-threaded decode of the same files in the same run.
//!
//! `cargo bench --bench data` (uses CamVid from $RWT_DATA or ../shared/datasets; without it,
//! synthetic 360×480 PNGs written to a temporary folder). `RWT_QUICK=1` for fewer images.

use rwt::data::{self, Augment, CamVid, Dataset, Loader, LoaderConfig, Split};
use std::sync::Arc;
use std::time::Instant;

fn main() -> rwt::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("data bench: run with `cargo bench --bench data`");
        return Ok(());
    }
    let quick = std::env::var("RWT_QUICK").is_ok_and(|v| v == "1");
    let root = match data::locate("camvid", None) {
        Ok(p) => p,
        Err(_) => synthetic_camvid(if quick { 16 } else { 96 })?,
    };
    let ds = CamVid::new(&root, Split::Train)?;
    let n = if quick { 16.min(ds.len()) } else { ds.len() };
    println!("{} images of {} ({} threads)", n, ds.describe(), rayon::current_num_threads());

    // Baseline: decode only, one thread.
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(ds.get(i)?);
    }
    let base = n as f64 / start.elapsed().as_secs_f64();
    println!("decode, 1 thread (baseline)                       {base:>8.1} images/s  1.00x");

    let ds: Arc<dyn Dataset> = Arc::new(ds);
    for (name, augment) in [
        ("loader, no augmentation", Augment::none()),
        (
            "loader, scale 0.75-1.25 + crop 352x480 + flip",
            Augment { scale: Some((0.75, 1.25)), crop: Some((352, 480)), hflip: true, ..Default::default() },
        ),
    ] {
        let cfg = LoaderConfig { batch_size: 4, seed: 1, augment, limit: Some(n), ..Default::default() };
        let loader = Loader::new(ds.clone(), cfg, rwt::candle_core::Device::Cpu)?;
        let start = Instant::now();
        let mut images = 0;
        for b in loader.epoch(0) {
            images += b?.images.dims()[0];
        }
        let rate = images as f64 / start.elapsed().as_secs_f64();
        println!("{name:<49} {rate:>8.1} images/s  {:.2}x", rate / base);
    }
    Ok(())
}

/// A CamVid-like folder of random 360×480 images when the real one is absent.
fn synthetic_camvid(n: usize) -> rwt::Result<std::path::PathBuf> {
    let root = std::env::temp_dir().join("rwt-bench-camvid");
    let mut list = String::new();
    let mut rng = rwt::random::seeded(0);
    use rand::Rng;
    for i in 0..n {
        let img = image::RgbImage::from_fn(480, 360, |_, _| image::Rgb([rng.random(), rng.random(), rng.random()]));
        let lab = image::GrayImage::from_fn(480, 360, |x, y| image::Luma([((x / 40 + y / 40) % 12) as u8]));
        let (pi, pl) = (root.join(format!("train/{i}.png")), root.join(format!("trainannot/{i}.png")));
        std::fs::create_dir_all(pi.parent().unwrap()).ok();
        std::fs::create_dir_all(pl.parent().unwrap()).ok();
        img.save(&pi).map_err(|e| rwt::Error::invalid("image", pi.display(), e.to_string()))?;
        lab.save(&pl).map_err(|e| rwt::Error::invalid("image", pl.display(), e.to_string()))?;
        list += &format!("train/{i}.png trainannot/{i}.png\n");
    }
    rwt::io::write_atomic(root.join("train.txt"), list.as_bytes())?;
    Ok(root)
}
