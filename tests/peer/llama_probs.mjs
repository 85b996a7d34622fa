// llama_probs.mjs - run the real llama.cpp (node-llama-cpp, CPU) on a GGUF file over a sequence
// of token ids and dump, for every position, the full next-token distribution.
//
//   node llama_probs.mjs MODEL.gguf IDS.bin OUT.bin [CONTEXT]
//
// IDS.bin: int32 little-endian token ids, fed exactly as given (no BOS or other token added).
// OUT.bin: a header of two uint32 (n positions, vocabulary size), then for each position the
// llama.cpp's raw logits (float32 × vocab), then for each position the probabilities
// llama.cpp's sampler reports (float32 × vocab; ids it leaves out are 0).
// Environment: GLMQ_PEER_NODE_MODULES = the node_modules directory holding node-llama-cpp.
import fs from "node:fs";

const [modelPath, idsPath, outPath, ctxArg] = process.argv.slice(2);
if (!outPath) {
    console.error("usage: node llama_probs.mjs MODEL.gguf IDS.bin OUT.bin [CONTEXT]");
    process.exit(2);
}
const nm = process.env.GLMQ_PEER_NODE_MODULES;
if (!nm) {
    console.error("llama_probs: GLMQ_PEER_NODE_MODULES is not set");
    process.exit(2);
}
const { getLlama, LlamaLogLevel } = await import(nm + "/node-llama-cpp/dist/index.js");

const raw = fs.readFileSync(idsPath);
const ids = [];
for (let i = 0; i + 4 <= raw.length; i += 4) ids.push(raw.readInt32LE(i));
// Room beyond the ids: with a context exactly as long as the sequence, the last position came
// out different (node-llama-cpp keeps a token of the context free for its context shift).
const context = Math.max(Number(ctxArg || 0), ids.length + 32);

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, useMmap: true });
const ctx = await model.createContext({ contextSize: context, batchSize: ids.length,
                                        sequences: 1, threads: 2 });
const seq = ctx.getSequence();
const input = ids.map((t) => [t, { generateNext: { probabilities: true, logits: true,
                                                    options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]);
const res = await seq.controlledEvaluate(input);

let nv = 0;
for (const r of res) {
    if (!r) continue;
    for (const [t] of r.next.logits) if (t + 1 > nv) nv = t + 1;
}
const out = Buffer.alloc(8 + 2 * 4 * nv * ids.length);
out.writeUInt32LE(ids.length, 0);
out.writeUInt32LE(nv, 4);
const logitsOff = 8, probsOff = 8 + 4 * nv * ids.length;
res.forEach((r, i) => {
    if (!r) throw new Error(`no output for position ${i}`);
    for (const [t, v] of r.next.logits) out.writeFloatLE(v, logitsOff + 4 * (i * nv + t));
    for (const [t, v] of r.next.probabilities) out.writeFloatLE(v, probsOff + 4 * (i * nv + t));
});
fs.writeFileSync(outPath, out);
await ctx.dispose();
await model.dispose();
await llama.dispose();
