// Changes made from the page: the public `PATCH /api/upstreams/NAME/servers/ID`, with the
// bearer token when the admin listener has one (asked for once, kept in sessionStorage).

export type Change = { drain: true } | { down: boolean } | { weight: number }

const TOKEN_KEY = 'switchyard.admin-token'

/** The server's answer to a PATCH (a PeerView) or its error. */
interface PatchReply {
  state?: string
  weight?: number
  error?: { text?: string }
}

export class Actions {
  /** The stream said changes need a token: ask before the first one. */
  tokenRequired = false
  private readonly dialog: HTMLDialogElement
  private readonly input: HTMLInputElement
  private readonly message: HTMLElement
  private readonly forget: HTMLButtonElement
  private readonly notice: HTMLElement

  constructor() {
    this.dialog = document.getElementById('token-dialog') as HTMLDialogElement
    this.input = document.getElementById('token-input') as HTMLInputElement
    this.message = document.getElementById('token-message')!
    this.forget = document.getElementById('forget-token') as HTMLButtonElement
    this.notice = document.getElementById('notice')!
    this.forget.addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY)
      this.showForget()
      this.say('Token forgotten.', true)
    })
    this.showForget()
  }

  /** Apply `change` to server `id` (`label` names it in messages) of `upstream`. */
  async patch(upstream: string, id: number, label: string, change: Change): Promise<void> {
    let token = sessionStorage.getItem(TOKEN_KEY)
    if (this.tokenRequired && token === null) {
      token = await this.askToken('This admin listener needs its token for changes.')
      if (token === null) return this.say(`${label}: not changed (no token given).`, false)
    }
    for (;;) {
      let res: Response
      try {
        res = await fetch(`api/upstreams/${encodeURIComponent(upstream)}/servers/${id}`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
          body: JSON.stringify(change),
        })
      } catch (err) {
        return this.say(`${label}: not changed: ${(err as Error).message}`, false)
      }
      const reply = (await res.json().catch(() => ({}))) as PatchReply
      if (res.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY)
        this.showForget()
        token = await this.askToken(token === null ? 'This admin listener needs its token for changes.' : 'That token was not accepted. Try again?')
        if (token === null) return this.say(`${label}: not changed: ${reply.error?.text ?? 'unauthorized'}`, false)
        continue
      }
      if (!res.ok) return this.say(`${label}: not changed: ${reply.error?.text ?? `HTTP ${res.status}`}`, false)
      if (token !== null) sessionStorage.setItem(TOKEN_KEY, token)
      this.showForget()
      return this.say(`${label}: ${describe(change)} — now ${reply.state ?? '?'}, weight ${reply.weight ?? '?'}.`, true)
    }
  }

  private say(text: string, ok: boolean): void {
    this.notice.textContent = text
    this.notice.dataset.kind = ok ? 'ok' : 'error'
  }

  private showForget(): void {
    this.forget.hidden = sessionStorage.getItem(TOKEN_KEY) === null
  }

  /** The token dialog; resolves with the token, or null when cancelled. */
  private askToken(message: string): Promise<string | null> {
    this.message.textContent = message
    this.input.value = ''
    const form = this.dialog.querySelector('form')!
    const cancel = document.getElementById('token-cancel')!
    return new Promise((resolve) => {
      const done = (value: string | null): void => {
        form.removeEventListener('submit', submit)
        cancel.removeEventListener('click', dismiss)
        this.dialog.removeEventListener('cancel', dismiss)
        if (this.dialog.open) this.dialog.close()
        resolve(value)
      }
      const submit = (e: Event): void => {
        e.preventDefault()
        const value = this.input.value.trim()
        if (value !== '') done(value)
      }
      const dismiss = (e: Event): void => {
        e.preventDefault()
        done(null)
      }
      form.addEventListener('submit', submit)
      cancel.addEventListener('click', dismiss)
      this.dialog.addEventListener('cancel', dismiss)
      this.dialog.showModal()
      this.input.focus()
    })
  }
}

function describe(change: Change): string {
  if ('drain' in change) return 'draining'
  if ('down' in change) return change.down ? 'set down' : 'set up'
  return `weight set to ${change.weight}`
}
