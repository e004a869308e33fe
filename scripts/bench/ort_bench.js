// The ONNX Runtime side of `make bench`: network-only inference of an
// exported model on random inputs, printed as tl-bench's JSON line.
// usage: node ort_bench.js MODEL.onnx ARCH BATCH [THREADS] [ITERS] [WARMUP] [MAX_SECONDS]
// NODE_PATH must reach onnxruntime-node (scripts/bench/run.sh installs it
// under build/bench/node).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function peakRssMb() {
  // VmHWM: the process's peak resident set, as getrusage reports for C.
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function main() {
  const [model, arch, batchS, threadsS = '2', itersS = '5', warmupS = '1', capS = '0'] = process.argv.slice(2);
  if (!model || !arch || !batchS) {
    console.error('usage: node ort_bench.js MODEL.onnx ARCH BATCH [THREADS] [ITERS] [WARMUP] [MAX_SECONDS]');
    process.exit(2);
  }
  const batch = Number(batchS), threads = Number(threadsS), iters = Number(itersS);
  const warmup = Number(warmupS), cap = Number(capS);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  // Seeded normal inputs (xorshift + Box-Muller): the values do not matter for speed.
  const n = batch * 3 * 224 * 224, data = new Float32Array(n);
  let s = 0x9e3779b9;
  const rnd = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 1) / 4294967297; };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(rnd())), t = 2 * Math.PI * rnd();
    data[i] = r * Math.cos(t);
    if (i + 1 < n) data[i + 1] = r * Math.sin(t);
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, 224, 224]) };
  const runs = [], cpu = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    await session.run(feeds);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9, c = process.cpuUsage(c0);
    if (i >= warmup) {
      runs.push(batch / dt);
      cpu.push((c.user + c.system) / 1e3 / batch); // ms per image, every thread
    }
    if (cap > 0 && runs.length >= 3 && Number(process.hrtime.bigint() - start) / 1e9 > cap) break;
  }
  const med = (v) => {
    const s = [...v].sort((a, b) => a - b), k = s.length;
    return k % 2 ? s[(k - 1) / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
  };
  const median = med(runs);
  console.log(JSON.stringify({
    mode: 'infer', arch, batch, threads, images_per_s: +median.toPrecision(5),
    runs: runs.map((r) => +r.toPrecision(5)), cpu_ms_per_image: +med(cpu).toPrecision(4),
    peak_rss_mb: +peakRssMb().toFixed(1),
  }));
}

main().catch((err) => { console.error('ort_bench: ' + (err && err.message ? err.message : err)); process.exit(1); });
