// Run switchyard as the user does: `node bin/switchyard.js -c FILE` in a child process,
// with a config written to a temp dir; wait until it listens; stop it by PID.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)))
export const BIN = join(ROOT, 'bin', 'switchyard.js')

export async function tempDir(prefix = 'switchyard-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

export async function writeConfig(text: string, dir?: string): Promise<string> {
  const d = dir ?? (await tempDir())
  const file = join(d, 'switchyard.conf')
  await writeFile(file, text)
  return file
}

export class SwitchyardProcess {
  readonly child: ChildProcess
  stderr = ''
  stdout = ''
  readonly exited: Promise<number | null>

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c))
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => (this.stdout += c))
    // 'close' (not 'exit'): every byte of stdout/stderr has arrived by then.
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)))
  }

  /** Resolves once the log says it listens; rejects if it exits first or takes > 10 s. */
  async ready(marker = 'switchyard started'): Promise<this> {
    await this.waitFor(marker)
    return this
  }

  /** Wait until stderr contains `text` (bounded: 10 s). */
  async waitFor(text: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms
    let exited = false
    void this.exited.then(() => (exited = true))
    while (!this.stderr.includes(text)) {
      if (exited) throw new Error(`switchyard exited before "${text}":\n${this.stderr}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}":\n${this.stderr}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null) this.child.kill(sig)
  }

  async stop(): Promise<void> {
    this.signal('SIGKILL')
    await this.exited
  }
}

/** Start switchyard on a config text; resolves when it is listening. */
export async function startSwitchyard(configText: string, extraArgs: string[] = []): Promise<{ proc: SwitchyardProcess; file: string }> {
  const file = await writeConfig(configText)
  const proc = await new SwitchyardProcess(['-c', file, ...extraArgs]).ready()
  return { proc, file }
}

/** Run the CLI to completion (bounded: 20 s). */
export async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new SwitchyardProcess(args)
  const timer = setTimeout(() => p.signal('SIGKILL'), 20_000)
  const code = await p.exited
  clearTimeout(timer)
  return { code, stdout: p.stdout, stderr: p.stderr }
}
