#!/usr/bin/python3
"""PyTorch autograd references for the backward kernels (tests/unit/test_backward_*.c).

usage: backward_ref.py DIR

DIR/cases.txt holds one case per line: NAME OP PARAM... For each case this
script draws float32 inputs (seeded by the line number), computes the forward
pass and the gradients with torch autograd in float64, and writes every input
and output as raw little-endian float32 to DIR/NAME_TENSOR.f32. Exit status 77
when torch or numpy is missing (the tests skip), 1 on any other failure.

Ops and parameters (tensors written):
  conv   cin h w cout kh kw sh sw pt pl pb pr dh dw groups   (x w b dy | y dx dw db)
  maxpool c h w kh kw sh sw pad ceil                         (x dy | y dx)
  avgpool c h w kh kw sh sw pad ceil count_include_pad       (x dy | y dx)
  adaptive c h w oh ow                                       (x dy | y dx)
  act    ACT n   (ACT: tl's enum value; x includes the kinks) (x dy | y dx)
  bn     n c hw eps momentum                                 (x gamma beta dy rm rv | y dx dgamma dbeta mean var rm_out rv_out)
  ln     rows d eps                                          (x gamma beta dy | y dx dgamma dbeta)
  attn   t d heads                                           (qkv dctx | ctx probs dqkv)
  xent   batch k smoothing                                   (logits labels | loss dlogits)
  bce    batch k                                             (logits targets posw | loss dlogits)
"""
import math
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # the C tests skip on 77
    print("backward_ref.py: %s" % exc)
    sys.exit(77)

torch.set_num_threads(1)


def save(d, name, key, t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    a.astype("<f4").tofile("%s/%s_%s.f32" % (d, name, key))


def inp(rng, d, name, key, shape, scale=1.0, grad=True):
    a = (rng.standard_normal(shape) * scale).astype(np.float32)
    save(d, name, key, a)
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


# tl's activation enum (lib/kernels/kernels.h) in order
ACTS = [lambda x: x, F.relu, F.relu6, torch.sigmoid, F.silu, F.hardsigmoid, F.hardswish, F.gelu]


def case(d, name, op, p, rng):
    if op == "conv":
        cin, h, w, cout, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, g = map(int, p)
        x = inp(rng, d, name, "x", (1, cin, h, w))
        wt = inp(rng, d, name, "w", (cout, cin // g, kh, kw), 1.0 / math.sqrt(cin // g * kh * kw))
        b = inp(rng, d, name, "b", (cout,))
        y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), wt, b, stride=(sh, sw), dilation=(dh, dw), groups=g)
        dy = inp(rng, d, name, "dy", tuple(y.shape), grad=False)
        y.backward(dy)
        outs = {"y": y, "dx": x.grad, "dw": wt.grad, "db": b.grad}
    elif op in ("maxpool", "avgpool"):
        c, h, w, kh, kw, sh, sw, pad, ceil = map(int, p[:9])
        x = inp(rng, d, name, "x", (1, c, h, w))
        if op == "maxpool":
            y = F.max_pool2d(x, (kh, kw), (sh, sw), pad, ceil_mode=bool(ceil))
        else:
            y = F.avg_pool2d(x, (kh, kw), (sh, sw), pad, ceil_mode=bool(ceil), count_include_pad=bool(int(p[9])))
        dy = inp(rng, d, name, "dy", tuple(y.shape), grad=False)
        y.backward(dy)
        outs = {"y": y, "dx": x.grad}
    elif op == "adaptive":
        c, h, w, oh, ow = map(int, p)
        x = inp(rng, d, name, "x", (1, c, h, w))
        y = F.adaptive_avg_pool2d(x, (oh, ow))
        dy = inp(rng, d, name, "dy", tuple(y.shape), grad=False)
        y.backward(dy)
        outs = {"y": y, "dx": x.grad}
    elif op == "act":
        act, n = int(p[0]), int(p[1])
        kinks = [-3.0, 3.0, 0.0, 6.0, -6.0, 1e-4, -1e-4]
        a = np.concatenate([np.array(kinks), rng.standard_normal(n - len(kinks)) * 4]).astype(np.float32)
        save(d, name, "x", a)
        x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        y = ACTS[act](x)
        dy = inp(rng, d, name, "dy", (n,), grad=False)
        y.backward(dy)
        outs = {"y": y, "dx": x.grad}
    elif op == "bn":
        n, c, hw = int(p[0]), int(p[1]), int(p[2])
        eps, mom = float(p[3]), float(p[4])
        x = inp(rng, d, name, "x", (n, c, hw), 2.0)
        with torch.no_grad():
            x += torch.arange(c, dtype=torch.float64).reshape(1, c, 1)  # channel offsets
        save(d, name, "x", x)
        gamma = inp(rng, d, name, "gamma", (c,))
        beta = inp(rng, d, name, "beta", (c,))
        rm = inp(rng, d, name, "rm", (c,), grad=False)
        rv = torch.tensor(rng.uniform(0.5, 2.0, c).astype(np.float32), dtype=torch.float64)
        save(d, name, "rv", rv)
        y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=mom, eps=eps)
        dy = inp(rng, d, name, "dy", (n, c, hw), grad=False)
        y.backward(dy)
        xd = x.detach()
        outs = {"y": y, "dx": x.grad, "dgamma": gamma.grad, "dbeta": beta.grad,
                "mean": xd.mean(dim=(0, 2)), "var": xd.var(dim=(0, 2), unbiased=False), "rm_out": rm, "rv_out": rv}
    elif op == "ln":
        rows, dd, eps = int(p[0]), int(p[1]), float(p[2])
        x = inp(rng, d, name, "x", (rows, dd), 3.0)
        gamma = inp(rng, d, name, "gamma", (dd,))
        beta = inp(rng, d, name, "beta", (dd,))
        y = F.layer_norm(x, (dd,), gamma, beta, eps)
        dy = inp(rng, d, name, "dy", (rows, dd), grad=False)
        y.backward(dy)
        outs = {"y": y, "dx": x.grad, "dgamma": gamma.grad, "dbeta": beta.grad}
    elif op == "attn":
        t, dd, heads = map(int, p)
        dh = dd // heads
        qkv = inp(rng, d, name, "qkv", (t, 3 * dd))
        q, k, v = (qkv[:, i * dd:(i + 1) * dd].reshape(t, heads, dh).transpose(0, 1) for i in range(3))
        probs = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), dim=-1)
        ctx = (probs @ v).transpose(0, 1).reshape(t, dd)
        dctx = inp(rng, d, name, "dctx", (t, dd), grad=False)
        ctx.backward(dctx)
        outs = {"ctx": ctx, "probs": probs, "dqkv": qkv.grad}
    elif op == "xent":
        batch, k, s = int(p[0]), int(p[1]), float(p[2])
        z = inp(rng, d, name, "logits", (batch, k), 3.0)
        labels = rng.randint(0, k, batch)
        save(d, name, "labels", labels.astype(np.float32))
        loss = F.cross_entropy(z, torch.tensor(labels), reduction="none", label_smoothing=s)
        loss.sum().backward()
        outs = {"loss": loss, "dlogits": z.grad}
    elif op == "bce":
        batch, k = int(p[0]), int(p[1])
        z = inp(rng, d, name, "logits", (batch, k), 4.0)
        t = (rng.rand(batch, k) < 0.3).astype(np.float32)
        pw = (0.2 + 3 * rng.rand(k)).astype(np.float32)
        save(d, name, "targets", t)
        save(d, name, "posw", pw)
        loss = F.binary_cross_entropy_with_logits(z, torch.tensor(t, dtype=torch.float64), reduction="none",
                                                  pos_weight=torch.tensor(pw, dtype=torch.float64)).mean(1)
        loss.sum().backward()
        outs = {"loss": loss, "dlogits": z.grad}
    else:
        raise ValueError("unknown op " + op)
    for key, t in outs.items():
        save(d, name, key, t)


def main():
    if len(sys.argv) != 2:
        print("usage: backward_ref.py DIR")
        return 1
    d = sys.argv[1]
    with open(d + "/cases.txt") as f:
        lines = [l.split() for l in f if l.strip()]
    for i, l in enumerate(lines):
        case(d, l[0], l[1], l[2:], np.random.RandomState(1000 + i))
    return 0


if __name__ == "__main__":
    sys.exit(main())
