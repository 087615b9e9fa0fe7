"""POT baseline for `cargo bench --bench sinkhorn`: batched log-domain Sinkhorn with
ot.batch.solve_batch on the inputs the Rust bench wrote, plus the gradient of the loss with
respect to the logits from POT's potentials (the same envelope gradient rwt uses).

    python pot_sinkhorn.py DIR EPSILON_ABS TOLERANCE MAX_ITER

Reads DIR/pred.npy (P x N softmax), DIR/target.npy (P x N), DIR/cost.npy (N x N, M[i][j]);
writes DIR/pot_values.npy (sharp cost <P, M> per pixel) and prints one JSON line.
"""
import json
import sys
import time

import numpy as np
import ot
import ot.batch

d, reg, tol, max_iter = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
a = np.load(f"{d}/pred.npy").astype(np.float64)
b = np.load(f"{d}/target.npy").astype(np.float64)
m = np.load(f"{d}/cost.npy").astype(np.float64)
p, n = a.shape
start = time.perf_counter()
res = ot.batch.solve_batch(np.broadcast_to(m, (p, n, n)), reg, a, b, max_iter=max_iter, tol=tol, method="log_sinkhorn", grad="detach")
# Gradient with respect to the logits through the softmax: s_k (f_k - <s, f>), f = reg * log u.
f = reg * res.potentials[0]
grad = a * (f - np.sum(a * f, axis=1, keepdims=True))
values = res.value_linear
elapsed = time.perf_counter() - start
np.save(f"{d}/pot_values.npy", np.asarray(values))
print(json.dumps({"pot": ot.__version__, "pixels": p, "seconds": elapsed, "grad_finite": bool(np.isfinite(grad).all())}))
