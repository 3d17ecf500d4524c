// SDK enums for backends, task types, execution policies and drift modes: both spellings, checked against the spec's lists.
import type { backends, executionPolicies, taskTypes } from '../shared/spec/workload-spec.ts';
import type { onDriftModes } from '../shared/api.ts';

// Each enum is a plain object (so a string literal such as "text2text" is just as good as TaskType.Text2Text)
// plus a same-named union type of its values.

export const Backend = {
  VLLM: 'vllm',
  Vllm: 'vllm',
  VLLM_OMNI: 'vllm-omni',
  VllmOmni: 'vllm-omni',
  SGLANG: 'sglang',
  Sglang: 'sglang',
  OLLAMA: 'ollama',
  Ollama: 'ollama',
} as const;
export type Backend = (typeof Backend)[keyof typeof Backend];

export const TaskType = {
  TEXT2TEXT: 'text2text',
  Text2Text: 'text2text',
  IMAGE2TEXT: 'image2text',
  Image2Text: 'image2text',
  EMBEDDING: 'embedding',
  Embedding: 'embedding',
  TEXT2IMAGE: 'text2image',
  Text2Image: 'text2image',
  IMAGE2IMAGE: 'image2image',
  Image2Image: 'image2image',
  TEXT2AUDIO: 'text2audio',
  Text2Audio: 'text2audio',
  AUDIO2TEXT: 'audio2text',
  Audio2Text: 'audio2text',
  TEXT2VIDEO: 'text2video',
  Text2Video: 'text2video',
  RERANKER: 'reranker',
  Reranker: 'reranker',
  CLASSIFICATION: 'classification',
  Classification: 'classification',
  REWARD: 'reward',
  Reward: 'reward',
  SCORE: 'score',
  Score: 'score',
} as const;
export type TaskType = (typeof TaskType)[keyof typeof TaskType];

export const ExecutionPolicy = {
  FIXED: 'fixed',
  Fixed: 'fixed',
  SCHEDULED: 'scheduled',
  Scheduled: 'scheduled',
  AUTOSCALING: 'autoscaling',
  Autoscaling: 'autoscaling',
} as const;
export type ExecutionPolicy = (typeof ExecutionPolicy)[keyof typeof ExecutionPolicy];

export const OnDrift = {
  RECONCILE: 'reconcile',
  Reconcile: 'reconcile',
  FAIL: 'fail',
  Fail: 'fail',
  IGNORE: 'ignore',
  Ignore: 'ignore',
} as const;
export type OnDrift = (typeof OnDrift)[keyof typeof OnDrift];

// Compile-time guard: each enum holds exactly the values the hub's schemas accept, so a new backend or
// task type added to the spec fails the type check here until the SDK spells it too.
type SameSet<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameValues: [
  SameSet<Backend, (typeof backends)[number]>,
  SameSet<TaskType, (typeof taskTypes)[number]>,
  SameSet<ExecutionPolicy, (typeof executionPolicies)[number]>,
  SameSet<OnDrift, (typeof onDriftModes)[number]>,
] = [true, true, true, true];
void sameValues;
