/**
 * Ranking formulas for `mtl serve --rank-formula`: arithmetic over the predictions (`p_ctr`,
 * `p_cvr`, `p_ctcvr`) and numeric candidate fields, e.g. `p_ctcvr * bid` (expected revenue per
 * impression) or `p_ctr^0.5 * p_cvr^2`. Grammar: expr = term (("+" | "-") term)*;
 * term = power (("*" | "/") power)*; power = unary ("^" unary)?; unary = "-" unary | number | name | "(" expr ")".
 * Parsed once at startup into a closure; never eval'd.
 */
import { MtlError } from "../errors.js";

export type FormulaValues = (name: string) => number;

export interface RankFormula {
  readonly text: string;
  /** Names other than the predictions: numeric fields each candidate must carry. */
  readonly fields: readonly string[];
  evaluate(values: FormulaValues): number;
}

const PREDICTION_NAMES = new Set(["p_ctr", "p_cvr", "p_ctcvr"]);

export function parseFormula(text: string): RankFormula {
  const tokens = text.match(/\s*([A-Za-z_][A-Za-z0-9_.]*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+|[-+*/^()]|\S)/g) ?? [];
  const toks = tokens.map((t) => t.trim());
  let i = 0;
  const fields = new Set<string>();
  const fail = (msg: string): never => {
    throw new MtlError("E_USAGE", `rank formula '${text}': ${msg}`, { where: { field: "rank-formula" }, hint: "e.g. p_ctcvr * bid, or p_ctr^0.5 * p_cvr" });
  };
  type F = (v: FormulaValues) => number;
  const expr = (): F => {
    let left = term();
    while (toks[i] === "+" || toks[i] === "-") {
      const op = toks[i++];
      const l = left, r = term();
      left = op === "+" ? (v) => l(v) + r(v) : (v) => l(v) - r(v);
    }
    return left;
  };
  const term = (): F => {
    let left = power();
    while (toks[i] === "*" || toks[i] === "/") {
      const op = toks[i++];
      const l = left, r = power();
      left = op === "*" ? (v) => l(v) * r(v) : (v) => l(v) / r(v);
    }
    return left;
  };
  const power = (): F => {
    const base = unary();
    if (toks[i] !== "^") return base;
    i++;
    const exp = unary();
    return (v) => Math.pow(base(v), exp(v));
  };
  const unary = (): F => {
    const t = toks[i++];
    if (t === undefined) return fail("ends too early");
    if (t === "-") {
      const x = unary();
      return (v) => -x(v);
    }
    if (t === "(") {
      const x = expr();
      if (toks[i++] !== ")") fail("a '(' is not closed");
      return x;
    }
    if (/^(\d|\.\d)/.test(t)) {
      const n = Number(t);
      if (!Number.isFinite(n)) fail(`bad number '${t}'`);
      return () => n;
    }
    if (/^[A-Za-z_]/.test(t)) {
      if (!PREDICTION_NAMES.has(t)) fields.add(t);
      return (v) => v(t);
    }
    return fail(`unexpected '${t}'`);
  };
  if (toks.length === 0) fail("it is empty");
  const f = expr();
  if (i < toks.length) fail(`unexpected '${toks[i]}'`);
  return { text, fields: [...fields], evaluate: f };
}
