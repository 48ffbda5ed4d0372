// Which server block and location take a request, by nginx's rules:
// server: exact server_name, then the longest leading wildcard (*.example.com), then the
// longest trailing wildcard (www.*), then regexes in order, else the default server of
// the listen address (the first one unless `default_server` says otherwise).
// location: an exact `=` match wins; else the longest prefix; if that prefix is `^~` it
// wins, otherwise the first matching regex in config order, else the longest prefix.
import type { Location, VirtualServer } from '../config/model.js'
import { normalizeUri } from '../config/variables.js'

interface NameMatcher<S> {
  exact: Map<string, S>
  leading: Array<{ suffix: string; server: S }>
  trailing: Array<{ prefix: string; server: S }>
  regex: Array<{ re: RegExp; server: S }>
  fallback: S
}

/** Picks the server block for a Host on one listen address. */
export class ServerSelector<S> {
  private readonly m: NameMatcher<S>
  /** The server block when only one listens here: no Host lookup needed. */
  readonly single: S | null

  constructor(entries: ReadonlyArray<{ config: VirtualServer; server: S; isDefault: boolean }>) {
    const fallback = (entries.find((e) => e.isDefault) ?? entries[0]!).server
    this.m = { exact: new Map(), leading: [], trailing: [], regex: [], fallback }
    for (const { config, server } of entries) {
      for (const name of config.serverNames) {
        if (name.startsWith('~')) this.m.regex.push({ re: new RegExp(name.slice(1), 'i'), server })
        else if (name.startsWith('*.')) this.m.leading.push({ suffix: name.slice(1).toLowerCase(), server })
        else if (name.startsWith('.')) {
          // `.example.com` is both `example.com` and `*.example.com`.
          this.addExact(name.slice(1).toLowerCase(), server)
          this.m.leading.push({ suffix: name.toLowerCase(), server })
        } else if (name.endsWith('.*')) this.m.trailing.push({ prefix: name.slice(0, -1).toLowerCase(), server })
        else this.addExact(name.toLowerCase(), server)
      }
    }
    this.m.leading.sort((a, b) => b.suffix.length - a.suffix.length)
    this.m.trailing.sort((a, b) => b.prefix.length - a.prefix.length)
    this.single = entries.length === 1 ? fallback : null
  }

  private addExact(name: string, server: S): void {
    if (!this.m.exact.has(name)) this.m.exact.set(name, server)
  }

  select(host: string): S {
    if (this.single !== null) return this.single
    const exact = this.m.exact.get(host)
    if (exact !== undefined) return exact
    for (const { suffix, server } of this.m.leading) if (host.endsWith(suffix)) return server
    for (const { prefix, server } of this.m.trailing) if (host.startsWith(prefix)) return server
    for (const { re, server } of this.m.regex) if (re.test(host)) return server
    return this.m.fallback
  }
}

/** Picks the location for a request path within one server block. */
export class LocationMatcher<L> {
  private readonly exact = new Map<string, L>()
  /** Prefix locations, longest first. */
  private readonly prefixes: Array<{ path: string; stop: boolean; value: L }> = []
  private readonly regexes: Array<{ re: RegExp; value: L }> = []

  constructor(locations: ReadonlyArray<{ config: Location; value: L }>) {
    for (const { config, value } of locations) {
      switch (config.modifier) {
        case '=': this.exact.set(config.path, value); break
        case '~': this.regexes.push({ re: new RegExp(config.path), value }); break
        case '~*': this.regexes.push({ re: new RegExp(config.path, 'i'), value }); break
        default: this.prefixes.push({ path: config.path, stop: config.modifier === '^~', value })
      }
    }
    this.prefixes.sort((a, b) => b.path.length - a.path.length)
  }

  /** The location for a raw request path (before `?`), or undefined. */
  match(rawPath: string): L | undefined {
    const uri = needsNormalizing(rawPath) ? normalizeUri(rawPath) : rawPath
    const exact = this.exact.get(uri)
    if (exact !== undefined) return exact
    let prefix: { stop: boolean; value: L } | undefined
    for (const p of this.prefixes) {
      if (uri.startsWith(p.path)) {
        prefix = p
        break
      }
    }
    if (prefix?.stop) return prefix.value
    for (const { re, value } of this.regexes) if (re.test(uri)) return value
    return prefix?.value
  }
}

/** Only paths with escapes, dot segments or doubled slashes differ from their `$uri`. */
export function needsNormalizing(path: string): boolean {
  return path.includes('%') || path.includes('/.') || path.includes('//')
}
