/** mtl's library surface. */
export { MtlError, isMtlError, type ErrorLocation } from "./errors.js";
export { VERSION } from "./version.js";
export * from "./graph/dtype.js";
export {
  Graph, Value, Node, tensor, tensorBytes, elementCount, formatShape,
  DEFAULT_OPSET, MIN_OPSET, MAX_OPSET,
  type Dim, type Shape, type TensorData, type Attribute, type Attributes, type GraphOptions, type AddNodeOptions,
} from "./graph/ir.js";
export * as ops from "./graph/ops.js";
export { hasShapeRule } from "./graph/infer.js";
export { onnx, encodeModel, decodeModel, readModelFile, toNumber } from "./onnx/proto.js";
export { toModelProto, encodeGraph, graphFromProto, tensorFromProto, type ModelOptions, type ReadOptions } from "./onnx/serialize.js";
export { summarizeModel, type ModelSummary } from "./onnx/summary.js";
export { Session, makeTensor, cudaInstalled, type Device, type SessionOptions, type Tensor } from "./runtime/session.js";
// features: schema, hashing, batch layout, encoder (pure TypeScript, shared with the browser)
export { fnv1a32, fnv1a32Bytes, FNV_OFFSET_BASIS } from "./util/hash.js";
export { hashBucket, hashKey } from "./features/hash.js";
export {
  validateSchema, parseSchema, toSchemaJson, schemaHash, defaultAliccpSchema,
  ALICCP_FIELDS, ALICCP_VOCAB_SIZE, ALICCP_DIM, ALICCP_MAX_LEN, MAX_VOCAB,
  type FeatureSchema, type Feature, type IdFeature, type DenseFeature, type FeatureKind, type Pooling, type DenseTransform,
  type SchemaInput, type FeatureSpecInput,
} from "./features/schema.js";
export {
  layoutOf, BatchBuilder, copyRow,
  type Batch, type BatchTruth, type ReadBlock, type Layout, type TableLayout, type FeatureColumns, type DenseColumns,
} from "./features/batch.js";
export { encodeRecord, encodeRecords, encodeIds, encodeDense, labelOf, RowError, REJECT_REASONS, type RejectReason, type RawValue, type RawScalar } from "./features/encode.js";
// data: readers, shards, batches, synthetic funnel, inspection
export { readData, guessFormat } from "./data/open.js";
export { readAliccp, AliccpLineParser } from "./data/aliccp.js";
export { readCsv, readJsonl, splitCsvLine } from "./data/tabular.js";
export { DATA_FORMATS, totalRejected, type DataFormat, type DataReader, type ReadOptions as DataReadOptions, type ReadStats, type ReadProgress, type RejectCount } from "./data/reader.js";
export { ShardWriter, ShardReader, isShardFile, SHARD_MAGIC, SHARD_VERSION, type ShardSummary } from "./data/shard.js";
export { prepareShard, type PrepareOptions, type PrepareResult } from "./data/prepare.js";
export { shardBatches, rebatch, isValidRow, type BatcherOptions, type SplitPart } from "./data/batcher.js";
export { SynthWorld, SYNTH_PRESETS, synthBatches, writeSynth, formatAliccpRow, formatTruthRow, type SynthOptions, type SynthPresetName, type SynthBatchOptions, type SynthSummary, type SynthRow } from "./data/synth.js";
export { TRUTH_HEADER } from "./data/truth.js";
export { inspectData, formatReport, ID_COUNT_BUCKETS, type DataReport, type FeatureReport, type InspectOptions } from "./data/inspect.js";
export { Rng } from "./util/prng.js";
export { ZipfSampler } from "./data/random.js";
export { openDataSource, parseSynthSpec, type DataSource, type OpenDataOptions } from "./data/source.js";
export {
  gradients, stopGradient, registerGradient, hasGradientRule, registeredGradientOps,
  type GradientOptions, type GradContext, type GradRule,
} from "./autodiff/index.js";
export {
  createUpdater, clipByGlobalNorm, optimizerSlots, resolveOptimizer, OPTIMIZER_KINDS,
  type OptimizerConfig, type OptimizerKind, type ResolvedOptimizer,
} from "./optim/index.js";
export * from "./train/index.js";
export { exportTrainingArtifacts, TRAINING_FILES, type ExportTrainingOptions } from "./export/training.js";
export { twoTower, buildTwoTower, binaryCrossEntropy, ESMM_REFERENCE, type TwoTowerConfig } from "./models/two_tower.js";
export { MODELS, getModel, type RegisteredModel } from "./models/index.js";
export { esmm, buildEsmm, esmmDefaults, type EsmmConfig } from "./models/esmm.js";
export { escm2, buildEscm2, escm2Defaults, inversePropensity, type Escm2Config, type CounterfactualMode, type IpwNormalization } from "./models/escm2.js";
export { naive, naiveDefaults, ctrOnly, ctrOnlyDefaults, type NaiveConfig, type CtrOnlyConfig } from "./models/baselines.js";
export { sharedBottomModel, sharedBottomDefaults, mmoeModel, mmoeDefaults, pleModel, pleDefaults, type SharedBottomConfig, type MmoeConfig, type PleConfig } from "./models/multitask.js";
export { aitm, aitmDefaults, type AitmConfig } from "./models/aitm.js";
export { funnelObjective, separateTowers, sharedBottom, mmoe, ple, type FunnelWeights, type MmoeShape, type PleShape, type TaskProbabilities } from "./models/backbones.js";
export { commonDefaults, validateConfig, type CommonConfig } from "./models/config.js";
export * as layers from "./models/layers.js";
export { parseRunConfig, readRunConfig, applyFlags, applySchemaOverrides, defaultRunConfig, DEFAULT_TRAINING, EARLY_STOPPING_METRICS, type RunConfig, type TrainingSettings } from "./flow/config.js";
export { learningRate, checkSchedule, type LrSchedule } from "./flow/schedule.js";
export { trainRun, evaluatePass, type TrainRunOptions, type RunEvent } from "./flow/run.js";
export { loadRun, RUN_FILES, type LoadedRun, type RunManifest, type RunProgress, type RunSummary } from "./flow/rundir.js";
export { evaluateRun, type EvalOptions, type EvalResult } from "./flow/evaluate.js";
export { trainAndTest, testPass, cellData, chooseLearningRate, BENCHMARK_BUDGET, TEST_STREAM, type BenchmarkCell, type TrainingBudget, type TrainAndTestOptions, type TrainAndTestResult } from "./flow/benchmark.js";
export { runDemo, DEMO_LINEUP, DEMO_WORLD, type DemoOptions, type DemoResult } from "./demo/demo.js";
export { PredictionCollector, METRIC_COLUMNS, TASKS, type FunnelMetrics, type PropensityBin, type FunnelCurves, type Task } from "./metrics/funnel.js";
export { buildReport } from "./report/html.js";
