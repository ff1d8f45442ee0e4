// The adaptation page: bundle, seeds and candidates from the query string; the result as JSON in
// #result (data-state=adapted), which the browser test reads.
import { WebAdaptation } from "mtl-onnx/web";

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);

async function jsonl(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  return (await res.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function main() {
  const adaptation = await WebAdaptation.load(q.get("bundle") ?? "bundle/");
  const [seeds, candidates] = await Promise.all([jsonl(q.get("seeds") ?? "seeds.jsonl"), jsonl(q.get("candidates") ?? "candidates.jsonl")]);
  $("status").textContent = `adapting on ${seeds.length} seed rows…`;
  const r = await adaptation.adaptAndScore(seeds, candidates);
  $("status").textContent = `adapted in ${r.adaptMs.toFixed(0)} ms (${r.plan.epochs} epochs, lr ${r.plan.lr}), scored ${candidates.length} candidates in ${r.scoreMs.toFixed(0)} ms`;
  $("result").textContent = JSON.stringify({ scores: Array.from(r.scores), epochLosses: r.epochLosses, adaptMs: r.adaptMs, scoreMs: r.scoreMs, seeds: seeds.length });
  document.body.dataset.state = "adapted";
  await adaptation.release();
}

main().catch((err) => {
  $("error").textContent = err && typeof err.format === "function" ? err.format() : String(err && err.message ? err.message : err);
  $("error").hidden = false;
  document.body.dataset.state = "error";
});
