// llama_tokenize.mjs - tokenize texts with the real llama.cpp (node-llama-cpp, CPU) from a GGUF
// file's vocabulary only, and detokenize the result.
//
//   node llama_tokenize.mjs MODEL.gguf TEXTS.bin OUT.txt
//
// TEXTS.bin: a sequence of records, each a uint32 little-endian byte length and that many bytes
// of UTF-8 text. Every text is tokenized as plain text: no BOS/EOS added, special-token text
// not parsed (model.tokenize(text, false) = llama_tokenize(add_special = false,
// parse_special = false)). OUT.txt gets one line per text: the token ids separated by spaces,
// a tab, then the hex of the UTF-8 bytes of llama.cpp's detokenization of those ids
// (llama_detokenize(remove_special = false, unparse_special = false)).
// Environment: GLMQ_PEER_NODE_MODULES = the node_modules directory holding node-llama-cpp.
import fs from "node:fs";

const [modelPath, textsPath, outPath] = process.argv.slice(2);
if (!outPath) {
    console.error("usage: node llama_tokenize.mjs MODEL.gguf TEXTS.bin OUT.txt");
    process.exit(2);
}
const nm = process.env.GLMQ_PEER_NODE_MODULES;
if (!nm) {
    console.error("llama_tokenize: GLMQ_PEER_NODE_MODULES is not set");
    process.exit(2);
}
const { getLlama, LlamaLogLevel } = await import(nm + "/node-llama-cpp/dist/index.js");

const raw = fs.readFileSync(textsPath);
const texts = [];
for (let at = 0; at + 4 <= raw.length;) {
    const n = raw.readUInt32LE(at);
    at += 4;
    if (at + n > raw.length) throw new Error(`truncated text record at byte ${at - 4}`);
    // fatal: a text that is not UTF-8 cannot be handed to llama.cpp through a JS string unchanged
    texts.push(new TextDecoder("utf-8", { fatal: true }).decode(raw.subarray(at, at + n)));
    at += n;
}

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, vocabOnly: true });
const lines = texts.map((t) => {
    const ids = model.tokenize(t, false);
    const back = ids.length ? model.detokenize(ids, false) : "";
    return ids.join(" ") + "\t" + Buffer.from(back, "utf8").toString("hex");
});
fs.writeFileSync(outPath, lines.join("\n") + "\n");
await model.dispose();
await llama.dispose();
