import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import ssh2 from 'ssh2';
import { LarvalError } from '../util/errors.js';

export interface GuestKeys {
	/** PEM private key the harness logs in with. */
	clientPrivateKey: string;
	/** authorized_keys line for the guest's root. */
	authorizedKey: string;
	/** dropbear-format host key file content for the guest. */
	hostKey: Buffer;
	/** The host key's public half, `ssh-ed25519 AAAA...`, to verify the guest. */
	hostPublicKey: string;
}

/**
 * Throwaway keys made per image: the guest only listens on 127.0.0.1, but
 * pinning its host key still means a stale VM on a reused port is detected
 * rather than silently talked to.
 */
export async function makeGuestKeys(hostKeyPath: string): Promise<GuestKeys> {
	const { privateKey } = generateKeyPairSync('rsa', {
		modulusLength: 2048,
		privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
		publicKeyEncoding: { type: 'spki', format: 'pem' },
	});
	const parsed = ssh2.utils.parseKey(privateKey);
	if (parsed instanceof Error) throw parsed;
	const authorizedKey = `${parsed.type} ${parsed.getPublicSSH().toString('base64')} larval-harness`;
	const gen = await execa('dropbearkey', ['-t', 'ed25519', '-f', hostKeyPath], { reject: false, all: true });
	if (gen.exitCode !== 0) throw new LarvalError('dropbearkey failed (is dropbear-bin installed?)', gen.all);
	const pub = /^(ssh-ed25519 \S+)/m.exec(gen.stdout);
	if (!pub) throw new LarvalError('dropbearkey printed no public key', gen.all);
	return { clientPrivateKey: privateKey, authorizedKey, hostKey: readFileSync(hostKeyPath), hostPublicKey: pub[1]! };
}
