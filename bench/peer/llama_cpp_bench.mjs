// llama_cpp_bench.mjs - prefill and decode tokens/s of a GGUF file run by the real llama.cpp
// (the prebuilt CPU libraries of the npm package node-llama-cpp), for the side-by-side figures
// in the README. glmq's own figures come from `glmq bench forward` on the same file.
//
//   GLMQ_PEER_NODE_MODULES=/opt/glmq-peer/node_modules \
//     node bench/peer/llama_cpp_bench.mjs MODEL.gguf [--prompt 512] [--decode 16]
//                                         [--threads 2] [--runs 3]
//
// Prefill: one batch of P token ids (ids 1000.., deterministic) on an empty context.
// Decode: D single-token evaluations after that prompt (greedy, so the next input is the model's
// own choice, as in glmq bench forward). Median of R runs; each run starts from an empty context.
const args = process.argv.slice(2);
if (args.length < 1) {
    console.error("usage: node llama_cpp_bench.mjs MODEL.gguf [--prompt P] [--decode D] [--threads N] [--runs R]");
    process.exit(2);
}
const opt = {prompt: 512, decode: 16, threads: 2, runs: 3};
const model_path = args[0];
for (let i = 1; i < args.length; i += 2) {
    const k = args[i].replace(/^--/, "");
    if (!(k in opt) || i + 1 >= args.length) { console.error(`bad option ${args[i]}`); process.exit(2); }
    opt[k] = parseInt(args[i + 1], 10);
}
const nm = process.env.GLMQ_PEER_NODE_MODULES || "/opt/glmq-peer/node_modules";
const {getLlama} = await import(nm + "/node-llama-cpp/dist/index.js");
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: model_path, useMmap: true});
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const ids = Array.from({length: opt.prompt}, (_, i) => 1000 + ((i * 7919) % 20000));
const pre = [], dec = [];
for (let r = 0; r < opt.runs; r++) {
    const ctx = await model.createContext({contextSize: opt.prompt + opt.decode + 16, threads: opt.threads,
                                           batchSize: opt.prompt, sequences: 1});
    const seq = ctx.getSequence();
    let t0 = process.hrtime.bigint();
    await seq.evaluateWithoutGeneratingNewTokens(ids);
    let t1 = process.hrtime.bigint();
    pre.push(opt.prompt / (Number(t1 - t0) / 1e9));
    let n = 0;
    t0 = process.hrtime.bigint();
    for await (const tok of seq.evaluate([ids[ids.length - 1]], {temperature: 0})) {
        void tok;
        if (++n >= opt.decode) break;
    }
    t1 = process.hrtime.bigint();
    dec.push(n / (Number(t1 - t0) / 1e9));
    await ctx.dispose();
}
console.log(JSON.stringify({tool: "llama.cpp (node-llama-cpp prebuilt)", model: model_path, threads: opt.threads,
                            prompt: opt.prompt, decode: opt.decode, runs: opt.runs,
                            prefill_tok_s: median(pre), decode_tok_s: median(dec),
                            prefill_all: pre, decode_all: dec}));
await model.dispose();
