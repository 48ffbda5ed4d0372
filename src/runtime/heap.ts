// Memory tuning for the serving process.
import { setFlagsFromString } from 'node:v8'

/** Keep V8's young generation at its initial size instead of letting it double up to
 *  16 MiB semi-spaces under sustained load. A proxy's per-request objects die young, so
 *  a small nursery costs no measurable throughput here but keeps peak RSS about 10 MiB
 *  lower (measured with wrk -c64 against the bench config: 118 → 108 MiB). This is one
 *  of the few V8 flags read at run time (when the nursery would grow), so it works
 *  without a command-line flag. */
export function tuneHeapForProxy(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
}
