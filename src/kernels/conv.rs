//! Convolution and transposed convolution on the CPU as *im2col + GEMM*, forward and backward.
//!
//! candle's CPU backward of a convolution runs a direct (unblocked) transposed convolution for
//! the input gradient — most of a training step's time on ENet's dilated and asymmetric
//! convolutions. Here both directions are matrix products (the `gemm` crate candle itself
//! uses) around two memory-bound rearrangements:
//!
//! ```text
//! conv:        y_b = W·im2col(x_b)             ∂W = Σ_b g_b·im2col(x_b)ᵀ    ∂x_b = col2im(Wᵀ·g_b)
//! transposed:  y_b = col2im(Wᵀ·x_b)            ∂W = Σ_b x_b·im2col(g_b)ᵀ    ∂x_b = W·im2col(g_b)
//! ```
//!
//! with `W` viewed as `[C_out, C_in·kh·kw]` (convolution) or `[C_in, C_out·k·k]` (transposed).
//! These ops serve `f32` tensors on the CPU; other devices and dtypes use candle's kernels
//! (cuDNN on CUDA), except 1×1 convolutions on CUDA ([`pointwise`]: a batched matrix
//! product). Tests check values and gradients against candle's.

use crate::kernels::numeric::{f32_part, filled, with_host, Out};
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A 1×1 convolution (stride 1, no padding) of `x [B, C_in, H, W]` with `w [C_out, C_in, 1, 1]`
/// as one batched matrix product `y_b = W·x_b` (`W` viewed `[C_out, C_in]` and broadcast over
/// the batch without a copy, `x_b` `[C_in, H·W]`), output `[B, C_out, H, W]`; candle's autograd
/// gives `∂x_b = Wᵀ·g_b` and `∂W = Σ_b g_b·x_bᵀ`, matrix products too. The models take it on
/// CUDA, where candle's convolution copies the input into columns and its output back to
/// NCHW, and computes the input gradient with a direct transposed-convolution kernel; it is
/// one cuBLAS call each way here. Tested against candle's `conv2d` in f64.
pub(crate) fn pointwise(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, wd) = x.dims4()?;
    let (co, ci, kh, kw) = w.dims4()?;
    if (ci, kh, kw) != (c, 1, 1) {
        candle_core::bail!("rwt pointwise convolution: weight {:?} for input {:?}", w.dims(), x.dims());
    }
    let y = w.reshape((co, ci))?.broadcast_left(b)?.matmul(&x.reshape((b, c, h * wd))?)?;
    y.reshape((b, co, h, wd))
}

/// Where a kernel window reads: an image `[c, h, w]` and the `oh × ow` grid of windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Image channels, height, width.
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    /// Zero padding (rows, columns).
    pub ph: usize,
    pub pw: usize,
    /// Stride and dilation (both axes).
    pub stride: usize,
    pub dilation: usize,
}

impl Geometry {
    /// Height and width of the window grid.
    pub fn out(&self) -> (usize, usize) {
        let span =
            |n: usize, k: usize, p: usize| (n + 2 * p).saturating_sub(self.dilation * (k - 1) + 1) / self.stride + 1;
        (span(self.h, self.kh, self.ph), span(self.w, self.kw, self.pw))
    }

    /// Rows of the column matrix: `c·kh·kw`.
    pub fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// True when the column matrix is the image itself (1×1, stride 1, no padding).
    pub fn is_identity(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.ph == 0 && self.pw == 0
    }

    /// For kernel offset `i` along an axis, the source index of window `o`, if inside.
    #[inline]
    fn src(&self, o: usize, i: usize, pad: usize, n: usize) -> Option<usize> {
        let s = (o * self.stride + i * self.dilation) as isize - pad as isize;
        (s >= 0 && (s as usize) < n).then_some(s as usize)
    }

    /// `[c·kh·kw, oh·ow]` columns of one image `[c, h, w]`, rows filled in parallel.
    pub fn im2col(&self, img: &[f32], cols: &mut [f32]) {
        let (oh, ow) = self.out();
        cols.par_chunks_mut(oh * ow).enumerate().for_each(|(r, row)| self.im2col_row(img, r, 0..oh, row));
    }

    /// [`Geometry::im2col`] on the calling thread (for callers that run one image per task).
    pub fn im2col_seq(&self, img: &[f32], cols: &mut [f32]) {
        self.im2col_rows(img, 0..self.out().0, cols);
    }

    /// The columns of the windows of output rows `rows` only: `[c·kh·kw, rows.len()·ow]`,
    /// on the calling thread.
    pub fn im2col_rows(&self, img: &[f32], rows: std::ops::Range<usize>, cols: &mut [f32]) {
        let n = rows.len() * self.out().1;
        if n == 0 {
            return;
        }
        cols[..self.rows() * n]
            .chunks_mut(n)
            .enumerate()
            .for_each(|(r, row)| self.im2col_row(img, r, rows.clone(), row));
    }

    /// Row `r` (channel, kernel row, kernel column) of the column matrix, for the windows of
    /// output rows `rows`.
    fn im2col_row(&self, img: &[f32], r: usize, rows: std::ops::Range<usize>, row: &mut [f32]) {
        let ow = self.out().1;
        let (ch, i, j) = (r / (self.kh * self.kw), (r / self.kw) % self.kh, r % self.kw);
        let plane = &img[ch * self.h * self.w..(ch + 1) * self.h * self.w];
        for (oy, dst) in rows.zip(row.chunks_mut(ow)) {
            match self.src(oy, i, self.ph, self.h) {
                None => dst.fill(0.0),
                Some(y) => {
                    let line = &plane[y * self.w..(y + 1) * self.w];
                    if self.stride == 1 {
                        // Contiguous run: zeros left, a copy, zeros right.
                        let lo = (self.pw.saturating_sub(j * self.dilation)).min(ow);
                        let hi = (self.w + self.pw).saturating_sub(j * self.dilation).min(ow).max(lo);
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if lo < hi {
                            let start = lo + j * self.dilation - self.pw;
                            dst[lo..hi].copy_from_slice(&line[start..start + hi - lo]);
                        }
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate() {
                            *d = self.src(ox, j, self.pw, self.w).map_or(0.0, |x| line[x]);
                        }
                    }
                }
            }
        }
    }

    /// Whether the windows tile the image — kernel = stride, no padding or dilation, whole
    /// windows — so that every pixel lies in exactly one of them.
    pub fn tiles(&self) -> bool {
        let s = self.stride;
        (self.kh, self.kw, self.ph, self.pw, self.dilation) == (s, s, 0, 0, 1)
            && s > 0
            && self.h % s == 0
            && self.w % s == 0
    }

    /// [`Geometry::col2im`] for windows that [tile](Geometry::tiles) the image: each pixel
    /// is written once (no zeroing, no sums); channel `c` goes to `img[c·ld..c·ld + h·w]`.
    pub fn col2im_tiles(&self, cols: &[f32], img: &mut [Out], ld: usize) {
        debug_assert!(self.tiles());
        let (s, (oh, ow)) = (self.stride, self.out());
        for c in 0..self.c {
            let plane = &mut img[c * ld..c * ld + self.h * self.w];
            for (y, line) in plane.chunks_exact_mut(self.w).enumerate() {
                // Pixel (y, x·s + j) is column row (c, y mod s, j) at window (y / s, x).
                let src = |j: usize| &cols[((c * s + y % s) * s + j) * oh * ow + y / s * ow..][..ow];
                if s == 2 {
                    for ((d, &u), &v) in line.chunks_exact_mut(2).zip(src(0)).zip(src(1)) {
                        d[0] = Out::new(u);
                        d[1] = Out::new(v);
                    }
                } else {
                    for j in 0..s {
                        for (x, &v) in src(j).iter().enumerate() {
                            line[x * s + j] = Out::new(v);
                        }
                    }
                }
            }
        }
    }

    /// Adds `[c·kh·kw, oh·ow]` columns back into one image `[c, h, w]` (the adjoint of
    /// [`Geometry::im2col`]); `img` is overwritten. Channels in parallel.
    pub fn col2im(&self, cols: &[f32], img: &mut [f32]) {
        let oh = self.out().0;
        img.par_chunks_mut(self.h * self.w).enumerate().for_each(|(ch, plane)| {
            plane.fill(0.0);
            self.col2im_plane(cols, ch, 0..oh, plane)
        });
    }

    /// The columns of the windows of output rows `rows` (`[c·kh·kw, rows.len()·ow]`, as
    /// [`Geometry::im2col_rows`] gives them) added back into one image `[c, h, w]`, on the
    /// calling thread.
    pub fn col2im_rows_add(&self, cols: &[f32], rows: std::ops::Range<usize>, img: &mut [f32]) {
        img.chunks_mut(self.h * self.w)
            .enumerate()
            .for_each(|(ch, plane)| self.col2im_plane(cols, ch, rows.clone(), plane));
    }

    /// Adds channel `ch` of the columns of output rows `rows` to `plane`.
    fn col2im_plane(&self, cols: &[f32], ch: usize, rows: std::ops::Range<usize>, plane: &mut [f32]) {
        let ow = self.out().1;
        let n = rows.len() * ow;
        let per = self.kh * self.kw;
        for k in 0..per {
            let (i, j) = (k / self.kw, k % self.kw);
            let row = &cols[(ch * per + k) * n..(ch * per + k + 1) * n];
            for (oy, src) in rows.clone().zip(row.chunks(ow.max(1))) {
                let Some(y) = self.src(oy, i, self.ph, self.h) else { continue };
                let line = &mut plane[y * self.w..(y + 1) * self.w];
                if self.stride == 1 {
                    // Contiguous run, as in im2col.
                    let lo = (self.pw.saturating_sub(j * self.dilation)).min(ow);
                    let hi = (self.w + self.pw).saturating_sub(j * self.dilation).min(ow).max(lo);
                    if lo < hi {
                        let start = lo + j * self.dilation - self.pw;
                        for (d, &v) in line[start..start + hi - lo].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                    }
                } else {
                    for (ox, &v) in src.iter().enumerate() {
                        if let Some(x) = self.src(ox, j, self.pw, self.w) {
                            line[x] += v;
                        }
                    }
                }
            }
        }
    }
}

/// Whether to run one image per task (single-threaded GEMMs) rather than the images in turn
/// with GEMMs over the pool.
fn per_image(b: usize) -> bool {
    b >= 2 && rayon::current_num_threads() > 1
}

/// Runs `f(n, out_n, par)` for each image `n` of `out` (`b` chunks), in parallel tasks or
/// in turn; `par` tells `f` whether its own GEMMs should use the pool.
pub(crate) fn for_images<E: Send, T: Send>(
    out: &mut [E],
    b: usize,
    f: impl Fn(usize, &mut [E], bool) -> T + Sync,
) -> Vec<T> {
    let img = out.len() / b.max(1);
    if per_image(b) {
        out.par_chunks_mut(img).enumerate().map(|(n, o)| f(n, o, false)).collect()
    } else {
        out.chunks_mut(img).enumerate().map(|(n, o)| f(n, o, true)).collect()
    }
}

/// A strided matrix operand: element `(i, j)` of a `rows × cols` matrix at
/// `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows × cols` matrix whose rows start `ld` floats apart (a block of
    /// columns of a wider matrix when `ld > cols`).
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Self {
        assert!(ld >= cols, "rwt matmul: row stride {ld} < {cols} columns");
        View { data, rows, cols, rs: ld, cs: 1 }
    }

    /// A row-major `rows × cols` matrix of exactly `data`, transposed when `t`.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize, t: bool) -> Self {
        assert!(data.len() == rows * cols, "rwt matmul: {} values for a {rows}x{cols} matrix", data.len());
        let v = View::rows(data, rows, cols, cols);
        if t {
            v.t()
        } else {
            v
        }
    }

    /// The transposed matrix (no copy).
    pub fn t(self) -> Self {
        View { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst[m×n] (+)= op(a)·op(b)` for row-major matrices; `op` transposes when asked, so `a` is
/// stored `[m, k]` or (`ta`) `[k, m]`, and `b` `[k, n]` or (`tb`) `[n, k]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    acc: bool,
) {
    let par = m * n * k > 1 << 15;
    matmul_on(dst, m, n, k, a, ta, b, tb, acc, par)
}

/// [`matmul`] on the rayon pool (`par`) or on the calling thread.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_on(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    acc: bool,
    par: bool,
) {
    assert!(dst.len() == m * n, "rwt matmul: output size");
    let (a, b) = (
        View::dense(a, if ta { k } else { m }, if ta { m } else { k }, ta),
        View::dense(b, if tb { n } else { k }, if tb { k } else { n }, tb),
    );
    if acc {
        mul_add(dst, n, a, b, par)
    } else {
        // SAFETY: initialised floats viewed as storage that the product overwrites.
        mul_into(unsafe { &mut *(dst as *mut [f32] as *mut [MaybeUninit<f32>]) }, n, a, b, par)
    }
}

/// `dst = a·b` with row `i` of the `m × n` product written to `dst[i·ld..i·ld + n]`
/// (elements in between untouched). Every element of those runs is written, none is read.
pub(crate) fn mul_into(dst: &mut [MaybeUninit<f32>], ld: usize, a: View, b: View, par: bool) {
    let (m, n) = (a.rows, b.cols);
    assert!(m == 0 || n == 0 || (ld >= n && dst.len() >= (m - 1) * ld + n), "rwt matmul: output size");
    if a.cols == 0 {
        // An empty sum.
        dst.chunks_mut(ld.max(1)).take(m).for_each(|r| r[..n].fill(MaybeUninit::new(0.0)));
        return;
    }
    // SAFETY: `dst` spans the m runs (checked), which the product overwrites without reading.
    unsafe { gemm_raw(dst.as_mut_ptr().cast(), ld, a, b, false, par) }
}

/// `dst += a·b` with row `i` of the `m × n` product added to `dst[i·ld..i·ld + n]`.
pub(crate) fn mul_add(dst: &mut [f32], ld: usize, a: View, b: View, par: bool) {
    let (m, n) = (a.rows, b.cols);
    assert!(m == 0 || n == 0 || (ld >= n && dst.len() >= (m - 1) * ld + n), "rwt matmul: output size");
    // SAFETY: `dst` spans the m runs of initialised floats (checked).
    unsafe { gemm_raw(dst.as_mut_ptr(), ld, a, b, true, par) }
}

/// The `gemm` call behind the products above: `dst (+)= a·b`, `dst` rows `ld` apart.
///
/// # Safety
/// `dst` must be valid for writes (and reads when `acc`) of `b.cols` floats at each of
/// `dst + i·ld`, `i < a.rows`.
unsafe fn gemm_raw(dst: *mut f32, ld: usize, a: View, b: View, acc: bool, par: bool) {
    assert!(a.cols == b.rows && a.fits() && b.fits(), "rwt matmul: operand sizes");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    let par = if par { Parallelism::Rayon(rayon::current_num_threads()) } else { Parallelism::None };
    let i = |v: usize| v as isize;
    // SAFETY: every element of both operands lies inside their slices (checked above), and
    // `dst` holds the m runs of n (the caller's contract).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            i(ld),
            acc,
            a.data.as_ptr(),
            i(a.cs),
            i(a.rs),
            b.data.as_ptr(),
            i(b.cs),
            i(b.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `y = conv(x, W)`: `x [B, C_in, H, W]`, `W [C_out, C_in, kh, kw]`, no bias.
pub(crate) struct Conv2d {
    /// Padding, stride and dilation; `c`, `h`, `w`, `kh`, `kw` are taken from the inputs.
    pub ph: usize,
    pub pw: usize,
    pub stride: usize,
    pub dilation: usize,
}

impl Conv2d {
    fn geometry(&self, x: &[usize], w: &[usize]) -> Geometry {
        Geometry {
            c: x[1],
            h: x[2],
            w: x[3],
            kh: w[2],
            kw: w[3],
            ph: self.ph,
            pw: self.pw,
            stride: self.stride,
            dilation: self.dilation,
        }
    }
}

/// Runs `f(b, cols_b)` for each image of `x` (`[B, …]` with `g`'s image size), the columns
/// built in one reused buffer (or the image itself for a 1×1 convolution).
fn for_each_cols(x: &[f32], b: usize, g: &Geometry, mut f: impl FnMut(usize, &[f32])) {
    let img = g.c * g.h * g.w;
    let (oh, ow) = g.out();
    let mut cols = if g.is_identity() { vec![] } else { vec![0f32; g.rows() * oh * ow] };
    for n in 0..b {
        let xb = &x[n * img..(n + 1) * img];
        if g.is_identity() {
            f(n, xb);
        } else {
            g.im2col(xb, &mut cols);
            f(n, &cols);
        }
    }
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "rwt-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (xd, wd) = (xl.shape().dims(), wl.shape().dims());
        let g = self.geometry(xd, wd);
        let (b, co) = (xd[0], wd[0]);
        let (oh, ow) = g.out();
        let (x, w) = (f32_part(xs, xl, "convolution input")?, f32_part(ws, wl, "convolution weight")?);
        let mut y = vec![0f32; b * co * oh * ow];
        for_each_cols(x, b, &g, |n, cols| {
            let yb = &mut y[n * co * oh * ow..(n + 1) * co * oh * ow];
            matmul(yb, co, oh * ow, g.rows(), w, false, cols, false, false);
        });
        Ok((CpuStorage::F32(y), Shape::from((b, co, oh, ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.dims(), w.dims());
        let (b, co) = (x.dim(0)?, w.dim(0)?);
        let (oh, ow) = g.out();
        with_host(&[x, w, grad], |v| {
            let (xv, wv, gv) = (v[0], v[1], v[2]);
            let plane = co * oh * ow;
            let mut dw = vec![0f32; co * g.rows()];
            for_each_cols(xv, b, &g, |n, cols| {
                matmul(&mut dw, co, g.rows(), oh * ow, &gv[n * plane..(n + 1) * plane], false, cols, true, n > 0);
            });
            let dev = x.device();
            let dw = Tensor::from_vec(dw, w.shape(), dev)?;
            // An input that records no graph (an image, the agent's detached latent state)
            // needs no gradient: skip the transposed GEMM and col2im, a third of the work.
            if !x.track_op() {
                return Ok((None, Some(dw)));
            }
            let img = g.c * g.h * g.w;
            let mut dx = vec![0f32; b * img];
            let mut dcols = vec![0f32; g.rows() * oh * ow];
            for n in 0..b {
                let gb = &gv[n * plane..(n + 1) * plane];
                let dxb = &mut dx[n * img..(n + 1) * img];
                if g.is_identity() {
                    matmul(dxb, g.rows(), oh * ow, co, wv, true, gb, false, false);
                } else {
                    matmul(&mut dcols, g.rows(), oh * ow, co, wv, true, gb, false, false);
                    g.col2im(&dcols, dxb);
                }
            }
            Ok((Some(Tensor::from_vec(dx, x.shape(), dev)?), Some(dw)))
        })
    }
}

/// `y = conv_transpose(x, W)`: `x [B, C_in, H, W]`, `W [C_in, C_out, k, k]`, stride `s`,
/// padding `p`, no output padding or bias: `H_out = (H − 1)·s − 2p + k`.
pub(crate) struct ConvTranspose2d {
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub padding: usize,
}

impl ConvTranspose2d {
    /// The geometry of the convolution this op is the adjoint of: image = the output.
    fn geometry(&self, x: &[usize], w: &[usize]) -> Geometry {
        let side = |n: usize, k: usize| ((n - 1) * self.stride + k).saturating_sub(2 * self.padding);
        Geometry {
            c: w[1],
            h: side(x[2], w[2]),
            w: side(x[3], w[3]),
            kh: w[2],
            kw: w[3],
            ph: self.padding,
            pw: self.padding,
            stride: self.stride,
            dilation: 1,
        }
    }
}

impl CustomOp2 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "rwt-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (xd, wd) = (xl.shape().dims(), wl.shape().dims());
        let g = self.geometry(xd, wd);
        if g.out() != (xd[2], xd[3]) {
            candle_core::bail!("rwt conv-transpose: input {xd:?} and kernel {wd:?} give no consistent output size");
        }
        let (b, ci, hw) = (xd[0], xd[1], xd[2] * xd[3]);
        let (x, w) = (f32_part(xs, xl, "convolution input")?, f32_part(ws, wl, "convolution weight")?);
        let img = g.c * g.h * g.w;
        if g.tiles() {
            // Each output pixel comes from one input pixel: images in parallel tasks, each
            // output written once.
            // SAFETY: `col2im_tiles` writes every pixel of each image.
            let y = unsafe {
                filled(b * img, |y| {
                    for_images(y, b, |n, yn, par| {
                        let mut cols = vec![0f32; g.rows() * hw];
                        let xn = &x[n * ci * hw..(n + 1) * ci * hw];
                        matmul_on(&mut cols, g.rows(), hw, ci, w, true, xn, false, false, par);
                        g.col2im_tiles(&cols, yn, g.h * g.w);
                    });
                })
            };
            return Ok((CpuStorage::F32(y), Shape::from((b, g.c, g.h, g.w))));
        }
        let mut y = vec![0f32; b * img];
        let mut cols = vec![0f32; g.rows() * hw];
        for n in 0..b {
            matmul(&mut cols, g.rows(), hw, ci, w, true, &x[n * ci * hw..(n + 1) * ci * hw], false, false);
            g.col2im(&cols, &mut y[n * img..(n + 1) * img]);
        }
        Ok((CpuStorage::F32(y), Shape::from((b, g.c, g.h, g.w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.dims(), w.dims());
        let (b, ci, hw) = (x.dim(0)?, x.dim(1)?, x.dim(2)? * x.dim(3)?);
        with_host(&[x, w, grad], |v| {
            let (xv, wv, gv) = (v[0], v[1], v[2]);
            let mut dx = vec![0f32; b * ci * hw];
            let mut dw = vec![0f32; ci * g.rows()];
            for_each_cols(gv, b, &g, |n, cols| {
                let xb = &xv[n * ci * hw..(n + 1) * ci * hw];
                matmul(&mut dx[n * ci * hw..(n + 1) * ci * hw], ci, hw, g.rows(), wv, false, cols, false, false);
                matmul(&mut dw, ci, g.rows(), hw, xb, false, cols, true, n > 0);
            });
            let dev = x.device();
            Ok((Some(Tensor::from_vec(dx, x.shape(), dev)?), Some(Tensor::from_vec(dw, w.shape(), dev)?)))
        })
    }
}

/// `y + b` with one bias per channel of `y [B, C, H, W]`: gradients `∂y = g` (the same
/// tensor) and `∂b_c = Σ g` over channel `c`'s planes, summed in lanes (candle's broadcast
/// add reduces that gradient with a slow generic sum).
pub(crate) struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "rwt-add-bias"
    }

    fn cpu_fwd(
        &self,
        ys: &CpuStorage,
        yl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, bias) = (f32_part(ys, yl, "biased input")?, f32_part(bs, bl, "bias")?);
        let (c, p) = channels(yl.shape().dims(), bias.len())?;
        let mut out = y.to_vec();
        out.par_chunks_mut(p.max(1)).enumerate().for_each(|(i, o)| {
            let v = bias[i % c];
            o.iter_mut().for_each(|x| *x += v);
        });
        Ok((CpuStorage::F32(out), yl.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (c, p) = channels(y.dims(), bias.elem_count())?;
        let db = with_host(&[grad], |v| {
            let per: Vec<f64> = v[0].par_chunks(p.max(1)).map(super::planes::sum).collect();
            let mut db = vec![0f64; c];
            for (i, s) in per.into_iter().enumerate() {
                db[i % c] += s;
            }
            Ok(db.into_iter().map(|v| v as f32).collect::<Vec<_>>())
        })?;
        Ok((Some(grad.clone()), Some(Tensor::from_vec(db, bias.shape(), bias.device())?)))
    }
}

/// `(channels, plane size)` of a `[B, C, …]` shape with `c` biases.
fn channels(dims: &[usize], c: usize) -> candle_core::Result<(usize, usize)> {
    if dims.len() < 2 || dims[1] != c {
        candle_core::bail!("rwt bias: input {dims:?} does not have {c} channels");
    }
    Ok((c, dims[2..].iter().product()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn grads(y: Tensor, g: &Tensor, x: &Var, w: &Var) -> [Vec<f32>; 3] {
        let gs = (&y * g).unwrap().sum_all().unwrap().backward().unwrap();
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        [v(&y), v(gs.get(x.as_tensor()).unwrap()), v(gs.get(w.as_tensor()).unwrap())]
    }

    fn assert_close(a: &[Vec<f32>; 3], b: &[Vec<f32>; 3], what: &str) {
        for (k, (p, q)) in a.iter().zip(b).enumerate() {
            assert_eq!(p.len(), q.len(), "{what} quantity {k}: lengths");
            let scale = q.iter().fold(1f32, |m, v| m.max(v.abs()));
            let d = p.iter().zip(q).map(|(u, v)| (u - v).abs()).fold(0f32, f32::max);
            assert!(d <= 1e-4 * scale, "{what} quantity {k}: max diff {d} (scale {scale})");
        }
    }

    /// Values and both gradients against candle's `conv2d` (candle's autograd as reference),
    /// for ENet's shapes: square, dilated, asymmetric 5×1 / 1×5, strided, 1×1.
    #[test]
    fn conv_matches_candle() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(11);
        // (c_in, c_out, h, w, kh, kw, ph, pw, stride, dilation)
        let cases = [
            (3, 4, 9, 11, 3, 3, 1, 1, 1, 1),
            (2, 3, 12, 10, 3, 3, 4, 4, 1, 4),
            (3, 2, 9, 7, 5, 1, 2, 0, 1, 1),
            (3, 2, 9, 7, 1, 5, 0, 2, 1, 1),
            (3, 5, 10, 12, 3, 3, 1, 1, 2, 1),
            (4, 3, 6, 5, 1, 1, 0, 0, 1, 1),
            (3, 4, 8, 8, 2, 2, 0, 0, 2, 1),
            (2, 2, 4, 5, 3, 3, 16, 16, 1, 16),
        ];
        for (ci, co, h, w, kh, kw, ph, pw, s, d) in cases {
            let x = Var::from_tensor(&crate::random::normal(&mut rng, (2, ci, h, w), 1.0, &dev).unwrap()).unwrap();
            let k = Var::from_tensor(&crate::random::normal(&mut rng, (co, ci, kh, kw), 1.0, &dev).unwrap()).unwrap();
            let ours = x.as_tensor().apply_op2(k.as_tensor(), Conv2d { ph, pw, stride: s, dilation: d }).unwrap();
            // candle pads symmetrically with one value: pad the input explicitly instead.
            let xp = x.as_tensor().pad_with_zeros(2, ph, ph).unwrap().pad_with_zeros(3, pw, pw).unwrap();
            let theirs = xp.conv2d(k.as_tensor(), 0, s, d, 1).unwrap();
            let g = crate::random::normal(&mut rng, theirs.dims(), 1.0, &dev).unwrap();
            let what = format!("conv {ci}->{co} {h}x{w} k{kh}x{kw} p{ph},{pw} s{s} d{d}");
            assert_close(&grads(ours, &g, &x, &k), &grads(theirs, &g, &x, &k), &what);
        }
    }

    /// The pointwise convolution as a matrix product against candle's `conv2d`, in f64: value
    /// and both gradients to rounding; a weight that is not 1×1 is an error.
    #[test]
    fn pointwise_matches_candle_conv() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(12);
        let f64_ = candle_core::DType::F64;
        let x = Var::from_tensor(
            &crate::random::normal(&mut rng, (3, 5, 4, 6), 1.0, &dev).unwrap().to_dtype(f64_).unwrap(),
        )
        .unwrap();
        let k = Var::from_tensor(
            &crate::random::normal(&mut rng, (7, 5, 1, 1), 1.0, &dev).unwrap().to_dtype(f64_).unwrap(),
        )
        .unwrap();
        let g = crate::random::normal(&mut rng, (3, 7, 4, 6), 1.0, &dev).unwrap().to_dtype(f64_).unwrap();
        let run = |y: Tensor| {
            let gs = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            [v(&y), v(gs.get(x.as_tensor()).unwrap()), v(gs.get(k.as_tensor()).unwrap())]
        };
        let ours = run(pointwise(x.as_tensor(), k.as_tensor()).unwrap());
        let theirs = run(x.as_tensor().conv2d(k.as_tensor(), 0, 1, 1, 1).unwrap());
        for (q, (a, b)) in ["value", "input gradient", "weight gradient"].iter().zip(ours.iter().zip(&theirs)) {
            assert_eq!(a.len(), b.len(), "{q}");
            let d = a.iter().zip(b).map(|(u, v)| (u - v).abs()).fold(0f64, f64::max);
            assert!(d < 1e-12, "{q}: max diff {d:e}");
        }
        let w3 = Tensor::zeros((7, 5, 3, 3), f64_, &dev).unwrap();
        let err = pointwise(x.as_tensor(), &w3).unwrap_err();
        assert!(err.to_string().contains("[7, 5, 3, 3]"), "{err}");
    }

    /// An input that records no graph gets no gradient, and the weight's gradient is the
    /// same as with a tracked input (candle's conv2d as the reference).
    #[test]
    fn untracked_input_skips_its_gradient() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(5);
        let x = crate::random::normal(&mut rng, (3, 4, 9, 8), 1.0, &dev).unwrap();
        assert!(!x.track_op());
        let k = Var::from_tensor(&crate::random::normal(&mut rng, (5, 4, 3, 3), 1.0, &dev).unwrap()).unwrap();
        let g = crate::random::normal(&mut rng, (3, 5, 7, 6), 1.0, &dev).unwrap();
        let loss = |y: Tensor| (&y * &g).unwrap().sum_all().unwrap();
        let ours = loss(x.apply_op2(k.as_tensor(), Conv2d { ph: 0, pw: 0, stride: 1, dilation: 1 }).unwrap())
            .backward()
            .unwrap();
        let theirs = loss(x.conv2d(k.as_tensor(), 0, 1, 1, 1).unwrap()).backward().unwrap();
        assert!(ours.get(&x).is_none());
        let v = |gs: &candle_core::backprop::GradStore| {
            gs.get(k.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let (a, b) = (v(&ours), v(&theirs));
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-4 * scale));
    }

    /// Values and gradients against candle's broadcast add.
    #[test]
    fn add_bias_matches_candle() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(13);
        let y = Var::from_tensor(&crate::random::normal(&mut rng, (3, 4, 5, 7), 1.0, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&crate::random::normal(&mut rng, 4, 1.0, &dev).unwrap()).unwrap();
        let ours = y.as_tensor().apply_op2(b.as_tensor(), AddBias).unwrap();
        let theirs = y.as_tensor().broadcast_add(&b.as_tensor().reshape((1, 4, 1, 1)).unwrap()).unwrap();
        let g = crate::random::normal(&mut rng, (3, 4, 5, 7), 1.0, &dev).unwrap();
        assert_close(&grads(ours, &g, &y, &b), &grads(theirs, &g, &y, &b), "bias");
        let bad = y.as_tensor().apply_op2(&Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap(), AddBias);
        assert!(bad.unwrap_err().to_string().contains("does not have 3 channels"));
    }

    /// Values and gradients against candle's `conv_transpose2d`.
    #[test]
    fn conv_transpose_matches_candle() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(12);
        for (ci, co, h, w, k, s, p) in [(3, 4, 5, 6, 2, 2, 0), (2, 3, 4, 5, 3, 2, 1), (4, 2, 3, 3, 3, 1, 1)] {
            let x = Var::from_tensor(&crate::random::normal(&mut rng, (2, ci, h, w), 1.0, &dev).unwrap()).unwrap();
            let kk = Var::from_tensor(&crate::random::normal(&mut rng, (ci, co, k, k), 1.0, &dev).unwrap()).unwrap();
            let ours = x.as_tensor().apply_op2(kk.as_tensor(), ConvTranspose2d { stride: s, padding: p }).unwrap();
            let theirs = x.as_tensor().conv_transpose2d(kk.as_tensor(), p, 0, s, 1).unwrap();
            let g = crate::random::normal(&mut rng, theirs.dims(), 1.0, &dev).unwrap();
            let what = format!("transpose {ci}->{co} {h}x{w} k{k} s{s} p{p}");
            assert_close(&grads(ours, &g, &x, &kk), &grads(theirs, &g, &x, &kk), &what);
        }
    }
}
