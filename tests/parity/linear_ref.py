#!/usr/bin/python3
"""Reference optimum of the multinomial logistic objective, for test_linear.

Reads a little-endian binary file written by tests/unit/test_linear.c:
  int64 n, int32 d, int32 k, float32 X[n*d], int32 y[n], float32 W[k*d], float32 b[k]
(W, b: our model on raw features). Standardises X (population std, a
constant column gets std 1), minimises with torch L-BFGS in float64
  f(W, b) = mean_i CE(softmax(W z_i + b), y_i) + ||W||^2 / (2 C n)
(scikit-learn's LogisticRegression(multi_class='multinomial', C) divided by
C*n) and prints "ref <f at the reference optimum> ours <f at our model>",
our model mapped to standardised space. Exit 77 when torch or numpy is missing.
Usage: linear_ref.py FILE C FIT_INTERCEPT
"""
import sys

try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover
    print("missing module: %s" % exc)
    sys.exit(77)


def objective(Z, y, W, b, C):
    n = Z.shape[0]
    s = Z @ W.T + b
    lse = torch.logsumexp(s, dim=1)
    ce = (lse - s[torch.arange(n), y]).mean()
    return ce + (W * W).sum() / (2.0 * C * n)


def main():
    path, C, fit_b = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    raw = open(path, "rb").read()
    n = int(np.frombuffer(raw, "<i8", 1, 0)[0])
    d, k = (int(v) for v in np.frombuffer(raw, "<i4", 2, 8))
    off = 16
    X = np.frombuffer(raw, "<f4", n * d, off).reshape(n, d).astype(np.float64)
    off += 4 * n * d
    y = np.frombuffer(raw, "<i4", n, off).astype(np.int64)
    off += 4 * n
    Wr = np.frombuffer(raw, "<f4", k * d, off).reshape(k, d).astype(np.float64)
    off += 4 * k * d
    br = np.frombuffer(raw, "<f4", k, off).astype(np.float64)

    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[X.max(axis=0) == X.min(axis=0)] = 1.0
    Z = torch.from_numpy((X - mean) / std)
    yt = torch.from_numpy(y)

    torch.manual_seed(0)
    W = torch.zeros(k, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=fit_b == 1)
    params = [W, b] if fit_b else [W]
    opt = torch.optim.LBFGS(params, lr=1, max_iter=20000, max_eval=40000, tolerance_grad=1e-12,
                            tolerance_change=1e-16, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f = objective(Z, yt, W, b, C)
        f.backward()
        return f

    opt.step(closure)
    with torch.no_grad():
        ref = objective(Z, yt, W, b, C).item()
        # raw-space model -> standardised space: w_std = w * std, b_std = b + w.mean
        Ws = torch.from_numpy(Wr * std)
        bs = torch.from_numpy(br + Wr @ mean)
        ours = objective(Z, yt, Ws, bs, C).item()
    print("ref %.17g ours %.17g" % (ref, ours))


if __name__ == "__main__":
    main()
