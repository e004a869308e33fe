"""The cases of `make bench`, run one process each, then the table and
bench/latest.json. scripts/bench/run.sh finds or installs the peers and
calls this with Debian's /usr/bin/python3.

usage: bench.py --root DIR --work DIR [--peers tl,onnxruntime,pytorch,pytorch-tuned]
                [--cases C1,C2 [--runners R1,R2]] [--report-only [--markdown]]
Environment: BENCH_CASES=c1,c2 (a fresh run of these cases only), BENCH_QUICK=1 (a ~3-minute subset), BENCH_MODELS=a,b (the
models to run: inference and extraction cases of those among the inference
models, training cases of those among the training models), BENCH_THREADS
(default 2), BENCH_PEER_ISA=avx2 (PyTorch's kernels limited to AVX2 as well, with
ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA, to compare with TL_SIMD=avx2 on an
AVX-512 machine; ONNX Runtime has no such switch and keeps its own path).

Every case runs the runners one after the other (tl, then each peer), so
a change in the machine's load hits all of them alike; the FMA probe runs
before the first case and after the last. Results accumulate in
WORK/results.jsonl; --report-only prints the table again from it.
"""
import argparse, datetime, json, os, platform, statistics, subprocess, sys, time

TUNED = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
INFER_MODELS = ["mobilenet_v2", "efficientnet_b0", "resnet18", "resnet50", "vgg16", "vit_b_16"]
# Training rows: vit_ti_16 (ViT-Ti/16) is here only, the ViT a user fine-tunes
# on a CPU (ViT-B/16's step is ~14x the work).
TRAIN_MODELS = ["mobilenet_v2", "efficientnet_b0", "resnet18", "vit_ti_16"]
EXTRACT_MODELS = INFER_MODELS
PEER_ORDER = ["onnxruntime", "pytorch", "pytorch-tuned", "darknet", "tl-fp32", "pytorch-int8"]
JOBS = {"infer": "infer", "infer_int8": "infer", "train_full": "train-full", "train_frozen": "train-frozen"}
# int8 inference (rows <model>_infer_int8_b32): tl's int8 checkpoint (made by
# run.sh with tl-quantize) against ONNX Runtime's FP32, tl's own FP32 and
# PyTorch's quantised torchvision model.
INT8_MODELS = ["mobilenet_v2", "resnet18", "resnet50"]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def probe_isa(p):
    """The FMA probe of the width tl's path uses: (width, GFLOPS on 1 and 2
    threads, their ratio). A probe file from before tl-fmaprobe said which
    path tl takes: the widest width measured."""
    if "isa_width" in p:
        return p["isa_width"], p["isa_gflops_1t"], p["isa_gflops_2t"], p["isa_scaling"]
    if p.get("gflops_512_1t", 0) > 0:
        return 512, p["gflops_512_1t"], p["gflops_512_2t"], p["scaling_512"]
    return 256, p.get("gflops_256_1t", 0), p.get("gflops_256_2t", 0), p.get("scaling_256", 0)


def probe_text(p):
    w, g1, g2, sc = probe_isa(p)
    if not w:
        return "tl path %s: no FMA probe for it" % p.get("isa", "?")
    return "tl path %s, %d-bit FMAs: %.0f GFLOPS on 1 thread, %.0f on 2 (x%.2f)" % (
        p.get("isa", "?"), w, g1, g2, sc)


def contended(p):
    """Two threads well short of twice one thread's FMA rate (on the width
    tl uses; a width the CPU lacks measures 0 and says nothing)."""
    w, g1, _, sc = probe_isa(p)
    return bool(w) and g1 > 0 and sc < 1.6


class Bench:
    def __init__(self, a):
        self.a = a
        self.root = os.path.abspath(a.root)
        self.work = os.path.abspath(a.work)
        self.models = os.path.join(self.work, "models")
        self.results = os.path.join(self.work, "results.jsonl")
        self.threads = int(os.environ.get("BENCH_THREADS", "2"))
        self.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        self.peer_isa = os.environ.get("BENCH_PEER_ISA", "").lower()
        if self.peer_isa not in ("", "avx2"):
            sys.exit("bench.py: BENCH_PEER_ISA must be avx2 (or unset), not '%s'" % self.peer_isa)
        self.peers = [p for p in a.peers.split(",") if p]
        pick = [m for m in os.environ.get("BENCH_MODELS", "").split(",") if m]
        infer = pick or (["mobilenet_v2", "resnet18"] if self.quick else INFER_MODELS)
        self.infer_models = [m for m in INFER_MODELS if m in infer] + [
            m for m in infer if m not in INFER_MODELS and m not in TRAIN_MODELS]
        self.train_models = [m for m in TRAIN_MODELS if m in (pick or TRAIN_MODELS)]
        self.extract_models = [m for m in EXTRACT_MODELS if m in infer]
        if self.quick:
            if not pick:  # the quick subset trains ResNet-18 only
                self.train_models = [m for m in self.train_models if m == "resnet18"]
            self.extract_models = self.extract_models[:1]

    # -- how long each kind of case may take: (warmup, iters, seconds cap)
    def budget(self, job, batch):
        if job == "extract_int8":
            job = "extract"
        if self.quick:
            return {"infer": (1, 5 if batch == 1 else 3, 3), "extract": (0, 3, 20)}.get(job, (1, 3, 10))
        if job == "infer":
            # batch 1: up to 200 runs within the 8 s cap, so a fast model's median
            # (MobileNetV2: 4-6 ms a run) spans a second or more rather than the
            # 0.15 s a disturbance of the machine can cover whole
            return (3, 200, 8) if batch == 1 else (1, 7, 20)
        if job == "extract":
            return (0, 3, 60)
        return (1, 5, 40)

    def env(self, runner, arch, batch):
        env = dict(os.environ)
        t = str(self.threads)
        env.update(OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t)
        env.pop("GLIBC_TUNABLES", None)
        if runner in ("pytorch-tuned", "pytorch-int8"):
            env["GLIBC_TUNABLES"] = TUNED
        # PEERS.md: ViT's GEMMs get torch's OpenMP threads and OpenBLAS's own
        # threads competing; one OpenBLAS thread is much faster.
        if runner.startswith("pytorch") and arch.startswith("vit"):
            env["OPENBLAS_NUM_THREADS"] = "1"
        if runner.startswith("pytorch") and self.peer_isa:
            env["ATEN_CPU_CAPABILITY"] = self.peer_isa
            env["ONEDNN_MAX_CPU_ISA"] = self.peer_isa.upper()
        if runner == "onnxruntime":
            env["NODE_PATH"] = os.path.join(self.work, "node", "node_modules")
        return env

    def command(self, runner, job, arch, batch):
        w, n, cap = self.budget(job, batch)
        t = str(self.threads)
        st = os.path.join(self.models, arch + ".safetensors")
        pt = os.path.join(self.models, arch + ".pt")
        here = os.path.dirname(os.path.abspath(__file__))
        if runner == "tl" and job in ("extract", "extract_int8"):
            if job == "extract_int8":
                st = os.path.join(self.models, arch + "_int8.safetensors")
            return [os.path.join(self.root, "bin", "tl-extract"), "-q", "-m", st, "-j", t, "-b", "32", "-f", "npy",
                    "-o", os.path.join(self.work, "tl-features.npy"), "-"], n, cap
        if job == "infer_int8":
            w, n, cap = self.budget("infer", batch)
            if runner == "tl":
                st = os.path.join(self.models, arch + "_int8.safetensors")
                if not os.path.exists(st):
                    raise RuntimeError("no int8 checkpoint (run.sh makes it with tl-quantize)")
            elif runner == "tl-fp32":
                runner = "tl"
            elif runner == "pytorch-int8":
                return ["/usr/bin/python3", os.path.join(here, "torch_bench.py"), "infer-int8", arch, str(batch),
                        "--weights", pt, "--threads", t, "--iters", str(n), "--warmup", str(w), "--max-seconds",
                        str(cap)], 1, 0
        if runner == "tl":
            cmd = [os.path.join(self.root, "build", "tests", "tl-bench"), JOBS[job], arch, str(batch), "--threads", t,
                   "--iters", str(n), "--warmup", str(w), "--max-seconds", str(cap)]
            if os.path.exists(st):
                cmd += ["--model", st]
            return cmd, 1, 0
        if runner.startswith("pytorch"):
            cmd = ["/usr/bin/python3", os.path.join(here, "torch_bench.py"), JOBS.get(job, job), arch, str(batch),
                   "--weights", pt, "--threads", t, "--iters", str(n), "--warmup", str(w), "--max-seconds", str(cap)]
            if job in ("extract", "extract_int8"):
                cmd[2] = "extract"
                cmd += ["--list", os.path.join(self.work, "hymenoptera.txt")]
            return cmd, 1, 0
        if runner == "onnxruntime":
            return ["node", os.path.join(here, "ort_bench.js"), os.path.join(self.models, arch + ".onnx"), arch,
                    str(batch), t, str(n), str(w), str(cap)], 1, 0
        raise ValueError(runner)

    def timeout(self, job):
        return {"infer": 300, "extract": 600, "extract_int8": 600}.get(job, 400) if not self.quick else 300

    def hopeless(self, runner, job, arch, batch, rate_b1):
        """Why a case cannot finish within its time limit, judged from the
        runner's own batch-1 rate on the same model (None when it can).
        Debian's PyTorch runs ViT-B/16 at ~0.1 images/s: one batch of 32
        takes longer than the limit, and waiting it out cost each full run
        15 minutes. Larger batches and decoding only add time, so the
        batch-1 rate gives a lower bound."""
        if not rate_b1 or job not in ("infer", "extract") or (job == "infer" and batch == 1):
            return None
        if job == "infer":
            images = batch * (self.budget(job, batch)[0] + 1)  # the warm-up batches and one timed batch
        else:
            images = sum(1 for _ in open(os.path.join(self.work, "hymenoptera.txt")))
        need = images / rate_b1
        if need <= self.timeout(job):
            return None
        return "skipped: %d images at its batch-1 rate (%.3g images/s) take %.0f s, over the %d s limit" % (
            images, rate_b1, need, self.timeout(job))

    def run_one(self, runner, job, arch, batch):
        """One JSON result; for commands that do not time themselves
        (tl-extract), `iters` runs timed from here with wait4's rusage."""
        cmd, iters, cap = self.command(runner, job, arch, batch)
        env = self.env(runner, arch, batch)
        stdin_path = (os.path.join(self.work, "hymenoptera.txt") if runner == "tl" and job.startswith("extract")
                      else None)
        # A hard limit per process, far above a quiet machine's needs (glibc-default
        # PyTorch on ViT-B/16 at batch 32 takes minutes per batch: it times out).
        timeout = self.timeout(job)
        if iters == 1:
            p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError((p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1])
            return json.loads(p.stdout.strip().splitlines()[-1])
        runs, rss, start = [], 0.0, time.time()
        nimg = sum(1 for _ in open(stdin_path))
        for _ in range(iters):
            with open(stdin_path) as fin:
                t0 = time.perf_counter()
                p = subprocess.Popen(cmd, env=env, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                _, status, ru = os.wait4(p.pid, 0)
                dt = time.perf_counter() - t0
                err = p.stderr.read().decode()
                p.stderr.close()
                p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                raise RuntimeError((err.strip().splitlines() or ["exit %d" % p.returncode])[-1])
            runs.append(nimg / dt)
            rss = max(rss, ru.ru_maxrss / 1024.0)
            if len(runs) >= 3 and time.time() - start > cap:
                break
        return {"mode": "extract", "arch": arch, "batch": 32, "threads": self.threads,
                "images_per_s": round(statistics.median(runs), 4), "runs": [round(r, 4) for r in runs],
                "peak_rss_mb": round(rss, 1), "images": nimg}

    def cases(self):
        out = []
        for b in (1, 32):
            for m in self.infer_models:
                out.append(("%s_infer_b%d" % (m, b), "infer", m, b, ["tl", "onnxruntime", "pytorch", "pytorch-tuned"]))
        for m in self.infer_models:
            if m in INT8_MODELS:
                out.append(("%s_infer_int8_b32" % m, "infer_int8", m, 32,
                            ["tl", "tl-fp32", "onnxruntime", "pytorch-int8"]))
        for job in ("train_full", "train_frozen"):
            for m in self.train_models:
                out.append(("%s_%s_b32" % (m, job), job, m, 32, ["tl", "pytorch", "pytorch-tuned"]))
        for m in self.extract_models:
            out.append(("%s_extract_e2e" % m, "extract", m, 32, ["tl", "pytorch", "pytorch-tuned"]))
        for m in self.extract_models:
            if m in INT8_MODELS:  # tl-extract on the int8 checkpoint against PyTorch's FP32 extraction
                out.append(("%s_extract_e2e_int8" % m, "extract_int8", m, 32, ["tl", "pytorch-tuned"]))
        return out

    def probe(self, when):
        p = subprocess.run([os.path.join(self.root, "build", "tests", "tl-fmaprobe")], stdout=subprocess.PIPE,
                           text=True, check=True)
        r = json.loads(p.stdout)
        r["when"] = when
        r["time"] = datetime.datetime.now().isoformat(timespec="seconds")
        log("FMA probe (%s): %s" % (when, probe_text(r)))
        if contended(r):
            log("WARNING: two threads gave only %.2fx one thread's FMA rate: the cores are shared with other work, "
                "figures of this run are suspect" % probe_isa(r)[3])
        return r

    def run(self):
        cases = self.cases()
        if self.a.cases:  # re-run some cases into an existing run: later records win in the report
            want = self.a.cases.split(",")
            cases = [c[:4] + ([r for r in c[4] if r in self.a.runners.split(",")] if self.a.runners else c[4],)
                     for c in cases if c[0] in want]
            self.run_cases(cases)
            return
        if os.environ.get("BENCH_CASES"):  # a fresh run of some cases only
            want = os.environ["BENCH_CASES"].split(",")
            cases = [c for c in cases if c[0] in want]
        open(self.results, "w").close()
        probes = [self.probe("before")]
        self.save_probes(probes, None)  # a partial run can still be reported
        t_start = time.time()
        self.run_cases(cases)
        probes.append(self.probe("after"))
        self.save_probes(probes, round(time.time() - t_start))

    def run_cases(self, cases):
        rate_b1 = {}  # (runner, arch): images/s at batch 1, measured earlier in this run
        for i, (case, job, arch, batch, runners) in enumerate(cases):
            for runner in runners:
                if runner != "tl" and runner != "tl-fp32" and runner not in self.peers and not (
                        runner == "pytorch-int8" and "pytorch-tuned" in self.peers):
                    continue
                if job.startswith("extract") and not os.path.exists(os.path.join(self.work, "hymenoptera.txt")):
                    continue
                rec = {"case": case, "runner": runner, "job": job, "arch": arch, "batch": batch}
                t0 = time.time()
                why = self.hopeless(runner, job, arch, batch, rate_b1.get((runner, arch)))
                if why:
                    rec["error"] = why
                    log("[%d/%d] %-32s %-14s %s" % (i + 1, len(cases), case, runner, why))
                    with open(self.results, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                    continue
                try:
                    rec["result"] = self.run_one(runner, job, arch, batch)
                    if job == "infer" and batch == 1:
                        rate_b1[(runner, arch)] = rec["result"]["images_per_s"]
                    log("[%d/%d] %-32s %-14s %8.2f images/s %8.0f MB  (%.0f s)" % (
                        i + 1, len(cases), case, runner, rec["result"]["images_per_s"],
                        rec["result"]["peak_rss_mb"], time.time() - t0))
                except subprocess.TimeoutExpired as err:
                    rec["error"] = "timed out after %.0f s" % err.timeout
                    log("[%d/%d] %-32s %-14s %s" % (i + 1, len(cases), case, runner, rec["error"]))
                except (RuntimeError, ValueError, OSError) as err:
                    rec["error"] = str(err)[:300]
                    log("[%d/%d] %-32s %-14s failed: %s" % (i + 1, len(cases), case, runner, rec["error"]))
                with open(self.results, "a") as f:
                    f.write(json.dumps(rec) + "\n")

    def save_probes(self, probes, seconds):
        with open(os.path.join(self.work, "probes.json"), "w") as f:
            json.dump({"probes": probes, "seconds": seconds}, f)

    # -- the report
    def report(self):
        recs = [json.loads(l) for l in open(self.results) if l.strip()]
        pr = json.load(open(os.path.join(self.work, "probes.json")))
        probes = pr["probes"]
        # % of peak: against the FMA probe of the width tl's path uses (its
        # best of the probes before and after); none for the scalar path
        peak = max(probe_isa(p)[2 if self.threads > 1 else 1] for p in probes) or None
        by = {}
        order = []
        for r in recs:
            if r["case"] not in by:
                order.append(r["case"])
                by[r["case"]] = {}
            by[r["case"]][r["runner"]] = r
        rows, tl_cases, table = [], [], []
        peers = [p for p in PEER_ORDER if any(p in by[c] for c in order)]
        for case in order:
            tl = by[case].get("tl", {}).get("result")
            if tl:
                macs = tl.get("gmacs_per_image") or self.macs_of(by[case])
                gflops = None
                if macs:
                    flops = 2 * macs
                    if by[case]["tl"]["job"].startswith("train"):
                        flops = 2 * (macs + 2 * tl.get("trainable_gmacs_per_image", macs))
                    gflops = tl["images_per_s"] * flops
                tl_cases.append({"case": case, "images_per_s": tl["images_per_s"], "runs": tl["runs"],
                                 "cpu_ms_per_image": tl.get("cpu_ms_per_image"),
                                 "peak_rss_mb": tl["peak_rss_mb"], "gflops": gflops and round(gflops, 2),
                                 "fraction_of_peak": gflops and peak and round(gflops / peak, 4)})
            for metric in ("images_per_s", "peak_rss_mb"):
                line = [case, metric, tl[metric] if tl else None]
                for peer in peers:
                    pr_ = by[case].get(peer, {})
                    pv = pr_.get("result", {}).get(metric)
                    ratio = None
                    if tl and pv:
                        ratio = tl[metric] / pv if metric == "images_per_s" else pv / tl[metric]
                    if peer in by[case]:
                        rows.append({"case": case, "metric": metric, "tl": tl[metric] if tl else None, "peer": peer,
                                     "peer_value": pv, "ratio": round(ratio, 3) if ratio else None})
                    line += [pv, ratio] if peer in by[case] else ["", ""]
                if metric == "images_per_s" and tl_cases and tl_cases[-1]["case"] == case:
                    g = tl_cases[-1]["gflops"]
                    line += [g, g and peak and 100 * g / peak]
                else:
                    line += ["", ""]
                table.append(line)
        if self.a.markdown:
            self.print_markdown(table, peers, probes, peak)
        else:
            self.print_table(table, peers, probes, peak)
        meta = {
            "date": probes[0].get("time") or datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": self.machine(probes[0]), "threads": self.threads, "quick": self.quick,
            "fma_probes": probes, "fma_probe_isa": self.probe_isa_name(probes[0]), "peak_gflops_used": peak,
            "bench_seconds": pr.get("seconds"),
            "tl_cases": tl_cases,
            "peers": {"onnxruntime": "onnxruntime-node 1.30.0, intraOpNumThreads=%d, interOpNumThreads=1, "
                                     "graphOptimizationLevel=all" % self.threads,
                      "pytorch": "PyTorch %s (Debian), glibc malloc defaults" % self.torch_version(),
                      "pytorch-tuned": "the same with GLIBC_TUNABLES=" + TUNED,
                      "tl-fp32": "tl's own float engine on the same model (int8 rows)",
                      "pytorch-int8": "torchvision.models.quantization with the same weights, fused, calibrated, "
                                      "converted; x86 backend fbgemm if the build has it, else onednn (Debian's "
                                      "1.13 has no fbgemm); GLIBC_TUNABLES as pytorch-tuned"},
            "notes": ["ratio > 1 means tl is better: images_per_s tl/peer, peak_rss_mb peer/tl",
                      "each figure is the median of several runs of one process per case; random-weight "
                      "torchvision models (seed 1234) exported once to ONNX, safetensors and a state_dict",
                      "train: SGD momentum 0.9, cross-entropy, batch 32; train_frozen trains the last stage "
                      "and the classifier (resnet: layer4+fc, mobilenet_v2: features.14..+classifier, "
                      "efficientnet_b0: features.7..+classifier, vit_ti_16: the last encoder layer, encoder.ln, "
                      "heads), frozen batch norms on running statistics; vit_ti_16 is torchvision's "
                      "VisionTransformer at width 192, 3 heads, MLP 768, 12 layers (DeiT-tiny's shape)",
                      "extract_e2e_int8: tl-extract on the int8 checkpoint against PyTorch's FP32 extraction",
                      "extract_e2e: all JPEGs of hymenoptera, decode + resize 256 + centre crop 224 + normalise + "
                      "network to the pooled features; PyTorch with a DataLoader of 2 workers (its memory adds "
                      "the largest worker's peak)",
                      "GFLOPS count 2 FLOPs per multiply-add; training: forward + 2x the trainable part's forward",
                      "infer_int8: tl's int8 checkpoint (tl-quantize, MSE calibration on 32 hymenoptera images, "
                      "first conv and classifier in float); the onnxruntime and tl-fp32 columns are FP32 runs of "
                      "the same float model, interleaved with it",
                      "machine.isa_tl: the SIMD path of tl's kernels (TL_SIMD honoured; avx512vnni = AVX-512 float "
                      "kernels plus VNNI int8 ones); % of peak and the contention check use the FMA probe of that "
                      "path's width (fma_probe_isa), none for scalar; TL_SIMD does not limit the peers: "
                      "onnxruntime-node does not report the ISA its MLAS kernels chose from CPUID "
                      "(machine.isa_onnxruntime null), see machine.cpu_flags",
                      "PyTorch runs vit_b_16 with OPENBLAS_NUM_THREADS=1 (its OpenMP and OpenBLAS threads compete otherwise, see PEERS.md)"],
            "errors": [{"case": c, "runner": k, "error": r["error"]} for c in order for k, r in by[c].items()
                       if "error" in r],
        }
        os.makedirs(os.path.join(self.root, "bench"), exist_ok=True)
        for name, obj in (("latest.json", rows), ("latest-meta.json", meta)):
            path = os.path.join(self.root, "bench", name)
            with open(path + ".tmp", "w") as f:
                json.dump(obj, f, indent=1)
                f.write("\n")
            os.replace(path + ".tmp", path)
        log("wrote bench/latest.json (%d rows) and bench/latest-meta.json" % len(rows))

    def macs_of(self, runners):
        for r in runners.values():
            g = r.get("result", {}).get("gmacs_per_image")
            if g:
                return g
        return None

    def print_table(self, table, peers, probes, peak):
        def fmt(v, ratio=False):
            if v is None:
                return "-"
            if v == "":
                return ""
            if ratio:
                return "%.2fx" % v
            return "%.1f" % v if v >= 10 else "%.2f" % v

        head = ["case", "metric", "tl"]
        for p in peers:
            head += [p, "tl/" + p if p else ""]
        head += ["tl GFLOPS", "% peak"]
        lines = []
        for row in table:
            cells = row[:2] + [fmt(row[2])]
            for k in range(len(peers)):
                cells += [fmt(row[3 + 2 * k]), fmt(row[4 + 2 * k], True)]
            g, frac = row[-2], row[-1]
            cells += [fmt(g), "%.0f%%" % frac if isinstance(frac, float) else ""]
            lines.append(cells)
        widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
        out = ["  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
               for r in [head] + lines]
        print("tl bench, %d threads, %s" % (self.threads, datetime.date.today().isoformat()))
        for p in probes:
            print("FMA probe %-6s: %s" % (p["when"], probe_text(p)))
        print(("peak used for %% peak: %.0f GFLOPS" % peak if peak else "no peak for tl's path: no %% peak") +
              "; ratio > 1 means tl is better (memory: peer/tl)")
        if self.peer_isa:
            print("PyTorch limited to %s (BENCH_PEER_ISA); ONNX Runtime runs its own best path" % self.peer_isa.upper())
        if any(contended(p) for p in probes):
            print("*** WARNING: the FMA probe shows contention (2 threads < 1.6x one thread): "
                  "other work shares the cores and every figure of this run is suspect ***")
        print()
        print(out[0])
        print("  ".join("-" * w for w in widths))
        for line in out[1:]:
            print(line)

    def print_markdown(self, table, peers, probes, peak):
        """The table for the README: images/s and MB, each peer with tl's ratio."""
        def num(v):
            return "—" if v in (None, "") else ("%.1f" % v if v >= 10 else "%.2f" % v)

        head = ["case", "metric", "tl"] + ["%s (tl ratio)" % p for p in peers] + ["tl GFLOPS (% of peak)"]
        print("| " + " | ".join(head) + " |")
        print("|" + " --- |" * len(head))
        for row in table:
            cells = [row[0], "images/s" if row[1] == "images_per_s" else "peak MB", num(row[2])]
            for k in range(len(peers)):
                v, r = row[3 + 2 * k], row[4 + 2 * k]
                cells.append("" if v == "" else num(v) + (" (%.2fx)" % r if r else ""))
            g, frac = row[-2], row[-1]
            cells.append("%.0f (%.0f %%)" % (g, frac) if isinstance(frac, float) else "")
            print("| " + " | ".join(cells) + " |")
        print()
        print("FMA probe: " + "; ".join("%s: %s" % (p["when"], probe_text(p)) for p in probes) +
              ("; peak used: %.0f GFLOPS." % peak if peak else "."))

    def probe_isa_name(self, probe):
        w = probe_isa(probe)[0]
        return "%d-bit FMA (%s)" % (w, "AVX-512F" if w == 512 else "AVX2+FMA") if w else None

    def machine(self, probe):
        model = ""
        try:
            for l in open("/proc/cpuinfo"):
                if l.startswith("model name"):
                    model = l.split(":", 1)[1].strip()
                    break
            mem = [l for l in open("/proc/meminfo") if l.startswith("MemTotal")][0].split()[1]
        except OSError:
            mem = "0"
        flags = open("/proc/cpuinfo").read()
        have = set()
        for l in flags.splitlines():
            if l.startswith("flags"):
                have = set(l.split(":", 1)[1].split())
                break
        wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16",
                  "avx_vnni", "amx_tile"]
        return {"cpu": model, "cpus": os.cpu_count(), "mem_gb": round(int(mem) / 1048576, 1),
                "avx512f": "avx512f" in have, "cpu_flags": [f for f in wanted if f in have],
                "isa_tl": probe.get("isa") or self.tl_simd(), "isa_onnxruntime": None,
                "tl_simd_env": os.environ.get("TL_SIMD", ""),
                "peer_isa_limit": {"pytorch": self.peer_isa or None, "onnxruntime": None}, "kernel": platform.release(),
                "hypervisor": "hypervisor" in flags, "tl_commit": self.git_rev(),
                "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "")}

    def tl_simd(self):
        """The path tl's kernels take ($TL_SIMD as set), from tests/tools/tl-simd."""
        try:
            p = subprocess.run([os.path.join(self.root, "build", "tests", "tl-simd")], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return None
        return next((l.split()[1] for l in p.stdout.splitlines() if l.startswith("default ")), None)

    def git_rev(self):
        p = subprocess.run(["git", "-C", self.root, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        dirty = subprocess.run(["git", "-C", self.root, "diff", "--quiet", "HEAD", "--", "lib"],
                               stderr=subprocess.DEVNULL).returncode
        rev = p.stdout.strip()
        return rev + ("+lib changes" if rev and dirty else "")

    def torch_version(self):
        try:
            import torch
            return torch.__version__
        except ImportError:
            return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=".")
    ap.add_argument("--work", default="build/bench")
    ap.add_argument("--peers", default="onnxruntime,pytorch,pytorch-tuned")
    ap.add_argument("--cases", help="run only these cases (comma-separated), appending to the last run's results")
    ap.add_argument("--runners", help="with --cases: only these runners (tl, onnxruntime, pytorch, pytorch-tuned)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="the table as Markdown (for the README)")
    b = Bench(ap.parse_args())
    if not b.a.report_only:
        b.run()
    b.report()


if __name__ == "__main__":
    main()
