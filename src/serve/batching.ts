/**
 * Micro-batching in front of one model: up to one run per session of the scorer at a time
 * (ScorerOptions.sessions), each taking every request queued while the runs before it went on (no
 * fixed delay to wait out), up to a row limit per run. With one session that is one run at a time.
 *
 * Isolation: requests are validated against the model before they queue (the encoder checks ids
 * against the schema, and the server refuses a model whose schema and tables disagree), but should a
 * run still fail, each of its requests is run again on its own: only the one at fault fails.
 */
import { concatBatches, type Batch } from "../features/batch.js";
import type { Scores } from "../models/feeds.js";
import type { Scorer } from "../scoring/scorer.js";

/** One request's rows waiting for a run; `cancelled` (a timed-out request) drops it from the queue. */
export interface Job {
  readonly batch: Batch;
  resolve(s: Scores): void;
  reject(e: Error): void;
  cancelled: boolean;
}

/** One model and the queue in front of its session. */
export class ModelSlot {
  private readonly queue: Job[] = [];
  /** Session runs and rows scored (micro-batching: runs ≤ requests). */
  runs = 0;
  rows = 0;
  /** Runs going on now (at most the scorer's sessions). */
  private active = 0;
  /** drain() callers waiting for the queue to empty and the last run to end. */
  private readonly idle: (() => void)[] = [];

  constructor(readonly scorer: Scorer, readonly loadedAt: Date, private readonly maxRows: number) {}

  /** Queues a batch; the promise resolves with its rows' scores. */
  score(batch: Batch): { promise: Promise<Scores>; job: Job } {
    let job!: Job;
    const promise = new Promise<Scores>((resolve, reject) => {
      job = { batch, resolve, reject, cancelled: false };
    });
    this.queue.push(job);
    this.dispatch();
    return { promise, job };
  }

  /** Starts runs while a session is free and jobs wait; each run takes what queued up to maxRows. */
  private dispatch(): void {
    while (this.active < this.scorer.sessionCount && this.queue.length) {
      const jobs: Job[] = [];
      let rows = 0;
      while (this.queue.length && (jobs.length === 0 || rows + this.queue[0]!.batch.size <= this.maxRows)) {
        const j = this.queue.shift()!;
        if (j.cancelled) continue;
        jobs.push(j);
        rows += j.batch.size;
      }
      if (!jobs.length) continue;
      this.active++;
      void this.run(jobs, rows)
        .catch((err: unknown) => {
          for (const j of jobs) j.reject(err as Error);
        })
        .finally(() => {
          this.active--;
          this.dispatch();
          if (this.active === 0 && !this.queue.length) for (const wake of this.idle.splice(0)) wake();
        });
    }
  }

  /** One session run for `jobs`; if it fails with more than one job, each runs alone. */
  private async run(jobs: readonly Job[], rows: number): Promise<void> {
    let s: Scores;
    try {
      this.runs++;
      this.rows += rows;
      s = await this.scorer.score(jobs.length === 1 ? jobs[0]!.batch : concatBatches(this.scorer.info.layout, jobs.map((j) => j.batch)));
    } catch (err) {
      if (jobs.length === 1) jobs[0]!.reject(err as Error);
      else for (const j of jobs) if (!j.cancelled) await this.run([j], j.batch.size);
      return;
    }
    let at = 0;
    for (const j of jobs) {
      const n = j.batch.size;
      j.resolve({ p_ctr: s.p_ctr.subarray(at, at + n), p_cvr: s.p_cvr.subarray(at, at + n), p_ctcvr: s.p_ctcvr.subarray(at, at + n) });
      at += n;
    }
  }

  /** Resolves when every queued job has been scored. */
  async drain(): Promise<void> {
    while (this.active > 0 || this.queue.length) await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}
