// Backend images (defaults, IK_IMAGE_MAP templates) and the CUDA comparisons the scheduler relies on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareCuda, cudaAllowed, cudaNumber, cudaSatisfies, minimumCuda, parseCudaVersion } from '../../shared/backends/cuda.ts';
import { defaultImage, imageName, isDefaultImageFamily, parseImageMap, resolveImage } from '../../shared/backends/images.ts';

describe('images', () => {
  it('names the default image of each backend (DESIGN §8)', () => {
    assert.equal(defaultImage('vllm', '0.6.3'), 'vllm/vllm-openai:v0.6.3');
    assert.equal(defaultImage('vllm'), 'vllm/vllm-openai:latest');
    assert.equal(defaultImage('vllm-omni', '0.11.0'), 'vllm/vllm-omni:v0.11.0');
    assert.equal(defaultImage('vllm-omni'), 'vllm/vllm-omni:latest');
    assert.equal(defaultImage('sglang'), 'lmsysorg/sglang:latest');
    assert.equal(defaultImage('ollama'), 'ollama/ollama:latest');
  });

  it('fills {version} in an IK_IMAGE_MAP template with v<version>, or latest without a pin', () => {
    const map = { vllm: 'mirror.example/vllm-openai:{version}', ollama: 'registry:5000/ollama:{version}-cuda' };
    assert.equal(resolveImage('vllm', '0.6.3', map), 'mirror.example/vllm-openai:v0.6.3');
    assert.equal(resolveImage('vllm', undefined, map), 'mirror.example/vllm-openai:latest');
    assert.equal(resolveImage('ollama', undefined, map), 'registry:5000/ollama:latest-cuda');
  });

  it('uses a template without {version} as written, and the default for a backend the map leaves out', () => {
    assert.equal(resolveImage('vllm', '0.6.3', { vllm: 'ik-sim:dev' }), 'ik-sim:dev');
    assert.equal(resolveImage('sglang', undefined, { vllm: 'ik-sim:dev' }), 'lmsysorg/sglang:latest');
    assert.equal(resolveImage('vllm-omni', '0.11.0', {}), 'vllm/vllm-omni:v0.11.0');
  });

  it('tells a mirror of the default image from another image', () => {
    assert.equal(imageName('registry:5000/mirror/vllm-openai:v0.6.3'), 'vllm-openai');
    assert.equal(imageName('vllm/vllm-openai@sha256:abc'), 'vllm-openai');
    assert.equal(isDefaultImageFamily('vllm', 'mirror.example/vllm-openai:v0.9.0'), true);
    assert.equal(isDefaultImageFamily('vllm', 'ik-sim:dev'), false);
    assert.equal(isDefaultImageFamily('ollama', 'ollama/ollama:0.5.7'), true);
  });

  it('parses IK_IMAGE_MAP: known backends only, {version} the only placeholder', () => {
    assert.deepEqual(parseImageMap(undefined), { ok: true, map: {} });
    assert.deepEqual(parseImageMap('{"vllm":"mirror/vllm-openai:{version}"}'), { ok: true, map: { vllm: 'mirror/vllm-openai:{version}' } });
    const notJson = parseImageMap('{vllm:');
    assert.ok(!notJson.ok && notJson.error.startsWith('IK_IMAGE_MAP is not valid JSON'));
    const unknown = parseImageMap('{"vlm":"x"}');
    assert.ok(!unknown.ok && unknown.error.includes('vllm, vllm-omni, sglang, ollama'), JSON.stringify(unknown));
    const placeholder = parseImageMap('{"vllm":"mirror/vllm-openai:{tag}"}');
    assert.ok(!placeholder.ok && placeholder.error.includes('the only placeholder an image template takes is {version}'), JSON.stringify(placeholder));
    const spaces = parseImageMap('{"sglang":"my image"}');
    assert.ok(!spaces.ok && spaces.error.includes('spaces'), JSON.stringify(spaces));
  });
});

describe('CUDA versions', () => {
  it('compares numerically: 12.10 is newer than 12.4', () => {
    assert.deepEqual(parseCudaVersion('12.10'), [12, 10]);
    assert.deepEqual(parseCudaVersion('13'), [13, 0]);
    assert.equal(parseCudaVersion('twelve'), null);
    assert.ok(compareCuda([12, 10], [12, 4]) > 0);
    assert.equal(cudaNumber('12.10'), 12010);
    assert.equal(cudaNumber('12.4'), 12004);
    assert.equal(cudaNumber('12.'), null);
    assert.equal(cudaNumber(null), null);
  });

  it('cudaSatisfies: the driver CUDA must be at least the required one, any major', () => {
    assert.equal(cudaSatisfies('12.4', '12.4'), true);
    assert.equal(cudaSatisfies('12.10', '12.4'), true);
    assert.equal(cudaSatisfies('13.0', '12.8'), true);
    assert.equal(cudaSatisfies('12.2', '12.4'), false);
    assert.equal(cudaSatisfies(null, '12.1'), false);
  });

  it('cudaAllowed: one of the listed versions, same major, at least that minor', () => {
    assert.equal(cudaAllowed('12.8', ['12.4']), true);
    assert.equal(cudaAllowed('12.10', ['12.4']), true);
    assert.equal(cudaAllowed('13.0', ['12.4']), false);
    assert.equal(cudaAllowed('12.2', ['12.4']), false);
    assert.equal(cudaAllowed('13.1', ['12.4', '13.0']), true);
    assert.equal(cudaAllowed(null, ['12.4']), false);
    assert.equal(cudaAllowed('11.8', []), true);
  });

  it("knows the minimum driver CUDA of each backend's default image", () => {
    const vllm: Array<[string | undefined, string]> = [
      ['0.2.7', '12.1'],
      ['0.4.2', '12.1'],
      ['0.4.3', '12.4'],
      ['0.6.3', '12.4'],
      ['0.6.3.post1', '12.4'],
      ['0.8.5', '12.4'],
      ['0.9.0', '12.8'],
      ['0.10.1rc1', '12.8'],
      ['0.11.0', '12.8'],
      ['0.11.1', '12.9'],
      ['0.19.1', '12.9'],
      ['0.20.0', '13.0'],
      [undefined, '13.0'],
    ];
    for (const [version, cuda] of vllm) {
      assert.equal(minimumCuda('vllm', version), cuda, `vllm ${version ?? 'latest'}`);
      assert.equal(minimumCuda('vllm-omni', version), cuda, `vllm-omni ${version ?? 'latest'}`);
    }
    assert.equal(minimumCuda('sglang', undefined), '13.0');
    assert.equal(minimumCuda('ollama', undefined), '12.4');
    assert.equal(minimumCuda('vllm', 'nightly'), null);
  });
});
