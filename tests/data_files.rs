//! Loaders on files the tests write: every bad input is an `Err` naming the file and the
//! problem; label mappings, palette PNGs, the batch loader's shapes and determinism.

use image::{GrayImage, Luma, Rgb, RgbImage};
use rwt::data::{self, Augment, CamVid, Cityscapes, Dataset, Gta5, Loader, LoaderConfig, Split};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rwt-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_rgb(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 100])).save(path).unwrap();
}

fn write_gray(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_fn(w, h, |x, y| Luma([f(x, y)])).save(path).unwrap();
}

/// A CamVid-like folder with `n` training pairs of 6×4 pixels.
fn camvid(root: &Path, n: usize) {
    let mut list = String::new();
    for i in 0..n {
        write_rgb(&root.join(format!("train/{i}.png")), 6, 4);
        write_gray(&root.join(format!("trainannot/{i}.png")), 6, 4, |x, y| ((x + y + i as u32) % 12) as u8);
        list += &format!("train/{i}.png trainannot/{i}.png\n");
    }
    std::fs::write(root.join("train.txt"), list).unwrap();
}

#[test]
fn camvid_reads_and_validates() {
    let root = tmp("camvid");
    camvid(&root, 5);
    let ds = CamVid::new(&root, Split::Train).unwrap();
    assert_eq!(ds.len(), 5);
    let s = ds.get(2).unwrap();
    assert_eq!((s.image.dimensions(), s.label.dimensions(), s.name.as_str()), ((6, 4), (6, 4), "2"));
    assert_eq!(s.label.get_pixel(3, 1).0[0], 6);
    assert!(ds.get(9).unwrap_err().to_string().contains("camvid/train has 5 images"));

    // Missing list file, missing image, empty split.
    let e = CamVid::new(&root, Split::Val).unwrap_err().to_string();
    assert!(e.contains("val.txt") && e.contains("camvid.sh"), "{e}");
    std::fs::write(root.join("test.txt"), "test/a.png testannot/a.png\n").unwrap();
    let e = CamVid::new(&root, Split::Test).unwrap_err().to_string();
    assert!(e.contains("test/a.png") && e.contains("missing file"), "{e}");
    std::fs::write(root.join("val.txt"), "\n").unwrap();
    let e = CamVid::new(&root, Split::Val).unwrap_err().to_string();
    assert!(e.contains("camvid/val") && e.contains("no images"), "{e}");
    std::fs::write(root.join("val.txt"), "only-one-column.png\n").unwrap();
    let e = CamVid::new(&root, Split::Val).unwrap_err().to_string();
    assert!(e.contains("val.txt:1") && e.contains("IMAGE LABEL"), "{e}");

    // Truncated image, size mismatch, label out of range.
    let img = root.join("train/0.png");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..bytes.len() / 2]).unwrap();
    let e = ds.get(0).unwrap_err().to_string();
    assert!(e.contains("train/0.png") && e.contains("decode"), "{e}");
    write_gray(&root.join("trainannot/1.png"), 5, 4, |_, _| 0);
    let e = ds.get(1).unwrap_err().to_string();
    assert!(e.contains("trainannot/1.png") && e.contains("6x4") && e.contains("5x4"), "{e}");
    write_gray(&root.join("trainannot/3.png"), 6, 4, |x, y| if (x, y) == (4, 2) { 12 } else { 0 });
    let e = ds.get(3).unwrap_err().to_string();
    assert!(e.contains("label value = 12") && e.contains("x 4, y 2") && e.contains("trainannot/3.png"), "{e}");
    // Truncated label map.
    let lab = root.join("trainannot/4.png");
    let bytes = std::fs::read(&lab).unwrap();
    std::fs::write(&lab, &bytes[..bytes.len() - 20]).unwrap();
    let e = ds.get(4).unwrap_err().to_string();
    assert!(e.contains("trainannot/4.png"), "{e}");
    // An RGB label map is refused.
    write_rgb(&root.join("trainannot/2.png"), 6, 4);
    let e = ds.get(2).unwrap_err().to_string();
    assert!(e.contains("8-bit grey or indexed"), "{e}");
}

#[test]
fn cityscapes_maps_label_ids_to_train_ids() {
    let root = tmp("cityscapes");
    for stem in ["aachen_000000_000019", "aachen_000001_000019"] {
        write_rgb(&root.join(format!("leftImg8bit/train/aachen/{stem}_leftImg8bit.png")), 4, 2);
        // ids: 7 road → 0, 26 car → 13, 0 unlabelled → 255, 33 bicycle → 18
        let ids = [7u8, 26, 0, 33, 24, 23, 4, 31];
        write_gray(&root.join(format!("gtFine/train/aachen/{stem}_gtFine_labelIds.png")), 4, 2, |x, y| {
            ids[(y * 4 + x) as usize]
        });
    }
    let ds = Cityscapes::new(&root, Split::Train).unwrap();
    assert_eq!(ds.len(), 2);
    let s = ds.get(0).unwrap();
    assert_eq!(s.name, "aachen_000000_000019");
    let got: Vec<u8> = s.label.pixels().map(|p| p.0[0]).collect();
    assert_eq!(got, vec![0, 13, 255, 18, 11, 10, 255, 16]);
    // A value that is no label id.
    write_gray(&root.join("gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png"), 4, 2, |_, _| 40);
    let e = ds.get(1).unwrap_err().to_string();
    assert!(e.contains("label value = 40"), "{e}");
    // A missing label file is found when the split is opened.
    std::fs::remove_file(root.join("gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png")).unwrap();
    let e = Cityscapes::new(&root, Split::Train).unwrap_err().to_string();
    assert!(e.contains("aachen_000001_000019_gtFine_labelIds.png"), "{e}");
    let e = Cityscapes::new(&root, Split::Val).unwrap_err().to_string();
    assert!(e.contains("leftImg8bit/val") && e.contains("cityscapes.sh"), "{e}");
}

#[test]
fn gta5_palette_labels_are_read_as_indices() {
    let root = tmp("gta5");
    write_rgb(&root.join("images/00001.png"), 3, 2);
    std::fs::create_dir_all(root.join("labels")).unwrap();
    // An indexed PNG whose palette colours are not the indices.
    let file = std::fs::File::create(root.join("labels/00001.png")).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 3, 2);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    let mut palette = vec![0u8; 256 * 3];
    for (i, c) in palette.chunks_mut(3).enumerate() {
        c.copy_from_slice(&[(i * 7) as u8, (i * 13) as u8, 200]);
    }
    enc.set_palette(palette);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&[7, 8, 26, 11, 21, 23]).unwrap();
    drop(w);
    let ds = Gta5::new(&root, Split::Train).unwrap();
    let got: Vec<u8> = ds.get(0).unwrap().label.pixels().map(|p| p.0[0]).collect();
    assert_eq!(got, vec![0, 1, 13, 2, 8, 10]);
    let e = Gta5::new(&root, Split::Val).unwrap_err().to_string();
    assert!(e.contains("no official val split"), "{e}");
}

#[test]
fn locate_says_where_it_looked() {
    let e = data::locate("no-such-dataset", None).unwrap_err().to_string();
    assert!(e.contains("data-scripts/no-such-dataset.sh") && e.contains("looked in"), "{e}");
    let e = data::locate("camvid", Some(Path::new("/nonexistent/camvid"))).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/camvid"), "{e}");
}

#[test]
fn loader_batches_are_deterministic() {
    let root = tmp("loader");
    camvid(&root, 7);
    let ds: Arc<dyn Dataset> = Arc::new(CamVid::new(&root, Split::Train).unwrap());
    let cfg = LoaderConfig {
        batch_size: 3,
        seed: 5,
        augment: Augment { crop: Some((3, 4)), scale: Some((0.8, 1.5)), hflip: true, ..Default::default() },
        ..Default::default()
    };
    let loader = Loader::new(ds.clone(), cfg, rwt::candle_core::Device::Cpu).unwrap();
    assert_eq!(loader.batches_per_epoch(), 3);
    let run = |epoch| -> Vec<(Vec<f32>, Vec<u32>, Vec<usize>)> {
        loader
            .epoch(epoch)
            .map(|b| {
                let b = b.unwrap();
                assert_eq!(&b.images.dims()[1..], &[3, 3, 4]);
                (
                    b.images.flatten_all().unwrap().to_vec1().unwrap(),
                    b.labels.flatten_all().unwrap().to_vec1().unwrap(),
                    b.indices,
                )
            })
            .collect()
    };
    let (a, b, c) = (run(0), run(0), run(1));
    assert_eq!(a, b, "same seed and epoch, same batches");
    assert_ne!(a, c, "another epoch, another order and augmentation");
    assert_eq!(a.iter().map(|x| x.2.len()).sum::<usize>(), 7);
    let mut seen: Vec<usize> = a.iter().flat_map(|x| x.2.clone()).collect();
    seen.sort();
    assert_eq!(seen, (0..7).collect::<Vec<_>>());
    // Samples of different sizes cannot be batched without a crop or resize.
    write_rgb(&root.join("train/6.png"), 8, 4);
    write_gray(&root.join("trainannot/6.png"), 8, 4, |_, _| 1);
    let ds: Arc<dyn Dataset> = Arc::new(CamVid::new(&root, Split::Train).unwrap());
    let loader = Loader::new(
        ds,
        LoaderConfig { batch_size: 7, shuffle: false, ..Default::default() },
        rwt::candle_core::Device::Cpu,
    )
    .unwrap();
    let e = loader.epoch(0).next().unwrap().unwrap_err().to_string();
    assert!(e.contains("share a size"), "{e}");
    assert!(Loader::new(
        loader.dataset().clone(),
        LoaderConfig { batch_size: 0, ..Default::default() },
        rwt::candle_core::Device::Cpu
    )
    .is_err());
}
