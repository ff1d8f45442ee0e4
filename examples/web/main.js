// The example page: load an exported mtl model, rank candidates for a context, show the scores.
import { WebScorer } from "mtl-onnx/web";

const $ = (id) => document.getElementById(id);
let scorer = null;

function setState(state) {
  document.body.dataset.state = state;
}

function showError(err) {
  const box = $("error");
  box.textContent = err && typeof err.format === "function" ? err.format() : String(err && err.message ? err.message : err);
  box.hidden = false;
  setState("error");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

/** Example values for a schema's features, so a freshly loaded model can be tried at once. */
function exampleRecords(schema) {
  const value = (f, k) => {
    if (f.kind === "dense") return f.size > 1 ? Array.from({ length: f.size }, (_, i) => i + k) : 10 + 7 * k;
    const id = (j) => (f.hash_buckets ? `${f.name}-${j}` : 1 + (j % Math.max(1, f.vocab_size - 1)));
    return f.kind === "id" ? id(k) : [id(k), id(k + 1)];
  };
  const context = {}, candidates = [];
  // Guess where item features start: at the first feature sharing a table with an earlier one
  // (e.g. `item` after the user's `recent_items`); else halfway.
  const seen = new Set();
  let split = schema.features.findIndex((f) => {
    if (f.kind === "dense") return false;
    const shared = seen.has(f.table);
    seen.add(f.table);
    return shared;
  });
  if (split <= 0) split = Math.ceil(schema.features.length / 2);
  const contextual = (f, i) => i < split && f.kind !== "dense";
  schema.features.forEach((f, i) => { if (contextual(f, i)) context[f.source] = value(f, 1); });
  for (let k = 0; k < 5; k++) {
    const c = {};
    schema.features.forEach((f, i) => {
      if (contextual(f, i)) return;
      c[f.source] = value(f, k + 2);
      if (f.kind === "weighted_ids") c[f.weight_source] = [1, 0.5];
    });
    candidates.push(c);
  }
  return { context, candidates };
}

async function load(source, name) {
  clearError();
  setState("loading");
  $("rank").disabled = true;
  $("results").hidden = true;
  try {
    const next = await WebScorer.load(source, { device: $("device").value, source: name });
    if (scorer) await scorer.release();
    scorer = next;
  } catch (err) {
    scorer = null;
    $("model-info").textContent = "No model loaded.";
    showError(err);
    return;
  }
  const { info } = scorer;
  const summary = info.summary ? ` · trained: ${JSON.stringify(info.summary).slice(0, 160)}` : " · freshly initialised (no training summary)";
  $("model-info").textContent = `${name}: ${info.model} (mtl ${info.version}) on ${scorer.device} · ${info.schema.features.length} features: ${info.schema.features.map((f) => f.name).join(", ")}${summary}`;
  if (!$("candidates").value.trim()) {
    const { context, candidates } = exampleRecords(info.metadata["mtl.schema"] ? JSON.parse(info.metadata["mtl.schema"]) : { features: [] });
    $("context").value = JSON.stringify(context, null, 1);
    $("candidates").value = JSON.stringify(candidates, null, 1);
  }
  $("rank").disabled = false;
  setState("ready");
}

async function rank() {
  clearError();
  if (!scorer) return;
  let context, candidates;
  try {
    context = JSON.parse($("context").value || "{}");
    candidates = JSON.parse($("candidates").value);
    if (!Array.isArray(candidates)) throw new Error("candidates must be a JSON list of objects");
  } catch (err) {
    showError(`invalid JSON: ${err.message}`);
    return;
  }
  let ranked;
  try {
    ranked = await scorer.rank(context, candidates);
  } catch (err) {
    showError(err);
    return;
  }
  const body = $("results").querySelector("tbody");
  body.replaceChildren();
  const top = ranked.length ? ranked[0].p_ctcvr : 1;
  ranked.forEach((r, pos) => {
    const tr = document.createElement("tr");
    tr.dataset.index = String(r.index);
    tr.dataset.pCtr = String(r.p_ctr);
    tr.dataset.pCvr = String(r.p_cvr);
    tr.dataset.pCtcvr = String(r.p_ctcvr);
    const cells = [String(pos + 1), JSON.stringify(candidates[r.index]).slice(0, 80), r.p_ctr.toFixed(4), r.p_cvr.toFixed(4), r.p_ctcvr.toFixed(5)];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    const bar = document.createElement("td");
    const span = document.createElement("span");
    span.className = "bar";
    span.style.width = `${Math.round(120 * (top > 0 ? r.p_ctcvr / top : 0))}px`;
    bar.append(span);
    tr.append(bar);
    body.append(tr);
  });
  $("results").hidden = false;
  setState("ranked");
}

$("model-file").addEventListener("change", async (e) => {
  const file = e.target.files && e.target.files[0];
  if (file) await load(new Uint8Array(await file.arrayBuffer()), file.name);
});
$("rank").addEventListener("click", () => void rank());

const params = new URLSearchParams(location.search);
if (params.get("device")) $("device").value = params.get("device");
if (params.get("model")) void load(params.get("model"), params.get("model"));
