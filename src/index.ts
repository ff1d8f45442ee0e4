/**
 * mtl's library surface: what a user composes from, each part documented in docs/api.md with a
 * runnable example. Internals (parsers' line machinery, PRNGs, feed-name helpers, row gathers) stay
 * behind their modules; import them from a module path only inside this repository.
 */

// Errors: one type with a code, the place at fault and a hint.
export { MtlError, isMtlError, type ErrorLocation } from "./errors.js";
export { VERSION } from "./version.js";

// The graph builder: ONNX ops as functions named as the ONNX docs name them, shape inference, bytes.
export { type DType, type TypedArray, allocate } from "./graph/dtype.js";
export {
  Graph, Value, Node, tensor, formatShape, DEFAULT_OPSET, MIN_OPSET, MAX_OPSET,
  type Dim, type Shape, type TensorData, type Attribute, type Attributes, type GraphOptions, type AddNodeOptions,
} from "./graph/ir.js";
export * as ops from "./graph/ops.js";
export { encodeGraph, graphFromProto, type ModelOptions } from "./onnx/serialize.js";
export { readModelFile, decodeModel } from "./onnx/proto.js";
export { summarizeModel, type ModelSummary } from "./onnx/summary.js";

// Sessions: one interface whether the model runs on this thread or in a worker.
export { openSession, type ModelSession, type OpenSessionOptions, type RunOptions } from "./runtime/model-session.js";
export { Session, makeTensor, cudaInstalled, type Device, type SessionOptions, type Tensor } from "./runtime/session.js";

// Autodiff and optimizers: the pieces a training step is made of.
export { gradients, stopGradient, registerGradient, hasGradientRule, type GradientOptions, type GradContext, type GradRule } from "./autodiff/index.js";
export { createUpdater, clipByGlobalNorm, OPTIMIZER_KINDS, type OptimizerConfig, type OptimizerKind } from "./optim/index.js";

// Features: the schema, the batch layout and the record encoder (pure TypeScript, shared with the browser).
export {
  validateSchema, parseSchema, toSchemaJson, schemaHash, defaultAliccpSchema,
  type FeatureSchema, type Feature, type IdFeature, type DenseFeature, type FeatureKind, type Pooling, type DenseTransform,
  type SchemaInput, type FeatureSpecInput,
} from "./features/schema.js";
export { defaultLookalikeSchema, LOOKALIKE_USER_FIELDS, LOOKALIKE_AD_FIELDS } from "./features/lookalike.js";
export { layoutOf, type Batch, type BatchTruth, type Layout, type TableLayout } from "./features/batch.js";
export { encodeRecords, RowError, type RawValue, type RawScalar } from "./features/encode.js";

// Data: streaming readers, binary shards, the synthetic funnel.
export { readData, guessFormat } from "./data/open.js";
export { openDataSource, type DataSource, type OpenDataOptions } from "./data/source.js";
export { DATA_FORMATS, type DataFormat, type DataReader, type ReadOptions as DataReadOptions, type ReadStats, type ReadProgress } from "./data/reader.js";
export { ShardWriter, ShardReader, type ShardSummary } from "./data/shard.js";
export { prepareShard, type PrepareOptions, type PrepareResult } from "./data/prepare.js";
export { SynthWorld, synthBatches, writeSynth, type SynthOptions, type SynthBatchOptions, type SynthSummary } from "./data/synth.js";
export { writeLookalikeSynth, LOOKALIKE_FILES, type LookalikeSynthOptions, type LookalikeSynthSummary, type CampaignInfo } from "./data/synth-lookalike.js";

// Models: pure functions from a config to a graph, the registry, and the shared layers to write one.
export { MODELS, getModel, type RegisteredModel } from "./models/index.js";
export { esmm, esmmDefaults, type EsmmConfig } from "./models/esmm.js";
export { escm2, escm2Defaults, type Escm2Config, type CounterfactualMode, type IpwNormalization } from "./models/escm2.js";
export { naive, naiveDefaults, ctrOnly, ctrOnlyDefaults, type NaiveConfig, type CtrOnlyConfig } from "./models/baselines.js";
export { sharedBottomModel, mmoeModel, pleModel, type SharedBottomConfig, type MmoeConfig, type PleConfig } from "./models/multitask.js";
export { aitm, aitmDefaults, type AitmConfig } from "./models/aitm.js";
export { twoTower, type TwoTowerConfig } from "./models/two_tower.js";
export { commonDefaults, type CommonConfig } from "./models/config.js";
export { embedFeatures, embeddedWidth, labelInputs, type EmbeddingOptions } from "./models/inputs.js";
export { batchFeeds, stepFeeds, PREDICTIONS, type FeedTensor, type FeedOptions, type PredictionName, type Scores } from "./models/feeds.js";
export * as layers from "./models/layers.js";
export type { ModelContext, ModelDefinition, ModelOutputs, FloatDType, Init, ParamSpec, TableSpec } from "./train/model.js";

// Training: step and eval programs, the host state, the step driver.
export { buildTrainingStep, buildEvalProgram, buildInferenceGraph, describeModel, type Program, type ProgramSignature, type TrainingOptions, type ProgramOptions } from "./train/program.js";
export { TrainingState, initialState } from "./train/state.js";
export { Trainer, type StepFeeds, type StepResult, type TrainerOptions, type FitOptions } from "./train/trainer.js";

// The run workflow: config, a run directory, evaluation.
export { readRunConfig, parseRunConfig, defaultRunConfig, type RunConfig, type TrainingSettings } from "./flow/config.js";
export { trainRun, type TrainRunOptions, type RunEvent } from "./flow/run.js";
export { loadRun, RUN_FILES, type LoadedRun, type RunManifest, type RunSummary } from "./flow/rundir.js";
export { evaluateRun, type EvalOptions, type EvalResult } from "./flow/evaluate.js";

// Metrics: exact AUC and friends over a whole evaluation set.
export { auc, gauc, logloss, pcoc, rocCurve, calibration } from "./metrics/binary.js";
export { PredictionCollector, type FunnelMetrics } from "./metrics/funnel.js";

// Export and scoring: self-describing models, and the Node scorer a service uses.
export { exportInferenceModel, type InferenceExportOptions, type InferenceExportResult } from "./export/inference.js";
export { exportTrainingArtifacts, type ExportTrainingOptions } from "./export/training.js";
export { Scorer, type ScorerOptions, type ScoringRecord } from "./scoring/scorer.js";
export { readModelInfo, type ModelInfo } from "./scoring/metadata.js";
export { rankCandidates, type RankBy, type ScoredCandidate } from "./serve/ranking.js";
