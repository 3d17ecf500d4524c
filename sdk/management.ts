// ManagementClient: the admin API (/api/v1) from TypeScript — ensure() workloads, lifecycle, data keys, adapters, projects, tokens.
import { z } from 'zod';
import {
  adapterViewSchema,
  controlTokenCreatedSchema,
  controlTokenViewSchema,
  dataKeyCreatedSchema,
  dataKeyViewSchema,
  ENSURE_OUTCOME_HEADER,
  listOf,
  projectViewSchema,
  workloadViewSchema,
} from '../shared/api.ts';
import type { WorkloadSpecInput as WireWorkloadSpecInput } from '../shared/spec/workload-spec.ts';
import { toCamelKeys, toSnakeKeys, type Camelize } from './case.ts';
import type { OnDrift } from './enums.ts';
import { callHub, expectShape, type HttpCall } from './errors.ts';

const ensureOutcomeSchema = z.enum(['created', 'unchanged', 'reconciled', 'ignored']);

/** What `ensure()` takes: the WorkloadSpec in camelCase (`taskType`, `executionPolicyConfig.maxWorkers`); `env` as given. */
export type WorkloadSpecInput = Camelize<WireWorkloadSpecInput>;

/** A workload as the hub shows it, in camelCase: its normalized spec (env values masked) plus state, generation, replicas. */
export type WorkloadView = Camelize<z.output<typeof workloadViewSchema>>;

export type ProjectInfo = Camelize<z.output<typeof projectViewSchema>>;
export type ControlTokenInfo = Camelize<z.output<typeof controlTokenViewSchema>>;
export type CreatedControlToken = Camelize<z.output<typeof controlTokenCreatedSchema>>;
export type DataKeyInfo = Camelize<z.output<typeof dataKeyViewSchema>>;
export type CreatedDataKey = Camelize<z.output<typeof dataKeyCreatedSchema>>;
/** A LoRA adapter on a workload: requests whose `model` is `name` use it. */
export type AdapterInfo = Camelize<z.output<typeof adapterViewSchema>>;

export interface EnsureResult {
  projectSlug: string;
  workloadSlug: string;
  generation: number;
  /** True when this call created the workload (HTTP 201); false when it existed (unchanged, reconciled or ignored). */
  created: boolean;
  /** What the call did: `created`, `unchanged`, `reconciled` (a new generation) or `ignored` (drift kept out). */
  outcome: 'created' | 'unchanged' | 'reconciled' | 'ignored';
  /** The workload as the hub shows it after the call. */
  workload: WorkloadView;
}

export interface ManagementClientOptions {
  /** Base URL of the hub, e.g. `http://127.0.0.1:8080`. */
  hubUrl: string;
  /** A control token (`ik_sdk_…`): the hub's admin token or one scoped to the project. */
  token: string;
  /** The project every call acts on; default `default`. */
  project?: string;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
}

export interface ManagementFromEnvOptions {
  /** Default: IK_PROJECT, then `default`. */
  project?: string;
  /** Default: IK_HUB_URL. */
  hubUrl?: string;
  /** Default: IK_TOKEN. */
  token?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class ManagementClient {
  readonly hubUrl: string;
  readonly project: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(options: ManagementClientOptions) {
    this.hubUrl = normalizeHubUrl(options.hubUrl, 'hubUrl');
    if (!options.token) throw new Error('ManagementClient needs a control token (ik_sdk_…): pass `token` or set IK_TOKEN');
    this.#token = options.token;
    this.project = options.project || 'default';
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Reads IK_HUB_URL, IK_TOKEN and IK_PROJECT; options given here win over the environment. */
  static fromEnv(options: ManagementFromEnvOptions = {}): ManagementClient {
    const hubUrl = options.hubUrl || process.env.IK_HUB_URL;
    if (!hubUrl) throw new Error('IK_HUB_URL is not set: set it to the hub URL (e.g. http://127.0.0.1:8080) or pass { hubUrl }');
    normalizeHubUrl(hubUrl, options.hubUrl ? 'hubUrl' : 'IK_HUB_URL');
    const token = options.token || process.env.IK_TOKEN;
    if (!token) throw new Error('IK_TOKEN is not set: set it to a control token (ik_sdk_…) or pass { token }');
    return new ManagementClient({
      hubUrl,
      token,
      project: options.project || process.env.IK_PROJECT || 'default',
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  }

  /**
   * Creates the workload, or brings it to this spec (idempotent by slug). On drift from the stored spec:
   * `reconcile` (default) applies it and bumps the generation, `fail` throws WorkloadDriftError, `ignore` keeps the stored one.
   */
  async ensure(spec: WorkloadSpecInput, options: { onDrift?: OnDrift } = {}): Promise<EnsureResult> {
    if (typeof spec.slug !== 'string' || spec.slug === '') throw new Error('ensure() needs the spec\'s slug');
    const query = options.onDrift === undefined ? '' : `?on_drift=${encodeURIComponent(options.onDrift)}`;
    const res = await this.#call('PUT', `${this.#workloadPath(spec.slug)}${query}`, toSnakeKeys(spec));
    const workload = parseWorkloadView(res.body);
    const outcome = ensureOutcomeSchema.catch(res.status === 201 ? 'created' : 'unchanged').parse(res.headers.get(ENSURE_OUTCOME_HEADER));
    return { projectSlug: workload.project, workloadSlug: workload.slug, generation: workload.generation, created: res.status === 201, outcome, workload };
  }

  async listWorkloads(): Promise<WorkloadView[]> {
    const res = await this.#call('GET', `${this.#projectPath()}/workloads`);
    return expectShape(listOf(workloadViewSchema), res.body, 'workload list').items.map(camel);
  }

  async getWorkload(slug: string): Promise<WorkloadView> {
    return parseWorkloadView((await this.#call('GET', this.#workloadPath(slug))).body);
  }

  /** Deletes the workload: its replicas are drained and stopped, its data keys stop working. */
  async deleteWorkload(slug: string): Promise<void> {
    await this.#call('DELETE', this.#workloadPath(slug));
  }

  async activate(slug: string): Promise<WorkloadView> {
    return parseWorkloadView((await this.#call('POST', `${this.#workloadPath(slug)}/activate`)).body);
  }

  async deactivate(slug: string): Promise<WorkloadView> {
    return parseWorkloadView((await this.#call('POST', `${this.#workloadPath(slug)}/deactivate`)).body);
  }

  /** Creates a data key (`ik_live_…`) for the workload's endpoint; `secret` is shown only in this result. */
  async createKey(slug: string, options: { name?: string; rateLimitPerMinute?: number; expiresInS?: number } = {}): Promise<CreatedDataKey> {
    const res = await this.#call('POST', `${this.#workloadPath(slug)}/keys`, toSnakeKeys(options));
    return camel(expectShape(dataKeyCreatedSchema, res.body, 'data key'));
  }

  async listKeys(slug: string): Promise<DataKeyInfo[]> {
    const res = await this.#call('GET', `${this.#workloadPath(slug)}/keys`);
    return expectShape(listOf(dataKeyViewSchema), res.body, 'key list').items.map(camel);
  }

  /** Revokes a data key by id; answers the key as it now stands (`revokedAt` set). */
  async revokeKey(slug: string, id: string): Promise<DataKeyInfo> {
    const res = await this.#call('DELETE', `${this.#workloadPath(slug)}/keys/${encodeURIComponent(id)}`);
    return camel(expectShape(dataKeyViewSchema, res.body, 'data key'));
  }

  /** The workload's LoRA adapters, by name. */
  async listAdapters(slug: string): Promise<AdapterInfo[]> {
    const res = await this.#call('GET', `${this.#workloadPath(slug)}/adapters`);
    return expectShape(listOf(adapterViewSchema), res.body, 'adapter list').items.map(camel);
  }

  /**
   * Deploys a LoRA adapter on the workload's replicas, or points it at a new source (idempotent by name); requests
   * whose `model` is `name` use it. `source`: a Hugging Face repo id (`org/sql-lora`) or a path on the worker.
   */
  async putAdapter(slug: string, name: string, source: string): Promise<AdapterInfo> {
    const res = await this.#call('PUT', `${this.#workloadPath(slug)}/adapters/${encodeURIComponent(name)}`, { source });
    return camel(expectShape(adapterViewSchema, res.body, 'adapter'));
  }

  /** Removes an adapter: the workload's replicas unload it. */
  async deleteAdapter(slug: string, name: string): Promise<void> {
    await this.#call('DELETE', `${this.#workloadPath(slug)}/adapters/${encodeURIComponent(name)}`);
  }

  /** The projects this token sees (a project token sees its own). */
  async listProjects(): Promise<ProjectInfo[]> {
    const res = await this.#call('GET', '/api/v1/projects');
    return expectShape(listOf(projectViewSchema), res.body, 'project list').items.map(camel);
  }

  /** Creates a project (needs the hub's admin token). */
  async createProject(options: { slug: string; name?: string }): Promise<ProjectInfo> {
    const res = await this.#call('POST', '/api/v1/projects', options);
    return camel(expectShape(projectViewSchema, res.body, 'project'));
  }

  /** Creates a control token scoped to this client's project; `secret` is shown only in this result. */
  async createToken(options: { name?: string; expiresInS?: number } = {}): Promise<CreatedControlToken> {
    const res = await this.#call('POST', `${this.#projectPath()}/tokens`, toSnakeKeys(options));
    return camel(expectShape(controlTokenCreatedSchema, res.body, 'control token'));
  }

  async listTokens(): Promise<ControlTokenInfo[]> {
    const res = await this.#call('GET', `${this.#projectPath()}/tokens`);
    return expectShape(listOf(controlTokenViewSchema), res.body, 'token list').items.map(camel);
  }

  async revokeToken(id: string): Promise<ControlTokenInfo> {
    const res = await this.#call('DELETE', `${this.#projectPath()}/tokens/${encodeURIComponent(id)}`);
    return camel(expectShape(controlTokenViewSchema, res.body, 'control token'));
  }

  #projectPath(): string {
    return `/api/v1/projects/${encodeURIComponent(this.project)}`;
  }

  #workloadPath(slug: string): string {
    return `${this.#projectPath()}/workloads/${encodeURIComponent(slug)}`;
  }

  #call(method: HttpCall['method'], path: string, body?: unknown) {
    return callHub({ method, url: `${this.hubUrl}${path}`, token: this.#token, body, timeoutMs: this.#timeoutMs });
  }
}

function parseWorkloadView(body: unknown): WorkloadView {
  return camel(expectShape(workloadViewSchema, body, 'workload'));
}

/** A validated wire record in camelCase; the renaming is mechanical, so its type follows from the schema's. */
function camel<T>(wire: T): Camelize<T> {
  return toCamelKeys(wire) as Camelize<T>;
}

/** The hub URL without a trailing slash; a value that is not an http(s) URL is refused with the setting's name. */
export function normalizeHubUrl(value: string, setting: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${setting} is not a URL: ${JSON.stringify(value)} (expected e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${setting} must be an http(s) URL, got ${JSON.stringify(value)}`);
  return value.replace(/\/+$/, '');
}
