// Splits a backend launch command into words the way a POSIX shell would quote them, without being a shell.
//
// The agent runs `command` directly (entrypoint = first word, arguments = the rest), so nothing here expands
// variables, globs or operators: those are reported as problems so the spec is refused with a clear reason.

export class CommandLineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandLineError';
  }
}

export interface ScannedCommand {
  tokens: string[];
  /** What a shell would treat specially and ikhub will not: each one a sentence for the user. */
  problems: string[];
}

const notAShell = 'the command is not run by a shell';

/** Tokenizes `cmd` like `sh` splits words (single quotes, double quotes, backslashes) and lists every shell feature it uses. */
export function scanCommandLine(cmd: string): ScannedCommand {
  const tokens: string[] = [];
  const problems = new Set<string>();
  let word = '';
  let inWord = false;
  let i = 0;
  const flush = () => {
    if (inWord) tokens.push(word);
    word = '';
    inWord = false;
  };
  const operator = (op: string, what: string) =>
    problems.add(`${notAShell}, so ${op} (${what}) is not allowed: give the backend's arguments only, and values through env`);
  const dollar = (at: number): boolean => {
    const next = cmd[at + 1];
    if (next === '(') operator('"$("', 'command substitution');
    else if (next === '{' || (next !== undefined && /[A-Za-z_]/.test(next))) {
      const name = cmd.slice(at).match(/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/)?.[0] ?? '$';
      problems.add(`${notAShell}, so variables such as "${name}" are not expanded: write the value, or pass it in env`);
    } else return false;
    return true;
  };

  while (i < cmd.length) {
    const c = cmd[i]!;
    if (c === ' ' || c === '\t') {
      flush();
      i++;
    } else if (c === '\n' || c === '\r') {
      problems.add('write the command on one line (a line break would end the command in a shell); "\\" before a line break joins the lines');
      flush();
      i++;
    } else if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end < 0) {
        problems.add("unterminated single quote (')");
        word += cmd.slice(i + 1);
        inWord = true;
        break;
      }
      word += cmd.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      let closed = false;
      while (i < cmd.length) {
        const d = cmd[i]!;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < cmd.length && '\\"$`\n'.includes(cmd[i + 1]!)) {
          if (cmd[i + 1] !== '\n') word += cmd[i + 1];
          i += 2;
          continue;
        }
        if (d === '`') operator('backticks', 'command substitution');
        if (d === '$' && dollar(i)) {
          word += d;
          i++;
          continue;
        }
        word += d;
        i++;
      }
      if (!closed) problems.add('unterminated double quote (")');
    } else if (c === '\\') {
      if (i + 1 >= cmd.length) {
        problems.add('the command ends with a lone backslash');
        i++;
      } else {
        if (cmd[i + 1] !== '\n') {
          word += cmd[i + 1];
          inWord = true;
        }
        i += 2;
      }
    } else {
      if (c === '|') operator(cmd[i + 1] === '|' ? '"||"' : '"|"', cmd[i + 1] === '|' ? 'or-list' : 'pipe');
      else if (c === ';') operator('";"', 'command list');
      else if (c === '&') operator(cmd[i + 1] === '&' ? '"&&"' : '"&"', cmd[i + 1] === '&' ? 'and-list' : 'background job');
      else if (c === '>' || c === '<') operator(`"${c}"`, 'redirection');
      else if (c === '`') operator('backticks', 'command substitution');
      else if (c === '$') dollar(i);
      word += c;
      inWord = true;
      i++;
    }
  }
  flush();
  return { tokens, problems: [...problems] };
}

/** The words of `cmd` (quotes removed, escapes applied). Throws CommandLineError when it uses a shell feature. */
export function tokenizeCommand(cmd: string): string[] {
  const { tokens, problems } = scanCommandLine(cmd);
  if (problems.length > 0) throw new CommandLineError(problems.join('; '));
  return tokens;
}

export interface CommandFlags {
  /** Words that are neither flags nor flag values, in order (the program, subcommand, model…). */
  positionals: string[];
  /** Flag name (dashes kept, `_` in a long name read as `-`, as vLLM does) → its value, or true when it has none. The last one wins. */
  flags: Map<string, string | true>;
}

/**
 * Reads `--name value`, `--name=value` and bare `--name` flags. A flag takes the next word as its value unless that
 * word is itself a flag (a negative number counts as a value); so a boolean flag followed by a positional would
 * swallow it, which launch commands do not do in practice. Flags with several values keep only the first.
 */
export function parseCommandFlags(tokens: readonly string[]): CommandFlags {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  const isFlag = (t: string) => /^--?[A-Za-z]/.test(t);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === '--') {
      positionals.push(...tokens.slice(i + 1));
      break;
    }
    if (!isFlag(t)) {
      positionals.push(t);
      continue;
    }
    const eq = t.indexOf('=');
    const rawName = eq >= 0 ? t.slice(0, eq) : t;
    const name = rawName.startsWith('--') ? `--${rawName.slice(2).replace(/_/g, '-')}` : rawName;
    if (eq >= 0) {
      flags.set(name, t.slice(eq + 1));
    } else {
      const next = tokens[i + 1];
      if (next !== undefined && next !== '--' && !isFlag(next)) {
        flags.set(name, next);
        i++;
      } else {
        flags.set(name, true);
      }
    }
  }
  return { positionals, flags };
}
