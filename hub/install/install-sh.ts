// Renders install.sh (a real shell file beside this module) with the hub's URL, OS and architecture filled in.
import { readFileSync } from 'node:fs';

const TEMPLATE = readFileSync(new URL('./install.sh', import.meta.url), 'utf8');

/** Values are written into the script between single quotes; a quote inside would end the string early. */
function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function renderInstallScript(opts: { hubUrl: string; hubOs: string; hubArch: string }): string {
  return TEMPLATE.replace('@HUB_URL@', shQuote(opts.hubUrl))
    .replace('@HUB_OS@', shQuote(opts.hubOs))
    .replace('@HUB_ARCH@', shQuote(opts.hubArch));
}
