//! Checkpoints and pretrained encoders.
//!
//! A checkpoint is a safetensors file of every variable of a `VarMap` (weights and the
//! batch-norm running statistics), written atomically. Pretrained ImageNet encoders load from
//! torchvision checkpoints converted to safetensors (`data-scripts/convert_torchvision.py`),
//! by name:
//!
//! | torchvision model | file names | rwt names |
//! |---|---|---|
//! | `vgg16` (FCN-8s) | `features.{i}.{weight,bias}` | `encoder.features.{i}.*` |
//! |  | `classifier.0.*` (fc6, `4096 × 25088`) | `fc6.*` (reshaped to `4096 × 512 × 7 × 7`) |
//! |  | `classifier.3.*` (fc7, `4096 × 4096`) | `fc7.*` (reshaped to `4096 × 4096 × 1 × 1`) |
//! | `vgg16_bn` (SegNet) | `features.{i}.*` incl. batch-norm `running_mean/var` | `encoder.features.{i}.*` |
//! | `resnet101` (DeepLab-v2) | `conv1.*`, `bn1.*`, `layer{1..4}.{j}.*` | `encoder.` + the same name |
//!
//! Classifier layers of ImageNet models (`classifier.6`, `fc`) and `num_batches_tracked` are
//! skipped. Loading reports what was loaded, what the model has that the file lacks, and what
//! the file has that the model does not use; a shape mismatch is an error naming the tensor.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::path::Path;

/// Which tensors a load used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Variables set from the file.
    pub loaded: Vec<String>,
    /// Variables of the model that the file does not have (left as they were).
    pub missing: Vec<String>,
    /// Tensors of the file that no variable uses.
    pub unused: Vec<String>,
}

/// Saves every variable of `varmap` as a safetensors file, atomically (temporary file and
/// rename), creating the folder.
pub fn save(varmap: &VarMap, path: impl AsRef<Path>) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned by a panic"))?;
    let tensors: HashMap<String, Tensor> = data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    drop(data);
    save_tensors(&tensors, path)
}

/// Saves named tensors as a safetensors file, atomically (temporary file and rename),
/// creating the folder.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: impl AsRef<Path>) -> Result<()> {
    crate::io::write_atomic_with(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp)
            .map_err(|e| Error::invalid("checkpoint", tmp.display(), e.to_string()))
    })
}

/// Reads the tensors of a safetensors file (on the CPU).
pub fn read(path: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "checkpoint not found"),
        });
    }
    candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| Error::invalid("checkpoint", path.display(), format!("is not a readable safetensors file: {e}")))
}

/// Sets the variables of `varmap` from `tensors`, after renaming each tensor with `rename`
/// (`None` skips it). Shapes must match exactly unless the tensor has the same number of
/// elements and `reshape` is allowed for that name.
pub fn assign(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    rename: impl Fn(&str) -> Option<String>,
    reshape_ok: impl Fn(&str) -> bool,
) -> Result<LoadReport> {
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned by a panic"))?;
    let mut report = LoadReport::default();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut used = std::collections::HashSet::new();
    for name in names {
        let Some(target) = rename(name) else {
            report.unused.push(name.clone());
            continue;
        };
        let Some(var) = data.get(&target) else {
            report.unused.push(name.clone());
            continue;
        };
        let t = &tensors[name];
        let t = if t.dims() == var.dims() {
            t.clone()
        } else if t.elem_count() == var.elem_count() && reshape_ok(&target) {
            t.reshape(var.shape())?
        } else {
            return Err(Error::shape(
                format!("checkpoint tensor {name} for {target}"),
                format!("{:?}", var.dims()),
                format!("{:?}", t.dims()),
            ));
        };
        var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
        used.insert(target.clone());
        report.loaded.push(target);
    }
    let mut missing: Vec<String> = data.keys().filter(|k| !used.contains(*k)).cloned().collect();
    missing.sort();
    report.missing = missing;
    Ok(report)
}

/// Loads a checkpoint written by [`save`] into `varmap`. With `strict`, any missing or
/// unused tensor is an error naming the first few.
pub fn load(varmap: &VarMap, path: impl AsRef<Path>, strict: bool) -> Result<LoadReport> {
    let path = path.as_ref();
    let tensors = read(path)?;
    let report = assign(varmap, &tensors, |n| Some(n.to_string()), |_| false)?;
    if strict && (!report.missing.is_empty() || !report.unused.is_empty()) {
        return Err(Error::invalid(
            "checkpoint",
            path.display(),
            format!(
                "does not match the model: missing {:?}, unused {:?}",
                first(&report.missing),
                first(&report.unused)
            ),
        ));
    }
    Ok(report)
}

fn first(v: &[String]) -> Vec<&String> {
    v.iter().take(5).collect()
}

/// The torchvision encoders rwt can start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pretrained {
    /// torchvision `vgg16`, for [`super::Fcn8s`].
    Vgg16,
    /// torchvision `vgg16_bn`, for [`super::SegNet`].
    Vgg16Bn,
    /// torchvision `resnet101`, for [`super::DeepLabV2`].
    ResNet101,
}

impl Pretrained {
    /// The rwt name of a torchvision tensor name (`None`: not part of the encoder).
    pub fn rename(self, name: &str) -> Option<String> {
        if name.ends_with("num_batches_tracked") {
            return None;
        }
        match self {
            Pretrained::Vgg16 => {
                if name.starts_with("features.") {
                    Some(format!("encoder.{name}"))
                } else if let Some(rest) = name.strip_prefix("classifier.0.") {
                    Some(format!("fc6.{rest}"))
                } else {
                    name.strip_prefix("classifier.3.").map(|rest| format!("fc7.{rest}"))
                }
            }
            Pretrained::Vgg16Bn => name.starts_with("features.").then(|| format!("encoder.{name}")),
            Pretrained::ResNet101 => (!name.starts_with("fc.")).then(|| format!("encoder.{name}")),
        }
    }

    /// Loads the encoder from a converted torchvision checkpoint into `varmap`.
    pub fn load(self, varmap: &VarMap, path: impl AsRef<Path>) -> Result<LoadReport> {
        let tensors = read(path)?;
        assign(varmap, &tensors, |n| self.rename(n), |target| matches!(target, "fc6.weight" | "fc7.weight"))
    }
}

/// Number of learned parameters of `varmap` (batch-norm running statistics excluded).
pub fn parameter_count(varmap: &VarMap) -> usize {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    data.iter()
        .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .map(|(_, v)| v.elem_count())
        .sum()
}

/// A fresh `VarMap` and the network of `kind` built in it (f32, on `device`), its kernels
/// drawn by [`seeded_init`] with seed 0: the same call gives the same network.
pub fn build(
    kind: super::ModelKind,
    cfg: &super::SegmenterConfig,
    device: &Device,
) -> Result<(VarMap, Box<dyn super::Segmenter>)> {
    build_seeded(kind, cfg, device, 0)
}

/// [`build`] with the initial kernels drawn from `seed`.
pub fn build_seeded(
    kind: super::ModelKind,
    cfg: &super::SegmenterConfig,
    device: &Device,
    seed: u64,
) -> Result<(VarMap, Box<dyn super::Segmenter>)> {
    let vm = VarMap::new();
    let net = kind.build(cfg, candle_nn::VarBuilder::from_varmap(&vm, DType::F32, device))?;
    seeded_init(&vm, seed)?;
    Ok((vm, net))
}

/// Redraws every convolution kernel of `varmap` (a 4-d variable named `…weight`) from
/// `N(0, 2 / fan_in)` with `fan_in = dims[1]·kh·kw` — the Kaiming-normal rule the layers are
/// created with — from a generator seeded with `seed`, in name order, so that initial weights
/// are reproducible (candle's CPU generator cannot be seeded). Other variables keep their
/// constant initial values.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = crate::random::seeded(seed);
    for name in names {
        let var = &data[name];
        if let [_, c, kh, kw] = *var.dims() {
            if name.ends_with("weight") {
                let std = (2.0 / (c * kh * kw).max(1) as f64).sqrt();
                let w = crate::random::normal(&mut rng, var.shape(), std, var.device())?.to_dtype(var.dtype())?;
                var.set(&w)?;
            }
        }
    }
    Ok(())
}
