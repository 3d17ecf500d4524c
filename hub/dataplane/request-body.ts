// Reads what the relay needs from a request body without changing it — except where the hub must: the workload's
// slug used as a model name becomes the model's name, and a stream that asked for no usage asks for it (the hub
// meters tokens; the extra usage chunk is dropped on the way back).
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import { affinityKeyOf } from './balancer.ts';
import { DataPlaneError } from './openai-error.ts';

export interface PreparedBody {
  body: Buffer;
  /** The response is an SSE stream. */
  streamed: boolean;
  /** The hub added stream_options.include_usage: the usage-only chunk is not the client's. */
  injectedUsage: boolean;
  affinityKey: string | undefined;
  /** The `model` the request names (an adapter, the base model), if any. */
  model: string | undefined;
}

const USAGE_ROUTES = new Set(['chat/completions', 'completions']);
/** JSON bodies larger than this are passed through unread (no affinity, no alias, no usage injection). */
const READ_LIMIT = 2 * 1024 * 1024;

export function prepareBody(body: Buffer, contentType: string | undefined, route: string, spec: WorkloadSpec, slug: string): PreparedBody {
  const plain: PreparedBody = { body, streamed: false, injectedUsage: false, affinityKey: undefined, model: undefined };
  if (!/^application\/(.+\+)?json\b/i.test(contentType ?? '') || body.length === 0 || body.length > READ_LIMIT) return plain;
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new DataPlaneError(400, `the body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, 'invalid_request_error', 'invalid_json');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return plain;
  const request = json as Record<string, unknown>;
  let changed = false;
  // The workload's slug is an alias of its model (what DataClient sends when no model is given).
  if (request.model === slug && slug !== spec.model) {
    request.model = spec.model;
    changed = true;
  }
  const streamed = request.stream === true;
  let injectedUsage = false;
  if (streamed && USAGE_ROUTES.has(route)) {
    const options = typeof request.stream_options === 'object' && request.stream_options !== null ? (request.stream_options as Record<string, unknown>) : {};
    if (options.include_usage !== true) {
      request.stream_options = { ...options, include_usage: true };
      injectedUsage = true;
      changed = true;
    }
  }
  return {
    body: changed ? Buffer.from(JSON.stringify(request)) : body,
    streamed,
    injectedUsage,
    affinityKey: affinityKeyOf(request),
    model: typeof request.model === 'string' ? request.model : undefined,
  };
}
