// A small argument parser: long options, repeatable ones, and the program after `--`.
import { CliError } from './errors';

export interface OptionSpec {
  /** Takes a value (`--name value` or `--name=value`). */
  value?: boolean;
  repeatable?: boolean;
}

export interface Parsed {
  options: Record<string, string | string[] | boolean>;
  positionals: string[];
  /** Everything after `--`. */
  rest: string[] | null;
}

/**
 * With `programAtPositional`, the first argument that is not an option starts the program to run
 * (`run node app.js --port 3000`: --port is the program's), as `--` does.
 */
export function parseArgs(argv: readonly string[], specs: Record<string, OptionSpec>, command: string, programAtPositional = false): Parsed {
  const options: Parsed['options'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return { options, positionals, rest: argv.slice(i + 1) };
    if (arg === '-h' && specs.help) {
      options.help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg.length > 1) {
        throw new CliError(`Unknown option ${JSON.stringify(arg)} for allocator-stats ${command}; see allocator-stats ${command} --help`);
      }
      if (programAtPositional) return { options, positionals, rest: argv.slice(i) };
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = specs[name];
    if (!spec) throw new CliError(`Unknown option --${name} for allocator-stats ${command}; see allocator-stats ${command} --help`);
    let value: string | boolean = true;
    if (spec.value) {
      if (eq > 0) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length && argv[i + 1] !== '--') value = argv[++i];
      else throw new CliError(`Expected a value for --${name} but received nothing`);
    } else if (eq > 0) {
      throw new CliError(`Expected no value for --${name} but received ${JSON.stringify(arg.slice(eq + 1))}`);
    }
    if (spec.repeatable) options[name] = [...((options[name] as string[] | undefined) ?? []), value as string];
    else if (name in options) throw new CliError(`Expected --${name} once but received it twice`);
    else options[name] = value;
  }
  return { options, positionals, rest: null };
}

export function integerOption(value: string | string[] | boolean | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(`Expected an integer from ${min} to ${max} for --${name} but received ${JSON.stringify(value)}`);
  }
  return n;
}
