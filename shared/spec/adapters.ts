// Which workloads can serve LoRA adapters, and the rules for an adapter's name and source (DESIGN §3, §4.3).
import { z } from 'zod';
import type { Backend, TaskType } from './backends.ts';

/** Task types whose models take runtime LoRA adapters: generation and reranker-like scoring. */
export const adapterTaskTypes = ['text2text', 'classification', 'reranker', 'score'] as const satisfies readonly TaskType[];
/** Backends with a runtime load/unload API for adapters. */
export const adapterBackends = ['vllm', 'sglang'] as const satisfies readonly Backend[];
export type AdapterBackend = (typeof adapterBackends)[number];

export function taskTakesAdapters(taskType: TaskType): boolean {
  return (adapterTaskTypes as readonly TaskType[]).includes(taskType);
}

export function isAdapterBackend(backend: Backend): backend is AdapterBackend {
  return (adapterBackends as readonly Backend[]).includes(backend);
}

/** Why a workload of this backend and task type cannot serve adapters, in words; null when it can. */
export function adapterSupportProblem(spec: { backend: Backend; task_type: TaskType }): string | null {
  if (isAdapterBackend(spec.backend) && taskTakesAdapters(spec.task_type)) return null;
  return (
    `workload serves ${spec.task_type} on ${spec.backend}, which cannot load adapters: adapters work on task types ` +
    `${adapterTaskTypes.join(', ')} with backends ${adapterBackends.join(' or ')}`
  );
}

/** The name clients put in the request's `model` field. */
export const adapterNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an adapter name is 1–64 letters, digits, ".", "_" and "-", starting with a letter or digit');

/** Where the backend loads the adapter from: a Hugging Face repo id or a path on the worker. */
export const adapterSourceSchema = z
  .string()
  .min(1, 'source is empty: give a Hugging Face repo id (org/sql-lora) or a path on the worker (/models/loras/sql)')
  .max(1024, 'source is longer than 1024 characters')
  .regex(/^[^\x00-\x1f\x7f]*$/, 'source must not contain control characters (newlines, tabs…)')
  .refine((s) => s.trim() === s, 'source must not start or end with spaces');
