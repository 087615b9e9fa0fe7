//! A network's structure in numbers: parameters and multiply-adds per block, measured by
//! running one forward pass with a trace of every convolution (the layers that hold nearly all
//! of a segmenter's parameters and arithmetic; element-wise layers are not counted).
//!
//! ```
//! use rwt::models::{summary, weights, ModelKind, SegmenterConfig};
//! let (vm, net) = weights::build(ModelKind::Enet, &SegmenterConfig::new(11), &rwt::candle_core::Device::Cpu)?;
//! let s = summary::summarize(net.as_ref(), &vm, (64, 96), 1)?;
//! assert_eq!(s.parameters(), 353_770);
//! assert!(s.rows.iter().any(|r| r.block == "initial"));
//! # Ok::<(), rwt::Error>(())
//! ```

use super::Segmenter;
use crate::plot::Table;
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    static TRACE: RefCell<Option<Vec<(String, u64)>>> = const { RefCell::new(None) };
}

/// Called by the convolution layers: `macs` multiply-adds by the layer named `name`, kept
/// when a trace is running on this thread.
pub(crate) fn record(name: &str, macs: u64) {
    TRACE.with(|t| {
        if let Some(v) = t.borrow_mut().as_mut() {
            v.push((name.to_string(), macs));
        }
    });
}

/// One block of a [`Summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSummary {
    /// The parameter-name prefix (`"initial"`, `"encoder.3"`, …).
    pub block: String,
    /// Learned parameters (running statistics of batch-norm excluded).
    pub parameters: usize,
    /// Convolution layers that ran.
    pub convolutions: usize,
    /// Multiply-adds of those convolutions for one image.
    pub macs: u64,
}

/// Parameters and multiply-adds of a network at one input size.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The network's name.
    pub name: String,
    /// The input `(height, width)` the multiply-adds are for.
    pub input: (usize, usize),
    /// Blocks in order of first use in the forward pass (then those that never ran).
    pub rows: Vec<BlockSummary>,
}

impl Summary {
    /// All learned parameters.
    pub fn parameters(&self) -> usize {
        self.rows.iter().map(|r| r.parameters).sum()
    }

    /// All multiply-adds for one image.
    pub fn macs(&self) -> u64 {
        self.rows.iter().map(|r| r.macs).sum()
    }

    /// Floating-point operations for one image (2 per multiply-add), in GFLOPs.
    pub fn gflops(&self) -> f64 {
        2.0 * self.macs() as f64 / 1e9
    }

    /// The summary as a table (one row per block, then the total).
    pub fn table(&self) -> Table {
        let mut t = Table::new(["block", "convolutions", "parameters", "GFLOPs / image"]).caption(&format!(
            "{}: {} parameters, {:.2} GFLOPs per {}x{} image",
            self.name,
            crate::plot::group_digits(self.parameters()),
            self.gflops(),
            self.input.0,
            self.input.1
        ));
        for r in &self.rows {
            t.push([
                r.block.clone(),
                r.convolutions.to_string(),
                crate::plot::group_digits(r.parameters),
                format!("{:.3}", 2.0 * r.macs as f64 / 1e9),
            ]);
        }
        t.push([
            "total".to_string(),
            self.rows.iter().map(|r| r.convolutions).sum::<usize>().to_string(),
            crate::plot::group_digits(self.parameters()),
            format!("{:.3}", self.gflops()),
        ]);
        t
    }
}

/// The first `depth` dot-separated parts of a parameter name (numbers included).
fn block_of(name: &str, depth: usize) -> String {
    name.split('.').take(depth.max(1)).collect::<Vec<_>>().join(".")
}

/// Runs `net` on one zero image of `input = (height, width)` with the trace on, and groups the
/// parameters of `varmap` and the traced multiply-adds by the first `depth` parts of their
/// names.
pub fn summarize(net: &dyn Segmenter, varmap: &VarMap, input: (usize, usize), depth: usize) -> Result<Summary> {
    let (h, w) = input;
    if h == 0 || w == 0 {
        return Err(Error::invalid("summary input size", format!("{h}x{w}"), "both sides must be > 0"));
    }
    let device = varmap.all_vars().first().map(|v| v.device().clone()).unwrap_or(candle_core::Device::Cpu);
    let x = Tensor::zeros((1, 3, h, w), DType::F32, &device)?;
    TRACE.with(|t| *t.borrow_mut() = Some(Vec::new()));
    let ran = net.forward_all(&x, false);
    let trace = TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default();
    ran?;
    let mut order: Vec<String> = Vec::new();
    let mut rows: BTreeMap<String, BlockSummary> = BTreeMap::new();
    let mut entry = |block: String, order: &mut Vec<String>| -> String {
        if !rows.contains_key(&block) {
            order.push(block.clone());
            rows.insert(block.clone(), BlockSummary { block: block.clone(), parameters: 0, convolutions: 0, macs: 0 });
        }
        block
    };
    let mut traced: Vec<(String, u64)> = Vec::new();
    for (name, macs) in trace {
        let b = entry(block_of(&name, depth), &mut order);
        traced.push((b, macs));
    }
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    let mut params: Vec<(String, usize)> = Vec::new();
    for (name, var) in data.iter() {
        if name.ends_with("running_mean") || name.ends_with("running_var") || name.ends_with("num_batches_tracked") {
            continue;
        }
        // The module is the name without its last part (`weight`, `bias`, …).
        let module = name.rsplit_once('.').map_or(name.as_str(), |(m, _)| m);
        params.push((entry(block_of(module, depth), &mut order), var.elem_count()));
    }
    for (b, macs) in traced {
        if let Some(r) = rows.get_mut(&b) {
            r.macs += macs;
            r.convolutions += 1;
        }
    }
    for (b, n) in params {
        if let Some(r) = rows.get_mut(&b) {
            r.parameters += n;
        }
    }
    let rows = order.into_iter().filter_map(|b| rows.remove(&b)).collect();
    Ok(Summary { name: net.name().to_string(), input, rows })
}
