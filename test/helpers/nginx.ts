// Debian's nginx as the reference for differential tests: run unprivileged-style in a
// temp prefix with `daemon off`, stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startSwitchyard, tempDir } from './switchyard.js'
import { freePort, send } from './net.js'

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? 'nginx'

export class NginxProcess {
  child: ChildProcess | null = null
  stderr = ''

  /** Start nginx on `configBody` (an http-only config; pid and error_log are prepended)
   *  and wait until `port` answers (bounded: 10 s). */
  async start(configBody: string, port: number): Promise<this> {
    const dir = await tempDir('switchyard-nginx-')
    const file = join(dir, 'nginx.conf')
    await writeFile(file, `pid ${dir}/nginx.pid;\nerror_log stderr;\n${configBody}`)
    const child = spawn(NGINX, ['-p', dir, '-c', file, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()))
    const deadline = Date.now() + 10_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${this.stderr}`)
      try {
        await send(port, { path: '/__ready' })
        return this
      } catch {
        if (Date.now() > deadline) throw new Error(`nginx did not start: ${this.stderr}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child
    if (child === null || child.exitCode !== null) return
    const exited = new Promise((r) => child.on('exit', r))
    child.kill('SIGTERM')
    await exited
  }
}

/** An nginx config that proxies every request on `listen` to upstream `name` with `body`
 *  inside it (the shape every differential test uses). */
export function proxyConfig(name: string, body: string, listen: number, location = ''): string {
  return `events { worker_connections 1024; }
http {
  access_log off;
  upstream ${name} {
    ${body}
  }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://${name};
      ${location}
    }
  }
}
`
}

/** Play the same requests through Debian's nginx and then switchyard on the same config
 *  (`config(listen)`); both first see one readiness probe (nginx's start() sends it). */
export async function underBoth<T>(config: (listen: number) => string, play: (port: number) => Promise<T>): Promise<{ nginx: T; switchyard: T }> {
  const nginxPort = await freePort()
  const nginx = await new NginxProcess().start(`worker_processes 1;\n${config(nginxPort)}`, nginxPort)
  let fromNginx: T
  try {
    fromNginx = await play(nginxPort)
  } finally {
    await nginx.stop()
  }
  const syPort = await freePort()
  const { proc } = await startSwitchyard(config(syPort))
  try {
    await send(syPort, { path: '/__ready' })
    return { nginx: fromNginx, switchyard: await play(syPort) }
  } finally {
    await proc.stop()
  }
}
