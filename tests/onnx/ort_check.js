// ONNX files written by tl-export, run by ONNX Runtime (onnxruntime-node),
// against tl's own outputs: same manifest and criterion as check_onnx.py
// (max |ort - tl| <= 1e-4 * max |tl|). Every case runs at its batch size,
// so the symbolic batch dimension is exercised.
// usage: node ort_check.js MANIFEST   (NODE_PATH must reach onnxruntime-node)
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const TOL = 1e-4;

function expected(path) {
  const rows = [];
  const first = path.endsWith('.eval.tsv') ? 3 : 2;
  for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    rows.push(...line.split('\t').slice(first).map(Number));
  }
  return rows;
}

async function main() {
  let failed = 0;
  const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.trim());
  for (const line of lines) {
    const [onnxPath, inp, kind, batchS, sizeS, tsv, peers] = line.split('\t');
    if (!peers.split(',').includes('ort')) continue;
    // size: N (square) or WxH
    const [w, h] = sizeS.includes('x') ? sizeS.split('x').map(Number) : [Number(sizeS), Number(sizeS)];
    const batch = Number(batchS);
    const session = await ort.InferenceSession.create(onnxPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const buf = fs.readFileSync(inp);
    const tensor = kind === 'f32'
      ? new ort.Tensor('float32', new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), [batch, 3, h, w])
      : new ort.Tensor('uint8', new Uint8Array(buf.buffer, buf.byteOffset, buf.length), [batch, h, w, 3]);
    const out = await session.run({ [session.inputNames[0]]: tensor });
    const got = out[session.outputNames[0]].data, ref = expected(tsv);
    let err = 0, scale = 0;
    if (got.length !== ref.length) {
      console.log(`${onnxPath}: ort gave ${got.length} values, tl ${ref.length} (FAILED)`);
      failed++;
      continue;
    }
    for (let i = 0; i < ref.length; i++) {
      scale = Math.max(scale, Math.abs(ref[i]));
      err = Math.max(err, Math.abs(got[i] - ref[i]));
    }
    const ok = err <= TOL * scale;
    console.log(`${onnxPath}: ort: max error ${err.toPrecision(3)} of ${scale.toPrecision(3)} ` +
                `(${ok ? 'ok' : 'FAILED'}, tolerance ${TOL} relative)`);
    if (!ok) failed++;
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log('ort_check: ' + (e && e.message ? e.message.split('\n')[0] : e)); process.exit(1); });
