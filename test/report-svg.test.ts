/** The report's SVG charts: data maps into the plot frame, text is escaped, empty data says so. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lineChart, escapeHtml, axisFormat } from "../src/report/svg.js";

test("points map linearly into the frame and the legend names each series", () => {
  const svg = lineChart(
    [{ name: "train <loss>", points: [{ x: 0, y: 0 }, { x: 10, y: 1 }] }, { name: "chance", points: [{ x: 0, y: 1 }, { x: 10, y: 0 }], dashed: true }],
    { title: "Loss & AUC", xLabel: "step", yLabel: "value", width: 200, height: 100, xRange: [0, 10], yRange: [0, 1] },
  );
  // Frame: left 56, right 200-16=184, top 28, bottom 100-44=56.
  assert.match(svg, /points="56\.0,56\.0 184\.0,28\.0"/);
  assert.match(svg, /stroke-dasharray/);
  assert.match(svg, /train &lt;loss&gt;/);
  assert.match(svg, /Loss &amp; AUC/);
  assert.doesNotMatch(svg, /<loss>/);
});

test("a chart without finite data says so instead of drawing NaN", () => {
  const html = lineChart([{ name: "a", points: [{ x: NaN, y: 1 }] }], { title: "t", xLabel: "x", yLabel: "y" });
  assert.match(html, /no data/);
  assert.doesNotMatch(html, /NaN/);
  assert.equal(escapeHtml(`"'&`), "&quot;&#39;&amp;");
});

test("every series is visible: a single point gets a marker, markers: true draws lines with points", () => {
  const svg = lineChart([
    { name: "loss", points: [{ x: 1, y: 0.5 }, { x: 2, y: 0.4 }] },
    { name: "valid loss", points: [{ x: 2, y: 0.45 }] },
  ], { title: "t", xLabel: "step", yLabel: "loss" });
  assert.equal((svg.match(/<polyline[^>]*data-series="loss"/g) ?? []).length, 1);
  assert.equal((svg.match(/<circle[^>]*data-series="valid loss"/g) ?? []).length, 1, "the one-point series is drawn");
  const auc = lineChart([{ name: "ctr_auc", points: [1, 2, 3].map((e) => ({ x: e, y: 0.6 + e / 100 })) }], { title: "a", xLabel: "epoch", yLabel: "AUC", markers: true, xIntegers: true });
  assert.equal((auc.match(/<polyline[^>]*data-series="ctr_auc"/g) ?? []).length, 1);
  assert.equal((auc.match(/<circle[^>]*data-series="ctr_auc"/g) ?? []).length, 3);
  const xTicks = [...auc.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="middle" class="tick">([^<]+)</g)].map((m) => m[1]);
  assert.deepEqual(xTicks, ["1", "2", "3"], "whole epochs only");
});

test("one number format per axis: the step decides the decimals, big numbers get separators, tiny ones one exponent precision", () => {
  const fmt = (ticks: number[]) => ticks.map(axisFormat(ticks));
  assert.deepEqual(fmt([0, 0.2, 0.4, 0.6, 0.8, 1]), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
  assert.deepEqual(fmt([0.0005, 0.001, 0.0015]), ["0.0005", "0.0010", "0.0015"]);
  assert.deepEqual(fmt([0.00001, 0.00002, 0.00003]), ["1e-5", "2e-5", "3e-5"]);
  assert.deepEqual(fmt([0.00010, 0.00015, 0.00020]), ["1.0e-4", "1.5e-4", "2.0e-4"]);
  assert.deepEqual(fmt([0, 5000, 10000, 15000]), ["0", "5,000", "10,000", "15,000"]);
  assert.deepEqual(fmt([0.49, 0.5, 0.51]), ["0.49", "0.50", "0.51"]);
});

test("no label overlaps: the left margin fits the widest y tick label beside the axis label; crowded x labels are thinned", () => {
  const svg = lineChart([{ name: "lr", points: [{ x: 0, y: 0.000123 }, { x: 1_000_000, y: 0.000987 }] }], { title: "lr", xLabel: "step", yLabel: "lr", width: 240, height: 200 });
  const frameLeft = Number(/<rect x="([\d.]+)"/.exec(svg)![1]);
  const yLabels = [...svg.matchAll(/text-anchor="end" class="tick">([^<]+)</g)].map((m) => m[1]!);
  const widest = Math.max(...yLabels.map((l) => l.length * 6.4));
  assert.ok(frameLeft - 6 - widest >= 20, `tick labels end at ${frameLeft - 6} and need ${widest}: clear of the axis label (x ≤ 20)`);
  const xs = [...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" class="tick">([^<]+)</g)].map((m) => ({ x: Number(m[1]), w: m[2]!.length * 6.4 }));
  for (let i = 1; i < xs.length; i++) assert.ok(xs[i]!.x - xs[i - 1]!.x >= (xs[i]!.w + xs[i - 1]!.w) / 2, "x labels do not overlap");
});
