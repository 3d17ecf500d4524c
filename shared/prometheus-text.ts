// Reads one metric out of a Prometheus text exposition (what vLLM and SGLang serve on /metrics): the sum of its samples
// over every label set. Lines that do not parse are skipped, never thrown on: the text comes from a backend we do not own.

/** Sum of the samples named `name` (any labels), or null when the text has none that parse. */
export function sumMetric(text: string, name: string): number | null {
  let sum = 0;
  let found = false;
  let from = 0;
  while (from < text.length) {
    let end = text.indexOf('\n', from);
    if (end === -1) end = text.length;
    const value = sampleValue(text, from, end, name);
    if (value !== null) {
      sum += value;
      found = true;
    }
    from = end + 1;
  }
  return found ? sum : null;
}

/** The value of the sample on text[from, end) when it is a sample of `name`, else null. */
function sampleValue(text: string, from: number, end: number, name: string): number | null {
  if (!text.startsWith(name, from)) return null;
  let i = from + name.length;
  const next = text[i];
  if (next === '{') {
    // Skip the labels: a value may hold "}" or spaces inside its quotes, and \" escapes.
    i++;
    let quoted = false;
    for (; i < end; i++) {
      const c = text[i];
      if (quoted && c === '\\') i++;
      else if (c === '"') quoted = !quoted;
      else if (!quoted && c === '}') break;
    }
    if (i >= end) return null;
    i++;
  } else if (next !== ' ' && next !== '\t') {
    return null; // a longer name that starts with this one (vllm:num_requests_waiting_total)
  }
  const rest = text.slice(i, end).trim().split(/\s+/)[0];
  if (rest === undefined || rest === '') return null;
  const value = Number(rest);
  return Number.isFinite(value) ? value : null;
}
