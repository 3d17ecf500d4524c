// The project a CLI command acts on: --project, else IK_PROJECT, else `default`.
export function projectOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag || env.IK_PROJECT || 'default';
}

export function projectPath(project: string): string {
  return `/api/v1/projects/${encodeURIComponent(project)}`;
}

/** `ik workers --json` means `ik workers ls --json`: the subcommand defaults when the first word is a flag. */
export function splitSubcommand(argv: string[], fallback = 'ls'): [string, string[]] {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith('-')) return [fallback, argv];
  return [first, rest];
}
