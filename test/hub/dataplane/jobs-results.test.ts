// What a job run's outcome means (result, retry, failure) and how a polled job looks on the wire.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendErrorMessage, decideRun, finalError, renderJob, resultEncoding, retryDelayMs } from '../../../hub/dataplane/jobs-results.ts';
import type { JobView } from '../../../hub/store/jobs.ts';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('job run outcomes', () => {
  it('a 2xx answer is the result; JSON stays JSON, anything else is base64', () => {
    const d = decideRun({ kind: 'response', status: 200, contentType: 'application/json', body: json({ results: [] }) });
    assert.equal(d.action, 'succeed');
    assert.equal(d.action === 'succeed' && d.result.encoding, 'json');
    assert.equal(resultEncoding('audio/wav', Buffer.from('RIFF')), 'base64');
    assert.equal(resultEncoding('application/json', Buffer.from('{not json')), 'base64');
    assert.equal(resultEncoding('application/json; charset=utf-8', json([1])), 'json');
  });

  it('a backend 4xx fails the job at once with the backend message; a 5xx, 429 or a broken relay is retried', () => {
    const bad = decideRun({ kind: 'response', status: 400, contentType: 'application/json', body: json({ error: { message: 'query: Field required', type: 'BadRequestError', code: 400 } }) });
    assert.deepEqual(bad, {
      action: 'fail',
      error: { message: 'the backend answered 400: query: Field required', type: 'invalid_request_error', code: 'backend_error' },
      resultStatus: 400,
    });
    const sick = decideRun({ kind: 'response', status: 500, contentType: 'application/json', body: json({ message: 'boom' }) });
    assert.equal(sick.action, 'retry');
    assert.equal(sick.action === 'retry' && sick.error.message, 'the backend answered 500: boom');
    assert.equal(decideRun({ kind: 'response', status: 429, contentType: 'text/plain', body: Buffer.from('busy') }).action, 'retry');
    assert.equal(decideRun({ kind: 'broken', reason: 'rep_a: stream reset', beforeResponse: false }).action, 'retry');
    assert.equal(decideRun({ kind: 'timeout', afterMs: 600_000 }).action, 'retry');
    assert.equal(decideRun({ kind: 'too_large', status: 200, limitBytes: 10 }).action, 'fail');
  });

  it('backs off 1 s, 2 s, 4 s … up to 30 s, and the last error says how many attempts were made', () => {
    assert.deepEqual([1, 2, 3, 10].map(retryDelayMs), [1000, 2000, 4000, 30_000]);
    assert.equal(finalError({ message: 'x', type: 'api_error', code: 'replica_failed' }, 3).message, 'gave up after 3 attempts: x');
  });
});

describe('a polled job', () => {
  const base: JobView = {
    id: 'job_abc',
    workload_id: 'wl_1',
    status: 'queued',
    result_content_type: null,
    result_encoding: null,
    result_body: null,
    error: null,
    created_at: '2026-11-23T09:00:00.000Z',
    completed_at: null,
  };

  it('queued: id, status and creation time only', () => {
    assert.deepEqual(JSON.parse(renderJob(base).toString()), { request_id: 'job_abc', status: 'queued', created_at: '2026-11-23T09:00:00.000Z' });
  });

  it('succeeded with JSON: the backend JSON as result', () => {
    const body = json({ id: 'rerank-1', results: [{ index: 0, relevance_score: 0.5 }] });
    const out = JSON.parse(renderJob({ ...base, status: 'succeeded', result_content_type: 'application/json', result_encoding: 'json', result_body: body, completed_at: '2026-11-23T09:00:01.000Z' }).toString());
    assert.deepEqual(out, {
      request_id: 'job_abc',
      status: 'succeeded',
      created_at: '2026-11-23T09:00:00.000Z',
      completed_at: '2026-11-23T09:00:01.000Z',
      result: { id: 'rerank-1', results: [{ index: 0, relevance_score: 0.5 }] },
    });
  });

  it('succeeded with audio: base64 with its content type', () => {
    const out = JSON.parse(renderJob({ ...base, status: 'succeeded', result_content_type: 'audio/wav', result_encoding: 'base64', result_body: Buffer.from('RIFF'), completed_at: base.created_at }).toString());
    assert.deepEqual(out.result, { content_type: 'audio/wav', base64: Buffer.from('RIFF').toString('base64') });
  });

  it('failed: the OpenAI-shaped error, no result', () => {
    const error = { message: 'gave up after 3 attempts: rep_a: stream reset', type: 'api_error', code: 'replica_failed' };
    const out = JSON.parse(renderJob({ ...base, status: 'failed', error, completed_at: base.created_at }).toString());
    assert.deepEqual(out.error, { ...error, param: null });
    assert.equal('result' in out, false);
  });
});

describe('backend error messages', () => {
  it('reads OpenAI, vLLM and FastAPI error bodies, else the text', () => {
    assert.equal(backendErrorMessage('application/json', json({ error: { message: 'a' } })), 'a');
    assert.equal(backendErrorMessage('application/json', json({ object: 'error', message: 'b', code: 400 })), 'b');
    assert.equal(backendErrorMessage('application/json', json({ detail: [{ msg: 'c' }] })), '[{"msg":"c"}]');
    assert.equal(backendErrorMessage('text/plain', Buffer.from(' Internal Server Error ')), 'Internal Server Error');
    assert.equal(backendErrorMessage(null, Buffer.alloc(0)), '(empty body)');
  });
});
