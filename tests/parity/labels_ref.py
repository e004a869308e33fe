#!/usr/bin/python3
"""NumPy references for issue 18's label features, written from the
definitions scikit-learn documents (scikit-learn itself is not needed):
each subcommand recomputes what a tl tool reported and exits 1 with the
differences when they disagree.

  multilabel PRED.tsv EVAL.json        tl-eval's multi-label figures from a predictions file
  thresholds PRED.tsv HEAD             a head's per-class thresholds (best F1) from its scores
  ovr FEATURES.tsv HEAD                the one-vs-rest logistic head is the optimum of its objective
  single PRED.tsv EVAL.json            balanced accuracy and macro F1 of a single-label file
  prototype TRAIN.tsv TEST.tsv PRED.tsv HEAD
                                       an ncm or knn head's scores and decisions
  search INDEX.tsv QUERIES.tsv OUT.tsv K METRIC
                                       tl-search's hits against brute force

Feature files are tl's TSV (tl-extract -f tsv); heads are read from their
safetensors file with the standard library and NumPy.
"""
import json
import struct
import sys

import numpy as np

fails = []


def check(ok, what):
    if not ok:
        fails.append(what)


def close(a, b, tol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    err = np.max(np.abs(a - b)) if a.size else 0.0
    check(a.shape == b.shape and err <= tol, "%s: differ by %g (tol %g)" % (what, err, tol))


def read_features(path):
    """(meta, paths, labels as strings, X) of a TSV feature file."""
    meta, paths, labels, rows = {}, [], [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("#") and not rows:
            k, _, v = line[1:].partition("\t")
            meta[k] = v
            continue
        f = line.split("\t")
        paths.append(f[0])
        labels.append(f[1])
        rows.append([float(x) for x in f[2:]])
    return meta, paths, labels, np.array(rows, dtype=np.float32)


def read_predictions(path):
    """(classes, kind, truth rows, pred rows, scores) of a predictions TSV."""
    lines = [l.rstrip("\n") for l in open(path, encoding="utf-8") if l.strip()]
    head = lines[0].split("\t")
    classes, kind = head[3:], head[2]
    truth, pred, scores = [], [], []
    for l in lines[1:]:
        f = l.split("\t")
        truth.append(f[1])
        pred.append(f[2])
        scores.append([float(x) for x in f[3:]])
    return classes, kind, truth, pred, np.array(scores, dtype=np.float64)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    meta = h.pop("__metadata__", {})
    t = {}
    for k, v in h.items():
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        t[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
    return meta, t


def sets(col, classes):
    idx = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(col), len(classes)), dtype=bool)
    for r, s in enumerate(col):
        for name in s.split(","):
            if name:
                out[r, idx[name]] = True
    return out


def average_precision(y, s):
    """sklearn.metrics.average_precision_score for one class: the sum over
    distinct scores, highest first, of (R_j - R_{j-1}) P_j."""
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], y.size - 1]  # last index of each run of equal scores
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def cmd_multilabel(pred_path, json_path):
    classes, kind, truth, pred, S = read_predictions(pred_path)
    check(kind.startswith("pred:multilabel"), "not a multi-label predictions file")
    keep = [i for i, t in enumerate(truth) if t != "-"]
    Y = sets([truth[i] for i in keep], classes)
    P = sets([pred[i] for i in keep], classes)
    S = S[keep]
    d = json.load(open(json_path))
    k = len(classes)
    aps = [average_precision(Y[:, c], S[:, c]) if Y[:, c].any() else None for c in range(k)]
    present = [a for a in aps if a is not None]
    close(d["mAP"], np.mean(present), 1e-12, "mAP")
    check(d["map_classes"] == len(present), "map_classes")
    close(d["micro_AP"], average_precision(Y.ravel(), S.ravel()), 1e-12, "micro_AP")
    for c in range(k):
        got = d["per_class"][c]["ap"]
        check((got is None) == (aps[c] is None), "class %d: AP null-ness" % c)
        if aps[c] is not None:
            close(got, aps[c], 1e-12, "class %s AP" % classes[c])
    tp = (Y & P).sum(0)
    fp = (~Y & P).sum(0)
    fn = (Y & ~P).sum(0)
    per = [prf(tp[c], fp[c], fn[c]) for c in range(k)]
    for c in range(k):
        close(d["per_class"][c]["f1"], per[c][2], 1e-12, "class %s F1" % classes[c])
        check(d["per_class"][c]["support"] == int(Y[:, c].sum()), "class %s support" % classes[c])
    mp, mr, mf = prf(tp.sum(), fp.sum(), fn.sum())
    close([d["micro_precision"], d["micro_recall"], d["micro_f1"]], [mp, mr, mf], 1e-12, "micro P/R/F1")
    occur = [c for c in range(k) if Y[:, c].any() or P[:, c].any()]  # sklearn's labels= the classes present
    close(d["macro_f1"], np.mean([per[c][2] for c in occur]), 1e-12, "macro F1")
    close(d["macro_precision"], np.mean([per[c][0] for c in occur]), 1e-12, "macro precision")
    close(d["subset_accuracy"], np.mean((Y == P).all(1)), 1e-12, "subset accuracy")
    close(d["hamming_loss"], np.mean(Y != P), 1e-12, "Hamming loss")
    check(d["n"] == len(keep), "n")
    print("labels_ref: multilabel: mAP %.6f micro F1 %.6f macro F1 %.6f over %d inputs, %d classes: same" %
          (np.mean(present), mf, np.mean([per[c][2] for c in occur]), len(keep), k))


def best_f1_threshold(y, s):
    """tl's rule: over the distinct scores t, highest first, the one whose
    'score >= t' has the highest F1 (the higher t on ties), then halfway to
    the next lower distinct score."""
    u = np.unique(s)[::-1]
    best, at = -1.0, None
    for j, t in enumerate(u):
        p = s >= t
        tp, fp, fn = np.sum(p & y), np.sum(p & ~y), np.sum(~p & y)
        f1 = 2 * tp / (2 * tp + fp + fn)
        if f1 > best:
            best, at = f1, (t + u[j + 1]) / 2 if j + 1 < u.size else t
    return at


def cmd_thresholds(pred_path, head_path):
    classes, kind, truth, pred, S = read_predictions(pred_path)
    keep = [i for i, t in enumerate(truth) if t != "-"]
    Y = sets([truth[i] for i in keep], classes)
    S = S[keep].astype(np.float32).astype(np.float64)
    meta, _ = read_safetensors(head_path)
    got = json.loads(meta["tl.thresholds"])
    for c in range(len(classes)):
        want = best_f1_threshold(Y[:, c], S[:, c]) if Y[:, c].any() else 0.5
        close(got[c], np.float32(want), 1e-7 * max(1.0, abs(want)), "class %s threshold" % classes[c])
    print("labels_ref: thresholds: %d classes by the best-F1 rule: same" % len(classes))


def cmd_ovr(feat_path, head_path):
    meta, _, labels, X = read_features(feat_path)
    classes = json.loads(meta["classes"])
    Y = sets(labels, classes).astype(np.float64)
    hm, t = read_safetensors(head_path)
    W, b = t["weight"].astype(np.float64), t["bias"].astype(np.float64)
    C = float(hm["tl.C"])
    X = X.astype(np.float64)
    mean, std = X.mean(0), X.std(0)
    std[std == 0] = 1.0
    # the head folds the standardisation in: go back to the standardised problem
    Ws = W * std
    bs = b + W @ mean
    Xs = (X - mean) / std
    n = X.shape[0]
    Z = Xs @ Ws.T + bs
    R = 1 / (1 + np.exp(-Z)) - Y  # d/dz of the binary cross-entropy of each class
    gW = R.T @ Xs / n + Ws / (C * n)
    gb = R.mean(0)
    g = max(np.abs(gW).max(), np.abs(gb).max())
    # L-BFGS stops at max|g| <= 1e-5; the saved float32 weights move it a little
    check(g <= 2e-4, "one-vs-rest gradient at the saved head: max |g| = %g" % g)
    print("labels_ref: ovr: max |gradient| of the one-vs-rest objective at the head %.3g (%d classes)" % (g, len(classes)))


def cmd_single(pred_path, json_path):
    classes, kind, truth, pred, S = read_predictions(pred_path)
    d = json.load(open(json_path))
    idx = {c: i for i, c in enumerate(classes)}
    keep = [i for i, t in enumerate(truth) if t not in ("", "-")]
    y = np.array([idx[truth[i]] for i in keep])
    p = np.array([idx[pred[i]] for i in keep])
    k = len(classes)
    recall = [np.mean(p[y == c] == c) for c in range(k) if np.any(y == c)]
    close(d["balanced_accuracy"], np.mean(recall), 1e-12, "balanced accuracy")
    f1 = []
    for c in range(k):
        if not (np.any(y == c) or np.any(p == c)):
            continue
        f1.append(prf(np.sum((p == c) & (y == c)), np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c)))[2])
    close(d["macro_f1"], np.mean(f1), 1e-12, "macro F1")
    print("labels_ref: single: balanced accuracy %.6f macro F1 %.6f: same" % (np.mean(recall), np.mean(f1)))


def unit(X):
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return np.where(n > 0, X / np.where(n > 0, n, 1), 0)


def cmd_prototype(train_path, test_path, pred_path, head_path):
    meta, _, labels, X = read_features(train_path)
    _, _, tlabels, T = read_features(test_path)
    classes, kind, truth, pred, S = read_predictions(pred_path)
    hm, t = read_safetensors(head_path)
    cosine = hm.get("tl.metric", "cosine") == "cosine"
    idx = {c: i for i, c in enumerate(classes)}
    y = np.array([idx[l] for l in labels])
    X64, T64 = X.astype(np.float64), T.astype(np.float64)
    if cosine:
        X64 = unit(X.astype(np.float64)).astype(np.float32).astype(np.float64)
        T64 = unit(T.astype(np.float64)).astype(np.float32).astype(np.float64)

    def sim(A, B):
        if cosine:
            return A @ B.T
        return -np.sqrt(np.maximum(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1), 0))

    k = len(classes)
    if hm["tl.head"] == "ncm":
        means = np.stack([X64[y == c].mean(0) for c in range(k)]).astype(np.float32).astype(np.float64)
        want = sim(T64, means)
    else:
        nb = int(hm["tl.neighbours"])
        s = sim(T64, X64)
        want = np.zeros((T.shape[0], k))
        for i in range(T.shape[0]):
            order = np.lexsort((np.arange(s.shape[1]), -s[i]))[:nb]  # best first, the lower index on ties
            for j in order:
                want[i, y[j]] += 1.0 / nb
    close(S, want, 2e-5, "%s scores" % hm["tl.head"])
    pred_idx = np.array([idx[p] for p in pred])
    want_pred = np.argmax(want, axis=1)  # the first class on ties
    agree = np.mean(pred_idx == want_pred)
    # a decision may differ only where two classes score within rounding
    top2 = np.sort(want, axis=1)[:, -2:]
    unclear = np.abs(top2[:, 1] - top2[:, 0]) < 1e-5
    check(np.all((pred_idx == want_pred) | unclear), "%s decisions differ beyond ties" % hm["tl.head"])
    acc = np.mean(want_pred == np.array([idx[l] for l in tlabels]))
    print("labels_ref: prototype: %s %s head: scores and decisions same (%.4f agree), accuracy %.4f" %
          (hm["tl.head"], "cosine" if cosine else "euclidean", agree, acc))


def cmd_search(index_path, query_path, out_path, k, metric):
    k = int(k)
    _, ipaths, _, X = read_features(index_path)
    _, qpaths, _, Q = read_features(query_path)
    X64, Q64 = X.astype(np.float64), Q.astype(np.float64)
    if metric == "cosine":
        s = unit(Q64).astype(np.float32).astype(np.float64) @ unit(X64).astype(np.float32).astype(np.float64).T
    else:
        s = -np.sqrt(((Q64[:, None, :] - X64[None, :, :]) ** 2).sum(-1))
    got = {}
    for line in open(out_path, encoding="utf-8"):
        if line.startswith("#"):
            continue
        q, rank, path, label, score = line.rstrip("\n").split("\t")
        got.setdefault(q, []).append((path, float(score)))
    check(len(got) == len(set(qpaths)), "queries with hits: %d of %d" % (len(got), len(set(qpaths))))
    worst = 0.0
    for i, q in enumerate(qpaths):
        order = np.lexsort((np.arange(X.shape[0]), -s[i]))[:k]
        want = [(ipaths[j], s[i, j] if metric == "cosine" else -s[i, j]) for j in order]
        hits = got.get(q, [])
        check(len(hits) == len(want), "%s: %d hits, want %d" % (q, len(hits), len(want)))
        for (gp, gs), (wp, ws) in zip(hits, want):
            worst = max(worst, abs(gs - ws))
            # a near-tie (within float rounding) may swap two neighbours
            if gp != wp:
                check(abs(gs - ws) < 1e-5 and abs(s[i, ipaths.index(gp)] - s[i, ipaths.index(wp)]) < 1e-5,
                      "%s: hit %s, want %s" % (q, gp, wp))
    check(worst < 2e-6 + 1e-6 * abs(s).max(), "search scores differ by %g" % worst)
    print("labels_ref: search: %d queries, top %d of %d, %s: same hits (scores within %.2g)" %
          (len(qpaths), k, X.shape[0], metric, worst))


def main():
    cmds = {"multilabel": cmd_multilabel, "thresholds": cmd_thresholds, "ovr": cmd_ovr, "single": cmd_single,
            "prototype": cmd_prototype, "search": cmd_search}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__)
        return 2
    cmds[sys.argv[1]](*sys.argv[2:])
    for f in fails[:20]:
        print("FAIL " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
