// The public TypeScript SDK, imported as "ikhub": management (admin API), data plane calls, enums and typed errors.
export { ManagementClient } from './management.ts';
export type {
  AdapterInfo,
  ControlTokenInfo,
  CreatedControlToken,
  CreatedDataKey,
  DataKeyInfo,
  EnsureResult,
  ManagementClientOptions,
  ManagementFromEnvOptions,
  ProjectInfo,
  WorkloadSpecInput,
  WorkloadView,
} from './management.ts';
export { DataClient, Endpoint } from './data.ts';
export type {
  ChatMessage,
  ChatRole,
  DataClientOptions,
  DataFromEnvOptions,
  EmbedOptions,
  EmbedResult,
  EndpointOptions,
  GenerateTextOptions,
  GenerateTextResult,
} from './data.ts';
export { Backend, ExecutionPolicy, OnDrift, TaskType } from './enums.ts';
export {
  AuthenticationError,
  HubUnreachableError,
  IkHubError,
  NotFoundError,
  RateLimitError,
  WorkloadDriftError,
  WorkloadSpecInvalidError,
} from './errors.ts';
export type { IkHubErrorDetail } from './errors.ts';
export type { Camelize } from './case.ts';
