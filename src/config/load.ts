// The config loader: read the file (and its includes), parse, check and build the model,
// resolving host names. The one entry point the rest of switchyard uses.
import { resolve } from 'node:path'
import { buildConfig, type BuildOptions } from './build.js'
import type { Config } from './model.js'
import { parseConfigFile, parseConfigString, type ParseOptions } from './parser.js'

export { ConfigError } from './errors.js'
export type { HostResolver } from './build.js'

export interface LoadOptions extends BuildOptions {
  /** Reads one file as UTF-8 text. Default: fs.readFileSync. */
  readonly readFile?: ParseOptions['readFile']
}

/** Load `file` (made absolute against the working directory) into a Config. Throws
 *  ConfigError with nginx's wording, e.g. `unknown directive "x" in /etc/lb.conf:5`. */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<Config> {
  const path = resolve(file)
  const tree = parseConfigFile(path, options.readFile ? { readFile: options.readFile } : {})
  return buildConfig(tree, path, options)
}

/** Build a Config from text as if it were the content of `file` (which need not exist;
 *  it names errors and anchors relative paths and includes). */
export async function parseConfigText(text: string, file: string, options: LoadOptions = {}): Promise<Config> {
  const path = resolve(file)
  const tree = parseConfigString(text, path, options.readFile ? { readFile: options.readFile } : {})
  return buildConfig(tree, path, options)
}
