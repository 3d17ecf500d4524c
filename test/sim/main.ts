// ik-sim: a fast, deterministic stand-in for vLLM / vLLM-omni / SGLang / Ollama servers (tests, demos, benchmarks).
//
// Invocation (argv[0] is the flavour, as the image's entry executables pass it):
//   vllm serve MODEL [--host H] [--port 8000] [--served-model-name N...] [--enable-lora] [--max-loras N] [-tp N] ...
//   vllm-omni serve MODEL ...            (or: vllm serve MODEL ... --omni)
//   sglang --model-path MODEL [--host] [--port 30000] [--served-model-name N] [--tp-size N] [--enable-metrics] ...
//   python3 -m sglang.launch_server ...  (SGLang)   python3 -m vllm.entrypoints.openai.api_server --model M ... (vLLM)
//   ollama serve                         (listens on OLLAMA_HOST, default 127.0.0.1:11434)
// Unknown flags are accepted and ignored. Host defaults to 127.0.0.1 for every flavour.
//
// Knobs (environment):
//   IK_SIM_STARTUP_MS      delay before /health answers 200 and the model is listed (503 / empty list before); default 0
//   IK_SIM_TTFT_MS         time to first token (every inference request waits it); default 0
//   IK_SIM_ITL_MS          inter-token latency, per generated token; default 0
//   IK_SIM_MAX_NUM_SEQS    concurrent sequences; more wait in a FIFO queue (num_requests_waiting). Default: the
//                          backend flag (--max-num-seqs / --max-running-requests; OLLAMA_NUM_PARALLEL) or 256
//   IK_SIM_PREFIX_CACHE    on (default) / off: a prompt whose first 256 chars were seen recently gets 20% of the TTFT
//   IK_SIM_FAIL            comma-separated: crash-after=SECONDS (exit 1 then), http500=RATE (that fraction of
//                          inference requests answer 500, seeded by request count), hang (accept, never answer),
//                          exit-at-start (exit 1 at once with a message), never-ready (/health never 200)
//   IK_SIM_OLLAMA_PULL_MS  total time of an Ollama /api/pull; default 300. Names starting with "missing" fail to pull
//   IK_SIM_OLLAMA_MODELS   comma-separated models the Ollama flavour has already pulled at start
//   IK_SIM_ACCESS_LOG      on (default) / off: one stdout line per request
//   IK_SIM_SEED            seed of the failure draws; default 42
//   IK_SIM_VERSION         version reported by /version and /api/version
//   IK_REPLICA_ID          value of the `x-ik-sim-replica` header on every response; default "sim"
//   VLLM_ALLOW_RUNTIME_LORA_UPDATING  as in vLLM: /v1/load_lora_adapter and /v1/unload_lora_adapter exist only when true
//
// WebSocket: `GET /v1/realtime` (vLLM/SGLang flavours) upgrades and echoes every text and binary message.
//
// Ready signals: vLLM/SGLang `GET /health` 200 (and the model in /v1/models); Ollama `GET /api/version` 200.
import { parseCommand, UsageError, type SimConfig } from './cli.ts';
import { KnobError, parseKnobs, type Knobs } from './knobs.ts';
import { loraRoutes } from './lora.ts';
import { mediaRoutes } from './media-routes.ts';
import { ollamaRoutes } from './ollama-routes.ts';
import { servedModelCatalog, systemRoutes, textRoutes } from './openai-routes.ts';
import { poolingRoutes } from './pooling-routes.ts';
import { attachRealtime } from './realtime.ts';
import { createSimServer, listen, type Route } from './server.ts';
import { createSim, type Sim } from './state.ts';

type Env = Record<string, string | undefined>;

/** Starts the simulator; resolves once it listens. Bad commands, bind failures and injected failures exit the process. */
export async function main(argv: string[], env: Env): Promise<void> {
  let config: SimConfig;
  let knobs: Knobs;
  try {
    config = parseCommand(argv, env);
    knobs = parseKnobs(env);
  } catch (err) {
    if (err instanceof UsageError || err instanceof KnobError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(err instanceof UsageError ? err.exitCode : 2);
    }
    throw err;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  if (knobs.fail.exitAtStart) {
    process.stderr.write(
      config.flavour === 'ollama'
        ? 'Error: simulated failure at start (IK_SIM_FAIL=exit-at-start)\n'
        : 'RuntimeError: Engine core initialization failed (simulated by IK_SIM_FAIL=exit-at-start)\n',
    );
    process.exit(1);
  }

  const sim = createSim(config, knobs, out);
  printBanner(sim);
  const server = createSimServer(sim, routesFor(sim));
  attachRealtime(server, sim);
  let port: number;
  try {
    port = await listen(server, config.host, config.port);
  } catch (err) {
    process.stderr.write(`${bindError(config, err as NodeJS.ErrnoException)}\n`);
    process.exit(1);
  }
  printListening(sim, port);

  if (!knobs.fail.neverReady) {
    const becomeReady = () => {
      sim.ready = true;
      printReady(sim);
    };
    if (knobs.startupMs > 0) setTimeout(becomeReady, knobs.startupMs);
    else becomeReady();
  }
  if (knobs.fail.crashAfterS !== null) {
    setTimeout(() => {
      process.stderr.write(`ERROR: simulated crash (IK_SIM_FAIL=crash-after=${knobs.fail.crashAfterS})\n`);
      process.exit(1);
    }, knobs.fail.crashAfterS * 1000);
  }
  const shutdown = () => {
    if (config.flavour !== 'ollama') {
      out('INFO:     Shutting down');
      out('INFO:     Waiting for application shutdown.');
      out('INFO:     Application shutdown complete.');
      out(`INFO:     Finished server process [${process.pid}]`);
    }
    sim.engine.abortWaiting();
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

function routesFor(sim: Sim): Route[] {
  if (sim.config.flavour === 'ollama') return ollamaRoutes(sim);
  const catalog = servedModelCatalog(sim);
  return [...systemRoutes(sim, catalog), ...textRoutes(catalog), ...poolingRoutes(catalog), ...mediaRoutes(catalog), ...loraRoutes(sim)];
}

function printBanner(sim: Sim): void {
  const { config } = sim;
  const t = logStamp();
  if (config.flavour === 'vllm' || config.flavour === 'vllm-omni') {
    sim.log(`INFO ${t} [api_server.py] vLLM API server version ${sim.version} (ik-sim${config.flavour === 'vllm-omni' ? ', omni' : ''})`);
    sim.log(
      `INFO ${t} [api_server.py] args: model='${config.model}', served_model_name=${JSON.stringify(config.servedNames)}, ` +
        `host='${config.host}', port=${config.port}, tensor_parallel_size=${config.tensorParallelSize}, ` +
        `max_model_len=${config.maxModelLen}, enable_lora=${config.enableLora}, max_loras=${config.maxLoras}`,
    );
  } else if (config.flavour === 'sglang') {
    sim.log(
      `[${isoStamp()}] server_args=ServerArgs(model_path='${config.model}', served_model_name='${config.servedNames[0]}', ` +
        `host='${config.host}', port=${config.port}, tp_size=${config.tensorParallelSize}, enable_metrics=${config.enableMetrics}) (ik-sim)`,
    );
  }
}

function printListening(sim: Sim, port: number): void {
  const { config } = sim;
  if (config.flavour === 'ollama') {
    sim.log(`time=${new Date().toISOString()} level=INFO source=routes.go:1259 msg="Listening on ${hostPort(config.host, port)} (version ${sim.version})"`);
    return;
  }
  sim.log(`INFO:     Started server process [${process.pid}]`);
  sim.log('INFO:     Waiting for application startup.');
  sim.log(`INFO:     Uvicorn running on http://${hostPort(config.host, port)} (Press CTRL+C to quit)`);
}

function printReady(sim: Sim): void {
  if (sim.config.flavour === 'ollama') {
    sim.log(`time=${new Date().toISOString()} level=INFO source=routes.go msg="ready" (ik-sim)`);
    return;
  }
  sim.log('INFO:     Application startup complete.');
  if (sim.config.flavour === 'sglang') sim.log(`[${isoStamp()}] The server is fired up and ready to roll!`);
}

/** uvicorn's wording ("[Errno 98] ... address already in use"), or Go's for Ollama; both say "address already in use". */
function bindError(config: SimConfig, err: NodeJS.ErrnoException): string {
  const reasons: Record<string, [number, string]> = {
    EADDRINUSE: [98, 'address already in use'],
    EADDRNOTAVAIL: [99, 'cannot assign requested address'],
    EACCES: [13, 'permission denied'],
  };
  const [errno, reason] = reasons[err.code ?? ''] ?? [0, err.message];
  if (config.flavour === 'ollama') return `Error: listen tcp ${hostPort(config.host, config.port)}: bind: ${reason}`;
  return `ERROR:    [Errno ${errno}] error while attempting to bind on address ('${config.host}', ${config.port}): ${reason}`;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function logStamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function isoStamp(): string {
  return new Date().toISOString().replace('T', ' ').slice(0, 19);
}
