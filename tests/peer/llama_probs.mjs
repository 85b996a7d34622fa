// llama_probs.mjs - run the real llama.cpp (node-llama-cpp, CPU) on a GGUF file over a sequence
// of token ids and dump, for every position, the full next-token distribution.
//
//   node llama_probs.mjs MODEL.gguf IDS.bin OUT.bin VOCAB
//
// IDS.bin: int32 little-endian token ids, evaluated exactly as given in one sequence (no BOS or
// other token is added). OUT.bin: two uint32 (positions n, VOCAB), then per position VOCAB
// float32: llama.cpp's probability of every id as the next token (softmax of its logits at
// temperature 1 with top-k, top-p and min-p off, so no id is left out).
// Environment: GLMQ_PEER_NODE_MODULES = the node_modules directory holding node-llama-cpp.
// Exit status 2 for a usage error, 1 (with a message) when llama.cpp fails.
import fs from "node:fs";

const [modelPath, idsPath, outPath, vocabArg] = process.argv.slice(2);
const vocab = Number(vocabArg);
if (!outPath || !(vocab > 0)) {
    console.error("usage: node llama_probs.mjs MODEL.gguf IDS.bin OUT.bin VOCAB");
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

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
// Room beyond the ids: with a context exactly as long as the sequence, the last position came
// out different (the context is full before its logits are taken).
const ctx = await model.createContext({ contextSize: ids.length + 32, batchSize: ids.length,
                                        sequences: 1, threads: 2 });
const seq = ctx.getSequence();

const fd = fs.openSync(outPath, "w");
const head = Buffer.alloc(8);
head.writeUInt32LE(ids.length, 0);
head.writeUInt32LE(vocab, 4);
fs.writeSync(fd, head, 0, 8, 0);
const row = Buffer.alloc(4 * vocab);
let written = 0;
const next = { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } };
await seq.controlledEvaluate(ids.map((t) => [t, { generateNext: next }]), {
    onTokenResult(i, r) {
        const p = r.next.probabilities;
        if (!p || p.size !== vocab)
            throw new Error(`position ${i}: ${p ? p.size : 0} probabilities, expected ${vocab}`);
        row.fill(0);
        for (const [t, v] of p) row.writeFloatLE(v, 4 * t);
        fs.writeSync(fd, row, 0, row.length, 8 + 4 * vocab * i);
        written++;
    },
});
fs.closeSync(fd);
if (written !== ids.length) {
    console.error(`llama_probs: ${written} of ${ids.length} positions evaluated`);
    process.exit(1);
}
await ctx.dispose();
await model.dispose();
await llama.dispose();
