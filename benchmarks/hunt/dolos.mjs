// Dolos peer for benchmarks/hunt_vs_peers.py, driving @dodona/dolos-lib (what the `dolos` CLI
// wraps; the CLI package itself is not installable from the registry here) with the CLI's
// defaults (k = 23, w = 17, no frequency filter) and language "tsx" (parses .ts and .js).
//
//   node dolos.mjs CONFIG.json    CONFIG: {originals: [paths], suspects: [paths], chunk: n}
//
// The CLI's allPairs() builds every n(n-1)/2 pair and does not fit in 24 GB for the haystack,
// so this runs in "candidate" mode: the originals are tokenized once; each chunk of suspects
// gets a fresh index with the originals, and only (suspect, original) pairs that share at
// least one fingerprint are built. Scores are pair-local, so this changes no score.
// Output (stdout, JSON lines): {suspect, original, similarity, cov_suspect, cov_original}.
import fs from "node:fs";
import { File, FingerprintIndex, LanguagePicker, Options } from "@dodona/dolos-lib";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const options = new Options({ language: "tsx" });
const language = await new LanguagePicker().findLanguage("tsx");
const tokenizer = await language.createTokenizer({ includeComments: options.includeComments });

function tokenize(paths, role) {
  const out = [];
  for (const p of paths) {
    try {
      const tf = tokenizer.tokenizeFile(new File(p, fs.readFileSync(p, "utf8")));
      tf.role = role;
      out.push(tf);
    } catch (err) {
      process.stderr.write(`dolos: cannot tokenize ${p}: ${String(err).slice(0, 100)}\n`);
    }
  }
  return out;
}

const t0 = Date.now();
const originals = tokenize(config.originals, "original");
process.stderr.write(`dolos: tokenized ${originals.length} originals in ${(Date.now() - t0) / 1000}s\n`);
const chunk = config.chunk ?? 2000;
let candidates = 0;
for (let i = 0; i < config.suspects.length; i += chunk) {
  const suspects = tokenize(config.suspects.slice(i, i + chunk), "suspect");
  const index = new FingerprintIndex(options.kgramLength, options.kgramsInWindow, options.kgramData);
  index.updateMaxFingerprintFileCount(undefined);
  index.addFiles([...originals, ...suspects]);
  const seen = new Map(); // suspect -> Set(original)
  for (const shared of index.sharedFingerprints()) {
    const files = shared.files();
    const sus = files.filter((f) => f.role === "suspect");
    if (sus.length === 0) continue;
    const orig = files.filter((f) => f.role === "original");
    for (const s of sus) {
      let set = seen.get(s);
      if (!set) seen.set(s, (set = new Set()));
      for (const o of orig) set.add(o);
    }
  }
  const lines = [];
  for (const [s, set] of seen) {
    for (const o of set) {
      candidates++;
      const pair = index.getPair(s, o);
      const sLeft = pair.leftFile === s;
      lines.push(JSON.stringify({
        suspect: s.path, original: o.path, similarity: pair.similarity,
        cov_suspect: (sLeft ? pair.leftCovered : pair.rightCovered) / Math.max(1, sLeft ? pair.leftTotal : pair.rightTotal),
        cov_original: (sLeft ? pair.rightCovered : pair.leftCovered) / Math.max(1, sLeft ? pair.rightTotal : pair.leftTotal),
      }));
    }
  }
  process.stdout.write(lines.length ? lines.join("\n") + "\n" : "");
  process.stderr.write(`dolos: chunk ${i / chunk + 1}: ${suspects.length} suspects, ${candidates} candidate pairs so far\n`);
}
