//! Checkpoints of a training run, written so that nothing is lost: the weights
//! (`model.safetensors`), the optimiser's momentum buffers (`optimizer.safetensors`) and the
//! position in the run (`state.txt`: next epoch, step), each written atomically (temporary
//! file, rename) and `state.txt` last, so a folder with a `state.txt` always holds a complete
//! checkpoint. Resuming at an epoch boundary repeats the run exactly (tested).

use super::Progress;
use crate::models::weights;
use crate::optim::Optimizer;
use crate::{Error, Result};
use candle_nn::VarMap;
use std::path::{Path, PathBuf};

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.txt";

/// Writes a checkpoint into `dir` (created if needed): the run continues at `next_epoch`.
pub fn save(
    dir: impl AsRef<Path>,
    varmap: &VarMap,
    opt: &dyn Optimizer,
    progress: &Progress,
    next_epoch: usize,
) -> Result<()> {
    let dir = dir.as_ref();
    weights::save(varmap, dir.join(MODEL))?;
    weights::save_tensors(&opt.state(), dir.join(OPTIMIZER))?;
    let state =
        format!("next_epoch = {next_epoch}\nstep = {}\nlearning_rate = {}\n", progress.step, opt.learning_rate());
    crate::io::write_atomic(dir.join(STATE), state.as_bytes())
}

/// Restores a checkpoint of `dir` into `varmap` (every variable must be in it), `opt` and
/// `progress.step`; returns the epoch to continue with.
pub fn load(dir: impl AsRef<Path>, varmap: &VarMap, opt: &mut dyn Optimizer, progress: &mut Progress) -> Result<usize> {
    let dir = dir.as_ref();
    let state = StateFile::read(dir.join(STATE))?;
    let (next_epoch, step) = (state.count("next_epoch")?, state.count("step")?);
    weights::load(varmap, dir.join(MODEL), true)?;
    opt.load_state(&weights::read(dir.join(OPTIMIZER))?)?;
    progress.step = step;
    Ok(next_epoch)
}

/// The `key = value` lines of a checkpoint's `state.txt` (this module's and
/// [`crate::rl::train()`]'s).
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
    text: String,
}

impl StateFile {
    /// Reads `path`; the error names it.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let text = crate::io::read_text(&path)?;
        Ok(StateFile { path, text })
    }

    /// The count stored under `key`.
    ///
    /// # Errors
    /// The key is missing or its value is not a non-negative integer (file and key named).
    pub fn count(&self, key: &str) -> Result<usize> {
        let value = self
            .text
            .lines()
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim()))
            .ok_or_else(|| Error::invalid("checkpoint state", self.path.display(), format!("has no `{key}`")))?;
        value.parse().map_err(|_| {
            Error::invalid("checkpoint state", self.path.display(), format!("`{key}` = {value:?} is not a count"))
        })
    }
}

/// Records `config` (as `toml`) in `dir/config.toml`, atomically — after checking, when the
/// folder is `resuming` a run, that the config recorded there is the same (read back with
/// `read`), so that a checkpoint is never continued under another config.
///
/// # Errors
/// The recorded config differs (the folder and the kind of config named) or cannot be read.
pub fn claim_run_folder<C: PartialEq>(
    dir: &Path,
    kind: &str,
    config: &C,
    toml: &str,
    resuming: bool,
    read: impl FnOnce(&Path) -> Result<C>,
) -> Result<()> {
    let path = dir.join("config.toml");
    if resuming && read(&path)? != *config {
        return Err(Error::invalid(
            "run folder",
            dir.display(),
            format!("holds a checkpoint of a different {kind}; choose another folder or delete it"),
        ));
    }
    crate::io::write_atomic(path, toml.as_bytes())
}
