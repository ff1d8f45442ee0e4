/**
 * A training process for the kill-and-resume test: resumes from <dir>/state.mtlstate when present,
 * trains to step TOTAL with batches determined by the step number, and checkpoints after every step.
 * Runs only when MTL_TRAIN_CHILD names the directory (node --test also loads this file).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { twoTower, type TwoTowerConfig } from "../src/models/two_tower.js";
import { Trainer, TrainingState, buildTrainingStep, describeModel, initialState } from "../src/train/index.js";
import type { OptimizerConfig } from "../src/optim/index.js";
import { makeBatch } from "./batches.js";

export const CHILD_CONFIG: TwoTowerConfig = { vocabSize: 50, embeddingDim: 3, fields: 2, idsPerField: 2, towerSizes: [6, 4], batchNorm: true, dropout: 0.3 };
export const CHILD_OPTIMIZER: OptimizerConfig = { kind: "adamw", weightDecay: 0.01 };
export const CHILD_TOTAL = 12;

export async function trainTo(dir: string, total: number, checkpointEveryStep: boolean): Promise<TrainingState> {
  const path = join(dir, "state.mtlstate");
  const state = existsSync(path) ? TrainingState.load(path) : initialState(describeModel(twoTower, CHILD_CONFIG), CHILD_OPTIMIZER, { seed: 9 });
  const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, CHILD_CONFIG, { optimizer: CHILD_OPTIMIZER }) }, { intraOpThreads: 1 });
  while (state.step < total) {
    await trainer.step(makeBatch(1000 + state.step, 16, CHILD_CONFIG), 0.01 * (1 + (state.step % 3)));
    if (checkpointEveryStep) state.save(path);
    process.stdout.write(`step ${state.step}\n`);
  }
  await trainer.release();
  return state;
}

const dir = process.env["MTL_TRAIN_CHILD"];
if (dir) await trainTo(dir, CHILD_TOTAL, true);
