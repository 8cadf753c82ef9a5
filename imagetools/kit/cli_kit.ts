// One way for every command to declare its options, print --help and read CASCADE_* variables.
// Built on node:util parseArgs (JSR's @std/cli is out of reach here).
import { parseArgs } from "node:util";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Placeholder in --help, e.g. "DIR". */
  arg?: string;
  help: string;
  default?: string | boolean;
  /** Environment variable read when the flag is absent (flags beat env, env beats defaults). */
  env?: string;
  multiple?: boolean;
}

export interface CommandSpec {
  /** e.g. "slice" (shown as "cascade slice"). */
  name: string;
  summary: string;
  /** e.g. "<image> [options]" */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Extra lines after OPTIONS (examples, notes). */
  notes?: string[];
}

/** A bad command line: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface ParsedCommand {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function renderHelp(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.arg ? ` ${o.arg}` : ""}`;
    const extra = [
      o.default !== undefined && o.default !== false ? `default: ${o.default}` : "",
      o.env ? `env: ${o.env}` : "",
    ].filter(Boolean).join("; ");
    return [flag, extra ? `${o.help} (${extra})` : o.help] as const;
  });
  rows.push(["-h, --help", "Show this help and exit"]);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [
    `cascade ${spec.name}: ${spec.summary}`,
    "",
    "USAGE:",
    `  cascade ${spec.name} ${spec.usage}`,
    "",
    "OPTIONS:",
    ...rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`),
    ...(spec.notes?.length ? ["", ...spec.notes] : []),
    "",
  ].join("\n");
}

/**
 * Parse args against the spec. Returns null when --help was asked for (help already printed).
 * Throws UsageError naming the bad flag.
 */
export function parseCommand(
  spec: CommandSpec,
  args: string[],
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
  print: (text: string) => void = (t) => console.log(t),
): ParsedCommand | null {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = { help: { type: "boolean", short: "h" } };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (cause) {
    const msg = (cause as Error).message.replace(/\. To specify.*$/s, "");
    throw new UsageError(`${msg} (see "cascade ${spec.name} --help")`, { cause });
  }
  if (parsed.values.help) {
    print(renderHelp(spec));
    return null;
  }
  const values: ParsedCommand["values"] = {};
  for (const [name, o] of Object.entries(spec.options)) {
    let v = parsed.values[name] as string | boolean | string[] | undefined;
    if (v === undefined && o.env) {
      const e = env(o.env);
      if (e !== undefined && e !== "") v = o.type === "boolean" ? !/^(0|false|no)$/i.test(e) : e;
    }
    if (v === undefined) v = o.default;
    values[name] = v;
  }
  return { values, positionals: parsed.positionals };
}

/** Require exactly `names.length` positionals, naming the first missing one. */
export function requirePositionals(spec: CommandSpec, p: ParsedCommand, names: string[]) {
  if (p.positionals.length < names.length) {
    throw new UsageError(
      `Missing ${names[p.positionals.length]} (usage: cascade ${spec.name} ${spec.usage})`,
    );
  }
  if (p.positionals.length > names.length) {
    throw new UsageError(
      `Unexpected argument "${
        p.positionals[names.length]
      }" (usage: cascade ${spec.name} ${spec.usage})`,
    );
  }
  return p.positionals;
}

/** A required string option, with a clear error when it is absent. */
export function requireOption(spec: CommandSpec, p: ParsedCommand, name: string): string {
  const v = p.values[name];
  if (typeof v !== "string" || v === "") {
    const env = spec.options[name]?.env;
    throw new UsageError(
      `Missing --${name}${env ? ` (or ${env})` : ""} (see "cascade ${spec.name} --help")`,
    );
  }
  return v;
}
