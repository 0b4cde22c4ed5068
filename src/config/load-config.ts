import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from '../errors/buildman-error.js';
import type { BuildmanConfig } from './config-types.js';
import { EMBEDDED_DEFAULT_SOURCE, EMBEDDED_DEFAULT_YAML } from './embedded-default.js';
import { parseQuayYaml } from './quay-yaml.js';
import { validateConfig, type ConfigOverrides, type ValidateOptions } from './validate-config.js';

export type { ConfigOverrides } from './validate-config.js';

export interface ParseOptions {
  /** Names the text in error messages (a file path). Default `config`. */
  source?: string;
  /** Command-line values; they win over the file. */
  overrides?: ConfigOverrides;
  /** Where BUILDMAN_HOSTNAME may come from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** What a relative BUILDMAN_DATA_DIR is resolved against. Default `process.cwd()`. */
  cwd?: string;
}

export interface LoadOptions extends Omit<ParseOptions, 'source'> {
  /** A Quay-style config.yaml. None: the embedded default. */
  file?: string;
}

/**
 * Reads, parses and checks a config file (or the embedded default). Throws ConfigError naming the
 * path when the file cannot be read, and listing every problem when it cannot be used.
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<BuildmanConfig> {
  const { file, ...rest } = opts;
  if (file === undefined) return parseConfig(EMBEDDED_DEFAULT_YAML, { ...rest, source: EMBEDDED_DEFAULT_SOURCE });
  const path = resolve(opts.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const issue =
      code === 'ENOENT'
        ? `config file not found: ${path} (check the path, or leave out the config file to run on the embedded default)`
        : code === 'EISDIR'
          ? `config file is a directory: ${path} (name the config.yaml inside it)`
          : `cannot read config file ${path}: ${(err as Error).message}`;
    throw new ConfigError(issue, [issue]);
  }
  return parseConfig(text, { ...rest, source: path });
}

/** Parses and checks config YAML. Pure apart from reading `process.env`/`cwd` when not given. */
export function parseConfig(yamlText: string, opts: ParseOptions = {}): BuildmanConfig {
  const source = opts.source ?? 'config';
  const validate: ValidateOptions = { ...opts, source };
  return validateConfig(parseQuayYaml(yamlText, source), validate);
}
