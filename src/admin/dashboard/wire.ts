// What `GET /api/stream` sends (server-sent events): the dashboard's only live input.
// Types only, shared by the server (src/admin/live.ts) and the page (compiled for the
// browser by this folder's tsconfig.json).

/** One server of an upstream, as of one tick. Counts over "the window" cover the last
 *  `LiveHello.window` seconds (less just after the stream started or a reload). */
export interface LivePeer {
  /** Index in the upstream's server list, as in `/api/upstreams`. */
  readonly id: number
  /** The server as written in the config. */
  readonly server: string
  /** The address connected to. */
  readonly name: string
  readonly backup: boolean
  /** The current weight (the API may have changed it; fractional during slow start). */
  readonly weight: number
  readonly state: 'up' | 'down' | 'draining' | 'unhealthy' | 'unavail'
  /** Why it is out: config_down, api_down, draining, active_check, max_fails, max_conns. */
  readonly reasons: readonly string[]
  readonly active: number
  /** Attempts since this config generation started. */
  readonly requests: number
  /** Attempts per second over the last tick; null on the first tick, and on the tick
   *  after a reload (the counters started again). */
  readonly rps: number | null
  /** This server's fraction of the upstream's attempts in the window; null without any. */
  readonly share: number | null
  /** weight / the summed weights of the upstream's primary servers not marked `down` in
   *  the config; 0 for a backup server. */
  readonly weight_share: number
  /** Attempts in the window that got a 5xx or no response (connect error, timeout,
   *  invalid header), as a fraction of the attempts; null without any. */
  readonly error_rate: number | null
  /** Response-header time percentiles over the window, ms (histogram estimates). */
  readonly p50: number | null
  readonly p99: number | null
  /** Mean response-header time since start, ms. */
  readonly response_time: number | null
  readonly max_fails: number
  /** ms */
  readonly fail_timeout: number
  readonly max_conns: number
}

export interface LiveUpstream {
  readonly name: string
  readonly balancer: string
  /** Attempts per second over the last tick, all servers (null as for a server). */
  readonly rps: number | null
  /** Retries by cause and failovers since this config generation started. */
  readonly retries: Readonly<Record<string, number>>
  readonly failovers: number
  readonly peers: readonly LivePeer[]
}

/** Something that happened, derived by comparing consecutive snapshots. */
export interface LiveEvent {
  /** ms since the epoch: the tick that saw it. */
  readonly t: number
  /** `state`: a server's state or reasons changed; `weight`: its weight did; `retry`:
   *  retries or failovers during the tick; `reload`: the config was reloaded (or a reload
   *  failed); `servers`: an upstream appeared, went away or has other servers. */
  readonly kind: 'state' | 'weight' | 'retry' | 'reload' | 'servers'
  readonly upstream?: string
  readonly server?: string
  readonly from?: string
  readonly to?: string
  readonly reasons?: readonly string[]
  /** One line for people. */
  readonly text: string
}

/** `event: frame`, once per tick. */
export interface LiveFrame {
  readonly t: number
  /** Seconds the window-based fields actually cover. */
  readonly window: number
  readonly upstreams: readonly LiveUpstream[]
  /** New since the previous frame. */
  readonly events: readonly LiveEvent[]
}

/** One point of the requests/s history: by upstream, by server (as written). */
export interface LivePoint {
  readonly t: number
  readonly rps: Readonly<Record<string, Readonly<Record<string, number>>>>
}

/** `event: hello`, first on every connection: what the stream already knows. */
export interface LiveHello {
  /** ms between frames. */
  readonly interval: number
  /** Seconds the share, error rate and percentiles are computed over. */
  readonly window: number
  /** Changes (PATCH) need `Authorization: Bearer TOKEN`. */
  readonly token_required: boolean
  /** Oldest first; a point with no upstreams marks a gap (the stream was stopped). */
  readonly history: readonly LivePoint[]
  /** Oldest first. */
  readonly events: readonly LiveEvent[]
  /** The latest frame, if the stream has made one. */
  readonly frame: LiveFrame | null
}
