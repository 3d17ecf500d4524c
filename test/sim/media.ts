// Tiny valid media files derived from a seed: RGB PNG images and 16-bit PCM WAV audio.
import { deflateSync } from 'node:zlib';
import { seededRandom } from './text.ts';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([len, typed, crc]);
}

/** A width×height 8-bit RGB PNG: a gradient whose colours come from the seed. */
export function makePng(seed: number, width: number, height: number): Buffer {
  const next = seededRandom(seed);
  const base = [next() * 255, next() * 255, next() * 255];
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      raw[o++] = (base[0]! + (x * 255) / width) & 0xff;
      raw[o++] = (base[1]! + (y * 255) / height) & 0xff;
      raw[o++] = base[2]! & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** `"WxH"` clamped to 1..64 per side (the simulator's images stay tiny); default 8×8. */
export function parseImageSize(size: unknown): { width: number; height: number } {
  const m = typeof size === 'string' ? /^(\d+)x(\d+)$/.exec(size) : null;
  const clamp = (v: number) => Math.min(64, Math.max(1, v));
  return m ? { width: clamp(Number(m[1])), height: clamp(Number(m[2])) } : { width: 8, height: 8 };
}

export const WAV_SAMPLE_RATE = 24_000;

/** 16-bit mono PCM samples of a tone whose pitch comes from the seed. */
export function makePcm(seed: number, seconds: number): Buffer {
  const samples = Math.max(1, Math.round(seconds * WAV_SAMPLE_RATE));
  const freq = 200 + (seed % 400);
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * freq * i) / WAV_SAMPLE_RATE)), i * 2);
  return pcm;
}

/** A RIFF/WAVE file around 16-bit mono PCM. */
export function makeWav(pcm: Buffer, sampleRate = WAV_SAMPLE_RATE): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28); // byte rate
  header.writeUInt16LE(2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

/** Duration in seconds of a PCM WAV upload, or an estimate from its size when it is not one. */
export function audioSeconds(file: Buffer): number {
  if (file.length >= 44 && file.toString('ascii', 0, 4) === 'RIFF' && file.toString('ascii', 8, 12) === 'WAVE') {
    const byteRate = file.readUInt32LE(28);
    if (byteRate > 0) return Math.max(0, (file.length - 44) / byteRate);
  }
  return file.length / 32_000;
}
