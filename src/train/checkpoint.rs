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
use std::path::Path;

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
    let state_path = dir.join(STATE);
    let text = crate::io::read_text(&state_path)?;
    let field = |key: &str| -> Result<String> {
        text.lines()
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_string()))
            .ok_or_else(|| Error::invalid("checkpoint state", state_path.display(), format!("has no `{key}`")))
    };
    let number = |key: &str| -> Result<usize> {
        let v = field(key)?;
        v.parse().map_err(|_| {
            Error::invalid("checkpoint state", state_path.display(), format!("`{key}` = {v:?} is not a count"))
        })
    };
    let (next_epoch, step) = (number("next_epoch")?, number("step")?);
    weights::load(varmap, dir.join(MODEL), true)?;
    opt.load_state(&weights::read(dir.join(OPTIMIZER))?)?;
    progress.step = step;
    Ok(next_epoch)
}
