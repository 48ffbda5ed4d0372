// Certificates made at test time by openssl (Debian's, installed by .ci/run).
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

/** A self-signed certificate for `cn` as DIR/NAME.crt and DIR/NAME.key. */
export function selfSignedCert(dir: string, name: string, cn = name): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '1',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)], { stdio: 'ignore' })
}
