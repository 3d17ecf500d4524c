// Image and audio routes (vLLM-omni / vLLM): images/generations, images/edits, audio/speech, transcriptions, translations.
import { occupySlot } from './generate.ts';
import { audioSeconds, makePcm, makePng, makeWav, parseImageSize } from './media.ts';
import { MultipartError, parseMultipart, type FormData } from './multipart.ts';
import type { ModelCatalog } from './openai-routes.ts';
import type { Ctx, Route } from './server.ts';
import { completionText, countTokens, hash32, hashBytes } from './text.ts';

export function mediaRoutes(catalog: ModelCatalog): Route[] {
  return [
    { method: 'POST', path: '/v1/images/generations', handler: (ctx) => imageGenerations(ctx, catalog), inference: true },
    { method: 'POST', path: '/v1/images/edits', handler: (ctx) => imageEdits(ctx, catalog), inference: true },
    { method: 'POST', path: '/v1/audio/speech', handler: (ctx) => speech(ctx, catalog), inference: true },
    { method: 'POST', path: '/v1/audio/transcriptions', handler: (ctx) => transcribe(ctx, catalog, 'transcribe'), inference: true },
    { method: 'POST', path: '/v1/audio/translations', handler: (ctx) => transcribe(ctx, catalog, 'translate'), inference: true },
  ];
}

async function imageGenerations(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  if (typeof body.prompt !== 'string' || !body.prompt) throw ctx.badRequest('prompt: Field required');
  await sendImages(ctx, model.key, body.prompt, body.n, body.size, '');
}

async function imageEdits(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const form = await readForm(ctx);
  const model = catalog.resolve(form.fields.model);
  const images = form.files.image ?? form.files['image[]'] ?? [];
  if (images.length === 0) throw ctx.badRequest('image: Field required (a file part named "image")');
  const prompt = form.fields.prompt ?? '';
  if (!prompt) throw ctx.badRequest('prompt: Field required');
  const imageKey = images.map((f) => hashBytes(f.data).toString(16)).join(',');
  await sendImages(ctx, model.key, prompt, form.fields.n ? Number(form.fields.n) : 1, form.fields.size, imageKey);
}

async function sendImages(ctx: Ctx, modelKey: string, prompt: string, nRaw: unknown, size: unknown, extra: string): Promise<void> {
  const n = typeof nRaw === 'number' && Number.isInteger(nRaw) && nRaw >= 1 ? Math.min(nRaw, 10) : 1;
  const { width, height } = parseImageSize(size);
  if (!(await occupySlot(ctx, modelKey, prompt, countTokens(prompt)))) return;
  const data = Array.from({ length: n }, (_, i) => ({
    b64_json: makePng(hash32(`${modelKey}\u0000${prompt}\u0000${extra}\u0000${i}`), width, height).toString('base64'),
    url: null,
    revised_prompt: null,
  }));
  ctx.sendJson(200, { created: Math.floor(Date.now() / 1000), data });
}

async function speech(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  if (typeof body.input !== 'string' || !body.input) throw ctx.badRequest('input: Field required');
  const input = body.input;
  if (!(await occupySlot(ctx, model.key, input, countTokens(input)))) return;
  // About 60 ms of audio per word, between 0.1 s and 2 s: small, and longer text gives longer audio.
  const seconds = Math.min(2, Math.max(0.1, input.split(/\s+/).filter(Boolean).length * 0.06));
  const pcm = makePcm(hash32(`${model.key}\u0000${input}\u0000${String(body.voice ?? '')}`), seconds);
  if (body.response_format === 'pcm') return ctx.send(200, pcm, 'audio/pcm');
  ctx.send(200, makeWav(pcm), 'audio/wav');
}

async function transcribe(ctx: Ctx, catalog: ModelCatalog, task: 'transcribe' | 'translate'): Promise<void> {
  const form = await readForm(ctx);
  const model = catalog.resolve(form.fields.model);
  const file = form.files.file?.[0];
  if (!file) throw ctx.badRequest('file: Field required (a file part named "file")');
  const seconds = audioSeconds(file.data);
  const key = `${model.key}\u0000${task}\u0000${hashBytes(file.data).toString(16)}\u0000${form.fields.language ?? ''}`;
  if (!(await occupySlot(ctx, model.key, key, Math.max(1, Math.round(seconds * 25))))) return;
  // 4..15 words, from the upload's size: the same file always gives the same text.
  const text = completionText(key, 4 + (file.data.length % 12));
  const format = form.fields.response_format ?? 'json';
  if (format === 'text') return ctx.send(200, text, 'text/plain; charset=utf-8');
  if (format === 'verbose_json') {
    return ctx.sendJson(200, {
      task,
      language: task === 'translate' ? 'english' : (form.fields.language ?? 'en'),
      duration: seconds,
      text,
      segments: [{ id: 0, seek: 0, start: 0, end: seconds, text, tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: 1, no_speech_prob: 0 }],
    });
  }
  ctx.sendJson(200, { text, usage: { type: 'duration', seconds: Math.ceil(seconds) } });
}

async function readForm(ctx: Ctx): Promise<FormData> {
  const body = await ctx.body();
  try {
    return parseMultipart(body, ctx.req.headers['content-type']);
  } catch (err) {
    if (err instanceof MultipartError) throw ctx.badRequest(err.message);
    throw err;
  }
}
